//! The pure scaling decision engine: cost, capacity and risk models, candidates, scores and strategies.
//!
//! [`decide`] reads a snapshot of the cluster, the latest quantile forecast
//! and the policy, and returns the configuration to ask for (replicas,
//! instance type, spot share) with the strategy, the scores, the numbers
//! behind it, a rollback plan and verification criteria. It does no I/O and
//! reads no clock (`now` is passed in), so it can be tested, replayed and
//! explained. The rule, in order:
//! 1. the observed load above the ready capacity (observed on the current
//!    fleet, not before the last scale-down, on fresh state):
//!    [`Strategy::EmergencyScale`], at once, to the larger of the forecast
//!    and the observed need;
//! 2. no usable forecast (absent, stale, from the future, too short for the
//!    lead time, non-finite or with a negative median in it) or stale state:
//!    [`Strategy::ReactiveFallback`] on the observed load (scale-up only on
//!    stale state), with the reason in the reasoning;
//! 3. else the load at the provisioning quantile — the newsvendor ratio of
//!    the cost of a violated minute to the cost of an idle replica
//!    ([`quantile`]) — at its peak over the ticks up to the next decision's
//!    warm-up ([`window`]) sets the replicas at the target utilization: a jump
//!    to `burst_factor` times the current replicas is a
//!    [`Strategy::PreemptiveBurst`] (at once), a smaller rise a
//!    [`Strategy::GradualRamp`] (at most `max_step_up`), a fall a
//!    [`Strategy::ScaleDown`] (at most `max_step_down`, not within the
//!    cooldown, never below what the p90 of the window needs), otherwise
//!    [`Strategy::Hold`].
//!
//! The candidates are then the instance types × spot shares that give that
//! capacity within the bounds and budgets, priced by [`cost`], sized by
//! [`capacity`] and weighed by [`risk`]; the best weighted score wins. The
//! target always lies in `[min_replicas, max_replicas]`.

pub mod capacity;
pub mod cost;
mod policy;
pub mod quantile;
pub mod risk;
mod rule;
pub mod window;

#[cfg(test)]
mod tests;

pub mod actor;
pub mod controller;
pub mod state;
pub use cost::{Cloud, CostModel, InstancePrice, PriceTable, TargetConfig};
pub use policy::{
    ClusterState, DEFAULT_VIOLATION_COST_PER_MINUTE, Decision, ForecastInput, ScalingPolicy, ScoreWeights, Scores,
    Strategy, Verification,
};
pub use risk::RiskAssessment;
pub use rule::decide;
pub use state::DecisionState;
