//! A simulated cluster: replicas become ready a warm-up after they are asked for.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::target::{ScaleTarget, TargetState};
use crate::clock::Clock;
use crate::error::ActorError;

/// Replicas per service, each with the time it is (or becomes) ready; the
/// physics of the evaluation protocol: new replicas serve after the warm-up,
/// replicas let go stop at once (pending ones first).
pub struct SimulatedCluster {
    clock: Arc<dyn Clock>,
    warmup: chrono::Duration,
    services: Mutex<HashMap<String, Vec<DateTime<Utc>>>>,
    failures: AtomicU32,
    state_failures: AtomicU32,
    stalled: std::sync::atomic::AtomicBool,
    calls: Mutex<Vec<(String, u32)>>,
}

impl SimulatedCluster {
    pub fn new(clock: Arc<dyn Clock>, warmup: chrono::Duration) -> Self {
        SimulatedCluster {
            clock,
            warmup,
            services: Mutex::new(HashMap::new()),
            failures: AtomicU32::new(0),
            state_failures: AtomicU32::new(0),
            stalled: std::sync::atomic::AtomicBool::new(false),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Registers a service with `replicas` already ready.
    pub fn with_service(self, service: &str, replicas: u32) -> Self {
        self.add_service(service, replicas);
        self
    }

    /// Registers a service at run time with `replicas` already ready (no change if it is known).
    pub fn add_service(&self, service: &str, replicas: u32) {
        let now = self.clock.now();
        self.services
            .lock()
            .expect("poisoned")
            .entry(service.to_string())
            .or_insert_with(|| vec![now; replicas as usize]);
    }

    /// Makes the next `n` scale calls fail (for tests of failure handling).
    pub fn fail_next(&self, n: u32) {
        self.failures.store(n, Ordering::SeqCst);
    }

    /// Makes the next `n` state reads fail (the target does not answer), for tests of
    /// transient faults.
    pub fn fail_state_next(&self, n: u32) {
        self.state_failures.store(n, Ordering::SeqCst);
    }

    /// From now on new replicas never become ready (a bad image, no capacity):
    /// for tests of verification failure and rollback.
    pub fn stall_new_replicas(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }

    /// Every successful scale call so far, in order.
    pub fn calls(&self) -> Vec<(String, u32)> {
        self.calls.lock().expect("poisoned").clone()
    }
}

#[async_trait]
impl ScaleTarget for SimulatedCluster {
    fn name(&self) -> &'static str {
        "simulated"
    }

    async fn scale(&self, service: &str, replicas: u32) -> Result<(), ActorError> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(ActorError::Target(format!("simulated failure scaling {service}")));
        }
        let now = self.clock.now();
        let mut services = self.services.lock().expect("poisoned");
        let ready_at = services
            .get_mut(service)
            .ok_or_else(|| ActorError::Target(format!("unknown service `{service}`")))?;
        while ready_at.len() > replicas as usize {
            let pending = ready_at.iter().rposition(|r| *r > now);
            let i = pending.unwrap_or(ready_at.len() - 1);
            ready_at.remove(i);
        }
        let ready = if self.stalled.load(Ordering::SeqCst) {
            DateTime::<Utc>::MAX_UTC
        } else {
            now + self.warmup
        };
        while ready_at.len() < replicas as usize {
            ready_at.push(ready);
        }
        self.calls
            .lock()
            .expect("poisoned")
            .push((service.to_string(), replicas));
        Ok(())
    }

    async fn state(&self, service: &str) -> Result<TargetState, ActorError> {
        if self
            .state_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(ActorError::Target(format!("simulated outage reading {service}")));
        }
        let now = self.clock.now();
        let services = self.services.lock().expect("poisoned");
        let ready_at = services
            .get(service)
            .ok_or_else(|| ActorError::Target(format!("unknown service `{service}`")))?;
        Ok(TargetState {
            desired: ready_at.len() as u32,
            ready: ready_at.iter().filter(|r| **r <= now).count() as u32,
        })
    }
}
