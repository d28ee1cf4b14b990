//! Errors of the event store, the metrics store and the projections.

/// What can go wrong reading or writing the log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream was not at the expected version: another writer got there first.
    #[error("stream `{stream}`: expected version {expected}, but it is at {actual}")]
    Conflict {
        stream: String,
        expected: String,
        actual: u64,
    },
    /// A stored event names a type this build does not know.
    #[error("unknown event type `{0}`")]
    UnknownEventType(String),
    /// A stored event has a schema version with no upcaster.
    #[error("event type `{event_type}` has no schema version {version}")]
    UnknownSchemaVersion { event_type: String, version: i32 },
    /// A payload does not match its declared type and version.
    #[error("payload of `{event_type}` is malformed: {message}")]
    Payload { event_type: String, message: String },
    /// An argument was refused before anything was written.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// An event sink (Kafka) refused or failed a delivery.
    #[error("event sink: {0}")]
    Sink(String),
    /// The database refused or failed the operation.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}
