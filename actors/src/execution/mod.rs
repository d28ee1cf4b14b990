//! Execution: carries out approved decisions on a scale target, verifies them
//! and rolls them back when verification fails.

mod actor;
#[cfg(feature = "kubernetes")]
mod kubernetes;
mod simulated;
pub mod state;
mod target;

pub use actor::ExecutionActor;
#[cfg(feature = "kubernetes")]
pub use kubernetes::KubernetesTarget;
pub use simulated::SimulatedCluster;
pub use state::ExecutionState;
pub use target::{ScaleTarget, TargetState};

#[cfg(test)]
mod tests;
