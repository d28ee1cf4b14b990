//! What ingest accepts. Two checks, both pure:
//! - [`check_bounds`]: a sample must be a finite, non-negative number no larger than
//!   `ingest.max_value`, dated no later than `ingest.max_future_s` after now and no earlier than
//!   the metrics retention — otherwise it is refused (HTTP 400) naming the field;
//! - [`Plausibility::judge`]: a sample far above the service's recent peak (more than
//!   `spike_factor` times the larger of that peak and one replica's capacity) is quarantined:
//!   stored apart and kept out of the forecasts, so one mis-scaled value cannot drive a scale to
//!   the maximum. `spike_confirm` consecutive quarantined samples of one level (within a factor
//!   of two of each other) are a real level shift: they are released into the load series
//!   together, so a genuine surge is followed after a few samples, never ignored.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use crate::context::IngestLimits;
use crate::error::ActorError;
use crate::messages::Sample;

/// Refuses samples that no load can be, naming the field.
pub fn check_bounds(s: &Sample, limits: &IngestLimits, now: DateTime<Utc>) -> Result<(), ActorError> {
    let invalid = |field, message| Err(ActorError::Invalid { field, message });
    if !s.value.is_finite() {
        return invalid("value", format!("{} is not a finite number", s.value));
    }
    if s.value < 0.0 {
        return invalid("value", format!("load {} is negative", s.value));
    }
    if s.value > limits.max_value {
        return invalid(
            "value",
            format!(
                "{} is above the largest load accepted (ingest.max_value = {})",
                s.value, limits.max_value
            ),
        );
    }
    let ahead = (s.ts - now).num_seconds();
    if ahead > limits.max_future_s {
        return invalid(
            "timestamp",
            format!(
                "{} is {ahead} s after now (at most {} s ahead are accepted: ingest.max_future_s)",
                s.ts, limits.max_future_s
            ),
        );
    }
    let age = (now - s.ts).num_seconds();
    if age > limits.max_age_s {
        return invalid(
            "timestamp",
            format!(
                "{} is {age} s old, beyond the metrics retention ({} s)",
                s.ts, limits.max_age_s
            ),
        );
    }
    Ok(())
}

/// What to do with a sample that is within bounds.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Store it as load.
    Accept,
    /// Store it apart; why.
    Quarantine(String),
    /// A level shift is confirmed: store these (earlier quarantined ones and this one) as load.
    Release(Vec<(DateTime<Utc>, f64)>),
}

/// The recent history a sample is judged against.
#[derive(Debug, Clone, Default)]
pub struct Plausibility {
    /// Accepted samples (time, value) within `recent_s` of the newest.
    recent: VecDeque<(i64, f64)>,
    /// Consecutive quarantined samples, oldest first.
    suspects: Vec<(DateTime<Utc>, f64)>,
}

impl Plausibility {
    /// Remembers an accepted sample.
    pub fn accepted(&mut self, ts: DateTime<Utc>, value: f64, limits: &IngestLimits) {
        let t = ts.timestamp();
        self.recent.push_back((t, value));
        let newest = self.recent.iter().map(|(t, _)| *t).max().unwrap_or(t);
        self.recent.retain(|(t, _)| *t >= newest - limits.recent_s);
    }

    /// The highest accepted load in the recent window.
    pub fn peak(&self) -> f64 {
        self.recent.iter().map(|(_, v)| *v).fold(0.0, f64::max)
    }

    /// Judges a sample within bounds and updates the state as if it were stored.
    pub fn judge(
        &mut self,
        ts: DateTime<Utc>,
        value: f64,
        limits: &IngestLimits,
        capacity_per_replica: f64,
    ) -> Verdict {
        let base = self.peak().max(if capacity_per_replica.is_finite() {
            capacity_per_replica
        } else {
            0.0
        });
        let threshold = limits.spike_factor * base;
        if !(base > 0.0 && value > threshold) {
            self.suspects.clear();
            self.accepted(ts, value, limits);
            return Verdict::Accept;
        }
        self.suspects.push((ts, value));
        // keep the suspects of one level only (the newest ones within a factor of two)
        while self.suspects.len() > 1 {
            let (lo, hi) = self
                .suspects
                .iter()
                .fold((f64::MAX, 0.0f64), |(lo, hi), (_, v)| (lo.min(*v), hi.max(*v)));
            if hi <= 2.0 * lo {
                break;
            }
            self.suspects.remove(0);
        }
        if self.suspects.len() >= limits.spike_confirm.max(1) {
            let released = std::mem::take(&mut self.suspects);
            for (t, v) in &released {
                self.accepted(*t, *v, limits);
            }
            return Verdict::Release(released);
        }
        Verdict::Quarantine(format!(
            "{value} is more than {}x the recent peak {:.4} (or one replica's capacity): quarantined until {} samples of this level confirm it",
            limits.spike_factor,
            self.peak(),
            limits.spike_confirm
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn sample(at: i64, value: f64) -> Sample {
        Sample { ts: t(at), value }
    }

    #[test]
    fn bounds_name_the_field() {
        let l = IngestLimits::default();
        let now = t(0);
        let field = |s: Sample| match check_bounds(&s, &l, now) {
            Err(ActorError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(sample(0, 1e300)), "value");
        assert_eq!(field(sample(0, f64::NAN)), "value");
        assert_eq!(field(sample(0, -1.0)), "value");
        assert_eq!(field(sample(86_400 * 365, 5.0)), "timestamp");
        assert_eq!(field(sample(-86_400 * 365, 5.0)), "timestamp");
        assert!(
            check_bounds(&sample(60, 5.0), &l, now).is_ok(),
            "a minute ahead is clock skew"
        );
    }

    #[test]
    fn a_lone_spike_is_quarantined_and_the_series_goes_on() {
        let l = IngestLimits::default();
        let mut p = Plausibility::default();
        for i in 0..60 {
            assert_eq!(p.judge(t(i * 60), 100.0 + i as f64, &l, 10.0), Verdict::Accept);
        }
        assert!(matches!(p.judge(t(3600), 1e9, &l, 10.0), Verdict::Quarantine(_)));
        assert_eq!(p.judge(t(3660), 150.0, &l, 10.0), Verdict::Accept);
        assert!(p.peak() < 200.0, "the spike is not part of the history");
    }

    #[test]
    fn a_sustained_level_shift_is_released_after_the_confirming_samples() {
        let l = IngestLimits::default();
        let mut p = Plausibility::default();
        for i in 0..10 {
            p.judge(t(i * 60), 10.0, &l, 1.0);
        }
        assert!(matches!(p.judge(t(600), 5000.0, &l, 1.0), Verdict::Quarantine(_)));
        assert!(matches!(p.judge(t(660), 5200.0, &l, 1.0), Verdict::Quarantine(_)));
        match p.judge(t(720), 5100.0, &l, 1.0) {
            Verdict::Release(v) => assert_eq!(v.len(), 3),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            p.judge(t(780), 5050.0, &l, 1.0),
            Verdict::Accept,
            "the new level is the history now"
        );
    }

    #[test]
    fn a_quiet_service_waking_up_is_judged_against_one_replicas_capacity() {
        let l = IngestLimits::default();
        let mut p = Plausibility::default();
        p.judge(t(0), 0.0, &l, 100.0);
        assert_eq!(
            p.judge(t(60), 1500.0, &l, 100.0),
            Verdict::Accept,
            "15 replicas of load is plausible"
        );
    }
}
