//! The pure scaling decision: replicas for the forecast load over the warm-up lead time, within the rules.
//!
//! [`decide`] reads a snapshot of the cluster, the latest forecast and the
//! policy, and returns the replicas to ask for with the strategy and the
//! numbers behind it. It does no I/O and reads no clock (`now` is passed in),
//! so it can be tested, replayed and explained. The rule, in order:
//! 1. observed load above the ready capacity (observed on the current fleet,
//!    not before the last scale-down): [`Strategy::EmergencyScale`], at once,
//!    to whichever is larger of the forecast need and the observed need;
//! 2. no usable forecast (absent, stale, from the future, too short for the
//!    lead time, or non-finite in it): [`Strategy::ReactiveFallback`] on the
//!    observed load;
//! 3. else the replicas that serve the highest p90 over `[now, now + warm-up +
//!    decision interval]` (interpolated from the observed load at the origin)
//!    at the target utilization: a jump of at least
//!    `burst_factor` times the current replicas is a [`Strategy::PreemptiveBurst`]
//!    (at once), a smaller rise a [`Strategy::GradualRamp`] (at most
//!    `max_step_up`), a fall a [`Strategy::ScaleDown`] (at most
//!    `max_step_down`, not within the cooldown), otherwise [`Strategy::Hold`].
//!
//! The target always lies in `[min_replicas, max_replicas]`.

mod policy;
mod rule;

#[cfg(test)]
mod tests;

pub mod actor;
pub use policy::{ClusterState, Decision, ForecastInput, ScalingPolicy, Strategy};
pub use rule::decide;
