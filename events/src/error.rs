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

impl StoreError {
    /// Whether trying the same operation again later may succeed: a lost connection, a
    /// pool timeout, a busy or locked database, a serialization failure, a server shutting
    /// down. Errors that the same input will always meet (a constraint or type refused, a
    /// malformed payload, bad SQL) are permanent. When in doubt an error counts as
    /// transient, so that nothing is given up on because of a fault that passes.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(e) => transient_sqlx(e),
            StoreError::Sink(_) => true,
            StoreError::Migrate(_)
            | StoreError::Conflict { .. }
            | StoreError::UnknownEventType(_)
            | StoreError::UnknownSchemaVersion { .. }
            | StoreError::Payload { .. }
            | StoreError::Invalid(_) => false,
        }
    }
}

fn transient_sqlx(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLite: the primary result code is the low byte of the extended one.
                let primary = code.parse::<i64>().unwrap_or(0) & 0xff;
                !matches!(
                    primary,
                    1 /* ERROR */ | 18 /* TOOBIG */ | 19 /* CONSTRAINT */ | 20 /* MISMATCH */ | 25 /* RANGE */
                )
            } else {
                // PostgreSQL: SQLSTATE classes of data, integrity, syntax and access-rule errors.
                !["22", "23", "42", "2B", "44"]
                    .iter()
                    .any(|class| code.starts_with(class))
            }
        }
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::Configuration(_)
        | sqlx::Error::RowNotFound => false,
        _ => true,
    }
}
