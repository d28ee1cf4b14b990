//! Ingest: accepts load samples, persists them, and passes them on.

mod actor;

pub use actor::IngestActor;
