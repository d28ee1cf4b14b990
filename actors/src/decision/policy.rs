//! The inputs and output of a scaling decision.

use serde::{Deserialize, Serialize};

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

/// The rules a decision must keep.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ScalingPolicy {
    /// Fewest replicas.
    pub min_replicas: u32,
    /// Most replicas.
    pub max_replicas: u32,
    /// Load one replica serves at 100 % utilization.
    pub capacity_per_replica: f64,
    /// Share of a replica's capacity to plan for (0 < u <= 1).
    pub target_utilization: f64,
    /// Seconds from asking for a replica until it serves.
    pub warmup_s: i64,
    /// Seconds between decisions.
    pub decision_interval_s: i64,
    /// No scale-down within this many seconds of the last scale-up or scale-down.
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
}

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
}
