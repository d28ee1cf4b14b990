//! The short-term transformer: a patch-based encoder trained in PyTorch
//! (`scripts/transformer/`), exported to ONNX (`data/transformer/model.onnx`, with its model
//! card) and served by ONNX Runtime through `ort`.
//!
//! [`layout`] prepares a window exactly as training did and declares the layout version a
//! model must carry; [`runtime`] loads the runtime and the models (one session per model per
//! process); [`Transformer`] is the `transformer` model (batched across series); the ensemble
//! uses it as one more member through [`member`]; `training` (feature `ml`) offers a
//! retrained ONNX file to the model registry, blue-green.

pub mod forecaster;
pub mod layout;
pub(crate) mod member;
pub mod runtime;
#[cfg(feature = "ml")]
pub mod training;
pub mod versions;

pub use forecaster::{ModelChoice, Transformer};
pub use runtime::{OnnxModel, TransformerError};

/// The note of the first path saying that the transformer could not run (no runtime, a refused
/// model), if any: what a command prints once instead of failing.
pub fn unavailable_note<'a>(paths: impl IntoIterator<Item = &'a crate::forecast::QuantilePath>) -> Option<&'a str> {
    paths
        .into_iter()
        .flat_map(|p| &p.notes)
        .find(|n| n.contains("transformer unavailable") || n.contains("transformer member left out"))
        .map(String::as_str)
}
