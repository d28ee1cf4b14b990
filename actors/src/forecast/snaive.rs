//! Seasonal naive with a one-day season: the floor every model is measured against.

use super::components::last_finite;
use super::grid::{regularize, validate};
use super::{ForecastError, Forecaster, QuantilePath, finish, steps_of};
use crate::series::quantile_sorted;

/// History (in days) the residual quantiles are taken over.
const WINDOW_DAYS: f64 = 56.0;

/// The value one day before (the last day repeated), with p10/p90 from the empirical
/// quantiles of the history's one-day differences, as the peers' `snaive` does.
/// With less than two days of history the season is one step (the last value).
#[derive(Debug, Clone, Copy, Default)]
pub struct SeasonalNaive;

impl Forecaster for SeasonalNaive {
    fn name(&self) -> &'static str {
        "snaive"
    }

    fn forecast(&self, t: &[i64], y: &[f64], step_s: i64, horizon: usize) -> Result<QuantilePath, ForecastError> {
        validate(t, y, step_s, horizon)?;
        let day = steps_of(24.0 * 60.0, step_s);
        let grid = regularize(t, y, step_s, steps_of(WINDOW_DAYS * 1440.0, step_s));
        let x = &grid.x;
        let o = x.len() - 1;
        let mut notes = Vec::new();
        let m = if x.len() > 2 * day {
            day
        } else {
            notes.push(format!(
                "history of {} steps is not longer than two days: season of one step",
                x.len()
            ));
            1
        };
        if grid.missing + grid.non_finite > 0 {
            notes.push(format!(
                "{} missing grid points, {} non-finite values dropped",
                grid.missing, grid.non_finite
            ));
        }
        notes.extend(grid.duplicate_note());
        let last = last_finite(x, o);
        let p50: Vec<f64> = (1..=horizon)
            .map(|k| {
                let mut idx = (o + k).checked_sub(m * k.div_ceil(m));
                while let Some(i) = idx {
                    if x[i].is_finite() {
                        return x[i];
                    }
                    idx = i.checked_sub(m);
                }
                last
            })
            .collect();
        let mut resid: Vec<f64> = x
            .iter()
            .skip(m)
            .zip(x.iter())
            .map(|(a, b)| a - b)
            .filter(|d| d.is_finite())
            .collect();
        resid.sort_unstable_by(f64::total_cmp);
        let (lo, hi) = if resid.is_empty() {
            notes.push("no seasonal differences in the history: zero-width interval".into());
            (0.0, 0.0)
        } else {
            (quantile_sorted(&resid, 0.1), quantile_sorted(&resid, 0.9))
        };
        let mut path = QuantilePath {
            p10: p50.iter().map(|v| v + lo).collect(),
            p90: p50.iter().map(|v| v + hi).collect(),
            p50,
            notes,
        };
        finish(&mut path, grid.nonneg);
        Ok(path)
    }
}
