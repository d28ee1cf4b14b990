//! Transformer versions in the model registry: their ids, and loading the current one.

use std::sync::Arc;

use super::runtime::OnnxModel;
use crate::forecast::features::fnv1a64;
use crate::forecast::registry::{ModelRegistry, ONNX_FILE};

/// The model name transformer versions are stored under.
pub const TRANSFORMER: &str = "transformer";

/// The registry version id of an ONNX file: derived from its bytes only, so the same file
/// offered twice is the same version.
pub fn version_of(bytes: &[u8]) -> String {
    format!("v{:016x}", fnv1a64(bytes))
}

/// The registry's current transformer version for `service`, loaded (one session per distinct
/// file per process), or `None` when the registry holds none.
pub fn current(registry: &ModelRegistry, service: &str) -> Result<Option<(String, Arc<OnnxModel>)>, String> {
    let Some(version) = registry
        .current_version(service, TRANSFORMER)
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let (_, bytes) = registry
        .load_file(service, TRANSFORMER, &version, ONNX_FILE)
        .map_err(|e| e.to_string())?;
    let model = OnnxModel::load(&bytes, &format!("registry version {version}")).map_err(|e| e.to_string())?;
    Ok(Some((version, model)))
}
