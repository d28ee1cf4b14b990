//! LightGBM quantile regression (alpha 0.1 / 0.5 / 0.9) on the feature pipeline's features,
//! one direct model per horizon bucket.
//!
//! Buckets of leads (upper ends 15 min, 1, 2, 4, 6, 12 and 24 h; empty ones at coarse
//! granularity dropped). A training sample is an origin `i` and a lead `k` of the bucket; its
//! features are the pipeline's row at `i` (calendar, Fourier, lags, rolling statistics,
//! derivatives; NaN where history is missing), the value at `i`, the lead, the target's hour of
//! day and day of week (sin/cos) and the last observed values at the target's phase a day and a
//! week before, and the mean of the last three days at that phase (all relative to the value at
//! `i`); the label is the change `y[i+k] - y[i]`. Leads beyond 24 h use the 24 h model with the
//! target's own calendar and phase features ("same phase, last observed day").
//!
//! Training: at most [`TRAIN_DAYS`] days, at most [`MAX_ROWS`] samples per bucket (origins
//! thinned evenly, two leads each), `num_threads = 1`, `deterministic = true`, fixed seeds. A
//! small hyper-parameter search ([`CANDIDATES`]) picks by the median's MAE over an
//! expanding-window time-series CV ([`CV_FOLDS`] folds; samples whose target reaches into a
//! fold's validation window are purged from its training part), on the first bucket; the pick
//! then trains the three quantiles of every bucket on all samples. Fitted at most once per UTC
//! day of origins (see [`super`]); the gain importance of the median model is kept.

use chrono::{DateTime, Datelike, Timelike};
use lightgbm3::{Booster, Dataset, ImportanceType};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{FitCache, Prepared, day_cutoff, fallback, fit_key, prepare};
use crate::forecast::features::{FeatureConfig, FeatureGroups, FeaturePipeline};
use crate::forecast::{ForecastError, Forecaster, QuantilePath, finish, steps_of};

/// Days of history a fit uses at most.
pub const TRAIN_DAYS: usize = 14;
/// Samples per bucket at most.
pub const MAX_ROWS: usize = 2400;
/// Fewest samples a bucket needs for a model.
pub const MIN_ROWS: usize = 150;
/// Boosting rounds.
pub const ROUNDS: usize = 120;
/// Expanding-window CV folds of the hyper-parameter search.
pub const CV_FOLDS: usize = 2;
/// Upper ends of the lead buckets, in minutes.
pub const BUCKET_MINUTES: [f64; 7] = [15.0, 60.0, 120.0, 240.0, 360.0, 720.0, 1440.0];
/// Quantile levels.
pub const ALPHAS: [f64; 3] = [0.1, 0.5, 0.9];
/// Seed of every LightGBM run.
const SEED: u64 = 7;

/// A hyper-parameter candidate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub num_leaves: u32,
    pub learning_rate: f64,
    pub min_data_in_leaf: u32,
    pub feature_fraction: f64,
}

/// The search space (small on purpose: training cost is bounded).
pub const CANDIDATES: [Params; 3] = [
    Params {
        num_leaves: 15,
        learning_rate: 0.05,
        min_data_in_leaf: 20,
        feature_fraction: 0.8,
    },
    Params {
        num_leaves: 31,
        learning_rate: 0.05,
        min_data_in_leaf: 40,
        feature_fraction: 0.8,
    },
    Params {
        num_leaves: 7,
        learning_rate: 0.1,
        min_data_in_leaf: 20,
        feature_fraction: 1.0,
    },
];

/// The three quantile models of one lead bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketModel {
    /// Leads covered, in steps, inclusive.
    pub lo: usize,
    pub hi: usize,
    /// LightGBM model strings for p10, p50, p90.
    pub models: Vec<String>,
    /// Training samples.
    pub rows: usize,
}

/// A trained LightGBM model set: what the registry stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LgbmArtifact {
    pub step_s: i64,
    pub feature_set_hash: String,
    pub feature_names: Vec<String>,
    pub params: Params,
    /// CV MAE of every candidate, in [`CANDIDATES`] order.
    pub cv_mae: Vec<f64>,
    pub buckets: Vec<BucketModel>,
    /// Top features of the first bucket's median model by gain.
    pub importance: Vec<(String, f64)>,
    /// Epoch seconds of the first and last training point.
    pub trained_from: i64,
    pub trained_to: i64,
}

/// The LightGBM forecaster.
#[derive(Debug)]
pub struct Lgbm {
    cache: FitCache<Result<LgbmArtifact, String>>,
}

impl Default for Lgbm {
    fn default() -> Self {
        Lgbm {
            cache: FitCache::new(8),
        }
    }
}

/// The pipeline the model reads: default lags, shorter rolling windows (their cost grows with
/// the window), no business features (the trait carries no events).
pub fn pipeline(step_s: i64) -> FeaturePipeline {
    let config = FeatureConfig {
        granularity_seconds: u32::try_from(step_s.clamp(1, i64::from(u32::MAX))).unwrap_or(60),
        rolling_windows_minutes: vec![15, 60, 360],
        groups: FeatureGroups {
            business: false,
            ..FeatureGroups::default()
        },
        ..FeatureConfig::default()
    };
    FeaturePipeline::new(config).expect("a valid fixed configuration")
}

/// Extra feature names, after the pipeline's.
const EXTRA: [&str; 9] = [
    "value",
    "lead_minutes",
    "target_hour_sin",
    "target_hour_cos",
    "target_dow_sin",
    "target_dow_cos",
    "target_same_phase_day",
    "target_same_phase_week",
    "target_phase_mean_3d",
];

/// Lead buckets in steps.
pub fn buckets(step_s: i64) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut lo = 1;
    for m in BUCKET_MINUTES {
        let hi = steps_of(m, step_s);
        if hi >= lo {
            out.push((lo, hi));
            lo = hi + 1;
        }
    }
    out
}

/// Last observed value at the phase of `target` (an index past `o` possibly), `period` apart.
fn same_phase(x: &[f64], o: usize, target: usize, period: usize, back: usize) -> f64 {
    if period == 0 {
        return f64::NAN;
    }
    // smallest m with target - m * period <= o
    let m = (target.saturating_sub(o)).div_ceil(period).max(1) + back;
    target.checked_sub(m * period).map_or(f64::NAN, |i| x[i])
}

/// The extra features of (origin `i`, lead `k`).
fn extra(p: &Prepared, i: usize, k: usize, out: &mut Vec<f64>) {
    let v = p.x[i];
    let target = i + k;
    let ts = p.time(target);
    let (hour, dow) = DateTime::from_timestamp(ts, 0).map_or((f64::NAN, f64::NAN), |d| {
        (
            f64::from(d.num_seconds_from_midnight()) / 86_400.0,
            f64::from(d.weekday().num_days_from_monday()) / 7.0,
        )
    });
    let tau = std::f64::consts::TAU;
    let d1 = same_phase(&p.x, i, target, p.day, 0);
    let w1 = same_phase(&p.x, i, target, p.week, 0);
    let mean3: Vec<f64> = (0..3)
        .map(|b| same_phase(&p.x, i, target, p.day, b))
        .filter(|v| v.is_finite())
        .collect();
    let m3 = if mean3.is_empty() {
        f64::NAN
    } else {
        mean3.iter().sum::<f64>() / mean3.len() as f64
    };
    out.extend_from_slice(&[
        v,
        k as f64 * p.step_s as f64 / 60.0,
        (tau * hour).sin(),
        (tau * hour).cos(),
        (tau * dow).sin(),
        (tau * dow).cos(),
        d1 - v,
        w1 - v,
        m3 - v,
    ]);
}

fn lgbm_params(pp: &Params, alpha: f64, seed: u64) -> serde_json::Value {
    json!({
        "objective": "quantile",
        "alpha": alpha,
        "num_iterations": ROUNDS,
        "num_leaves": pp.num_leaves,
        "learning_rate": pp.learning_rate,
        "min_data_in_leaf": pp.min_data_in_leaf,
        "feature_fraction": pp.feature_fraction,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "num_threads": 1,
        "deterministic": true,
        "force_row_wise": true,
        "seed": seed,
        "verbosity": -1,
    })
}

/// Trains one booster on row-major `x` (`nf` columns).
fn train_one(x: &[f64], label: &[f32], nf: usize, pp: &Params, alpha: f64) -> Result<Booster, String> {
    let ds = Dataset::from_slice(x, label, nf as i32, true).map_err(|e| e.to_string())?;
    Booster::train(ds, &lgbm_params(pp, alpha, SEED)).map_err(|e| e.to_string())
}

fn predict_rows(b: &Booster, x: &[f64], nf: usize) -> Result<Vec<f64>, String> {
    b.predict_with_params(x, nf as i32, true, "num_threads=1")
        .map_err(|e| e.to_string())
}

/// Samples of one bucket: (origin, lead) pairs with their target at or before `end`.
fn samples(first: usize, end: usize, lo: usize, hi: usize) -> Vec<(usize, usize)> {
    if end < first + lo {
        return Vec::new();
    }
    let last_origin = end - lo;
    let n_origins = last_origin + 1 - first;
    let stride = (2 * n_origins).div_ceil(MAX_ROWS).max(1);
    let mut out = Vec::new();
    for (j, i) in (first..=last_origin).step_by(stride).enumerate() {
        let top = hi.min(end - i);
        let width = top + 1 - lo;
        for r in 0..2 {
            let k = lo + (j * 7 + r * (width / 2 + 1)) % width;
            if r == 1 && width == 1 {
                break;
            }
            out.push((i, k));
        }
    }
    out
}

/// Trains the model set on `p.x[..=end]`.
pub(crate) fn train(p: &Prepared, end: usize, max_lead: usize) -> Result<LgbmArtifact, String> {
    let pl = pipeline(p.step_s);
    let t: Vec<i64> = (0..=end).map(|i| p.time(i)).collect();
    let rows = pl.compute(&t, &p.x[..=end]).map_err(|e| e.to_string())?;
    let mut names = pl.feature_names();
    names.extend(EXTRA.iter().map(|s| s.to_string()));
    let nf = names.len();
    // the first day's rows have too little history to learn from
    let first = p.day.min(end / 4);
    let build = |pairs: &[(usize, usize)]| -> (Vec<f64>, Vec<f32>) {
        let mut x = Vec::with_capacity(pairs.len() * nf);
        let mut yl = Vec::with_capacity(pairs.len());
        for &(i, k) in pairs {
            x.extend_from_slice(&rows[i]);
            extra(p, i, k, &mut x);
            yl.push((p.x[i + k] - p.x[i]) as f32);
        }
        (x, yl)
    };
    let bks: Vec<(usize, usize)> = buckets(p.step_s)
        .into_iter()
        .filter(|&(lo, _)| lo <= max_lead.max(1))
        .collect();
    let all: Vec<Vec<(usize, usize)>> = bks.iter().map(|&(lo, hi)| samples(first, end, lo, hi)).collect();
    if all.first().is_none_or(|s| s.len() < MIN_ROWS) {
        return Err(format!(
            "too little history for LightGBM: {} samples in the first bucket",
            all.first().map_or(0, Vec::len)
        ));
    }
    // hyper-parameter search on the first bucket, expanding-window CV
    let s0 = &all[0];
    let mut cv_mae = Vec::new();
    for cand in &CANDIDATES {
        let (mut err, mut n) = (0.0, 0usize);
        for f in 0..CV_FOLDS {
            let a = s0.len() * (3 + f) / (3 + CV_FOLDS);
            let b = s0.len() * (4 + f) / (3 + CV_FOLDS);
            let val_start = s0[a].0;
            let train_part: Vec<(usize, usize)> = s0[..a].iter().copied().filter(|&(i, k)| i + k < val_start).collect();
            if train_part.len() < MIN_ROWS / 2 || b <= a {
                continue;
            }
            let (xt, yt) = build(&train_part);
            let (xv, yv) = build(&s0[a..b]);
            let m = train_one(&xt, &yt, nf, cand, 0.5)?;
            let pred = predict_rows(&m, &xv, nf)?;
            err += pred
                .iter()
                .zip(&yv)
                .map(|(a, b)| (a - f64::from(*b)).abs())
                .sum::<f64>();
            n += yv.len();
        }
        cv_mae.push(if n == 0 { f64::INFINITY } else { err / n as f64 });
    }
    let best = (0..CANDIDATES.len())
        .min_by(|&a, &b| cv_mae[a].total_cmp(&cv_mae[b]))
        .unwrap_or(0);
    let params = CANDIDATES[best];
    let mut buckets_out = Vec::new();
    let mut importance = Vec::new();
    for (&(lo, hi), pairs) in bks.iter().zip(&all) {
        if pairs.len() < MIN_ROWS {
            continue;
        }
        let (x, yl) = build(pairs);
        let mut models = Vec::new();
        for alpha in ALPHAS {
            let b = train_one(&x, &yl, nf, &params, alpha)?;
            if alpha == 0.5 && importance.is_empty() {
                let gain = b.feature_importance(ImportanceType::Gain).map_err(|e| e.to_string())?;
                let mut pairs: Vec<(String, f64)> = names.iter().cloned().zip(gain).collect();
                pairs.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                pairs.truncate(10);
                importance = pairs;
            }
            models.push(b.save_string().map_err(|e| e.to_string())?);
        }
        buckets_out.push(BucketModel {
            lo,
            hi,
            models,
            rows: pairs.len(),
        });
    }
    Ok(LgbmArtifact {
        step_s: p.step_s,
        feature_set_hash: pl.feature_set_hash(),
        feature_names: names,
        params,
        cv_mae,
        buckets: buckets_out,
        importance,
        trained_from: p.time(0),
        trained_to: p.time(end),
    })
}

impl LgbmArtifact {
    /// Forecasts `h` steps from the origin of `p` (whose step must match).
    pub(crate) fn predict(&self, p: &Prepared, h: usize) -> Result<QuantilePath, String> {
        if p.step_s != self.step_s {
            return Err(format!("trained at {} s steps, asked at {} s", self.step_s, p.step_s));
        }
        let pl = pipeline(p.step_s);
        if pl.feature_set_hash() != self.feature_set_hash {
            return Err("feature set changed since training".into());
        }
        let o = p.origin();
        let from = o.saturating_sub(pl.lookback_steps());
        let t: Vec<i64> = (from..=o).map(|i| p.time(i)).collect();
        let rows = pl.compute(&t, &p.x[from..=o]).map_err(|e| e.to_string())?;
        let row = rows.last().ok_or("no feature row")?;
        let nf = self.feature_names.len();
        let boosters: Vec<Vec<Booster>> = self
            .buckets
            .iter()
            .map(|b| {
                b.models
                    .iter()
                    .map(|s| Booster::from_string(s).map_err(|e| e.to_string()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<_, _>>()?;
        let mut path = QuantilePath {
            p10: vec![0.0; h],
            p50: vec![0.0; h],
            p90: vec![0.0; h],
            notes: Vec::new(),
        };
        // rows per bucket, then one predict call per booster
        let mut per_bucket: Vec<(Vec<usize>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); self.buckets.len()];
        for k in 1..=h {
            // the bucket holding k, else the nearest one below (or the first)
            let b = self.buckets.iter().rposition(|b| b.lo <= k).unwrap_or(0);
            let (leads, x) = &mut per_bucket[b];
            leads.push(k);
            x.extend_from_slice(row);
            let mut ext = Vec::with_capacity(EXTRA.len());
            extra(p, o, k, &mut ext);
            if k > self.buckets[b].hi {
                ext[1] = self.buckets[b].hi as f64 * p.step_s as f64 / 60.0;
            }
            x.extend(ext);
        }
        let v = p.x[o];
        for ((leads, x), bs) in per_bucket.iter().zip(&boosters) {
            if leads.is_empty() {
                continue;
            }
            let preds: Vec<Vec<f64>> = bs.iter().map(|b| predict_rows(b, x, nf)).collect::<Result<_, _>>()?;
            for (j, &k) in leads.iter().enumerate() {
                let mut q = [preds[0][j], preds[1][j], preds[2][j]];
                q.sort_unstable_by(f64::total_cmp);
                path.p10[k - 1] = v + q[0];
                path.p50[k - 1] = v + q[1];
                path.p90[k - 1] = v + q[2];
            }
        }
        let top: Vec<String> = self
            .importance
            .iter()
            .take(3)
            .map(|(n, g)| format!("{n} {g:.0}"))
            .collect();
        path.notes.push(format!(
            "lightgbm {} buckets trained {}..{} with {:?} (CV MAE {:?}); top gain: {}",
            self.buckets.len(),
            crate::series::format_time(self.trained_from),
            crate::series::format_time(self.trained_to),
            self.params,
            self.cv_mae,
            top.join(", ")
        ));
        if h > self.buckets.last().map_or(0, |b| b.hi) {
            path.notes
                .push("leads past the last bucket use its model with the target's phase features".into());
        }
        Ok(path)
    }
}

impl Lgbm {
    /// Trains (or takes from the cache) the model set for the origin of `p`.
    fn artifact(&self, p: &Prepared, h: usize) -> Result<std::sync::Arc<Result<LgbmArtifact, String>>, String> {
        let o = p.origin();
        let end = day_cutoff(p, 2 * p.day).unwrap_or(o);
        let start = (end + 1).saturating_sub(TRAIN_DAYS * p.day + p.week);
        let sub = Prepared {
            t0: p.time(start),
            x: p.x[start..=end].to_vec(),
            ..p.clone()
        };
        let max_lead = buckets(p.step_s)
            .into_iter()
            .find(|&(_, hi)| hi >= h)
            .map_or(usize::MAX, |(_, hi)| hi);
        let key = fit_key("lgbm", sub.t0, p.step_s, &sub.x, &[max_lead as u64]);
        self.cache
            .get_or_fit(key, || Ok::<_, String>(train(&sub, sub.origin(), max_lead)))
    }
}

impl Forecaster for Lgbm {
    fn name(&self) -> &'static str {
        "lgbm"
    }

    fn forecast(&self, t: &[i64], y: &[f64], step_s: i64, horizon: usize) -> Result<QuantilePath, ForecastError> {
        let day = steps_of(24.0 * 60.0, step_s);
        let week = steps_of(7.0 * 24.0 * 60.0, step_s);
        let p = prepare(t, y, step_s, horizon, TRAIN_DAYS * day + week + day)?;
        let mut notes = p.notes.clone();
        if p.x.len() < 2 * day {
            notes.push(format!(
                "history of {} steps is shorter than two days: lightgbm trains on what there is",
                p.x.len()
            ));
        }
        let out = self
            .artifact(&p, horizon)
            .and_then(|a| match a.as_ref() {
                Ok(a) => a.predict(&p, horizon),
                Err(e) => Err(e.clone()),
            })
            .and_then(|path| {
                if super::all_finite(&path) {
                    Ok(path)
                } else {
                    Err("non-finite forecast".into())
                }
            });
        let mut path = match out {
            Ok(path) => path,
            Err(e) => {
                let mut fb = fallback(&p.x, horizon);
                fb.notes = vec![format!(
                    "lightgbm not usable ({e}): last value with spread of past changes"
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
