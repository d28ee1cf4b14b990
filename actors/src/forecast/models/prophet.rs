//! Prophet from augurs, with the WebAssembly Stan optimizer (no external toolchain), holidays,
//! one regressor per business-event kind and a LightGBM model of its residuals during events.
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
//!
//! Determinism: the optimizer is seeded, and augurs lays out its design matrix in the iteration
//! order of its `HashMap`s (seasonalities, regressors, holidays), where the optimizer's stopping
//! point depends a little on that order. Every fit starts from a clone of one template model and
//! builds its holiday map with one shared hasher, so the same input gives the same forecast, bit
//! for bit, within a process; another process draws other hash keys and may differ in about the
//! fourth significant digit.
//!
//! Holidays ([`Prophet::with_holidays`]; [`us_public_holidays`] unless told otherwise): every
//! component of the calendar (see [`super::holidays`]) with a UTC day in the fit span becomes a
//! Prophet holiday, an additive effect over its days. Only the days in the fit span are passed
//! to the fit, and only those in the span predicted to a prediction; a component with no day in
//! the fit span has no effect ahead, and the notes say so.
//!
//! Event residuals: with business events, a LightGBM regression of the fit's in-sample residuals
//! at the points where an event is active (see [`super::event_residuals`]) corrects `yhat`
//! wherever an event is active, in the hour before the origin (so the level shift does not count
//! it twice) and ahead; p10/p90 move with p50. It is skipped, and the notes say so, when the fit
//! holds fewer than [`MIN_EVENT_POINTS`](super::event_residuals::MIN_EVENT_POINTS) event points;
//! [`Prophet::with_event_residuals`] turns it off.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::RandomState;
use std::sync::OnceLock;

use augurs::prophet::optimizer::OptimizeOpts;
use augurs::prophet::wasmstan::WasmstanOptimizer;
use augurs::prophet::{
    Holiday, HolidayOccurrence, PredictionData, ProphetOptions, Regressor, SeasonalityOption, TrainingData,
};

use super::event_residuals::EventResiduals;
use super::holidays::{HolidaySpec, days_in_span, us_public_holidays};
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

/// An unfitted model with these options, whose maps hash like every other's.
///
/// augurs keeps seasonalities, regressors and holidays in `HashMap`s and lays out the columns
/// of its design matrix in their iteration order, and the optimum the optimizer stops at moves
/// with that order. A fresh map draws a fresh random hasher, so two fits of the same data could
/// differ; clones of one template (and holiday maps built with [`hasher`]) share their hashers,
/// so the same input builds the same maps in the same order and fits the same in a process.
fn model(opts: ProphetOptions) -> AugursProphet {
    static TEMPLATE: OnceLock<AugursProphet> = OnceLock::new();
    let mut m = TEMPLATE
        .get_or_init(|| AugursProphet::new(ProphetOptions::default(), optimizer()))
        .clone();
    *m.opts_mut() = opts;
    m
}

/// The hasher of the holiday maps handed to augurs (see [`model`]).
fn hasher() -> RandomState {
    static HASHER: OnceLock<RandomState> = OnceLock::new();
    HASHER.get_or_init(RandomState::new).clone()
}

/// A fitted Prophet, its in-sample residual quantiles and what it learnt besides.
struct Fitted {
    model: AugursProphet,
    q10: f64,
    q90: f64,
    seasons: String,
    /// Holiday components with days in the fit span, and those days.
    holidays: BTreeMap<String, Vec<i64>>,
    /// The residual model during events, or why there is none; `None` without events.
    residuals: Option<Result<EventResiduals, String>>,
}

/// The Prophet forecaster.
pub struct Prophet {
    events: Vec<BusinessEvent>,
    holidays: Vec<HolidaySpec>,
    event_residuals: bool,
    cache: FitCache<Fitted>,
}

impl std::fmt::Debug for Prophet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prophet")
            .field("events", &self.events.len())
            .field("holidays", &self.holidays.len())
            .field("event_residuals", &self.event_residuals)
            .finish()
    }
}

impl Default for Prophet {
    /// No events, the holidays of [`us_public_holidays`].
    fn default() -> Self {
        Prophet {
            events: Vec::new(),
            holidays: us_public_holidays(),
            event_residuals: true,
            cache: FitCache::new(16),
        }
    }
}

impl Prophet {
    /// Prophet with one regressor per kind of these business events (and the residual model
    /// during them).
    pub fn with_events(events: Vec<BusinessEvent>) -> Self {
        Prophet {
            events,
            ..Prophet::default()
        }
    }

    /// The same model with this holiday calendar instead (empty: no holidays).
    pub fn with_holidays(self, holidays: Vec<HolidaySpec>) -> Self {
        Prophet {
            holidays,
            cache: FitCache::new(16),
            ..self
        }
    }

    /// The same model with the LightGBM model of the residuals during events on or off.
    pub fn with_event_residuals(self, on: bool) -> Self {
        Prophet {
            event_residuals: on,
            cache: FitCache::new(16),
            ..self
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
        let holidays = days_in_span(&self.holidays, ds[0], ds[ds.len() - 1]);
        let opts = ProphetOptions {
            daily_seasonality: SeasonalityOption::Manual(span_days >= 2.0),
            weekly_seasonality: SeasonalityOption::Manual(span_days >= 14.0),
            yearly_seasonality: SeasonalityOption::Manual(span_days >= 730.0),
            uncertainty_samples: 0,
            holidays: {
                let mut map = HashMap::with_hasher(hasher());
                map.extend(holidays.iter().map(|(name, days)| (name.clone(), holiday(days))));
                map
            },
            ..ProphetOptions::default()
        };
        let seasons = format!(
            "daily {}, weekly {}, yearly {}",
            span_days >= 2.0,
            span_days >= 14.0,
            span_days >= 730.0
        );
        let mut model = model(opts);
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
        let fitted = predict(self, &model, &holidays, &ds)?;
        let all_res: Vec<f64> = yv.iter().zip(&fitted).map(|(a, f)| a - f).collect();
        let mut res: Vec<f64> = all_res.iter().copied().filter(|r| r.is_finite()).collect();
        if res.is_empty() {
            return Err("no finite in-sample residual".into());
        }
        res.sort_unstable_by(f64::total_cmp);
        let residuals = (self.event_residuals && !self.events.is_empty())
            .then(|| EventResiduals::fit(&self.events, &ds, &fitted, &all_res));
        Ok(Fitted {
            model,
            q10: quantile_sorted(&res, 0.1),
            q90: quantile_sorted(&res, 0.9),
            seasons,
            holidays,
            residuals,
        })
    }

    /// Adds the residual model's correction to `yhat` at `ds` (the first `back` of them before
    /// the origin); the note on what it did, or why not.
    fn correct_during_events(&self, f: &Fitted, ds: &[i64], back: usize, yhat: &mut [f64]) -> Option<String> {
        let r = match f.residuals.as_ref()? {
            Ok(r) => r,
            Err(why) => return Some(format!("event residual model skipped: {why}")),
        };
        let c = match r.predict(&self.events, ds, yhat) {
            Ok(c) => c,
            Err(e) => return Some(format!("event residual model not applied: {e}")),
        };
        for (v, c) in yhat.iter_mut().zip(&c) {
            *v += c;
        }
        let ahead: Vec<f64> = ds[back..]
            .iter()
            .zip(&c[back..])
            .filter(|(t, _)| self.events.iter().any(|e| e.is_active(**t)))
            .map(|(_, c)| *c)
            .collect();
        let mean = ahead.iter().sum::<f64>() / ahead.len().max(1) as f64;
        Some(format!(
            "event residual model on {} event points (in-sample MAE {:.4} -> {:.4}): \
             {} leads during events, mean correction {mean:.4}",
            r.points,
            r.mae_before,
            r.mae_after,
            ahead.len()
        ))
    }
}

/// A Prophet holiday on these UTC days.
fn holiday(days: &[i64]) -> Holiday {
    Holiday::new(days.iter().map(|&d| HolidayOccurrence::for_day(d)).collect())
}

/// `yhat` at `ds` (sorted) of a model fitted with the holiday days `fit_days`.
fn predict(
    p: &Prophet,
    model: &AugursProphet,
    fit_days: &BTreeMap<String, Vec<i64>>,
    ds: &[i64],
) -> Result<Vec<f64>, String> {
    let mut data = PredictionData::new(ds.to_vec());
    if !p.events.is_empty() {
        data = data.with_regressors(p.regressors(ds)).map_err(|e| e.to_string())?;
    }
    let out = if model.opts().holidays.is_empty() || ds.is_empty() {
        model.predict(data)
    } else {
        // augurs matches holiday columns to coefficients by position: the fitted map is kept
        // (its order is the columns' order) and only the days of its entries are replaced, in
        // place. A holiday without any day gets no column at all and shifts the coefficients of
        // the columns after it, so each keeps its fit days (outside `ds` unless in-sample)
        let ahead = days_in_span(&p.holidays, ds[0], ds[ds.len() - 1]);
        let mut model = model.clone();
        for (name, h) in model.opts_mut().holidays.iter_mut() {
            let mut days: Vec<i64> = fit_days
                .get(name)
                .into_iter()
                .chain(ahead.get(name))
                .flatten()
                .copied()
                .collect();
            days.sort_unstable();
            days.dedup();
            *h = holiday(&days);
        }
        model.predict(data)
    };
    let out = out.map_err(|e| e.to_string())?;
    Ok(out.yhat.point)
}

/// Notes on the holidays of the fit and those in `[from, to]` ahead.
fn holiday_notes(p: &Prophet, f: &Fitted, from: i64, to: i64) -> Vec<String> {
    let mut notes = Vec::new();
    if !f.holidays.is_empty() {
        let fit: Vec<String> = f
            .holidays
            .iter()
            .map(|(name, days)| format!("{name} ({} day{})", days.len(), if days.len() == 1 { "" } else { "s" }))
            .collect();
        notes.push(format!("holidays in the fit span: {}", fit.join(", ")));
    }
    for (name, days) in days_in_span(&p.holidays, from, to) {
        let when: Vec<String> = days
            .iter()
            .map(|&d| crate::series::format_time(d)[..10].to_string())
            .collect();
        if f.holidays.contains_key(&name) {
            notes.push(format!("holiday {name} ahead on {}", when.join(", ")));
        } else {
            notes.push(format!(
                "holiday {name} ahead on {} has no effect: none in the fit span",
                when.join(", ")
            ));
        }
    }
    notes
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
            let mut yhat = predict(self, &f.model, &f.holidays, &ds)?;
            let mut extra = holiday_notes(self, &f, ds[back], ds[ds.len() - 1]);
            extra.extend(self.correct_during_events(&f, &ds, back, &mut yhat));
            let level: f64 = (0..back).map(|j| p.x[o + 1 - back + j] - yhat[j]).sum::<f64>() / back as f64;
            let decay = (-(2f64.ln()) * step_s as f64 / (LEVEL_HALF_LIFE_H * 3600.0)).exp();
            let p50: Vec<f64> = (0..horizon)
                .map(|k| yhat[back + k] + level * decay.powi(k as i32 + 1))
                .collect();
            let path = QuantilePath {
                p10: p50.iter().map(|m| m + f.q10).collect(),
                p90: p50.iter().map(|m| m + f.q90).collect(),
                p50,
                notes: std::iter::once(format!(
                    "prophet fitted on {} steps up to {} ({}), level shift {level:.4}",
                    train.len(),
                    crate::series::format_time(p.time(end)),
                    f.seasons
                ))
                .chain(extra)
                .collect(),
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
