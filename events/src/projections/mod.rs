//! Projections: read models built from the log, rebuildable at any time.
//!
//! [`project`] turns one event into row operations (pure); a [`ReadModelStore`]
//! applies them together with the projection's checkpoint in one transaction.
//! Inserts do nothing when the row exists and patches set absolute values, so
//! applying an event twice leaves the read models as applying it once. An event that
//! cannot be decoded, or whose rows the database refuses, becomes a dead letter
//! ([`dead_letter`]); a rebuild fills shadow tables and swaps them in only on success.

mod dead_letter;
mod ops;
mod projector;

pub use dead_letter::{DEAD_LETTER_ALERT, DEAD_LETTERS_TOTAL, dead_letter_alert_id, dead_lettered};
pub use ops::{DocQuery, OpKind, RowOp, Val, project};
pub use projector::{PROJECTION, Projector, catch_up, rebuild};

pub mod memory;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::envelope::RecordedEvent;
use crate::error::StoreError;
use crate::store::EventStore;

/// Every read-model table with its key columns, in a stable order.
pub const TABLES: &[(&str, &[&str])] = &[
    ("predictions", &["forecast_id"]),
    ("prediction_points", &["service", "model", "at", "origin"]),
    ("current_predictions", &["service"]),
    ("scaling_decisions", &["decision_id"]),
    ("service_state", &["service"]),
    ("business_events", &["event_id"]),
    ("model_performance", &["id"]),
    ("cost_tracking", &["id"]),
    ("alert_logs", &["alert_id"]),
    ("dead_letters", &["position"]),
    ("service_holds", &["service"]),
];

/// Tables without a `doc` column (their rows are small and many): [`ReadModelStore::query`]
/// builds their documents from these columns.
pub const DOCLESS: &[(&str, &[&str])] = &[(
    "prediction_points",
    &["service", "model", "at", "origin", "p10", "p50", "p90"],
)];

/// The columns a doc-less table's documents are built from, if `table` is one.
pub fn docless_columns(table: &str) -> Option<&'static [&'static str]> {
    DOCLESS.iter().find(|(t, _)| *t == table).map(|(_, c)| *c)
}

/// Checkpoints whose name starts with this belong to relays: a rebuild of the
/// read models keeps them, so it does not re-publish the whole log.
pub const RELAY_PREFIX: &str = "relay:";

/// The checkpoint of the shadow copy while a rebuild fills it.
pub(crate) const SHADOW_CHECKPOINT: &str = "read_models__shadow";

/// Suffix of the shadow copy of a read-model table during a rebuild.
pub const SHADOW_SUFFIX: &str = "__shadow";

/// Where the read models live and how they are changed.
#[async_trait]
pub trait ReadModelStore: Send + Sync + 'static {
    /// Position of the last event the named projection has applied (0 if none).
    async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError>;

    /// Applies the events whose position is above the checkpoint, and moves the
    /// checkpoint, in one transaction. Returns the new checkpoint. Events must follow
    /// the checkpoint without a gap ([`StoreError::Invalid`] otherwise).
    async fn apply(&self, projection: &str, events: &[RecordedEvent]) -> Result<u64, StoreError>;

    /// Moves a checkpoint that guards no read model (relays); never moves it back.
    async fn advance(&self, name: &str, position: u64) -> Result<(), StoreError>;

    /// Empties every read model and their checkpoints (the log and relay checkpoints are
    /// untouched). For tests and tools; [`rebuild`] never empties the live read models.
    async fn reset(&self) -> Result<(), StoreError>;

    /// Documents of one read model, filtered and ordered.
    async fn query(&self, q: &DocQuery) -> Result<Vec<serde_json::Value>, StoreError>;

    /// Deletes `predictions` and `prediction_points` rows whose forecast origin is before
    /// `before`; returns the rows deleted. The log keeps everything: a rebuild restores them.
    async fn apply_retention(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Starts a rebuild: creates an empty shadow copy of every read model beside the live
    /// ones (dropping one left by an earlier, failed rebuild). Returns its checkpoint (0).
    async fn shadow_begin(&self) -> Result<u64, StoreError>;

    /// Applies events to the shadow copy, as [`ReadModelStore::apply`] does to the live one;
    /// returns the shadow's checkpoint.
    async fn shadow_apply(&self, events: &[RecordedEvent]) -> Result<u64, StoreError>;

    /// Ends a rebuild, in one transaction that the live projection waits for: applies to
    /// the shadow copy what `store` appended since its checkpoint, replaces every live read
    /// model with its shadow and sets the live checkpoint to the shadow's. Returns it. On
    /// failure nothing live has changed.
    async fn shadow_swap(&self, store: &dyn EventStore) -> Result<u64, StoreError>;

    /// Drops the shadow copy (after a failed rebuild); the live read models are untouched.
    async fn shadow_discard(&self) -> Result<(), StoreError>;
}

/// The checkpoint filter every adapter applies: the events after `checkpoint`, which must
/// start right after it.
pub(crate) fn after_checkpoint(events: &[RecordedEvent], checkpoint: u64) -> Result<&[RecordedEvent], StoreError> {
    let start = events.partition_point(|e| e.position <= checkpoint);
    let fresh = &events[start..];
    if let Some(first) = fresh.first()
        && first.position != checkpoint + 1
    {
        return Err(StoreError::Invalid(format!(
            "events from position {} cannot follow checkpoint {checkpoint}: positions {}..{} are missing",
            first.position,
            checkpoint + 1,
            first.position - 1
        )));
    }
    Ok(fresh)
}
