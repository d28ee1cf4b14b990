//! Training a LightGBM version, scoring it on the most recent holdout window, and offering it
//! to the [`ModelRegistry`] (blue-green), with the `ModelTrained` event that records it.

use chrono::DateTime;
use events::vocabulary::ModelTrained;

use super::lgbm::{self, LgbmArtifact};
use super::{fallback, prepare};
use crate::forecast::registry::{HoldoutMetrics, ModelMeta, ModelRegistry, Offer, RegistryError};
use crate::forecast::{ForecastError, Forecaster, QuantilePath, finish, steps_of};

/// The model name LightGBM versions are stored under.
pub const LGBM: &str = "lgbm";

/// A stored LightGBM version used as it is (no retraining): what the forecast actor runs
/// once the registry holds a current version.
#[derive(Debug, Clone)]
pub struct FrozenLgbm {
    pub version: String,
    pub artifact: LgbmArtifact,
}

impl FrozenLgbm {
    /// From the registry's artifact text.
    pub fn from_artifact(version: &str, text: &str) -> Result<Self, serde_json::Error> {
        Ok(FrozenLgbm {
            version: version.to_string(),
            artifact: serde_json::from_str(text)?,
        })
    }
}

impl Forecaster for FrozenLgbm {
    fn name(&self) -> &'static str {
        "lgbm"
    }

    fn forecast(&self, t: &[i64], y: &[f64], step_s: i64, horizon: usize) -> Result<QuantilePath, ForecastError> {
        let week = steps_of(7.0 * 24.0 * 60.0, step_s);
        let day = steps_of(24.0 * 60.0, step_s);
        let p = prepare(t, y, step_s, horizon, week + day)?;
        let mut path = match self.artifact.predict(&p, horizon) {
            Ok(mut path) => {
                path.notes.insert(0, format!("registry version {}", self.version));
                path
            }
            Err(e) => {
                let mut fb = fallback(&p.x, horizon);
                fb.notes = vec![format!(
                    "registry version {} not usable ({e}): last value with spread of past changes",
                    self.version
                )];
                fb
            }
        };
        let mut notes = p.notes.clone();
        notes.append(&mut path.notes);
        path.notes = notes;
        finish(&mut path, p.nonneg);
        Ok(path)
    }
}

/// Scores `model` on rolling origins every hour over `t[holdout..]`, `horizon` steps ahead.
pub fn score_holdout(
    model: &dyn Forecaster,
    t: &[i64],
    y: &[f64],
    step_s: i64,
    horizon: usize,
    holdout: usize,
) -> Result<HoldoutMetrics, ForecastError> {
    let stride = steps_of(60.0, step_s);
    let mut points = Vec::new();
    let mut o = holdout.max(1) - 1;
    while o + horizon < t.len() {
        let path = model.forecast(&t[..=o], &y[..=o], step_s, horizon)?;
        for k in 0..horizon {
            points.push((y[o + k + 1], path.p10[k], path.p50[k], path.p90[k]));
        }
        o += stride;
    }
    Ok(HoldoutMetrics::score(points))
}

/// What [`train_and_offer`] did.
#[derive(Debug, Clone)]
pub struct Trained {
    pub event: ModelTrained,
    pub meta: ModelMeta,
}

/// Errors of training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Forecast(#[from] ForecastError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("training failed: {0}")]
    Fit(String),
}

/// Trains LightGBM on `(t, y)` before the last `holdout_days`, scores it on them, and offers it
/// to the registry: it becomes current only when it beats the current version on the same
/// window. The returned event (append it to `service/<name>`) records the outcome.
pub fn train_and_offer(
    registry: &ModelRegistry,
    service: &str,
    t: &[i64],
    y: &[f64],
    step_s: i64,
    horizon: usize,
    holdout_days: f64,
) -> Result<Trained, TrainError> {
    let day = steps_of(24.0 * 60.0, step_s);
    let week = steps_of(7.0 * 24.0 * 60.0, step_s);
    let p = prepare(
        t,
        y,
        step_s,
        horizon,
        lgbm::TRAIN_DAYS * day + week + day + steps_of(holdout_days * 1440.0, step_s),
    )?;
    let hold = steps_of(holdout_days * 1440.0, step_s).min(p.x.len() / 2);
    let end = p.x.len() - 1 - hold;
    let max_lead = lgbm::buckets(step_s)
        .into_iter()
        .find(|&(_, hi)| hi >= horizon)
        .map_or(usize::MAX, |(_, hi)| hi);
    let artifact = lgbm::train(&p, end, max_lead).map_err(TrainError::Fit)?;
    let text = serde_json::to_string(&artifact).map_err(|e| TrainError::Fit(e.to_string()))?;
    let version = ModelRegistry::version_id(&text, artifact.trained_from, artifact.trained_to);
    let grid_t: Vec<i64> = (0..p.x.len()).map(|i| p.time(i)).collect();
    let new_model = FrozenLgbm {
        version: version.clone(),
        artifact: artifact.clone(),
    };
    let metrics = score_holdout(&new_model, &grid_t, &p.x, step_s, horizon, end + 1)?;
    let meta = ModelMeta {
        service: service.to_string(),
        model: LGBM.to_string(),
        version,
        feature_set_hash: artifact.feature_set_hash.clone(),
        step_seconds: step_s,
        trained_from: artifact.trained_from,
        trained_to: artifact.trained_to,
        holdout_start: p.time(end + 1),
        holdout_end: p.time(p.x.len() - 1),
        horizon_steps: horizon,
        metrics,
        details: serde_json::json!({
            "params": artifact.params,
            "cv_mae": artifact.cv_mae,
            "importance": artifact.importance,
            "buckets": artifact.buckets.iter().map(|b| (b.lo, b.hi, b.rows)).collect::<Vec<_>>(),
        }),
    };
    let mut score_err = None;
    let offer = registry.offer(meta, &text, |cur, art| {
        score_current(FrozenLgbm::from_artifact(&cur.version, art), &mut score_err, |old| {
            score_holdout(&old, &grid_t, &p.x, step_s, horizon, end + 1)
        })
    })?;
    recorded(offer, score_err, horizon as i64 * step_s / 60)
}

/// The current version's score on the new holdout window: an unloadable current version loses
/// to any scored one; a scoring error is kept in `err` (the offer then fails with it).
pub(crate) fn score_current<M, E>(
    loaded: Result<M, E>,
    err: &mut Option<ForecastError>,
    score: impl FnOnce(M) -> Result<HoldoutMetrics, ForecastError>,
) -> HoldoutMetrics {
    match loaded.map(score) {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            *err = Some(e);
            HoldoutMetrics::default()
        }
        Err(_) => HoldoutMetrics::default(),
    }
}

/// What an offer did, with its `ModelTrained` event, or the error scoring the current version met.
pub(crate) fn recorded(
    offer: Offer,
    score_err: Option<ForecastError>,
    horizon_minutes: i64,
) -> Result<Trained, TrainError> {
    if let Some(e) = score_err {
        return Err(e.into());
    }
    Ok(Trained {
        event: trained_event(&offer, horizon_minutes),
        meta: offer.meta,
    })
}

/// The `ModelTrained` event that records an offer (`horizon_minutes`: the scored horizon).
pub(crate) fn trained_event(offer: &Offer, horizon_minutes: i64) -> ModelTrained {
    let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap_or_default();
    let m = &offer.meta;
    ModelTrained {
        service: m.service.clone(),
        model: m.model.clone(),
        model_version: m.version.clone(),
        previous_version: offer.previous.as_ref().map(|(v, _)| v.clone()),
        feature_set_hash: m.feature_set_hash.clone(),
        trained_from: at(m.trained_from),
        trained_to: at(m.trained_to),
        holdout_start: at(m.holdout_start),
        holdout_end: at(m.holdout_end),
        horizon_minutes,
        mae: m.metrics.mae,
        mape: m.metrics.mape,
        rmse: m.metrics.rmse,
        pinball: m.metrics.pinball,
        coverage_p10_p90: m.metrics.coverage,
        previous_mae: offer.previous.as_ref().map(|(_, s)| s.mae),
        promoted: offer.promoted,
        points: m.metrics.points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(days: usize, step: i64, amp: f64) -> (Vec<i64>, Vec<f64>) {
        (0..days * 86_400 / step as usize)
            .map(|i| {
                let t = 1_400_000_000 + i as i64 * step;
                let ph = (t % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU;
                (t, 100.0 + amp * ph.sin() + ((i * 37) % 11) as f64)
            })
            .unzip()
    }

    #[test]
    fn train_offer_and_load_a_version() {
        let dir = tempfile::tempdir().unwrap();
        let reg = ModelRegistry::new(dir.path());
        let (t, y) = series(9, 900, 30.0);
        let first = train_and_offer(&reg, "api", &t, &y, 900, 4, 1.0).unwrap();
        assert!(first.event.promoted && first.event.previous_version.is_none());
        assert!(first.event.points > 0 && first.event.mae.is_finite());
        let (meta, text) = reg.current("api", LGBM).unwrap().unwrap();
        // (floats in the JSON metadata round-trip to the nearest printed digits)
        assert_eq!(
            (&meta.version, &meta.feature_set_hash),
            (&first.meta.version, &first.meta.feature_set_hash)
        );
        assert_eq!(meta.metrics.points, first.meta.metrics.points);
        let frozen = FrozenLgbm::from_artifact(&meta.version, &text).unwrap();
        let path = frozen.forecast(&t, &y, 900, 4).unwrap();
        assert!(path.notes[0].contains(&meta.version));
        // the same data again: the same version, nothing to promote
        let again = train_and_offer(&reg, "api", &t, &y, 900, 4, 1.0).unwrap();
        assert_eq!(again.event.model_version, first.event.model_version);
        assert!(!again.event.promoted);
        // a version trained on a series that changed its shape scores worse on the old
        // holdout window than ... the current one is re-scored on the new window instead:
        // whichever wins there is current
        let (t2, y2) = series(10, 900, 30.0);
        let next = train_and_offer(&reg, "api", &t2, &y2, 900, 4, 1.0).unwrap();
        let cur = reg.current_version("api", LGBM).unwrap().unwrap();
        assert_eq!(
            next.event.previous_version.as_deref(),
            Some(first.event.model_version.as_str())
        );
        let prev_mae = next.event.previous_mae.unwrap();
        if next.event.mae < prev_mae {
            assert!(next.event.promoted);
            assert_eq!(cur, next.event.model_version);
        } else {
            assert!(!next.event.promoted);
            assert_eq!(cur, first.event.model_version);
        }
    }
}
