//! Rolling-window statistics of the recent history: mean, spread, quantiles, z-score of the current value, least-squares slope.
//!
//! A window of `k` steps at bucket `s` holds the observations in buckets
//! `[s-k+1, s]`, the current point included. Its statistics are NaN while the
//! window reaches back before the first observation (warm-up) or when fewer
//! than `ceil(k/2)` of its `k` buckets were observed (gaps); otherwise they are
//! computed over the observations present. The standard deviation is the
//! population one (divide by n). Quantiles interpolate linearly between order
//! statistics (numpy's default). `cv = std/|mean|` and
//! `zscore = (y - mean)/std` are guarded: a spread `std ≤ 1e-9·max(1, |mean|)`
//! counts as none and gives 0 for both (rounding noise of a constant window);
//! a mean within `1e-12` of zero gives `cv = 1e6`; both are clamped to
//! `±1e6`. The slope is the least-squares slope of value
//! against time in minutes (value per minute), 0 for a single observation.
//! Windows that convert to a single step are not emitted: every statistic
//! would be the current value or 0.

use super::history::History;
use super::span_name;

/// Statistic names, in output order within each window.
pub const STATS: [&str; 11] = [
    "mean", "std", "min", "max", "p25", "p75", "range", "iqr", "cv", "zscore", "slope",
];

const CAP: f64 = 1e6;

/// The statistics of one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowStats {
    /// Arithmetic mean.
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// 25th percentile (linear interpolation).
    pub p25: f64,
    /// 75th percentile (linear interpolation).
    pub p75: f64,
    /// `max - min`.
    pub range: f64,
    /// `p75 - p25`.
    pub iqr: f64,
    /// Coefficient of variation `std/|mean|`, guarded.
    pub cv: f64,
    /// Z-score of the current value, guarded.
    pub zscore: f64,
    /// Least-squares slope in value per minute.
    pub slope: f64,
}

impl WindowStats {
    /// All NaN (not enough history).
    pub const MISSING: WindowStats = WindowStats {
        mean: f64::NAN,
        std: f64::NAN,
        min: f64::NAN,
        max: f64::NAN,
        p25: f64::NAN,
        p75: f64::NAN,
        range: f64::NAN,
        iqr: f64::NAN,
        cv: f64::NAN,
        zscore: f64::NAN,
        slope: f64::NAN,
    };

    /// The values in [`STATS`] order.
    pub fn to_array(&self) -> [f64; 11] {
        [
            self.mean,
            self.std,
            self.min,
            self.max,
            self.p25,
            self.p75,
            self.range,
            self.iqr,
            self.cv,
            self.zscore,
            self.slope,
        ]
    }
}

/// The `q` quantile (0–1) of `values` by linear interpolation between order statistics,
/// in O(n) (the slice is reordered); NaN for an empty slice.
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = (h.floor() as usize).min(n - 1);
    let frac = h - lo as f64;
    let (_, at, upper) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let lo_v = *at;
    if frac == 0.0 || upper.is_empty() {
        lo_v
    } else {
        let hi_v = upper.iter().copied().fold(f64::INFINITY, f64::min);
        lo_v + frac * (hi_v - lo_v)
    }
}

/// Statistics of the observations `points` (bucket, value), oldest first, ending at the current
/// point (`current_bucket`, value `current`), for a series of `granularity_seconds`. `scratch` is
/// reused storage. All NaN when `points` is empty.
pub fn window_stats(
    points: &[(i64, f64)],
    current_bucket: i64,
    current: f64,
    granularity_seconds: i64,
    scratch: &mut Vec<f64>,
) -> WindowStats {
    let n = points.len();
    if n == 0 {
        return WindowStats::MISSING;
    }
    let nf = n as f64;
    let mean = points.iter().map(|p| p.1).sum::<f64>() / nf;
    let std = (points.iter().map(|p| (p.1 - mean).powi(2)).sum::<f64>() / nf).sqrt();
    let min = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let max = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    scratch.clear();
    scratch.extend(points.iter().map(|p| p.1));
    let p25 = quantile(scratch, 0.25);
    let p75 = quantile(scratch, 0.75);
    let minutes = granularity_seconds as f64 / 60.0;
    let x = |b: i64| (b - current_bucket) as f64 * minutes;
    let xm = points.iter().map(|p| x(p.0)).sum::<f64>() / nf;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for &(b, v) in points {
        let dx = x(b) - xm;
        sxx += dx * dx;
        sxy += dx * (v - mean);
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let tiny = 1e-9 * mean.abs().max(1.0);
    let cv = if std <= tiny {
        0.0
    } else if mean.abs() > 1e-12 {
        (std / mean.abs()).min(CAP)
    } else {
        CAP
    };
    let zscore = if std > tiny {
        ((current - mean) / std).clamp(-CAP, CAP)
    } else {
        0.0
    };
    WindowStats {
        mean,
        std,
        min,
        max,
        p25,
        p75,
        range: max - min,
        iqr: p75 - p25,
        cv,
        zscore,
        slope,
    }
}

/// Names per window then per statistic: `roll_{stat}_{span}`.
pub(crate) fn names(steps: &[usize], granularity: i64) -> Vec<String> {
    let mut v = Vec::with_capacity(STATS.len() * steps.len());
    for &k in steps {
        let span = span_name(k as i64 * granularity);
        v.extend(STATS.iter().map(|s| format!("roll_{s}_{span}")));
    }
    v
}

/// Reused buffers, so a point costs no allocation beyond its output row.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scratch {
    window: Vec<(i64, f64)>,
    values: Vec<f64>,
}

/// Appends the rolling features of the current point (value `y`) to `out`; `steps` ascending.
/// The longest window is read once and each shorter one is its tail.
pub(crate) fn extract<H: History>(
    h: &H,
    y: f64,
    steps: &[usize],
    granularity: i64,
    scratch: &mut Scratch,
    out: &mut Vec<f64>,
) {
    let Some(&longest) = steps.last() else { return };
    let s = h.current();
    scratch.window.clear();
    h.window(s - longest as i64 + 1, &mut scratch.window);
    for &k in steps {
        let from = s - k as i64 + 1;
        let start = scratch.window.partition_point(|p| p.0 < from);
        let pts = &scratch.window[start..];
        let stats = if from < h.first() || pts.len() < k.div_ceil(2) {
            WindowStats::MISSING
        } else {
            window_stats(pts, s, y, granularity, &mut scratch.values)
        };
        out.extend_from_slice(&stats.to_array());
    }
}

#[cfg(test)]
mod tests {
    use super::super::history::Ring;
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn quantiles_interpolate_linearly() {
        close(quantile(&mut [4.0, 1.0, 3.0, 2.0], 0.25), 1.75);
        close(quantile(&mut [4.0, 1.0, 3.0, 2.0], 0.75), 3.25);
        close(quantile(&mut [4.0, 1.0, 3.0, 2.0, 5.0], 0.25), 2.0);
        close(quantile(&mut [7.0], 0.75), 7.0);
        close(quantile(&mut [10.0, 0.0], 0.25), 2.5);
        assert!(quantile(&mut [], 0.5).is_nan());
    }

    #[test]
    fn stats_of_a_ramp() {
        // Values 1,2,3,4 one minute apart, current = 4.
        let pts = [(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0)];
        let w = window_stats(&pts, 3, 4.0, 60, &mut Vec::new());
        let sd = 1.25_f64.sqrt();
        close(w.mean, 2.5);
        close(w.std, sd);
        close(w.min, 1.0);
        close(w.max, 4.0);
        close(w.p25, 1.75);
        close(w.p75, 3.25);
        close(w.range, 3.0);
        close(w.iqr, 1.5);
        close(w.cv, sd / 2.5);
        close(w.zscore, 1.5 / sd);
        close(w.slope, 1.0);
        // The same values five minutes apart rise 0.2 per minute.
        close(window_stats(&pts, 3, 4.0, 300, &mut Vec::new()).slope, 0.2);
        // With a gap (bucket 2 missing) the slope uses real times: points (-3,1),(-2,2),(0,4) lie on
        // y = x + 4, slope 1 (by index, 0,1,2 against 1,2,4, it would be 1.5).
        let gap = [(0, 1.0), (1, 2.0), (3, 4.0)];
        let g = window_stats(&gap, 3, 4.0, 60, &mut Vec::new());
        close(g.slope, 1.0);
    }

    #[test]
    fn constant_and_zero_mean_windows_are_guarded() {
        let c = window_stats(&[(0, 0.1), (1, 0.1), (2, 0.1)], 2, 0.1, 60, &mut Vec::new());
        assert_eq!((c.cv, c.zscore, c.slope), (0.0, 0.0, 0.0));
        let z = window_stats(&[(0, 0.0), (1, 0.0)], 1, 0.0, 60, &mut Vec::new());
        assert_eq!((z.cv, z.zscore), (0.0, 0.0));
        let sym = window_stats(&[(0, -1.0), (1, 1.0)], 1, 1.0, 60, &mut Vec::new());
        assert_eq!(sym.cv, CAP);
        close(sym.zscore, 1.0);
        let one = window_stats(&[(5, 3.0)], 5, 3.0, 60, &mut Vec::new());
        assert_eq!((one.std, one.slope, one.zscore), (0.0, 0.0, 0.0));
    }

    #[test]
    fn warm_up_and_sparse_windows_are_nan() {
        let mut r = Ring::new(8);
        let mut sc = Scratch::default();
        let mut out = Vec::new();
        r.push(0, 1.0);
        r.push(1, 2.0);
        r.push(2, 3.0);
        extract(&r, 3.0, &[2, 4], 60, &mut sc, &mut out);
        close(out[0], 2.5); // mean of 2,3
        assert!(
            out[11..22].iter().all(|v| v.is_nan()),
            "window of 4 reaches before the first point"
        );
        // Buckets 3..=5 missing, 6 present: window of 4 = [3,6] has 1 of 4 observed (< 2) -> NaN;
        // window of 2 = [5,6] has 1 of 2 (>= 1) -> computed over that one point.
        r.push(6, 10.0);
        out.clear();
        extract(&r, 10.0, &[2, 4], 60, &mut sc, &mut out);
        assert_eq!(out[0], 10.0);
        assert_eq!(out[1], 0.0);
        assert!(out[11..22].iter().all(|v| v.is_nan()));
        assert_eq!(names(&[2], 1800)[10], "roll_slope_60m");
    }
}
