//! Projections: read models built from the log, rebuildable at any time.
//!
//! [`project`] turns one event into row operations (pure); a [`ReadModelStore`]
//! applies them together with the projection's checkpoint in one transaction.
//! Inserts do nothing when the row exists and patches set absolute values, so
//! applying an event twice leaves the read models as applying it once.

mod ops;
mod projector;

pub use ops::{DocQuery, OpKind, RowOp, Val, project};
pub use projector::{PROJECTION, Projector, catch_up, rebuild};

pub mod memory;

use async_trait::async_trait;

use crate::envelope::RecordedEvent;
use crate::error::StoreError;

/// Every read-model table with its key columns, in a stable order.
pub const TABLES: &[(&str, &[&str])] = &[
    ("predictions", &["forecast_id"]),
    ("prediction_points", &["forecast_id", "step"]),
    ("current_predictions", &["service"]),
    ("scaling_decisions", &["decision_id"]),
    ("service_state", &["service"]),
    ("business_events", &["event_id"]),
    ("model_performance", &["id"]),
    ("cost_tracking", &["id"]),
    ("alert_logs", &["alert_id"]),
];

/// Checkpoints whose name starts with this belong to relays: a rebuild of the
/// read models keeps them, so it does not re-publish the whole log.
pub const RELAY_PREFIX: &str = "relay:";

/// Where the read models live and how they are changed.
#[async_trait]
pub trait ReadModelStore: Send + Sync + 'static {
    /// Position of the last event the named projection has applied (0 if none).
    async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError>;

    /// Applies the events whose position is above the checkpoint, and moves the
    /// checkpoint, in one transaction. Returns the new checkpoint.
    async fn apply(&self, projection: &str, events: &[RecordedEvent]) -> Result<u64, StoreError>;

    /// Moves a checkpoint that guards no read model (relays); never moves it back.
    async fn advance(&self, name: &str, position: u64) -> Result<(), StoreError>;

    /// Empties every read model and their checkpoints (the log and relay checkpoints are untouched).
    async fn reset(&self) -> Result<(), StoreError>;

    /// Documents of one read model, filtered and ordered.
    async fn query(&self, q: &DocQuery) -> Result<Vec<serde_json::Value>, StoreError>;
}
