//! Business-event features: an event-in-progress flag, hours to its end, days to the next launch, and the decaying impact with the overlap sum.
//!
//! An event is active on `[start, end)`. Its impact multiplier (1 = no
//! effect) decays *linearly* over its duration, from `impact` at `start` to 1
//! at `end`: `m(t) = 1 + (impact - 1)·(end - t)/(end - start)`. Features at
//! `t`:
//! - `event_active`: 1 if any event (of any kind) is active, else 0;
//! - `event_hours_to_end`: hours until the earliest end among the active
//!   events, NaN when none is active;
//! - `event_days_to_next_launch`: days until the start of the next event of
//!   the launch kind starting at or after `t`, NaN when none is scheduled;
//! - `event_impact`: the decayed multiplier of the active event whose effect
//!   is strongest (largest `|m - 1|`), 1 when none is active;
//! - `event_impact_sum`: the overlap sum `Σ (m_i - 1)` over the active events,
//!   their extra load added up (0 when none).

use serde::{Deserialize, Serialize};

use super::FeatureError;

/// Feature names, in output order.
pub const NAMES: [&str; 5] = [
    "event_active",
    "event_hours_to_end",
    "event_days_to_next_launch",
    "event_impact",
    "event_impact_sum",
];

/// A scheduled business event (campaign, launch, sale…) and the load multiplier expected from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusinessEvent {
    /// Start, epoch seconds (inclusive).
    pub start: i64,
    /// End, epoch seconds (exclusive); after `start`.
    pub end: i64,
    /// What it is, e.g. `"campaign"` or `"launch"`.
    pub kind: String,
    /// Expected load multiplier at its start (1 = no effect); finite and not negative.
    pub impact: f64,
}

impl BusinessEvent {
    /// Whether the event is in progress at `t`.
    pub fn is_active(&self, t: i64) -> bool {
        self.start <= t && t < self.end
    }

    /// The linearly decayed multiplier at `t`: `impact` at start, 1 at end, 1 outside the event.
    pub fn multiplier_at(&self, t: i64) -> f64 {
        if !self.is_active(t) {
            return 1.0;
        }
        let left = (self.end - t) as f64 / (self.end - self.start) as f64;
        1.0 + (self.impact - 1.0) * left
    }
}

/// Checks every event: `end > start`, `impact` finite and not negative.
pub fn validate(events: &[BusinessEvent]) -> Result<(), FeatureError> {
    for (index, e) in events.iter().enumerate() {
        let reason = if e.end <= e.start {
            format!("end {} is not after start {}", e.end, e.start)
        } else if !e.impact.is_finite() || e.impact < 0.0 {
            format!("impact {} must be finite and not negative", e.impact)
        } else {
            continue;
        };
        return Err(FeatureError::BadEvent { index, reason });
    }
    Ok(())
}

/// The business features at `t`, in [`NAMES`] order; `launch_kind` names the kind counted as a launch.
pub fn business(events: &[BusinessEvent], launch_kind: &str, t: i64) -> [f64; 5] {
    let mut active = false;
    let mut soonest_end = i64::MAX;
    let mut next_launch = i64::MAX;
    let mut strongest = 1.0_f64;
    let mut sum = 0.0;
    for e in events {
        if e.kind == launch_kind && e.start >= t {
            next_launch = next_launch.min(e.start);
        }
        if e.is_active(t) {
            active = true;
            soonest_end = soonest_end.min(e.end);
            let m = e.multiplier_at(t);
            if (m - 1.0).abs() > (strongest - 1.0).abs() {
                strongest = m;
            }
            sum += m - 1.0;
        }
    }
    let hours = if active {
        (soonest_end - t) as f64 / 3600.0
    } else {
        f64::NAN
    };
    let days = if next_launch == i64::MAX {
        f64::NAN
    } else {
        (next_launch - t) as f64 / 86_400.0
    };
    [if active { 1.0 } else { 0.0 }, hours, days, strongest, sum]
}

/// Appends the business features at `t` to `out`.
pub(crate) fn extract(events: &[BusinessEvent], launch_kind: &str, t: i64, out: &mut Vec<f64>) {
    out.extend_from_slice(&business(events, launch_kind, t));
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    fn ev(start: i64, end: i64, kind: &str, impact: f64) -> BusinessEvent {
        BusinessEvent {
            start,
            end,
            kind: kind.into(),
            impact,
        }
    }

    #[test]
    fn impact_decays_linearly_over_the_event() {
        let e = ev(0, 10 * H, "campaign", 3.0);
        assert_eq!(e.multiplier_at(0), 3.0);
        assert_eq!(e.multiplier_at(5 * H), 2.0);
        assert!((e.multiplier_at(9 * H) - 1.2).abs() < 1e-12);
        assert_eq!(e.multiplier_at(10 * H), 1.0, "ended");
        assert_eq!(e.multiplier_at(-1), 1.0, "not started");
    }

    #[test]
    fn no_events_and_a_single_campaign() {
        let none = business(&[], "launch", 0);
        assert_eq!(none[0], 0.0);
        assert!(none[1].is_nan() && none[2].is_nan());
        assert_eq!((none[3], none[4]), (1.0, 0.0));
        let events = [ev(0, 10 * H, "campaign", 3.0), ev(48 * H, 50 * H, "launch", 2.0)];
        let f = business(&events, "launch", 4 * H);
        let want = [1.0, 6.0, 44.0 / 24.0, 2.2, 1.2];
        for (a, b) in f.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{f:?}");
        }
        // During the launch itself the next launch is a later one (none here).
        let g = business(&events, "launch", 49 * H);
        assert_eq!(g[0], 1.0);
        assert_eq!(g[1], 1.0);
        assert!(g[2].is_nan());
        // At the launch's start it is zero days away.
        assert_eq!(business(&events, "launch", 48 * H)[2], 0.0);
    }

    #[test]
    fn overlapping_events_add_up() {
        // At t = 5h: A (0..10h, 3.0) is at 2.0; B (4h..6h, 0.5, a dip) is at 1 - 0.5·0.5 = 0.75;
        // C (5h..9h, 1.8) is at 1.8. Strongest |m-1| is A's 1.0; sum = 1 - 0.25 + 0.8 = 1.55.
        let events = [
            ev(0, 10 * H, "campaign", 3.0),
            ev(4 * H, 6 * H, "outage", 0.5),
            ev(5 * H, 9 * H, "sale", 1.8),
        ];
        let f = business(&events, "launch", 5 * H);
        assert_eq!(f[0], 1.0);
        assert_eq!(f[1], 1.0, "B ends first, in an hour");
        assert_eq!(f[3], 2.0);
        assert!((f[4] - 1.55).abs() < 1e-12);
    }

    #[test]
    fn bad_events_are_refused_with_their_index() {
        let ok = ev(0, 1, "x", 1.0);
        assert!(validate(std::slice::from_ref(&ok)).is_ok());
        let err = validate(&[ok.clone(), ev(5, 5, "x", 1.0)]).unwrap_err();
        assert!(matches!(err, FeatureError::BadEvent { index: 1, .. }), "{err}");
        let err = validate(&[ev(0, 1, "x", f64::NAN)]).unwrap_err();
        assert!(matches!(err, FeatureError::BadEvent { index: 0, .. }));
    }
}
