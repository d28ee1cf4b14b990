//! The event side of predictive-scaler: what happened, where it is kept, and
//! the read models built from it.
//!
//! Start with [`vocabulary`] (every event type), then [`store::EventStore`]
//! (the append-only log and its adapters: PostgreSQL, SQLite, in-memory), then
//! [`projections`] (read models rebuilt from the log) and [`metrics`] (the time
//! series the forecasts learn from, which are not events).

pub mod compact;
pub mod envelope;
pub mod error;
mod finite;
pub mod metrics;
pub mod projections;
pub mod relay;
pub mod store;
pub mod testing;
pub mod upcast;
pub mod vocabulary;

pub use envelope::{EventJson, Metadata, NewEvent, RecordedEvent, streams};
pub use error::StoreError;
pub use finite::round_sig;
pub use store::{Appended, EventStore, ExpectedVersion, StreamAppend};
pub use vocabulary::Event;

pub(crate) mod time {
    //! Fixed-width UTC text times, which sort as text (SQLite).
    use chrono::{DateTime, Utc};

    pub fn to_text(t: DateTime<Utc>) -> String {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }

    pub fn from_text(s: &str) -> Result<DateTime<Utc>, crate::StoreError> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| crate::StoreError::Invalid(format!("stored time `{s}`: {e}")))
    }
}
