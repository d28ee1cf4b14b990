//! The event vocabulary: every fact predictive-scaler records, as typed payloads.
//!
//! Each payload type names its `event_type` and current `schema_version`. Older
//! payload versions are upcast on read by [`crate::upcast`]; a new version of a
//! payload changes the struct here and adds one upcaster there, never a new type.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One step of a quantile forecast path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastPoint {
    /// The time this point forecasts.
    pub at: DateTime<Utc>,
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
}

/// A forecast was made for a service.
///
/// Schema v3 stores the path in columns (`start`, `p10`, `p50`, `p90`, and `at` only when
/// the points are not `step_seconds` apart; see [`crate::compact`]); the struct keeps one
/// [`ForecastPoint`] per step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "crate::compact::ForecastMadeV3", try_from = "crate::compact::ForecastMadeV3")]
pub struct ForecastMade {
    pub forecast_id: Uuid,
    pub service: String,
    pub model: String,
    pub model_version: String,
    /// Time of the last observation the forecast could use.
    pub origin: DateTime<Utc>,
    pub step_seconds: i64,
    pub horizon_minutes: i64,
    pub points: Vec<ForecastPoint>,
    /// Free-form notes from the forecaster (fallbacks taken, cold start...).
    pub notes: Vec<String>,
}

/// Target configuration of a scaling decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetConfig {
    pub replicas: u32,
    #[serde(default)]
    pub instance_type: Option<String>,
    #[serde(default)]
    pub spot_share: f64,
}

/// A decision was proposed by the decision engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionProposed {
    pub decision_id: Uuid,
    pub service: String,
    pub strategy: String,
    pub current: TargetConfig,
    pub target: TargetConfig,
    /// Human-readable reasons naming the numbers that drove the decision.
    pub reasoning: Vec<String>,
    /// Estimated hourly cost of the target configuration.
    #[serde(default)]
    pub estimated_hourly_cost: Option<f64>,
    /// The forecast the decision was based on.
    #[serde(default)]
    pub forecast_id: Option<Uuid>,
    /// Whether the decision needs a human approval before execution.
    pub requires_approval: bool,
    /// Every input of the pure decision function, so it can be replayed and explained.
    pub inputs: serde_json::Value,
    /// Scores of the chosen candidate (cost, performance, stability, risk, ...).
    #[serde(default)]
    pub scores: serde_json::Value,
    /// The state to return to if the change must be rolled back.
    pub rollback_to: TargetConfig,
    /// What verification checks after execution.
    pub verification: VerificationCriteria,
}

/// What a verification checks after a scaling action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationCriteria {
    pub ready_replicas: u32,
    pub timeout_seconds: i64,
    #[serde(default)]
    pub max_utilization: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionApproved {
    pub decision_id: Uuid,
    pub approved_by: String,
    #[serde(default)]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRejected {
    pub decision_id: Uuid,
    pub rejected_by: String,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionSuperseded {
    pub decision_id: Uuid,
    pub superseded_by: Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingStarted {
    pub decision_id: Uuid,
    pub service: String,
    pub from_replicas: u32,
    pub to_replicas: u32,
    pub executor: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingSucceeded {
    pub decision_id: Uuid,
    pub service: String,
    pub replicas: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingFailed {
    pub decision_id: Uuid,
    pub service: String,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationPassed {
    pub decision_id: Uuid,
    pub service: String,
    pub ready_replicas: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationFailed {
    pub decision_id: Uuid,
    pub service: String,
    pub ready_replicas: u32,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackStarted {
    pub decision_id: Uuid,
    pub service: String,
    pub to: TargetConfig,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackCompleted {
    pub decision_id: Uuid,
    pub service: String,
    pub replicas: u32,
}

/// A decision waited for a person longer than the approval TTL: it will never be executed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionExpired {
    pub decision_id: Uuid,
    pub service: String,
    /// How long it waited, in seconds.
    pub waited_seconds: i64,
}

/// The controller keeps the replicas as they are, for a reason other than the last one it
/// recorded: appended when the reason changes, not on every evaluation, so "why did it not
/// scale at 14:05" is answered by the latest `DecisionHeld` at or before 14:05.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionHeld {
    pub service: String,
    /// A stable code of the reason (`no_change`, `cooldown`, `awaiting_approval`, `target_unavailable`, ...).
    pub code: String,
    /// The reason in words, with the numbers of the evaluation that first held for it.
    pub reason: String,
    /// Replicas held.
    pub replicas: u32,
}

/// A rollback attempt failed; the execution actor retries it at `next_attempt_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackFailed {
    pub decision_id: Uuid,
    pub service: String,
    /// 1 for the first failed attempt.
    pub attempt: u32,
    pub error: String,
    pub next_attempt_at: DateTime<Utc>,
}

/// A business event that is expected to change load (campaign, launch, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusinessEventScheduled {
    pub event_id: Uuid,
    pub service: String,
    pub kind: String,
    pub name: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Expected multiplier on load while the event runs (1.0 = no change).
    pub expected_impact: f64,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusinessEventUpdated {
    pub event_id: Uuid,
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub expected_impact: Option<f64>,
    #[serde(default)]
    pub actual_impact: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusinessEventCancelled {
    pub event_id: Uuid,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigurationChanged {
    /// Dotted key, e.g. `scaling.target_utilization`.
    pub key: String,
    pub old_value: serde_json::Value,
    pub new_value: serde_json::Value,
    pub changed_by: String,
}

/// Accuracy of a model over a window, once the actuals are known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEvaluated {
    pub service: String,
    pub model: String,
    pub model_version: String,
    pub horizon_minutes: i64,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub mae: f64,
    pub mape: f64,
    pub rmse: f64,
    pub coverage_p10_p90: f64,
    pub points: u64,
}

/// A model version was trained and scored on the most recent holdout window; `promoted` says
/// whether it replaced the current version (blue-green: only when it scored better).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelTrained {
    pub service: String,
    pub model: String,
    /// The new version's id in the model registry.
    pub model_version: String,
    /// The version it was compared with, if there was one.
    #[serde(default)]
    pub previous_version: Option<String>,
    /// Hash of the feature set the model reads (empty for models without features).
    pub feature_set_hash: String,
    pub trained_from: DateTime<Utc>,
    pub trained_to: DateTime<Utc>,
    pub holdout_start: DateTime<Utc>,
    pub holdout_end: DateTime<Utc>,
    pub horizon_minutes: i64,
    /// MAE of p50 on the holdout window.
    pub mae: f64,
    /// MAPE (%) of p50 on the holdout window (points with actual 0 left out; 0 when none is left).
    pub mape: f64,
    pub rmse: f64,
    /// Mean pinball loss of p10/p50/p90 on the holdout window.
    pub pinball: f64,
    pub coverage_p10_p90: f64,
    /// The previous version's MAE on the same holdout window, if there was one.
    #[serde(default)]
    pub previous_mae: Option<f64>,
    pub promoted: bool,
    pub points: u64,
}

/// Cost of a period, as run and as a reactive autoscaler would have run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostRecorded {
    pub service: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub replica_hours: f64,
    pub actual_cost: f64,
    pub reactive_cost: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRaised {
    pub alert_id: Uuid,
    #[serde(default)]
    pub service: Option<String>,
    pub alert_type: String,
    pub severity: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertAcknowledged {
    pub alert_id: Uuid,
    pub acknowledged_by: String,
}

/// A stored event this build cannot decode (a payload written by an older build that no
/// longer matches its type, an unknown type or schema version). Reads return it instead
/// of failing, so one bad row cannot stop a reader; projections dead-letter it. It is not
/// part of the appendable vocabulary: every append refuses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Malformed {
    /// The stored `event_type`.
    pub event_type: String,
    /// The stored schema version.
    pub schema_version: i32,
    /// The stored payload, as it is (a payload that is not JSON at all is kept as a string).
    pub payload: serde_json::Value,
    /// Why it could not be decoded.
    pub error: String,
}

/// Every event predictive-scaler records.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    ForecastMade(ForecastMade),
    DecisionProposed(DecisionProposed),
    DecisionApproved(DecisionApproved),
    DecisionRejected(DecisionRejected),
    DecisionSuperseded(DecisionSuperseded),
    ScalingStarted(ScalingStarted),
    ScalingSucceeded(ScalingSucceeded),
    ScalingFailed(ScalingFailed),
    VerificationPassed(VerificationPassed),
    VerificationFailed(VerificationFailed),
    RollbackStarted(RollbackStarted),
    RollbackCompleted(RollbackCompleted),
    RollbackFailed(RollbackFailed),
    DecisionExpired(DecisionExpired),
    DecisionHeld(DecisionHeld),
    BusinessEventScheduled(BusinessEventScheduled),
    BusinessEventUpdated(BusinessEventUpdated),
    BusinessEventCancelled(BusinessEventCancelled),
    ConfigurationChanged(ConfigurationChanged),
    ModelEvaluated(ModelEvaluated),
    ModelTrained(ModelTrained),
    CostRecorded(CostRecorded),
    AlertRaised(AlertRaised),
    AlertAcknowledged(AlertAcknowledged),
    /// A stored event that could not be decoded; read-only (see [`Malformed`]).
    Malformed(Malformed),
}

/// Declares, once, each variant's type name and current schema version.
macro_rules! vocabulary {
    ($($variant:ident => $version:expr),* $(,)?) => {
        impl Event {
            /// The stored `event_type` of this event (`Malformed` for an undecodable one; its
            /// stored type is [`Event::type_name`]).
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(Event::$variant(_) => stringify!($variant),)*
                    Event::Malformed(_) => "Malformed",
                }
            }

            /// The schema version this build writes for this event (the stored one for a
            /// malformed event).
            pub fn schema_version(&self) -> i32 {
                match self {
                    $(Event::$variant(_) => $version,)*
                    Event::Malformed(m) => m.schema_version,
                }
            }

            /// The payload as JSON, in the current schema version (as stored for a malformed event).
            ///
            /// Non-finite numbers would turn into `null` here: appends refuse them first
            /// ([`Event::check_finite`]).
            pub fn payload(&self) -> serde_json::Value {
                match self {
                    $(Event::$variant(p) => serde_json::to_value(p).expect("payloads serialize"),)*
                    Event::Malformed(m) => m.payload.clone(),
                }
            }

            /// The first non-finite number in the payload, named by event type and field path
            /// (`ForecastMade.p50[3] is NaN`).
            pub fn check_finite(&self) -> Result<(), String> {
                match self {
                    $(Event::$variant(p) => crate::finite::check(stringify!($variant), p),)*
                    Event::Malformed(_) => Ok(()),
                }
            }

            /// Current schema version of an event type, if it is known.
            pub fn current_version(event_type: &str) -> Option<i32> {
                match event_type { $(stringify!($variant) => Some($version),)* _ => None }
            }

            /// Decodes a payload already upcast to the current version.
            pub(crate) fn decode_current(
                event_type: &str,
                payload: serde_json::Value,
            ) -> Result<Event, serde_json::Error> {
                match event_type {
                    $(stringify!($variant) => serde_json::from_value(payload).map(Event::$variant),)*
                    other => Err(serde::de::Error::custom(format!("unknown event type `{other}`"))),
                }
            }
        }
    };
}

impl Event {
    /// The type name as stored: [`Event::event_type`], or for a malformed event the type it was stored under.
    pub fn type_name(&self) -> &str {
        match self {
            Event::Malformed(m) => &m.event_type,
            other => other.event_type(),
        }
    }
}

vocabulary! {
    ForecastMade => 3,
    DecisionProposed => 1,
    DecisionApproved => 1,
    DecisionRejected => 1,
    DecisionSuperseded => 1,
    ScalingStarted => 1,
    ScalingSucceeded => 1,
    ScalingFailed => 1,
    VerificationPassed => 1,
    VerificationFailed => 1,
    RollbackStarted => 1,
    RollbackCompleted => 1,
    RollbackFailed => 1,
    DecisionExpired => 1,
    DecisionHeld => 1,
    BusinessEventScheduled => 1,
    BusinessEventUpdated => 1,
    BusinessEventCancelled => 1,
    ConfigurationChanged => 1,
    ModelEvaluated => 1,
    ModelTrained => 1,
    CostRecorded => 1,
    AlertRaised => 1,
    AlertAcknowledged => 1,
}
