//! The inputs and output of a scaling decision.

use serde::{Deserialize, Serialize};

pub use super::cost::{Cloud, InstancePrice, TargetConfig};
use super::risk::RiskAssessment;

/// What the cluster looks like at decision time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterState {
    /// Replicas asked for (ready or warming up).
    pub replicas: u32,
    /// Replicas that serve now.
    pub ready_replicas: u32,
    /// When replicas were last added (epoch seconds).
    pub last_scale_up_at: Option<i64>,
    /// When replicas were last removed (epoch seconds).
    pub last_scale_down_at: Option<i64>,
    /// The latest observed load.
    pub observed_load: f64,
    /// When it was observed (epoch seconds).
    pub observed_at: i64,
    /// Instance type of the fleet; `None`: the policy's `instance_type`.
    #[serde(default)]
    pub instance_type: Option<String>,
    /// Share of the fleet on spot.
    #[serde(default)]
    pub spot_share: f64,
}

/// A quantile forecast of the load: index `k-1` is the load at `origin + k * step_s`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ForecastInput {
    /// Time of the last observation the forecast used (epoch seconds).
    pub origin: i64,
    /// Seconds between forecast steps.
    pub step_s: i64,
    /// Lower quantile (10 %) per step.
    pub p10: Vec<f64>,
    /// Median per step.
    pub p50: Vec<f64>,
    /// Upper quantile (90 %) per step.
    pub p90: Vec<f64>,
}

/// The rules a decision must keep (config `[scaling]`: unknown keys are refused by name).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ScalingPolicy {
    /// Fewest replicas.
    pub min_replicas: u32,
    /// Most replicas.
    pub max_replicas: u32,
    /// Load one replica serves at 100 % utilization.
    pub capacity_per_replica: f64,
    /// Highest utilization planned for the forecast median, and for the observed load under the
    /// reactive fallback and emergencies (0 < u <= 1); the provisioning quantile is planned at full capacity.
    pub target_utilization: f64,
    /// Seconds from asking for a replica until it serves.
    pub warmup_s: i64,
    /// Seconds between decisions.
    pub decision_interval_s: i64,
    /// No scale-down within this many seconds of the last scale-up (no flapping); scale-downs
    /// in a row are limited by `max_step_down` per decision and the p90 floor instead.
    pub scale_down_cooldown_s: i64,
    /// Most replicas added by one gradual ramp step.
    pub max_step_up: u32,
    /// Most replicas removed by one scale-down.
    pub max_step_down: u32,
    /// Changes of at least this many replicas need a human's approval (emergencies never wait).
    pub approval_threshold: Option<u32>,
    /// A forecast whose origin is older than this (seconds) is not used.
    pub stale_forecast_s: i64,
    /// A rise to at least this multiple of the current replicas is a burst, applied at once.
    pub burst_factor: f64,
    /// An observed load older than this (seconds) is stale state; `None`: `stale_forecast_s`.
    pub stale_state_s: Option<i64>,
    /// The cloud that prices the candidates.
    pub provider: Cloud,
    /// The instance type `capacity_per_replica` refers to (the reference type).
    pub instance_type: String,
    /// Other instance types the engine may move to (capacity in proportion to their vCPUs).
    pub instance_types: Vec<String>,
    /// Spot shares to consider (each in [0, 1]); `[0]` for on-demand only.
    pub spot_shares: Vec<f64>,
    /// Cost of one minute with the load above the ready capacity (same currency as the prices):
    /// with the idle cost of a replica it sets the newsvendor provisioning quantile.
    pub violation_cost_per_minute: f64,
    /// A fixed provisioning quantile instead of the newsvendor one.
    pub provisioning_quantile: Option<f64>,
    /// Utilization from which latency degrades (the performance score falls above it).
    pub knee_utilization: f64,
    /// Weights of the candidate scores.
    pub weights: ScoreWeights,
    /// Prices that replace or add to the bundled table (a refreshed price file); empty: bundled only.
    pub prices: Vec<InstancePrice>,
}

/// How much each score counts when candidates are compared.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ScoreWeights {
    pub cost: f64,
    pub performance: f64,
    pub stability: f64,
    pub risk: f64,
    pub transition: f64,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        ScoreWeights {
            cost: 0.35,
            performance: 0.25,
            stability: 0.1,
            risk: 0.2,
            transition: 0.1,
        }
    }
}

/// Scores of a candidate, each in [0, 1] (higher is better), and their weighted mean.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct Scores {
    /// Cheapest candidate's hourly cost over this one's.
    pub cost: f64,
    /// Chance the capacity serves the load over the lead time, less latency degradation past the knee.
    pub performance: f64,
    /// 1 for no change, less for larger changes and type switches.
    pub stability: f64,
    /// 1 - the overall risk.
    pub risk: f64,
    /// Whether the added capacity is ready before the demand arrives (0: a whole new fleet).
    pub transition: f64,
    /// The weighted mean.
    pub total: f64,
}

/// What verification checks once the decision is executed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Verification {
    /// Replicas that must be ready.
    pub ready_replicas: u32,
    /// Highest utilization of the ready capacity the forecast p90 allows.
    pub max_utilization: f64,
    /// Utilization expected at the forecast median.
    pub expected_utilization: f64,
    /// Seconds after execution by which it must hold.
    pub timeout_s: i64,
}

/// Default cost of a violated minute: with an m5.large at 0.096 per hour (0.0016 a minute)
/// it puts the newsvendor quantile at 0.95 (a violated minute costs 19 idle replica-minutes).
pub const DEFAULT_VIOLATION_COST_PER_MINUTE: f64 = 0.0304;

impl Default for ScalingPolicy {
    fn default() -> Self {
        ScalingPolicy {
            min_replicas: 1,
            max_replicas: 200,
            capacity_per_replica: 1.0,
            target_utilization: 0.85,
            warmup_s: 180,
            decision_interval_s: 60,
            scale_down_cooldown_s: 300,
            max_step_up: 20,
            max_step_down: 10,
            approval_threshold: None,
            stale_forecast_s: 900,
            burst_factor: 1.5,
            stale_state_s: None,
            provider: Cloud::Aws,
            instance_type: "m5.large".to_string(),
            instance_types: Vec::new(),
            spot_shares: vec![0.0, 0.3, 0.5, 0.7],
            violation_cost_per_minute: DEFAULT_VIOLATION_COST_PER_MINUTE,
            provisioning_quantile: None,
            knee_utilization: 0.8,
            weights: ScoreWeights::default(),
            prices: Vec::new(),
        }
    }
}

/// How a decision changes the replicas.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Keep the replicas as they are.
    Hold,
    /// Add replicas, at most `max_step_up` at a time.
    GradualRamp,
    /// Add all the replicas a forecast burst needs at once.
    PreemptiveBurst,
    /// Load already exceeds the ready capacity: add replicas at once.
    EmergencyScale,
    /// Remove replicas, at most `max_step_down` at a time.
    ScaleDown,
    /// No usable forecast: follow the observed load.
    ReactiveFallback,
}

/// The outcome of [`super::decide`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Decision {
    /// Replicas to ask for, within `[min_replicas, max_replicas]`.
    pub target_replicas: u32,
    /// How the target was reached.
    pub strategy: Strategy,
    /// Why, with the numbers.
    pub reasoning: Vec<String>,
    /// Whether a human must approve before it is executed.
    pub requires_approval: bool,
    /// The highest p50 over the lead time (the observed load under the reactive fallback).
    pub required_p50: f64,
    /// The highest p90 over the lead time (the observed load under the reactive fallback).
    pub required_p90: f64,
    /// The highest p10 over the lead time.
    #[serde(default)]
    pub required_p10: f64,
    /// The quantile the capacity was provisioned for (newsvendor or fixed).
    #[serde(default)]
    pub provisioning_quantile: f64,
    /// The highest load at that quantile over the lead time.
    #[serde(default)]
    pub required_load: f64,
    /// The chosen configuration (`target.replicas == target_replicas`).
    #[serde(default)]
    pub target: TargetConfig,
    /// The rollback plan: the configuration before this decision.
    #[serde(default)]
    pub rollback: TargetConfig,
    /// Scores of the chosen candidate.
    #[serde(default)]
    pub scores: Scores,
    /// Risks of the chosen candidate.
    #[serde(default)]
    pub risk: RiskAssessment,
    /// Hourly cost of the target; `None` if a price is unknown.
    #[serde(default)]
    pub estimated_hourly_cost: Option<f64>,
    /// What verification checks.
    #[serde(default)]
    pub verification: Verification,
    /// Candidates that were feasible and scored.
    #[serde(default)]
    pub candidates: usize,
}
