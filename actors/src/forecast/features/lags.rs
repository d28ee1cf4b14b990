//! Lag features: the value a fixed span back in time (looked up by timestamp, not by index), and the change and ratio to it.
//!
//! A span of `m` minutes becomes `max(1, round(m·60 / granularity))` steps
//! (round half to even, as the evaluation protocol rounds), so a span shorter
//! than a step is one step and a span that is not a multiple of the step is the
//! nearest one; spans that land on the same step are emitted once, named by the
//! span they really cover (`lag_30m` for a 5-minute lag of a 30-minute series).
//! Same time yesterday (`lag_1440m` at 1 minute) and same time last week
//! (`lag_10080m`) are always part of the lag set.
//!
//! The lag of `k` steps at bucket `s` is the value observed in bucket `s - k`;
//! if nothing was observed there (warm-up, or a gap in the series) the lag,
//! its difference and its ratio are NaN.

use super::history::History;
use super::span_name;

/// Below this magnitude a value counts as zero in a ratio's denominator.
pub const RATIO_EPS: f64 = 1e-12;
/// Ratios are clamped to `[-RATIO_CAP, RATIO_CAP]`.
pub const RATIO_CAP: f64 = 1e6;

/// `y / lag`, guarded so it is never NaN or infinite for finite inputs: a denominator
/// with `|lag| ≤ RATIO_EPS` gives 1 when `|y| ≤ RATIO_EPS` too (no change between two
/// zeros) and `±RATIO_CAP` (the sign of `y`) otherwise; every other ratio is clamped to
/// `[-RATIO_CAP, RATIO_CAP]`.
pub fn ratio(y: f64, lag: f64) -> f64 {
    if lag.abs() > RATIO_EPS {
        (y / lag).clamp(-RATIO_CAP, RATIO_CAP)
    } else if y.abs() <= RATIO_EPS {
        1.0
    } else {
        RATIO_CAP.copysign(y)
    }
}

/// Names per lag: `lag_{span}`, `lag_diff_{span}` (`y - lag`), `lag_ratio_{span}` (`ratio(y, lag)`).
pub(crate) fn names(steps: &[usize], granularity: i64) -> Vec<String> {
    let mut v = Vec::with_capacity(3 * steps.len());
    for &k in steps {
        let span = span_name(k as i64 * granularity);
        v.push(format!("lag_{span}"));
        v.push(format!("lag_diff_{span}"));
        v.push(format!("lag_ratio_{span}"));
    }
    v
}

/// Appends the lag features of the current point (value `y`) to `out`.
pub(crate) fn extract<H: History>(h: &H, y: f64, steps: &[usize], out: &mut Vec<f64>) {
    let s = h.current();
    for &k in steps {
        match h.get(s - k as i64) {
            Some(l) => out.extend([l, y - l, ratio(y, l)]),
            None => out.extend([f64::NAN; 3]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::history::Ring;
    use super::super::steps_for_minutes;
    use super::*;

    #[test]
    fn spans_convert_to_the_nearest_step_at_least_one() {
        assert_eq!(steps_for_minutes(5, 60), 5);
        assert_eq!(steps_for_minutes(1440, 60), 1440);
        assert_eq!(steps_for_minutes(5, 300), 1);
        assert_eq!(steps_for_minutes(5, 3600), 1, "shorter than a step: one step");
        assert_eq!(steps_for_minutes(20, 1800), 1, "0.67 steps rounds to 1");
        assert_eq!(steps_for_minutes(45, 1800), 2, "1.5 steps: half to even");
        assert_eq!(steps_for_minutes(150, 3600), 2, "2.5 steps: half to even");
        assert_eq!(steps_for_minutes(100, 3600), 2, "1.67 steps rounds to 2");
    }

    #[test]
    fn ratio_is_guarded() {
        assert_eq!(ratio(6.0, 3.0), 2.0);
        assert_eq!(ratio(-6.0, 3.0), -2.0);
        assert_eq!(ratio(0.0, 0.0), 1.0);
        assert_eq!(ratio(5.0, 0.0), RATIO_CAP);
        assert_eq!(ratio(-5.0, 1e-13), -RATIO_CAP);
        assert_eq!(ratio(1e12, 1.0), RATIO_CAP);
        assert_eq!(ratio(3.0, 1e-13), RATIO_CAP);
    }

    #[test]
    fn lags_are_by_time_and_gaps_give_nan() {
        // Buckets 0..=5 with bucket 3 missing; values 10·bucket + 1.
        let mut r = Ring::new(8);
        for b in [0_i64, 1, 2, 4, 5] {
            r.push(b, 10.0 * b as f64 + 1.0);
        }
        let mut out = Vec::new();
        extract(&r, 51.0, &[1, 2, 3, 6], &mut out);
        // lag 1 -> bucket 4 (41); lag 2 -> bucket 3 (missing); lag 3 -> bucket 2 (21); lag 6 -> before history.
        assert_eq!(&out[0..3], &[41.0, 10.0, 51.0 / 41.0]);
        assert!(out[3..6].iter().all(|v| v.is_nan()));
        assert_eq!(&out[6..9], &[21.0, 30.0, 51.0 / 21.0]);
        assert!(out[9..12].iter().all(|v| v.is_nan()));
        assert_eq!(
            names(&[1, 2, 3, 6], 1800)[0..4],
            ["lag_30m", "lag_diff_30m", "lag_ratio_30m", "lag_60m"]
        );
    }
}
