//! ONNX Runtime, loaded at run time, and the transformer models it serves: one runtime and
//! one session per distinct model file per process, shared by every service and thread.
//!
//! The runtime library is the one named by [`set_runtime_path`] (the configuration) or the
//! `ORT_DYLIB_PATH` environment variable (`scripts/test` and `scripts/demo` install the
//! `onnxruntime` wheel and set it). Whatever fails here — no library, a library of the wrong
//! version, a model that does not load or declares another input layout — is an error value
//! the callers turn into a note and a fallback, never a panic that reaches them.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::Session;
use ort::value::TensorRef;

use super::layout::{CONTEXT, HORIZON, LAYOUT, Prepared};
use crate::forecast::features::fnv1a64;

/// The model shipped with the build.
const SHIPPED: &[u8] = include_bytes!("../../../../data/transformer/model.onnx");
/// Windows per inference call at most (bounds the memory of one call).
const MAX_BATCH: usize = 4096;

/// Why the transformer cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransformerError {
    /// No runtime library is configured, or the configured path is not a file.
    #[error("ONNX Runtime not found: {0}")]
    RuntimeMissing(String),
    /// The runtime library exists but could not be loaded or initialized.
    #[error("ONNX Runtime could not be loaded: {0}")]
    RuntimeLoad(String),
    /// The model bytes are not a model the runtime accepts.
    #[error("transformer model {origin} could not be loaded: {reason}")]
    Model {
        /// Where the model came from.
        origin: String,
        /// What the runtime said.
        reason: String,
    },
    /// The model declares an input layout other than the one this build prepares.
    #[error("transformer model declares input layout {declared}, this build prepares {expected}: refused")]
    Layout {
        /// What the model's metadata declares (`pscaler.layout`, context, horizon).
        declared: String,
        /// What this build prepares.
        expected: String,
    },
    /// Inference failed or returned an unexpected shape.
    #[error("transformer inference failed: {0}")]
    Inference(String),
}

static RUNTIME_PATH: OnceLock<PathBuf> = OnceLock::new();
static ENV: OnceLock<Result<Environment, TransformerError>> = OnceLock::new();
static MODELS: OnceLock<Mutex<HashMap<u64, Arc<OnnxModel>>>> = OnceLock::new();
static SHIPPED_MODEL: OnceLock<Result<Arc<OnnxModel>, TransformerError>> = OnceLock::new();

/// Names the runtime library to load (the configuration's path); must be called before the
/// first forecast that needs it. Returns false when a path was set already.
pub fn set_runtime_path(path: impl Into<PathBuf>) -> bool {
    RUNTIME_PATH.set(path.into()).is_ok()
}

/// The runtime library's path: the configured one, else `ORT_DYLIB_PATH`.
fn runtime_path() -> Result<PathBuf, TransformerError> {
    let path = match RUNTIME_PATH.get() {
        Some(p) => p.clone(),
        None => std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from).ok_or_else(|| {
            TransformerError::RuntimeMissing(
                "ORT_DYLIB_PATH is not set (pip install onnxruntime==1.31.1 and point it at \
                 onnxruntime/capi/libonnxruntime.so.1.31.1; scripts/test does)"
                    .into(),
            )
        })?,
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(TransformerError::RuntimeMissing(format!(
            "{} is not a file",
            path.display()
        )))
    }
}

/// Runs `f`, turning a panic inside the runtime bindings into an error.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(format!("{what} panicked")))
}

/// The process's runtime environment, loaded once; the error is kept and returned again.
pub fn environment() -> Result<&'static Environment, TransformerError> {
    ENV.get_or_init(|| {
        let path = runtime_path()?;
        guarded("loading ONNX Runtime", || {
            ort::init_from(&path)
                .map_err(|e| e.to_string())?
                .with_name("predictive-scaler")
                .build()
                .map_err(|e| e.to_string())
        })
        .map_err(TransformerError::RuntimeLoad)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Checks what a model declares against the layout this build prepares.
pub fn check_declared(custom: impl Fn(&str) -> Option<String>) -> Result<(), TransformerError> {
    let get = |k: &str| custom(k).unwrap_or_else(|| "(none)".into());
    let declared = format!(
        "{} (context {}, horizon {})",
        get("pscaler.layout"),
        get("pscaler.context"),
        get("pscaler.horizon")
    );
    let expected = format!("{LAYOUT} (context {CONTEXT}, horizon {HORIZON})");
    if declared == expected {
        Ok(())
    } else {
        Err(TransformerError::Layout { declared, expected })
    }
}

/// A loaded transformer model.
pub struct OnnxModel {
    session: Mutex<Session>,
    /// FNV-1a of the model bytes (hex): sessions are shared by this id.
    pub id: String,
    /// Where the model came from (for notes and logs).
    pub origin: String,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("id", &self.id)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl OnnxModel {
    /// The model shipped with the build, loaded once per process.
    pub fn shipped() -> Result<Arc<OnnxModel>, TransformerError> {
        SHIPPED_MODEL
            .get_or_init(|| OnnxModel::load(SHIPPED, "data/transformer/model.onnx (shipped)"))
            .clone()
    }

    /// Loads a model from its bytes, or returns the session already loaded from the same bytes.
    pub fn load(bytes: &[u8], origin: &str) -> Result<Arc<OnnxModel>, TransformerError> {
        let key = fnv1a64(bytes);
        let models = MODELS.get_or_init(Default::default);
        if let Some(m) = models.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(m.clone());
        }
        let env = environment()?;
        let err = |reason: String| TransformerError::Model {
            origin: origin.to_string(),
            reason,
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
        let session = guarded("creating the session", || {
            // no spinning between runs: the cores go back to the other models' work
            Session::builder(env)
                .and_then(|b| b.with_intra_threads(threads).map_err(Into::into))
                .and_then(|b| b.with_intra_op_spinning(false).map_err(Into::into))
                .and_then(|mut b| b.commit_from_memory(bytes))
                .map_err(|e| e.to_string())
        })
        .map_err(err)?;
        let meta = session.metadata().map_err(|e| err(e.to_string()))?;
        check_declared(|k| meta.custom(k))?;
        drop(meta);
        let model = Arc::new(OnnxModel {
            session: Mutex::new(session),
            id: format!("{key:016x}"),
            origin: origin.to_string(),
        });
        let mut map = models.lock().unwrap_or_else(|e| e.into_inner());
        Ok(map.entry(key).or_insert(model).clone())
    }

    /// Runs the model on `windows`; returns `[windows.len() * 3 * HORIZON]` quantiles
    /// (window-major, then p10/p50/p90, then model step), in `z` units.
    pub fn predict(&self, windows: &[&Prepared]) -> Result<Vec<f32>, TransformerError> {
        let mut out = Vec::with_capacity(windows.len() * 3 * HORIZON);
        for chunk in windows.chunks(MAX_BATCH) {
            out.extend(self.run(chunk)?);
        }
        Ok(out)
    }

    fn run(&self, windows: &[&Prepared]) -> Result<Vec<f32>, TransformerError> {
        let n = windows.len();
        let z: Vec<f32> = windows.iter().flat_map(|w| w.z.iter().copied()).collect();
        let step: Vec<f32> = windows.iter().map(|w| w.step).collect();
        if z.len() != n * CONTEXT {
            return Err(TransformerError::Inference(format!(
                "windows of {} values, the model reads {CONTEXT}",
                z.len() / n.max(1)
            )));
        }
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        guarded("inference", || {
            let inputs = ort::inputs![
                "context" => TensorRef::from_array_view(([n, CONTEXT], &z[..])).map_err(|e| e.to_string())?,
                "step" => TensorRef::from_array_view(([n, 1], &step[..])).map_err(|e| e.to_string())?,
            ];
            let outputs = session.run(inputs).map_err(|e| e.to_string())?;
            let (shape, q) = outputs["quantiles"]
                .try_extract_tensor::<f32>()
                .map_err(|e| e.to_string())?;
            if shape.iter().copied().collect::<Vec<i64>>() != [n as i64, 3, HORIZON as i64] {
                return Err(format!("output shape {shape:?}, expected [{n}, 3, {HORIZON}]"));
            }
            Ok(q.to_vec())
        })
        .map_err(TransformerError::Inference)
    }
}
