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

/// Name of the metric that carries a service's load.
pub const LOAD_METRIC: &str = "load";

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
}

impl ServiceContext {
    /// `caused_by` of events appended by one concern's actor.
    pub fn actor_name(&self, concern: &str) -> String {
        format!("actor:{concern}/{}", self.service)
    }
}
