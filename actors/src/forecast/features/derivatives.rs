//! Rate-of-change features: velocity at several spans, acceleration, and a rolling-mean-smoothed velocity, per minute.
//!
//! For a span of `k` steps (`d = k·granularity/60` minutes) at bucket `s`:
//! `velocity = (y[s] - y[s-k]) / d` (value per minute, so 1-minute and
//! 30-minute series are on the same scale), `acceleration =
//! (y[s] - 2·y[s-k] + y[s-2k]) / d²` (value per minute², the change of the
//! velocity over one span), and `velocity_smooth` is the mean of the velocity
//! at buckets `s, s-1, …, s-n+1` (`n` = smoothing points). Spans are converted
//! to steps like lags and deduplicated. A term that needs a bucket that was
//! not observed is NaN; the smoothed velocity is NaN while its oldest term
//! reaches before the first observation, and otherwise averages the terms
//! that exist, NaN if fewer than `ceil(n/2)` do.

use super::history::History;
use super::span_name;

/// Names per span: `velocity_{span}`, `acceleration_{span}`, `velocity_smooth_{span}`.
pub(crate) fn names(steps: &[usize], granularity: i64) -> Vec<String> {
    let mut v = Vec::with_capacity(3 * steps.len());
    for &k in steps {
        let span = span_name(k as i64 * granularity);
        v.push(format!("velocity_{span}"));
        v.push(format!("acceleration_{span}"));
        v.push(format!("velocity_smooth_{span}"));
    }
    v
}

/// Steps of history the features for `steps` with `smoothing` points need behind the current one.
pub(crate) fn lookback(steps: &[usize], smoothing: usize) -> usize {
    steps
        .iter()
        .map(|&k| (2 * k).max(k + smoothing.saturating_sub(1)))
        .max()
        .unwrap_or(0)
}

/// Appends the derivative features of the current point (value `y`) to `out`.
pub(crate) fn extract<H: History>(
    h: &H,
    y: f64,
    steps: &[usize],
    granularity: i64,
    smoothing: usize,
    out: &mut Vec<f64>,
) {
    let s = h.current();
    let value = |b: i64| if b == s { Some(y) } else { h.get(b) };
    for &k in steps {
        let ki = k as i64;
        let d = k as f64 * granularity as f64 / 60.0;
        let velocity_at = |b: i64| Some((value(b)? - value(b - ki)?) / d);
        let velocity = velocity_at(s).unwrap_or(f64::NAN);
        let acceleration = match (value(s - ki), value(s - 2 * ki)) {
            (Some(a), Some(b)) => (y - 2.0 * a + b) / (d * d),
            _ => f64::NAN,
        };
        let n = smoothing.max(1);
        let smooth = if s - (n as i64 - 1) - ki < h.first() {
            f64::NAN
        } else {
            let (mut sum, mut count) = (0.0, 0usize);
            for j in 0..n as i64 {
                if let Some(v) = velocity_at(s - j) {
                    sum += v;
                    count += 1;
                }
            }
            if count >= n.div_ceil(2) {
                sum / count as f64
            } else {
                f64::NAN
            }
        };
        out.extend([velocity, acceleration, smooth]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::history::Ring;
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }

    /// Feeds `f(minute)` at buckets `0..n` of a `g`-second series and returns the last point's features.
    fn run(f: impl Fn(f64) -> f64, n: i64, g: i64, steps: &[usize], smoothing: usize) -> Vec<f64> {
        let mut r = Ring::new(lookback(steps, smoothing) + 1);
        let mut y = 0.0;
        for b in 0..n {
            y = f(b as f64 * g as f64 / 60.0);
            r.push(b, y);
        }
        let mut out = Vec::new();
        extract(&r, y, steps, g, smoothing, &mut out);
        out
    }

    #[test]
    fn a_line_has_its_slope_as_velocity_at_every_granularity() {
        // y = 2·minutes + 7: velocity 2/min, acceleration 0, at 1-minute and 5-minute steps.
        for g in [60, 300] {
            let out = run(|m| 2.0 * m + 7.0, 40, g, &[1, 3], 5);
            for chunk in out.chunks(3) {
                close(chunk[0], 2.0);
                close(chunk[1], 0.0);
                close(chunk[2], 2.0);
            }
        }
    }

    #[test]
    fn a_parabola_has_constant_acceleration() {
        // y = m² at 1-minute steps, current m = 29: velocity over k=1 is 29² - 28² = 57;
        // acceleration (y - 2y₋₁ + y₋₂)/1 = 2; over k=5 (5 minutes): (841 - 576)/5 = 53, accel 50/25 = 2.
        let out = run(|m| m * m, 30, 60, &[1, 5], 3);
        close(out[0], 57.0);
        close(out[1], 2.0);
        // Smoothed k=1 over 3 points: mean of 57, 55, 53 = 55.
        close(out[2], 55.0);
        close(out[3], 53.0);
        close(out[4], 2.0);
        // Smoothed k=5: mean of (841-576)/5, (784-529)/5, (729-484)/5 = 53, 51, 49 -> 51.
        close(out[5], 51.0);
    }

    #[test]
    fn warm_up_and_gaps_give_nan() {
        // Two points only: velocity over 1 step exists, acceleration and smoothing do not.
        let out = run(|m| m, 2, 60, &[1], 3);
        close(out[0], 1.0);
        assert!(out[1].is_nan() && out[2].is_nan());
        // A missing bucket one step back: velocity NaN; smoothing averages the 2 of 3 that exist.
        let mut r = Ring::new(8);
        for b in [0_i64, 1, 2, 3, 5] {
            r.push(b, 10.0 * b as f64);
        }
        let mut out = Vec::new();
        extract(&r, 50.0, &[1], 60, 3, &mut out);
        assert!(out[0].is_nan() && out[1].is_nan());
        assert!(out[2].is_nan(), "terms at 5 and 4 need bucket 4: only 1 of 3 exists");
        out.clear();
        r.push(6, 60.0);
        r.push(7, 70.0);
        extract(&r, 70.0, &[1], 60, 3, &mut out);
        close(out[2], 10.0);
        assert_eq!(
            names(&[1], 1800),
            ["velocity_30m", "acceleration_30m", "velocity_smooth_30m"]
        );
    }
}
