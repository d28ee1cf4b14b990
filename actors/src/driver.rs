//! Runs one service in virtual time (`demo`, tests): the driver moves the manual clock and
//! sends the control loop's ticks itself, at the configured interval, so a run is
//! deterministic. A sample is ingested after every tick before its time and before the tick
//! at its time, so no evaluation sees a sample from its future.

use chrono::{DateTime, Duration, Utc};

use crate::clock::ManualClock;
use crate::error::ActorError;
use crate::messages::{Ingested, Outcome, Reconcile, Sample};
use crate::supervisor::ServiceActors;

/// The virtual-time driver of one service.
pub struct VirtualDriver {
    clock: ManualClock,
    actors: ServiceActors,
    interval: Duration,
    next_tick: DateTime<Utc>,
}

impl VirtualDriver {
    /// Ticks every `interval_s` (virtual) seconds, the first at `first_tick`.
    pub fn new(clock: ManualClock, actors: ServiceActors, interval_s: u64, first_tick: DateTime<Utc>) -> Self {
        VirtualDriver {
            clock,
            actors,
            interval: Duration::seconds(interval_s.max(1) as i64),
            next_tick: first_tick,
        }
    }

    /// Runs the ticks due up to `t` (those at `t` too when `inclusive`), then leaves the clock at `t`.
    pub async fn advance_to(&mut self, t: DateTime<Utc>, inclusive: bool) -> Result<Vec<Outcome>, ActorError> {
        let mut out = Vec::new();
        while self.next_tick < t || (inclusive && self.next_tick == t) {
            let now = self.next_tick;
            self.clock.set(now);
            out.push(self.actors.decision.send(Reconcile { now }).await??);
            self.next_tick = now + self.interval;
        }
        if self.clock.now_utc() < t {
            self.clock.set(t);
        }
        Ok(out)
    }

    /// The ticks before the sample's time, the sample, then the tick at its time if one is due.
    pub async fn feed(&mut self, sample: Sample) -> Result<(Ingested, Vec<Outcome>), ActorError> {
        let ts = sample.ts;
        let mut outcomes = self.advance_to(ts, false).await?;
        let ingested = self.actors.ingest.send(sample).await??;
        outcomes.extend(self.advance_to(ts, true).await?);
        Ok((ingested, outcomes))
    }

    /// The actors driven.
    pub fn actors(&self) -> &ServiceActors {
        &self.actors
    }
}
