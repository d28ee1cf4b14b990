//! A LightGBM regression of Prophet's in-sample residuals at the points where a business event
//! is active: the shape of an event's effect that one additive regressor per kind misses.
//!
//! Features at a time `t` with an active event (the active one of largest `|impact - 1|`,
//! ties to the earliest start): hours since its start, hours to its end, the fraction of it
//! elapsed, its impact, the number of active events, the hour of day (sin/cos) and Prophet's
//! own `yhat` at `t` (so an effect proportional to the level can be learnt). The model is
//! trained with `num_threads = 1`, `deterministic = true` and a fixed seed, and only on at
//! least [`MIN_EVENT_POINTS`] event points; it is kept as a LightGBM model string (a `Booster`
//! cannot be shared between threads) and predicts 0 where no event is active.

use chrono::{DateTime, Timelike};
use lightgbm3::{Booster, Dataset};
use serde_json::json;

use crate::forecast::features::BusinessEvent;

/// Fewest fit points with an active event the model needs.
pub const MIN_EVENT_POINTS: usize = 50;
/// Boosting rounds.
pub const ROUNDS: usize = 100;
/// Feature names, in order.
pub const FEATURES: [&str; 8] = [
    "hours_since_start",
    "hours_to_end",
    "progress",
    "impact",
    "active_events",
    "hour_sin",
    "hour_cos",
    "prophet_yhat",
];
/// Seed of every LightGBM run.
const SEED: u64 = 17;

/// A trained residual model.
#[derive(Debug, Clone, PartialEq)]
pub struct EventResiduals {
    /// LightGBM model string.
    model: String,
    /// Event points it was trained on.
    pub points: usize,
    /// Mean absolute in-sample residual at those points before and after the correction.
    pub mae_before: f64,
    pub mae_after: f64,
}

/// The features at `t` given Prophet's `yhat` there, or `None` when no event is active.
pub fn features(events: &[BusinessEvent], t: i64, yhat: f64) -> Option<[f64; FEATURES.len()]> {
    let active: Vec<&BusinessEvent> = events.iter().filter(|e| e.is_active(t)).collect();
    let e = active.iter().copied().reduce(|best, e| {
        let (a, b) = ((e.impact - 1.0).abs(), (best.impact - 1.0).abs());
        if a > b || (a == b && e.start < best.start) {
            e
        } else {
            best
        }
    })?;
    let since = (t - e.start) as f64 / 3600.0;
    let to_end = (e.end - t) as f64 / 3600.0;
    let hour = DateTime::from_timestamp(t, 0).map_or(0.0, |d| f64::from(d.num_seconds_from_midnight()) / 86_400.0);
    let tau = std::f64::consts::TAU;
    Some([
        since,
        to_end,
        since / (since + to_end),
        e.impact,
        active.len() as f64,
        (tau * hour).sin(),
        (tau * hour).cos(),
        yhat,
    ])
}

fn params() -> serde_json::Value {
    json!({
        "objective": "regression",
        "num_iterations": ROUNDS,
        "num_leaves": 7,
        "learning_rate": 0.1,
        "min_data_in_leaf": 8,
        "min_data_in_bin": 1,
        "num_threads": 1,
        "deterministic": true,
        "force_row_wise": true,
        "seed": SEED,
        "verbosity": -1,
    })
}

fn predict_rows(b: &Booster, x: &[f64]) -> Result<Vec<f64>, String> {
    b.predict_with_params(x, FEATURES.len() as i32, true, "num_threads=1")
        .map_err(|e| e.to_string())
}

impl EventResiduals {
    /// Trains on the points `ds` (epoch seconds) with Prophet's in-sample `yhat` and the
    /// residuals `y - yhat` there; `Err` says why there is no model.
    pub fn fit(events: &[BusinessEvent], ds: &[i64], yhat: &[f64], residual: &[f64]) -> Result<Self, String> {
        let mut x = Vec::new();
        let mut label = Vec::new();
        for ((&t, &f), &r) in ds.iter().zip(yhat).zip(residual) {
            if let Some(row) = features(events, t, f).filter(|_| r.is_finite() && f.is_finite()) {
                x.extend_from_slice(&row);
                label.push(r as f32);
            }
        }
        if label.len() < MIN_EVENT_POINTS {
            return Err(format!(
                "{} event points in the fit, fewer than {MIN_EVENT_POINTS}",
                label.len()
            ));
        }
        let data = Dataset::from_slice(&x, &label, FEATURES.len() as i32, true).map_err(|e| e.to_string())?;
        let booster = Booster::train(data, &params()).map_err(|e| e.to_string())?;
        let pred = predict_rows(&booster, &x)?;
        let n = label.len() as f64;
        let mae_before = label.iter().map(|r| f64::from(*r).abs()).sum::<f64>() / n;
        let mae_after = label
            .iter()
            .zip(&pred)
            .map(|(r, p)| (f64::from(*r) - p).abs())
            .sum::<f64>()
            / n;
        Ok(EventResiduals {
            model: booster.save_string().map_err(|e| e.to_string())?,
            points: label.len(),
            mae_before,
            mae_after,
        })
    }

    /// The correction at each of `ds` given Prophet's `yhat` there: 0 where no event is active.
    pub fn predict(&self, events: &[BusinessEvent], ds: &[i64], yhat: &[f64]) -> Result<Vec<f64>, String> {
        let rows: Vec<(usize, [f64; FEATURES.len()])> = ds
            .iter()
            .zip(yhat)
            .enumerate()
            .filter_map(|(i, (&t, &f))| features(events, t, f).map(|r| (i, r)))
            .collect();
        let mut out = vec![0.0; ds.len()];
        if rows.is_empty() {
            return Ok(out);
        }
        let booster = Booster::from_string(&self.model).map_err(|e| e.to_string())?;
        let x: Vec<f64> = rows.iter().flat_map(|(_, r)| r.iter().copied()).collect();
        for ((i, _), p) in rows.iter().zip(predict_rows(&booster, &x)?) {
            out[*i] = p;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(start: i64, end: i64, impact: f64) -> BusinessEvent {
        BusinessEvent {
            start,
            end,
            kind: "sale".into(),
            impact,
        }
    }

    #[test]
    fn features_follow_the_strongest_active_event() {
        let events = [ev(0, 10 * 3600, 1.5), ev(3600, 5 * 3600, 3.0)];
        assert!(features(&events, -1, 0.0).is_none());
        assert!(features(&events, 10 * 3600, 0.0).is_none());
        let f = features(&events, 0, 7.0).unwrap();
        assert_eq!(f[..5], [0.0, 10.0, 0.0, 1.5, 1.0]);
        assert_eq!(f[7], 7.0);
        let f = features(&events, 2 * 3600, 7.0).unwrap();
        // the stronger second event: one hour in, three to go
        assert_eq!(f[..5], [1.0, 3.0, 0.25, 3.0, 2.0]);
        // 02:00 UTC
        assert!((f[5] - (std::f64::consts::TAU * 2.0 / 24.0).sin()).abs() < 1e-12);
    }

    #[test]
    fn too_few_event_points_give_no_model_and_say_why() {
        let events = [ev(0, 10 * 3600, 2.0)];
        let ds: Vec<i64> = (0..100).map(|i| i * 3600).collect();
        let zeros = vec![0.0; ds.len()];
        let err = EventResiduals::fit(&events, &ds, &zeros, &zeros).unwrap_err();
        assert!(err.contains("10 event points"), "{err}");
    }

    #[test]
    fn learns_a_ramp_and_predicts_zero_outside_events() {
        // twelve 12-hour events; the residual ramps from 0 to 44 over each
        let events: Vec<BusinessEvent> = (0..12).map(|d| ev(d * 86_400, d * 86_400 + 12 * 3600, 2.0)).collect();
        let ds: Vec<i64> = (0..12 * 24).map(|i| i * 3600).collect();
        let yhat = vec![100.0; ds.len()];
        let res: Vec<f64> = ds
            .iter()
            .map(|&t| {
                if t % 86_400 < 12 * 3600 {
                    (t % 86_400) as f64 / 3600.0 * 4.0
                } else {
                    0.0
                }
            })
            .collect();
        let m = EventResiduals::fit(&events, &ds, &yhat, &res).unwrap();
        assert_eq!(m.points, 144);
        assert!(m.mae_after < 0.2 * m.mae_before, "{m:?}");
        let again = EventResiduals::fit(&events, &ds, &yhat, &res).unwrap();
        assert_eq!(m, again, "deterministic");
        let p = m.predict(&events, &ds[..24], &yhat[..24]).unwrap();
        assert!(p[12..].iter().all(|v| *v == 0.0), "{p:?}");
        assert!(p[10] > p[1] + 20.0, "{p:?}");
    }
}
