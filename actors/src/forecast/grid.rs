//! Puts a causal history on a regular grid ending at the origin, bounded in length, gaps as NaN.

use super::ForecastError;

/// Gaps of at most this many steps are filled by linear interpolation; longer ones stay NaN.
const MAX_FILL_STEPS: usize = 3;

/// A history on the regular grid `t_last - (len-1-j)*step_s`, `j = 0..len`.
#[derive(Debug, Clone)]
pub(crate) struct Grid {
    /// Values; NaN where nothing (finite) was observed.
    pub x: Vec<f64>,
    /// Whether every finite observation in the window is >= 0 (forecasts are then clamped at 0).
    pub nonneg: bool,
    /// Grid points filled by interpolation.
    pub filled: usize,
    /// Grid points left missing (NaN).
    pub missing: usize,
    /// Observations dropped because they were NaN or infinite.
    pub non_finite: usize,
    /// Observations that fell on a grid point already holding one (a duplicated timestamp, or
    /// two within half a step): the later one in the input is kept.
    pub duplicates: usize,
}

impl Grid {
    /// What a model reading this grid notes about its history: gaps and dropped values, then
    /// folded duplicates (nothing for a clean history).
    pub(crate) fn history_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.missing + self.non_finite + self.filled > 0 {
            notes.push(format!(
                "history: {} gap points filled, {} missing, {} non-finite values dropped",
                self.filled, self.missing, self.non_finite
            ));
        }
        notes.extend(self.duplicate_note());
        notes
    }

    /// The note a model adds when duplicated observations were folded, if any were.
    pub(crate) fn duplicate_note(&self) -> Option<String> {
        (self.duplicates > 0).then(|| {
            format!(
                "history: {} observations shared a grid point with an earlier one (duplicated timestamps): the later value kept",
                self.duplicates
            )
        })
    }
}

/// Checks the inputs of a forecast call.
pub(crate) fn validate(t: &[i64], y: &[f64], step_s: i64, horizon: usize) -> Result<(), ForecastError> {
    if t.len() != y.len() {
        return Err(ForecastError::LengthMismatch { t: t.len(), y: y.len() });
    }
    if t.is_empty() {
        return Err(ForecastError::EmptyHistory);
    }
    if step_s <= 0 {
        return Err(ForecastError::BadStep(step_s));
    }
    if horizon == 0 {
        return Err(ForecastError::BadHorizon(horizon));
    }
    if let Some(i) = t.windows(2).position(|w| w[1] < w[0]) {
        return Err(ForecastError::Unsorted { index: i + 1 });
    }
    if !y.iter().any(|v| v.is_finite()) {
        return Err(ForecastError::NonFinite);
    }
    Ok(())
}

/// Regularizes the last `max_len` grid steps of `(t, y)` (inputs already validated).
pub(crate) fn regularize(t: &[i64], y: &[f64], step_s: i64, max_len: usize) -> Grid {
    let t_last = *t.last().expect("validated: non-empty");
    let span_steps = usize::try_from((t_last - t[0]) / step_s).unwrap_or(0);
    let len = (span_steps + 1).min(max_len.max(1));
    let earliest = t_last - step_s * (len as i64 - 1) - step_s / 2;
    let start = t.partition_point(|&ti| ti < earliest);
    let mut x = vec![f64::NAN; len];
    let mut nonneg = true;
    let mut non_finite = 0;
    let mut duplicates = 0;
    for (&ti, &yi) in t[start..].iter().zip(&y[start..]) {
        if !yi.is_finite() {
            non_finite += 1;
            continue;
        }
        let back = usize::try_from((t_last - ti + step_s / 2) / step_s).unwrap_or(usize::MAX);
        if back < len {
            duplicates += usize::from(!x[len - 1 - back].is_nan());
            x[len - 1 - back] = yi;
            nonneg &= yi >= 0.0;
        }
    }
    let mut filled = 0;
    let mut i = 0;
    while i < len {
        if x[i].is_nan() {
            let j = (i..len).find(|&j| !x[j].is_nan()).unwrap_or(len);
            if i > 0 && j < len && j - i <= MAX_FILL_STEPS {
                let (a, b) = (x[i - 1], x[j]);
                let gap = (j - i + 1) as f64;
                for (n, v) in x[i..j].iter_mut().enumerate() {
                    *v = a + (b - a) * (n + 1) as f64 / gap;
                }
                filled += j - i;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    let missing = x.iter().filter(|v| v.is_nan()).count();
    Grid {
        x,
        nonneg,
        filled,
        missing,
        non_finite,
        duplicates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_short_gaps_and_keeps_long_ones_missing() {
        let t = [0, 60, 240, 300, 600];
        let y = [1.0, 2.0, 5.0, 6.0, 10.0];
        let g = regularize(&t, &y, 60, 100);
        assert_eq!(g.x.len(), 11);
        assert_eq!(&g.x[..6], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(g.x[6..10].iter().all(|v| v.is_nan()));
        assert_eq!(g.x[10], 10.0);
        assert_eq!((g.filled, g.missing), (2, 4));
    }

    #[test]
    fn bounded_window_and_off_grid_times() {
        let t: Vec<i64> = (0..1000).map(|i| i * 300 + 53).collect();
        let y: Vec<f64> = (0..1000).map(f64::from).collect();
        let g = regularize(&t, &y, 300, 10);
        assert_eq!(g.x, (990..1000).map(f64::from).collect::<Vec<_>>());
        assert!(g.nonneg);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(validate(&[], &[], 60, 1), Err(ForecastError::EmptyHistory)));
        assert!(matches!(
            validate(&[0], &[1.0, 2.0], 60, 1),
            Err(ForecastError::LengthMismatch { .. })
        ));
        assert!(matches!(validate(&[0], &[1.0], 0, 1), Err(ForecastError::BadStep(0))));
        assert!(matches!(
            validate(&[0], &[1.0], 60, 0),
            Err(ForecastError::BadHorizon(0))
        ));
        assert!(matches!(
            validate(&[60, 0], &[1.0, 1.0], 60, 1),
            Err(ForecastError::Unsorted { index: 1 })
        ));
        assert!(matches!(
            validate(&[0, 60], &[f64::NAN, f64::INFINITY], 60, 1),
            Err(ForecastError::NonFinite)
        ));
    }
}
