//! Prophet from augurs, with the WebAssembly Stan optimizer (no external toolchain).
//!
//! Fitted at most once per UTC day of origins (see the module doc of [`super`]) on at most
//! [`MAX_FIT_POINTS`] points of the last [`FIT_DAYS`] days (longer fine-grained histories are
//! thinned evenly). Daily seasonality when the fit spans two days, weekly at two weeks, yearly
//! at two years. With business events ([`Prophet::with_events`]) each event kind becomes one
//! additive regressor (its impact multiplier minus one while active, else 0). The path from an
//! origin is the fit's `yhat` plus the mean residual of the last hour before the origin, decaying
//! with a half-life of [`LEVEL_HALF_LIFE_H`] hours (Prophet alone ignores the data after its
//! fit). p10/p90: the 10 % / 90 % quantiles of the fit's in-sample residuals around p50 (the
//! Prophet sampler draws from an unseeded RNG, so it is off: `uncertainty_samples = 0`).
//! Holidays and a LightGBM model of the residuals during events are not built yet.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use augurs::prophet::optimizer::OptimizeOpts;
use augurs::prophet::wasmstan::WasmstanOptimizer;
use augurs::prophet::{PredictionData, ProphetOptions, Regressor, SeasonalityOption, TrainingData};

use super::{FitCache, Prepared, all_finite, day_cutoff, fallback, fit_key, prepare};
use crate::forecast::features::BusinessEvent;
use crate::forecast::{ForecastError, Forecaster, QuantilePath, finish};
use crate::series::quantile_sorted;

/// Days of history a fit uses at most.
pub const FIT_DAYS: usize = 28;
/// Points a fit uses at most (finer histories are thinned).
pub const MAX_FIT_POINTS: usize = 4000;
/// Half-life of the last hour's residual added to the path.
pub const LEVEL_HALF_LIFE_H: f64 = 6.0;
/// Seed of the optimizer (the fit is deterministic given it).
const SEED: u32 = 42;

type AugursProphet = augurs::prophet::Prophet<WasmstanOptimizer>;

/// The optimizer: compiling its WebAssembly takes a second or more, so it is built once.
fn optimizer() -> WasmstanOptimizer {
    static OPT: OnceLock<WasmstanOptimizer> = OnceLock::new();
    OPT.get_or_init(WasmstanOptimizer::new).clone()
}

/// A fitted Prophet and its in-sample residual quantiles.
struct Fitted {
    model: AugursProphet,
    q10: f64,
    q90: f64,
    seasons: String,
}

/// The Prophet forecaster.
pub struct Prophet {
    events: Vec<BusinessEvent>,
    cache: FitCache<Fitted>,
}

impl std::fmt::Debug for Prophet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prophet").field("events", &self.events.len()).finish()
    }
}

impl Default for Prophet {
    fn default() -> Self {
        Prophet {
            events: Vec::new(),
            cache: FitCache::new(16),
        }
    }
}

impl Prophet {
    /// Prophet with one regressor per kind of these business events.
    pub fn with_events(events: Vec<BusinessEvent>) -> Self {
        Prophet {
            events,
            ..Prophet::default()
        }
    }

    fn kinds(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| e.kind.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Regressor columns at the timestamps `ds`.
    fn regressors(&self, ds: &[i64]) -> HashMap<String, Vec<f64>> {
        self.kinds()
            .into_iter()
            .map(|kind| {
                let col = ds
                    .iter()
                    .map(|&t| {
                        self.events
                            .iter()
                            .filter(|e| e.kind == kind && e.is_active(t))
                            .map(|e| e.multiplier_at(t) - 1.0)
                            .sum()
                    })
                    .collect();
                (format!("event_{kind}"), col)
            })
            .collect()
    }

    fn fit(&self, p: &Prepared, end: usize) -> Result<Fitted, String> {
        let n = end + 1;
        let thin = n.div_ceil(MAX_FIT_POINTS).max(1);
        // thin from the end so the cutoff point is always in
        let idx: Vec<usize> = (0..n)
            .rev()
            .step_by(thin)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let ds: Vec<i64> = idx.iter().map(|&i| p.time(i)).collect();
        let yv: Vec<f64> = idx.iter().map(|&i| p.x[i]).collect();
        let span_days = (ds[ds.len() - 1] - ds[0]) as f64 / 86_400.0;
        let opts = ProphetOptions {
            daily_seasonality: SeasonalityOption::Manual(span_days >= 2.0),
            weekly_seasonality: SeasonalityOption::Manual(span_days >= 14.0),
            yearly_seasonality: SeasonalityOption::Manual(span_days >= 730.0),
            uncertainty_samples: 0,
            ..ProphetOptions::default()
        };
        let seasons = format!(
            "daily {}, weekly {}, yearly {}",
            span_days >= 2.0,
            span_days >= 14.0,
            span_days >= 730.0
        );
        let mut model = AugursProphet::new(opts, optimizer());
        let mut data = TrainingData::new(ds.clone(), yv.clone()).map_err(|e| e.to_string())?;
        if !self.events.is_empty() {
            for kind in self.kinds() {
                model.add_regressor(format!("event_{kind}"), Regressor::additive());
            }
            data = data.with_regressors(self.regressors(&ds)).map_err(|e| e.to_string())?;
        }
        let opt = OptimizeOpts {
            seed: Some(SEED),
            ..OptimizeOpts::default()
        };
        model.fit(data, opt).map_err(|e| e.to_string())?;
        let fitted = predict(self, &model, &ds)?;
        let mut res: Vec<f64> = yv
            .iter()
            .zip(&fitted)
            .map(|(a, f)| a - f)
            .filter(|r| r.is_finite())
            .collect();
        if res.is_empty() {
            return Err("no finite in-sample residual".into());
        }
        res.sort_unstable_by(f64::total_cmp);
        Ok(Fitted {
            model,
            q10: quantile_sorted(&res, 0.1),
            q90: quantile_sorted(&res, 0.9),
            seasons,
        })
    }
}

/// `yhat` of a fitted model at `ds`.
fn predict(p: &Prophet, model: &AugursProphet, ds: &[i64]) -> Result<Vec<f64>, String> {
    let mut data = PredictionData::new(ds.to_vec());
    if !p.events.is_empty() {
        data = data.with_regressors(p.regressors(ds)).map_err(|e| e.to_string())?;
    }
    let out = model.predict(data).map_err(|e| e.to_string())?;
    Ok(out.yhat.point)
}

impl Forecaster for Prophet {
    fn name(&self) -> &'static str {
        "prophet"
    }

    fn forecast(&self, t: &[i64], y: &[f64], step_s: i64, horizon: usize) -> Result<QuantilePath, ForecastError> {
        let day = super::super::steps_of(24.0 * 60.0, step_s);
        let p = prepare(t, y, step_s, horizon, FIT_DAYS * day + day)?;
        let mut notes = p.notes.clone();
        if p.x.len() < 2 * day {
            notes.push(format!(
                "history of {} steps is shorter than two days: no daily seasonality",
                p.x.len()
            ));
        }
        let o = p.origin();
        // fit on the history up to the start of the origin's day; a history shorter than a
        // day is fitted up to the origin itself
        let end = day_cutoff(&p, day).unwrap_or(o);
        let start = (end + 1).saturating_sub(FIT_DAYS * day);
        let train = &p.x[start..=end];
        let key = fit_key("prophet", p.time(start), step_s, train, &[self.events.len() as u64]);
        let fitted = if train.len() < 10 || train.iter().all(|v| *v == train[0]) {
            Err("history too short or flat".to_string())
        } else {
            let sub = Prepared {
                t0: p.time(start),
                x: train.to_vec(),
                ..p.clone()
            };
            self.cache.get_or_fit(key, || self.fit(&sub, sub.x.len() - 1))
        };
        let path = fitted.and_then(|f| {
            // the last hour before the origin (at least one point) and the horizon
            let back = p.hour.max(1).min(o + 1);
            let ds: Vec<i64> = (o + 1 - back..=o + horizon).map(|i| p.time(i)).collect();
            let yhat = predict(self, &f.model, &ds)?;
            let level: f64 = (0..back).map(|j| p.x[o + 1 - back + j] - yhat[j]).sum::<f64>() / back as f64;
            let decay = (-(2f64.ln()) * step_s as f64 / (LEVEL_HALF_LIFE_H * 3600.0)).exp();
            let p50: Vec<f64> = (0..horizon)
                .map(|k| yhat[back + k] + level * decay.powi(k as i32 + 1))
                .collect();
            let path = QuantilePath {
                p10: p50.iter().map(|m| m + f.q10).collect(),
                p90: p50.iter().map(|m| m + f.q90).collect(),
                p50,
                notes: vec![format!(
                    "prophet fitted on {} steps up to {} ({}), level shift {level:.4}",
                    train.len(),
                    crate::series::format_time(p.time(end)),
                    f.seasons
                )],
            };
            if all_finite(&path) {
                Ok(path)
            } else {
                Err("non-finite forecast".into())
            }
        });
        let mut path = match path {
            Ok(path) => path,
            Err(e) => {
                let mut fb = fallback(&p.x, horizon);
                fb.notes = vec![format!(
                    "prophet not usable ({e}): last value with spread of past changes"
                )];
                fb
            }
        };
        notes.append(&mut path.notes);
        path.notes = notes;
        finish(&mut path, p.nonneg);
        Ok(path)
    }
}
