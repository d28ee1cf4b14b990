//! MSTL (multiple seasonal-trend decomposition by LOESS) with an AutoETS trend, and AutoETS
//! alone, from augurs.
//!
//! Seasons are calendar periods of the granularity, never detected ones (augurs' periodogram
//! misreads 288 as 256 on real series): the daily one when the history holds two days, the
//! weekly one when it holds two weeks and a week is at most [`MAX_WEEK_STEPS`] steps (5-minute
//! data or coarser), so a fit stays cheap. The history is capped at [`MSTL_WEEKS`] weeks with a
//! weekly season and [`MSTL_DAYS`] days without. p10/p90 come from the ETS trend's 80 %
//! prediction interval shifted by the seasonal terms (the combiner recalibrates them
//! conformally). Too little history for a season (or for ETS) falls back and says so.

use augurs::ets::AutoETS;
use augurs::mstl::MSTLModel;
use augurs::{Fit, Forecast, Predict};

use super::{Prepared, all_finite, fallback, prepare};
use crate::forecast::{ForecastError, Forecaster, QuantilePath, finish};

/// Largest weekly period (in steps) fitted: a week of 5-minute steps.
pub const MAX_WEEK_STEPS: usize = 2016;
/// Weeks of history fitted when the weekly season is used.
pub const MSTL_WEEKS: usize = 3;
/// Days of history fitted with the daily season only.
pub const MSTL_DAYS: usize = 4;
/// Days of history the plain ETS model fits on.
pub const ETS_DAYS: usize = 2;
/// Width of the models' own interval (p10..p90).
const LEVEL: f64 = 0.8;

/// MSTL with calendar seasons and an AutoETS trend.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mstl;

/// Non-seasonal AutoETS (the model augurs selects by AICc among additive/multiplicative
/// error and none/additive/damped trend).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ets;

/// The seasons MSTL uses for this history, and a note when one is left out.
pub(crate) fn seasons(p: &Prepared) -> (Vec<usize>, Option<String>) {
    let n = p.x.len();
    let mut periods = Vec::new();
    let mut note = None;
    if p.day >= 2 && n >= 2 * p.day {
        periods.push(p.day);
        if p.week <= MAX_WEEK_STEPS && n >= 2 * p.week {
            periods.push(p.week);
        } else if p.week <= MAX_WEEK_STEPS {
            note = Some(format!(
                "history of {n} steps is shorter than two weeks: no weekly season"
            ));
        } else {
            note = Some(format!(
                "weekly season of {} steps not fitted at this granularity",
                p.week
            ));
        }
    } else {
        note = Some(format!(
            "history of {n} steps is shorter than two days: no season, ETS trend only"
        ));
    }
    (periods, note)
}

/// A forecast from augurs into a path; `None` if it is not usable.
fn to_path(f: Forecast, h: usize) -> Option<QuantilePath> {
    let iv = f.intervals?;
    let path = QuantilePath {
        p10: iv.lower,
        p50: f.point,
        p90: iv.upper,
        notes: Vec::new(),
    };
    (path.len() == h && path.p10.len() == h && path.p90.len() == h && all_finite(&path)).then_some(path)
}

/// Fits MSTL (or ETS when `periods` is empty) on `x` and forecasts `h` steps.
pub(crate) fn fit_predict(x: &[f64], periods: &[usize], h: usize) -> Option<QuantilePath> {
    if x.iter().all(|v| *v == x[0]) {
        return None; // a flat series: nothing to decompose; the fallback is exact
    }
    let f = if periods.is_empty() {
        let fitted = AutoETS::non_seasonal().fit(x).ok()?;
        fitted.predict(h, LEVEL).ok()?
    } else {
        let trend = AutoETS::non_seasonal().into_trend_model();
        let fitted = MSTLModel::new(periods.to_vec(), trend).fit(x).ok()?;
        fitted.predict(h, LEVEL).ok()?
    };
    to_path(f, h)
}

fn run(p: Prepared, periods: Vec<usize>, note: Option<String>, h: usize, what: &str) -> QuantilePath {
    let mut notes = p.notes.clone();
    notes.extend(note);
    let mut path = match fit_predict(&p.x, &periods, h) {
        Some(path) => {
            notes.push(format!("{what} on {} steps, seasons {periods:?}", p.x.len()));
            path
        }
        None => {
            notes.push(format!(
                "{what} could not be fitted on {} steps (too short or flat): last value with spread of past changes",
                p.x.len()
            ));
            fallback(&p.x, h)
        }
    };
    path.notes = notes;
    finish(&mut path, p.nonneg);
    path
}

impl Forecaster for Mstl {
    fn name(&self) -> &'static str {
        "mstl"
    }

    fn forecast(&self, t: &[i64], y: &[f64], step_s: i64, horizon: usize) -> Result<QuantilePath, ForecastError> {
        let week = super::super::steps_of(7.0 * 24.0 * 60.0, step_s);
        let day = super::super::steps_of(24.0 * 60.0, step_s);
        let cap = if week <= MAX_WEEK_STEPS {
            MSTL_WEEKS * week
        } else {
            MSTL_DAYS * day
        };
        let mut p = prepare(t, y, step_s, horizon, cap)?;
        let (periods, note) = seasons(&p);
        if !periods.contains(&p.week) && p.x.len() > MSTL_DAYS * p.day {
            // no weekly season: the daily one needs no more than a few days
            let drop = p.x.len() - MSTL_DAYS * p.day;
            p.x.drain(..drop);
            p.t0 += drop as i64 * step_s;
        }
        Ok(run(p, periods, note, horizon, "MSTL+ETS"))
    }
}

impl Forecaster for Ets {
    fn name(&self) -> &'static str {
        "ets"
    }

    fn forecast(&self, t: &[i64], y: &[f64], step_s: i64, horizon: usize) -> Result<QuantilePath, ForecastError> {
        let day = super::super::steps_of(24.0 * 60.0, step_s);
        let p = prepare(t, y, step_s, horizon, ETS_DAYS * day)?;
        let note = (p.x.len() < 2 * day).then(|| {
            format!(
                "history of {} steps is shorter than two days (ETS is non-seasonal anyway)",
                p.x.len()
            )
        });
        Ok(run(p, Vec::new(), note, horizon, "AutoETS"))
    }
}
