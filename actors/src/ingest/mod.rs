//! Ingest: accepts load samples within bounds, quarantines implausible ones, persists them,
//! and passes the accepted ones on.

mod actor;
pub mod plausibility;

pub use actor::IngestActor;
pub use plausibility::{Plausibility, Verdict, check_bounds};
