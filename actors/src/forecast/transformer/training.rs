//! Offering a retrained transformer (an ONNX file from `scripts/transformer/`) to the model
//! registry: scored on the service's most recent holdout window against the current version,
//! promoted blue-green like the LightGBM versions (feature `ml`, which the `train` command needs).

use super::layout::LAYOUT;
use super::runtime::OnnxModel;
use super::versions::version_of;
use super::{ModelChoice, Transformer};
use crate::forecast::models::training::{TrainError, Trained, recorded, score_current, score_holdout};
use crate::forecast::registry::{ModelMeta, ModelRegistry, ONNX_FILE};

pub use super::versions::TRANSFORMER;
use crate::forecast::steps_of;

/// Scores the ONNX file `bytes` on the last `holdout_days` of `(t, y)` (rolling hourly origins,
/// `horizon` steps ahead) and offers it to the registry for `service`: it becomes current only
/// when it beats the current version on the same window. A file the runtime cannot load, or
/// whose declared input layout differs from this build's, is refused before anything is stored.
/// The ONNX file is a global model trained offline (see its card); the version's training window
/// records the service history before the holdout window it was checked against.
#[allow(clippy::too_many_arguments)]
pub fn offer_onnx(
    registry: &ModelRegistry,
    service: &str,
    bytes: &[u8],
    t: &[i64],
    y: &[f64],
    step_s: i64,
    horizon: usize,
    holdout_days: f64,
) -> Result<Trained, TrainError> {
    let fit = |e: super::TransformerError| TrainError::Fit(e.to_string());
    let new = OnnxModel::load(bytes, "the offered ONNX file").map_err(fit)?;
    let hold = steps_of(holdout_days * 1440.0, step_s).min(t.len() / 2).max(1);
    let start = t.len() - hold;
    if start == 0 {
        return Err(TrainError::Fit("the series is too short for a holdout window".into()));
    }
    let score = |m: ModelChoice| score_holdout(&Transformer { model: m }, t, y, step_s, horizon, start);
    let metrics = score(ModelChoice::Loaded(new.clone()))?;
    let meta = ModelMeta {
        service: service.to_string(),
        model: TRANSFORMER.to_string(),
        version: version_of(bytes),
        feature_set_hash: LAYOUT.to_string(),
        step_seconds: step_s,
        trained_from: t[0],
        trained_to: t[start - 1],
        holdout_start: t[start],
        holdout_end: t[t.len() - 1],
        horizon_steps: horizon,
        metrics,
        details: serde_json::json!({ "onnx_bytes": bytes.len(), "session_id": new.id }),
    };
    let mut score_err = None;
    let offer = registry.offer_file(meta, ONNX_FILE, bytes, |cur, art| {
        let old = OnnxModel::load(art, &format!("registry version {}", cur.version));
        score_current(old, &mut score_err, |old| score(ModelChoice::Loaded(old)))
    })?;
    recorded(offer, score_err, horizon as i64 * step_s / 60)
}
