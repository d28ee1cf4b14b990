//! `ensemble-ml`: the default ensemble, MSTL, LightGBM (and optionally Prophet) and the seasonal
//! naive, combined per lead from their causal accuracy.
//!
//! Once per UTC day of origins (cached like the fits, by a hash of the history up to the start
//! of the day, `d`) every member forecasts from replay origins whose targets all lie at or
//! before `d`: a day of two-hourly origins for horizons up to two hours, two days of six-hourly
//! ones up to a day, else a week of daily ones. From their errors, per lead (pooled over the
//! leads `k/2..=2k`): members whose MAE is above the seasonal naive's get no weight; the others
//! get `(best MAE / own MAE)^4`, normalized. The combined p50's replay residuals, in units of
//! the volatility of the day before their origin, give p10/p90 per lead bucket (conformal,
//! [`lead_quantiles`], at the levels corrected for the number of replay origins,
//! [`conformal_levels`]) scaled by the volatility now, so the quantiles cannot cross and are
//! calibrated on this series' own recent errors. Before a full replay is possible it falls
//! back to the default ensemble, and says so.

use std::sync::Arc;

use super::{FitCache, Prepared, day_cutoff, fit_key, prepare};
use crate::forecast::conformal::{COVERAGE, conformal_levels, lead_quantiles};
use crate::forecast::{Ensemble, ForecastError, Forecaster, QuantilePath, SeasonalNaive, finish, steps_of};

/// Sharpness of the weights.
const WEIGHT_POWER: f64 = 4.0;
/// Fewest replay origins for learnt weights.
const MIN_REPLAY: usize = 3;

/// The combiner (see the module doc).
pub struct Combiner {
    members: Vec<Box<dyn Forecaster>>,
    cache: FitCache<Calibration>,
}

impl std::fmt::Debug for Combiner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.members.iter().map(|m| m.name()).collect();
        f.debug_struct("Combiner").field("members", &names).finish()
    }
}

/// Weights and interval quantiles of one day.
#[derive(Debug, Clone)]
struct Calibration {
    /// `[k * nm + m]`.
    weights: Vec<f64>,
    /// Per lead, in units of volatility.
    quantiles: Vec<(f64, f64)>,
    replays: usize,
}

impl Default for Combiner {
    fn default() -> Self {
        Combiner::new(vec![
            Box::new(Ensemble::default()),
            Box::new(super::mstl::Mstl),
            Box::new(super::lgbm::Lgbm::default()),
        ])
    }
}

impl Combiner {
    /// A combiner of these members; the seasonal naive is always added last as the floor.
    pub fn new(mut members: Vec<Box<dyn Forecaster>>) -> Self {
        members.retain(|m| m.name() != "snaive");
        members.push(Box::new(SeasonalNaive));
        Combiner {
            members,
            cache: FitCache::new(8),
        }
    }

    /// Names of the members, in weight order.
    pub fn member_names(&self) -> Vec<&'static str> {
        self.members.iter().map(|m| m.name()).collect()
    }

    fn calibrate(&self, p: &Prepared, end: usize, h: usize) -> Result<Calibration, ForecastError> {
        let minutes = h as f64 * p.step_s as f64 / 60.0;
        let (count, stride_min) = if minutes <= 120.0 {
            (12, 120.0)
        } else if minutes <= 1440.0 {
            (8, 360.0)
        } else {
            (7, 1440.0)
        };
        let stride = steps_of(stride_min, p.step_s);
        let origins: Vec<usize> = (0..count)
            .filter_map(|j| end.checked_sub(h + j * stride))
            .filter(|&v| v >= 2 * p.day)
            .collect();
        let nm = self.members.len();
        if origins.len() < MIN_REPLAY {
            return Ok(Calibration {
                weights: Vec::new(),
                quantiles: Vec::new(),
                replays: origins.len(),
            });
        }
        let t: Vec<i64> = (0..=end).map(|i| p.time(i)).collect();
        let mut preds = Vec::with_capacity(origins.len());
        for &v in &origins {
            let mut block = Vec::with_capacity(nm);
            for m in &self.members {
                block.push(m.forecast(&t[..=v], &p.x[..=v], p.step_s, h)?.p50);
            }
            preds.push(block);
        }
        let mut abs = vec![0.0; nm * h];
        for (j, &v) in origins.iter().enumerate() {
            for k in 0..h {
                for m in 0..nm {
                    abs[m * h + k] += (p.x[v + k + 1] - preds[j][m][k]).abs();
                }
            }
        }
        let weights = weights(&abs, nm, h);
        let window = p.day.max(2);
        let mut residuals = vec![Vec::with_capacity(origins.len()); h];
        for (j, &v) in origins.iter().enumerate() {
            let vol = volatility(&p.x, v, window);
            let vol = if vol.is_finite() && vol > 0.0 { vol } else { 1.0 };
            for (k, r) in residuals.iter_mut().enumerate() {
                let f: f64 = (0..nm).map(|m| weights[k * nm + m] * preds[j][m][k]).sum();
                r.push((p.x[v + k + 1] - f) / vol);
            }
        }
        Ok(Calibration {
            weights,
            quantiles: {
                let (lo, hi) = conformal_levels(COVERAGE, origins.len());
                lead_quantiles(&residuals, lo, hi)
            },
            replays: origins.len(),
        })
    }
}

/// Per-lead weights `[k * nm + m]` from the replay absolute errors `abs[m * h + k]`; the last
/// member is the seasonal naive, and members worse than it get none.
fn weights(abs: &[f64], nm: usize, h: usize) -> Vec<f64> {
    let mut w = vec![0.0; nm * h];
    for k in 1..=h {
        let (a, b) = (k.div_ceil(2), (2 * k).min(h));
        let mae: Vec<f64> = (0..nm)
            .map(|m| (a..=b).map(|l| abs[m * h + l - 1]).sum::<f64>())
            .collect();
        let floor = mae[nm - 1];
        let best = mae.iter().copied().fold(f64::INFINITY, f64::min);
        let eps = 1e-12 * (1.0 + best.abs());
        let raw: Vec<f64> = mae
            .iter()
            .enumerate()
            .map(|(m, &e)| {
                if m + 1 < nm && e > floor {
                    0.0
                } else {
                    ((best + eps) / (e + eps)).powf(WEIGHT_POWER)
                }
            })
            .collect();
        let total: f64 = raw.iter().sum();
        for m in 0..nm {
            w[(k - 1) * nm + m] = if total.is_finite() && total > 0.0 {
                raw[m] / total
            } else {
                f64::from(u8::from(m + 1 == nm))
            };
        }
    }
    w
}

/// Mean absolute one-step change over the `window` steps up to `v`.
fn volatility(x: &[f64], v: usize, window: usize) -> f64 {
    let lo = (v + 1).saturating_sub(window).max(1);
    if lo > v {
        return f64::NAN;
    }
    (lo..=v).map(|i| (x[i] - x[i - 1]).abs()).sum::<f64>() / (v + 1 - lo) as f64
}

impl Forecaster for Combiner {
    fn name(&self) -> &'static str {
        "ensemble-ml"
    }

    fn forecast(&self, t: &[i64], y: &[f64], step_s: i64, horizon: usize) -> Result<QuantilePath, ForecastError> {
        let day = steps_of(24.0 * 60.0, step_s);
        let week = steps_of(7.0 * 24.0 * 60.0, step_s);
        // what the members read, plus the week of replay origins
        let p = prepare(t, y, step_s, horizon, super::lgbm::TRAIN_DAYS * day + 3 * week)?;
        let o = p.origin();
        let end = day_cutoff(&p, 3 * day);
        let cal: Option<Arc<Calibration>> = match end {
            Some(end) => {
                let key = fit_key("combiner", p.t0, step_s, &p.x[..=end], &[horizon as u64]);
                Some(self.cache.get_or_fit(key, || self.calibrate(&p, end, horizon))?)
            }
            None => None,
        };
        let Some(cal) = cal.filter(|c| c.replays >= MIN_REPLAY) else {
            let mut path = Ensemble::default().forecast(t, y, step_s, horizon)?;
            path.notes.insert(
                0,
                "ensemble-ml: too little history for a replay of its members: the default ensemble".into(),
            );
            return Ok(path);
        };
        let nm = self.members.len();
        let mut notes = p.notes.clone();
        let mut p50 = vec![0.0; horizon];
        for (m, member) in self.members.iter().enumerate() {
            if (0..horizon).all(|k| cal.weights[k * nm + m] == 0.0) {
                continue;
            }
            let path = member.forecast(t, y, step_s, horizon)?;
            for (k, v) in p50.iter_mut().enumerate() {
                *v += cal.weights[k * nm + m] * path.p50[k];
            }
        }
        let vol = volatility(&p.x, o, day.max(2));
        let vol = if vol.is_finite() && vol > 0.0 { vol } else { 1.0 };
        let describe = |k: usize| -> String {
            self.members
                .iter()
                .enumerate()
                .map(|(m, mm)| format!("{} {:.2}", mm.name(), cal.weights[k * nm + m]))
                .collect::<Vec<_>>()
                .join(", ")
        };
        notes.push(format!(
            "ensemble-ml: {} replay origins; weights at lead 1: {}; at lead {horizon}: {}",
            cal.replays,
            describe(0),
            describe(horizon - 1)
        ));
        let mut path = QuantilePath {
            p10: p50
                .iter()
                .zip(&cal.quantiles)
                .map(|(m, (lo, _))| m + vol * lo)
                .collect(),
            p90: p50
                .iter()
                .zip(&cal.quantiles)
                .map(|(m, (_, hi))| m + vol * hi)
                .collect(),
            p50,
            notes,
        };
        finish(&mut path, p.nonneg);
        Ok(path)
    }
}
