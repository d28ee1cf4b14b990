//! MSTL (multiple seasonal-trend decomposition by LOESS) with an AutoETS trend, and AutoETS
//! alone, from augurs.
//!
//! Seasons are calendar periods of the granularity, never detected ones (augurs' periodogram
//! misreads 288 as 256 on real series): the daily one when the history holds two days, the
//! weekly one when it holds two weeks and a week is at most [`MAX_WEEK_STEPS`] steps (5-minute
//! data or coarser), so a fit stays cheap. The history is capped at [`MSTL_WEEKS`] weeks with a
//! weekly season and [`MSTL_DAYS`] days without. p10/p90 come from the ETS trend's 80 %
//! prediction interval shifted by the seasonal terms (the combiner recalibrates them
//! conformally). Too little history for a season (or for ETS) falls back and says so. A path
//! that leaves the fit window's range widened by its width on each side (an accelerating trend
//! extrapolated a day ahead) is clamped to it, and the notes say how many values were.

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
    let mut path = to_path(f, h)?;
    let clamped = clamp_to_envelope(&mut path, x);
    if clamped > 0 {
        path.notes.push(format!(
            "{clamped} forecast values beyond the fit window's range widened by its width on each side were clamped to it (a trend extrapolated too far)"
        ));
    }
    Some(path)
}

/// Clamps every quantile of `path` into `[min - w, max + w]` of the finite values of `x`
/// (`w = max - min`): a trend fitted on a few days must not run away over a day-long horizon.
/// Returns how many values were clamped.
pub(crate) fn clamp_to_envelope(path: &mut QuantilePath, x: &[f64]) -> usize {
    let (lo, hi) = x
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    if !(lo.is_finite() && hi.is_finite()) {
        return 0;
    }
    let w = hi - lo;
    let (lo, hi) = (lo - w, hi + w);
    let mut clamped = 0;
    for v in path
        .p10
        .iter_mut()
        .chain(path.p50.iter_mut())
        .chain(path.p90.iter_mut())
    {
        if *v < lo || *v > hi {
            *v = v.clamp(lo, hi);
            clamped += 1;
        }
    }
    clamped
}

fn run(p: Prepared, periods: Vec<usize>, note: Option<String>, h: usize, what: &str) -> QuantilePath {
    let mut notes = p.notes.clone();
    notes.extend(note);
    let mut path = match fit_predict(&p.x, &periods, h) {
        Some(mut path) => {
            notes.push(format!("{what} on {} steps, seasons {periods:?}", p.x.len()));
            notes.append(&mut path.notes);
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

#[cfg(test)]
mod envelope_tests {
    use super::*;

    #[test]
    fn a_runaway_path_is_clamped_to_the_widened_range_and_counted() {
        let x = [10.0, 12.0, f64::NAN, 14.0];
        let mut path = QuantilePath {
            p10: vec![5.0, 1.0e72],
            p50: vec![11.0, 1.0e73],
            p90: vec![13.0, 1.0e74],
            notes: Vec::new(),
        };
        // range [10, 14], width 4: the envelope is [6, 18]
        assert_eq!(clamp_to_envelope(&mut path, &x), 4);
        assert_eq!(path.p10, vec![6.0, 18.0]);
        assert_eq!(path.p50, vec![11.0, 18.0]);
        assert_eq!(path.p90, vec![13.0, 18.0]);
        assert_eq!(clamp_to_envelope(&mut path, &x), 0);
    }

    #[test]
    fn ets_on_a_steep_ramp_stays_inside_the_envelope_a_day_ahead() {
        // two days of a steep accelerating ramp: a trend model extrapolates it without bound
        let x: Vec<f64> = (0..576).map(|i| 1.0 + (i as f64 / 60.0).exp()).collect();
        let (lo, hi) = (x[0], x[575]);
        let w = hi - lo;
        let p = fit_predict(&x, &[], 288).expect("AutoETS fits a ramp");
        for v in p.p10.iter().chain(&p.p50).chain(&p.p90) {
            assert!(
                *v >= lo - w - 1e-9 && *v <= hi + w + 1e-9,
                "{v} outside [{}, {}]",
                lo - w,
                hi + w
            );
        }
        assert!(p.notes.iter().any(|n| n.contains("clamped")), "{:?}", p.notes);
    }
}
