//! The scale-target port: what a Kubernetes deployment or a cloud instance group must offer.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::ActorError;

/// What a scale target reports about one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetState {
    /// Replicas asked for.
    pub desired: u32,
    /// Replicas ready to serve.
    pub ready: u32,
}

/// Something whose replica count can be set and observed.
#[async_trait]
pub trait ScaleTarget: Send + Sync + 'static {
    /// A short name recorded in `ScalingStarted` (e.g. `simulated`, `kubernetes`).
    fn name(&self) -> &'static str;

    /// Asks for `replicas`. Errors ([`ActorError::Target`]) mean nothing changed.
    async fn scale(&self, service: &str, replicas: u32) -> Result<(), ActorError>;

    /// Desired and ready replicas now. Errors ([`ActorError::Target`]) when the
    /// service is unknown or the target does not answer.
    async fn state(&self, service: &str) -> Result<TargetState, ActorError>;
}
