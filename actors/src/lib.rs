//! The actors of predictive-scaler and the pure logic they call.
//!
//! One folder per concern holds its pure logic, its actor and its tests:
//! [`ingest`], [`forecast`], [`decision`], [`execution`] (with verification and
//! rollback). [`supervisor`] builds the tree (a root, one supervisor per
//! service, one actor per concern); [`messages`] lists what they exchange;
//! [`clock`] is the injected time that lets a whole run happen in virtual time.

pub mod clock;
pub mod context;
pub mod decision;
pub mod error;
pub mod execution;
pub mod forecast;
pub mod history;
pub mod ingest;
pub mod messages;
pub mod series;
pub mod supervisor;

pub use clock::{Clock, ManualClock, SystemClock};
pub use context::{ForecastSettings, LOAD_METRIC, ServiceContext};
pub use error::ActorError;
