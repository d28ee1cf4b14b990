//! The actors of predictive-scaler and the pure logic they call.
//!
//! One folder per concern holds its pure logic, its actor and its tests:
//! [`ingest`], [`forecast`], [`decision`] (the service's control loop), [`execution`]
//! (with verification and rollback). [`supervisor`] builds the tree (a root, one
//! supervisor per service, one actor per concern); [`messages`] lists what they
//! exchange; [`history`] folds an actor's state from the log; [`status`] is where
//! actors report readiness and their last evaluation; [`clock`] is the injected time
//! and [`driver`] runs a service in virtual time.

pub mod clock;
pub mod context;
pub mod decision;
pub mod driver;
pub mod error;
pub mod execution;
pub mod forecast;
pub mod history;
pub mod ingest;
pub mod messages;
pub mod series;
pub mod status;
pub mod supervisor;
pub mod testing;

pub use clock::{Clock, ManualClock, SystemClock};
pub use context::{ForecastSettings, IngestLimits, LOAD_METRIC, QUARANTINE_METRIC, ReconcileSettings, ServiceContext};
pub use error::ActorError;
pub use status::StatusBoard;
