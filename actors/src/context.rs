//! What every actor of one service shares: its name, the stores, the clock,
//! the scale target and the settings.

use std::path::PathBuf;
use std::sync::Arc;

use events::EventStore;
use events::metrics::MetricStore;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::decision::ScalingPolicy;
use crate::execution::ScaleTarget;
use crate::status::StatusBoard;

/// How the forecast actor forecasts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastSettings {
    /// Model name (see `forecast::model_names`).
    pub model: String,
    /// Interval of the load series in seconds.
    pub step_seconds: i64,
    /// How far ahead each forecast reaches.
    pub horizon_minutes: i64,
    /// How often a new forecast is made.
    pub cadence_seconds: i64,
    /// How much history the actor keeps in memory (and reloads after a restart).
    pub history_seconds: i64,
    /// Fewest points before the first forecast.
    pub min_points: usize,
    /// The model registry folder (see `forecast::registry`): when it holds a current version
    /// of `model` for the service (trained ahead by `predictive-scaler train`), the forecast
    /// actor runs that version instead of the built-in model. A relative path is relative to
    /// the working directory, like `database.url`'s SQLite file.
    #[serde(default = "default_model_dir")]
    pub model_dir: PathBuf,
}

fn default_model_dir() -> PathBuf {
    PathBuf::from(crate::forecast::registry::DEFAULT_MODEL_DIR)
}

impl Default for ForecastSettings {
    fn default() -> Self {
        ForecastSettings {
            model: crate::forecast::DEFAULT_MODEL.to_string(),
            step_seconds: 60,
            horizon_minutes: 60,
            cadence_seconds: 60,
            history_seconds: 15 * 86_400,
            min_points: 3,
            model_dir: default_model_dir(),
        }
    }
}

/// How each service's control loop runs (config `[reconcile]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconcileSettings {
    /// Seconds between evaluations of one service (virtual seconds under a manual clock).
    pub interval_s: u64,
    /// A proposal waiting for a person longer than this expires (`DecisionExpired`).
    pub approval_ttl_s: i64,
    /// An approval executes only if a fresh evaluation still asks for replicas within this
    /// share of the proposal's target (at least one replica of slack); otherwise 409.
    pub approval_tolerance: f64,
    /// Longest a model may take for one forecast before the cycle goes on without it.
    pub fit_timeout_s: u64,
    /// Events folded between two snapshots of an actor's state.
    pub snapshot_every: u64,
    /// Run the loop on a wall-clock timer (`serve`); off when a driver sends the
    /// evaluations itself in virtual time (`demo`, tests).
    #[serde(skip)]
    pub timer: bool,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        ReconcileSettings {
            interval_s: 15,
            approval_ttl_s: 900,
            approval_tolerance: 0.1,
            fit_timeout_s: 30,
            snapshot_every: 500,
            timer: false,
        }
    }
}

/// What ingest accepts (config `[ingest]`); see `ingest::plausibility`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestLimits {
    /// A sample dated more than this many seconds after now is refused.
    pub max_future_s: i64,
    /// A sample older than this many seconds is refused: the metrics retention
    /// (`database.metrics_retention_days`), not a key of its own.
    #[serde(skip)]
    pub max_age_s: i64,
    /// Largest load value accepted at all.
    pub max_value: f64,
    /// A sample above this multiple of the recent peak (or of one replica's capacity,
    /// whichever is larger) is quarantined until confirmed.
    pub spike_factor: f64,
    /// Consecutive quarantined samples of one level (within a factor of 2) that confirm a
    /// level shift and are released into the load series.
    pub spike_confirm: usize,
    /// Seconds of recent history the peak is taken over.
    pub recent_s: i64,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_future_s: 300,
            max_age_s: 30 * 86_400,
            max_value: 1e12,
            spike_factor: 20.0,
            spike_confirm: 3,
            recent_s: 3600,
        }
    }
}

/// Name of the metric that carries a service's load.
pub const LOAD_METRIC: &str = "load";

/// Name of the metric that keeps quarantined load samples apart.
pub const QUARANTINE_METRIC: &str = "load_quarantined";

/// Everything the actors of one service need.
#[derive(Clone)]
pub struct ServiceContext {
    pub service: String,
    pub store: Arc<dyn EventStore>,
    pub metrics: Arc<dyn MetricStore>,
    pub clock: Arc<dyn Clock>,
    pub target: Arc<dyn ScaleTarget>,
    pub forecast: ForecastSettings,
    pub policy: ScalingPolicy,
    pub reconcile: ReconcileSettings,
    pub ingest: IngestLimits,
    /// Where the actors report readiness and their last evaluation (read by the API).
    pub status: StatusBoard,
}

impl ServiceContext {
    /// `caused_by` of events appended by one concern's actor.
    pub fn actor_name(&self, concern: &str) -> String {
        format!("actor:{concern}/{}", self.service)
    }
}
