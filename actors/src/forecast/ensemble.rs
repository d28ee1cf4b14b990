//! The default model: simple components combined with per-lead weights learnt causally on the history's tail.
//!
//! At an origin `o` the model replays itself on earlier origins of the same
//! history (rolling origin, every target at or before `o`), measures each
//! component's absolute error per lead, and weights the components at lead
//! `k` by `(best MAE / own MAE)^WEIGHT_POWER` over the leads `k/2..=2k`.
//! The same replay gives the ensemble's own residuals; measured in units of
//! the volatility of the day before their origin (mean absolute one-step
//! change), their empirical quantiles per lead bucket, times the volatility
//! of the day before `o`, become the interval (locally scaled split
//! conformal), so a calm spell after a turbulent one narrows the interval.
//! The quantile levels carry the split-conformal finite-sample correction for
//! the number of replay origins ([`conformal_levels`]): an origin's residuals
//! at neighbouring leads move together, so the origins, not the residuals,
//! are the independent draws. The history is bounded to what the replay
//! needs, so the cost of a forecast does not grow with the length of the series.
//!
//! Besides the simple components, the transformer ([`super::transformer`]) is a member when
//! its runtime and model load: its paths from every replay origin come from one batched
//! inference and are weighted like any component's. Without it the ensemble says why in its
//! notes; [`Ensemble::simple`] (`ensemble-simple`) leaves it out on purpose.

use super::components::{self, Component, Ctx, PROFILE_WEEKS, last_finite};
use super::conformal::{COVERAGE, conformal_levels, lead_quantiles};
use super::grid::{regularize, validate};
use super::transformer::{ModelChoice, member};
use super::{ForecastError, Forecaster, QuantilePath, finish, steps_of};

/// Fewest replay origins for learnt weights; below it the model falls back.
const MIN_REPLAY: usize = 3;
/// Sharpness of the weights: higher favours the best component more.
const WEIGHT_POWER: f64 = 4.0;

/// Default multiplier of the conformal interval's half-widths (1: the calibrated interval as is).
pub const INTERVAL_SCALE: f64 = 1.0;

/// The ensemble forecaster (see the module doc).
#[derive(Debug, Clone)]
pub struct Ensemble {
    /// Multiplies the distance of p10 and p90 from p50 (1 = the raw empirical quantiles).
    pub interval_scale: f64,
    /// The transformer member's model; `None` leaves the member out.
    pub transformer: Option<ModelChoice>,
}

impl Default for Ensemble {
    fn default() -> Self {
        Ensemble {
            interval_scale: INTERVAL_SCALE,
            transformer: Some(ModelChoice::Shipped),
        }
    }
}

impl Ensemble {
    /// The simple components only (`ensemble-simple`): no transformer member.
    pub fn simple() -> Self {
        Ensemble {
            transformer: None,
            ..Ensemble::default()
        }
    }
}

/// Where the replay origins sit: `o - horizon - j * stride`, `j = 0..count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplayPlan {
    pub count: usize,
    pub stride: usize,
}

impl ReplayPlan {
    /// Two days of half-hourly origins for horizons up to two hours, two weeks of six-hourly
    /// origins up to a day, else six weeks of daily origins (an error a day or more ahead
    /// depends on the weekdays it spans, so the replay holds several of each).
    pub(crate) fn for_horizon(horizon: usize, step_s: i64) -> ReplayPlan {
        let minutes = horizon as f64 * step_s as f64 / 60.0;
        let (count, stride_min) = if minutes <= 120.0 {
            (96, 30.0)
        } else if minutes <= 1440.0 {
            (56, 360.0)
        } else {
            (42, 1440.0)
        };
        ReplayPlan {
            count,
            stride: steps_of(stride_min, step_s),
        }
    }
}

impl Forecaster for Ensemble {
    fn name(&self) -> &'static str {
        if self.transformer.is_some() {
            "ensemble"
        } else {
            "ensemble-simple"
        }
    }

    fn forecast(&self, t: &[i64], y: &[f64], step_s: i64, horizon: usize) -> Result<QuantilePath, ForecastError> {
        validate(t, y, step_s, horizon)?;
        let day = steps_of(24.0 * 60.0, step_s);
        let week = steps_of(7.0 * 24.0 * 60.0, step_s);
        let plan = ReplayPlan::for_horizon(horizon, step_s);
        let max_len = horizon + plan.count * plan.stride + (PROFILE_WEEKS + 1) * week + day;
        let grid = regularize(t, y, step_s, max_len);
        let mut notes = grid.history_notes();
        let (sums, counts) = components::running_sums(&grid.x);
        let ctx = Ctx {
            x: &grid.x,
            hour: steps_of(60.0, step_s),
            day,
            week,
            smooth: steps_of(15.0, step_s) / 2,
            sums: &sums,
            counts: &counts,
            level_steps: steps_of(30.0, step_s),
        };
        let n = grid.x.len();
        let o = n - 1;
        // components whose season fits twice into the history
        let mut comps: Vec<Component> = Component::ALL
            .into_iter()
            .filter(|c| c.season(&ctx).is_none_or(|p| p >= 2 && n >= 2 * p))
            .collect();
        if !comps.contains(&Component::SnaiveDay) {
            notes.push(format!(
                "history of {n} steps is shorter than two days: no daily season"
            ));
        } else if !comps.contains(&Component::SnaiveWeek) {
            notes.push(format!(
                "history of {n} steps is shorter than two weeks: no weekly season"
            ));
        }
        // replay origins, each with a full season of history for every component
        let origins = loop {
            let need = comps.iter().filter_map(|c| c.season(&ctx)).max().unwrap_or(1);
            let origins: Vec<usize> = (0..plan.count)
                .filter_map(|j| o.checked_sub(horizon + j * plan.stride))
                .filter(|&v| v + 1 >= need && last_finite(ctx.x, v).is_finite())
                .collect();
            if origins.len() >= MIN_REPLAY || need == 1 {
                break origins;
            }
            notes.push(format!(
                "only {} replay origins with a season of {need} steps: season dropped",
                origins.len()
            ));
            comps.retain(|c| c.season(&ctx).is_none_or(|p| p < need));
        };
        let mut path = if origins.len() < MIN_REPLAY {
            notes.push(format!(
                "only {} replay origins: last value with spread of past changes",
                origins.len()
            ));
            fallback(ctx.x, horizon)
        } else {
            let member = self.transformer.as_ref().and_then(|m| {
                member::paths(m, ctx.x, &origins, o, horizon, step_s)
                    .map_err(|e| notes.push(format!("transformer member left out: {e}")))
                    .ok()
            });
            self.combine(&ctx, &comps, &origins, o, horizon, member.as_deref(), &mut notes)
        };
        path.notes.splice(0..0, notes);
        finish(&mut path, grid.nonneg);
        Ok(path)
    }
}

impl Ensemble {
    /// Replays the components on `origins`, weights them per lead, and forecasts from `o`;
    /// `member` holds the transformer's paths from `origins` and then `o` (see [`member::paths`]).
    #[allow(clippy::too_many_arguments)]
    fn combine(
        &self,
        ctx: &Ctx,
        comps: &[Component],
        origins: &[usize],
        o: usize,
        h: usize,
        member: Option<&[f64]>,
        notes: &mut Vec<String>,
    ) -> QuantilePath {
        let nc = comps.len() + usize::from(member.is_some());
        let with_member = |j: usize, v: usize, block: &mut [f64]| {
            if let Some(m) = member {
                member_path(ctx.x, v, &m[j * h..(j + 1) * h], &mut block[comps.len() * h..]);
            }
        };
        let mut buf = Vec::new();
        // preds[(j * nc + c) * h + k]
        let mut preds = vec![0.0; origins.len() * nc * h];
        let mut abs_sum = vec![0.0; nc * h];
        let mut count = vec![0usize; h];
        for (j, &v) in origins.iter().enumerate() {
            let block = &mut preds[j * nc * h..(j + 1) * nc * h];
            component_paths(ctx, comps, v, h, block, &mut buf);
            with_member(j, v, block);
            for k in 0..h {
                let target = ctx.x[v + k + 1];
                if !target.is_finite() {
                    continue;
                }
                count[k] += 1;
                for c in 0..nc {
                    abs_sum[c * h + k] += (target - block[c * h + k]).abs();
                }
            }
        }
        let weights = lead_weights(&abs_sum, &count, nc, h);
        // residuals in units of the local volatility at their origin, so that the interval
        // follows the volatility of the last day rather than that of the whole replay
        let window = ctx.day.max(2);
        let mut vol: Vec<f64> = origins.iter().map(|&v| volatility(ctx.x, v, window)).collect();
        let mut vol_now = volatility(ctx.x, o, window);
        if !vol.iter().chain([&vol_now]).all(|s| s.is_finite() && *s > 0.0) {
            vol.iter_mut().for_each(|s| *s = 1.0);
            vol_now = 1.0;
        }
        let mut residuals = vec![Vec::with_capacity(origins.len()); h];
        for (j, &v) in origins.iter().enumerate() {
            let block = &preds[j * nc * h..(j + 1) * nc * h];
            for (k, res) in residuals.iter_mut().enumerate() {
                let target = ctx.x[v + k + 1];
                if target.is_finite() {
                    let f: f64 = (0..nc).map(|c| weights[k * nc + c] * block[c * h + k]).sum();
                    res.push((target - f) / vol[j]);
                }
            }
        }
        let mut now = vec![0.0; nc * h];
        component_paths(ctx, comps, o, h, &mut now, &mut buf);
        with_member(origins.len(), o, &mut now);
        let p50: Vec<f64> = (0..h)
            .map(|k| (0..nc).map(|c| weights[k * nc + c] * now[c * h + k]).sum())
            .collect();
        let (lo, hi) = conformal_levels(COVERAGE, origins.len());
        let q = lead_quantiles(&residuals, lo, hi);
        let s = self.interval_scale * vol_now;
        notes.push(format!(
            "{} replay origins; weights at lead 1: {}; at lead {h}: {}",
            origins.len(),
            describe(comps, member.is_some(), &weights[..nc]),
            describe(comps, member.is_some(), &weights[(h - 1) * nc..])
        ));
        QuantilePath {
            p10: p50.iter().zip(&q).map(|(m, (lo, _))| m + s * lo).collect(),
            p90: p50.iter().zip(&q).map(|(m, (_, hi))| m + s * hi).collect(),
            p50,
            notes: Vec::new(),
        }
    }
}

/// Mean absolute one-step change over the `window` steps up to `v` (NaN if none is finite).
fn volatility(x: &[f64], v: usize, window: usize) -> f64 {
    let lo = (v + 1).saturating_sub(window).max(1);
    let (sum, n) = (lo..=v)
        .map(|i| (x[i] - x[i - 1]).abs())
        .filter(|d| d.is_finite())
        .fold((0.0, 0usize), |(s, n), d| (s + d, n + 1));
    if n == 0 { f64::NAN } else { sum / n as f64 }
}

/// Every component's path from origin `v` into `out[c * h..(c + 1) * h]`, NaN replaced by the last value.
fn component_paths(ctx: &Ctx, comps: &[Component], v: usize, h: usize, out: &mut [f64], buf: &mut Vec<f64>) {
    let last = last_finite(ctx.x, v);
    for (c, &comp) in comps.iter().enumerate() {
        let slot = &mut out[c * h..(c + 1) * h];
        components::forecast(comp, ctx, v, slot, buf);
        for p in slot.iter_mut() {
            if !p.is_finite() {
                *p = last;
            }
        }
    }
}

/// Weights `[k * nc + c]` from the replay MAE over the leads `k/2..=2k`.
fn lead_weights(abs_sum: &[f64], count: &[usize], nc: usize, h: usize) -> Vec<f64> {
    // prefix sums over leads
    let mut pre = vec![0.0; nc * (h + 1)];
    for c in 0..nc {
        for k in 0..h {
            pre[c * (h + 1) + k + 1] = pre[c * (h + 1) + k] + abs_sum[c * h + k];
        }
    }
    let mut cpre = vec![0usize; h + 1];
    for k in 0..h {
        cpre[k + 1] = cpre[k] + count[k];
    }
    let mut w = vec![1.0 / nc as f64; nc * h];
    for k in 1..=h {
        let (a, b) = (k.div_ceil(2), (2 * k).min(h));
        let n = cpre[b] - cpre[a - 1];
        if n == 0 {
            continue;
        }
        let mae: Vec<f64> = (0..nc)
            .map(|c| (pre[c * (h + 1) + b] - pre[c * (h + 1) + a - 1]) / n as f64)
            .collect();
        let best = mae.iter().copied().fold(f64::INFINITY, f64::min);
        let eps = 1e-12 * (1.0 + best.abs());
        let raw: Vec<f64> = mae
            .iter()
            .map(|m| ((best + eps) / (m + eps)).powf(WEIGHT_POWER))
            .collect();
        let total: f64 = raw.iter().sum();
        if total.is_finite() && total > 0.0 {
            for c in 0..nc {
                w[(k - 1) * nc + c] = raw[c] / total;
            }
        }
    }
    w
}

/// "name 0.42, name 0.31" for the largest weights (the transformer member, if any, last).
fn describe(comps: &[Component], member: bool, w: &[f64]) -> String {
    let names = comps
        .iter()
        .map(|c| format!("{c:?}"))
        .chain(member.then(|| "Transformer".to_string()));
    let mut pairs: Vec<(String, f64)> = names.zip(w.iter().copied()).collect();
    pairs.sort_by(|a, b| b.1.total_cmp(&a.1));
    pairs
        .iter()
        .take(3)
        .map(|(c, w)| format!("{c} {w:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The member's path from origin `v` into `out`, NaN replaced by the last value.
fn member_path(x: &[f64], v: usize, path: &[f64], out: &mut [f64]) {
    let last = last_finite(x, v);
    for (o, p) in out.iter_mut().zip(path) {
        *o = if p.is_finite() { *p } else { last };
    }
}

/// Last value, with p10/p90 from the quantiles of past `k`-step changes: the cold-start
/// fallback of this model and of the `ml` models.
pub(crate) fn fallback(x: &[f64], h: usize) -> QuantilePath {
    let last = last_finite(x, x.len() - 1);
    let residuals: Vec<Vec<f64>> = (1..=h)
        .map(|k| {
            x.iter()
                .skip(k)
                .zip(x.iter())
                .map(|(a, b)| a - b)
                .filter(|d| d.is_finite())
                .collect()
        })
        .collect();
    let q = lead_quantiles(&residuals, 0.1, 0.9);
    QuantilePath {
        p10: q.iter().map(|(lo, _)| last + lo).collect(),
        p50: vec![last; h],
        p90: q.iter().map(|(_, hi)| last + hi).collect(),
        notes: Vec::new(),
    }
}
