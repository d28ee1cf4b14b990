//! The injected clock: wall time in production, virtual time in demos and tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// Where every actor gets "now" from.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to: replays run in virtual time.
#[derive(Clone, Default)]
pub struct ManualClock {
    micros: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn at(t: DateTime<Utc>) -> Self {
        let c = ManualClock::default();
        c.set(t);
        c
    }

    pub fn set(&self, t: DateTime<Utc>) {
        self.micros.store(t.timestamp_micros(), Ordering::SeqCst);
    }

    /// The current virtual time (same as [`Clock::now`], without the trait in scope).
    pub fn now_utc(&self) -> DateTime<Utc> {
        Clock::now(self)
    }

    pub fn advance(&self, d: chrono::Duration) {
        self.micros
            .fetch_add(d.num_microseconds().unwrap_or(0), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.micros.load(Ordering::SeqCst)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let c = ManualClock::at(t0);
        assert_eq!(c.now(), t0);
        c.advance(chrono::Duration::minutes(5));
        assert_eq!(c.now(), t0 + chrono::Duration::minutes(5));
        let shared = c.clone();
        shared.set(t0);
        assert_eq!(c.now(), t0, "clones share one time");
    }
}
