//! The status board: each service's actors report here whether they are ready (their state
//! was rebuilt from the log) and what their last evaluation did. It is live actor state, not
//! a projection: the API reads it for readiness and for "when did it last evaluate, and why
//! did it hold", while the log keeps the reasons as `DecisionHeld` events when they change.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::messages::Outcome;

/// One service's live status.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceStatus {
    /// Concerns whose state could not be rebuilt, with the error (empty: all ready).
    pub not_ready: BTreeMap<String, String>,
    /// When the control loop last evaluated the service.
    pub last_evaluated_at: Option<DateTime<Utc>>,
    /// What that evaluation did.
    pub last_outcome: Option<Outcome>,
    /// Age in seconds of the forecast it decided on (none: the reactive fallback).
    pub forecast_age_s: Option<i64>,
    /// Why no new forecast was made when one was due, if so.
    pub forecast_problem: Option<String>,
    /// Evaluations that failed (store or target errors) since the last one that succeeded.
    pub failed_evaluations: u32,
    /// Samples quarantined since start.
    pub quarantined_samples: u64,
}

impl ServiceStatus {
    /// Whether every concern of the service has its state.
    pub fn ready(&self) -> bool {
        self.not_ready.is_empty()
    }
}

/// Shared by every actor of every service and the API.
#[derive(Debug, Clone, Default)]
pub struct StatusBoard(Arc<RwLock<BTreeMap<String, ServiceStatus>>>);

impl StatusBoard {
    fn update(&self, service: &str, f: impl FnOnce(&mut ServiceStatus)) {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        f(map.entry(service.to_string()).or_default());
    }

    /// A concern of `service` is ready (`Ok`) or not, with the reason.
    pub fn set_ready(&self, service: &str, concern: &str, state: Result<(), String>) {
        self.update(service, |s| match state {
            Ok(()) => {
                s.not_ready.remove(concern);
            }
            Err(e) => {
                s.not_ready.insert(concern.to_string(), e);
            }
        });
    }

    /// The control loop evaluated `service` at `at`.
    pub fn evaluated(&self, service: &str, at: DateTime<Utc>, outcome: Outcome, forecast_age_s: Option<i64>) {
        self.update(service, |s| {
            s.last_evaluated_at = Some(at);
            s.last_outcome = Some(outcome);
            s.forecast_age_s = forecast_age_s;
            s.failed_evaluations = 0;
        });
    }

    /// An evaluation of `service` failed.
    pub fn evaluation_failed(&self, service: &str) {
        self.update(service, |s| s.failed_evaluations += 1);
    }

    /// What the forecast actor said about the last due forecast.
    pub fn forecast_problem(&self, service: &str, problem: Option<String>) {
        self.update(service, |s| s.forecast_problem = problem);
    }

    /// A sample of `service` was quarantined.
    pub fn quarantined(&self, service: &str) {
        self.update(service, |s| s.quarantined_samples += 1);
    }

    /// Forgets a service that no longer runs.
    pub fn remove(&self, service: &str) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).remove(service);
    }

    /// Every service's status, by name.
    pub fn snapshot(&self) -> BTreeMap<String, ServiceStatus> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// One service's status.
    pub fn get(&self, service: &str) -> Option<ServiceStatus> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).get(service).cloned()
    }

    /// Services with a concern that is not ready, with the reasons.
    pub fn not_ready(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, s)| !s.ready())
            .map(|(k, s)| (k.clone(), s.not_ready.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_is_ready_when_every_concern_is() {
        let b = StatusBoard::default();
        b.set_ready("api", "decision", Err("store down".into()));
        b.set_ready("api", "execution", Ok(()));
        assert!(!b.get("api").unwrap().ready());
        assert_eq!(b.not_ready()["api"]["decision"], "store down");
        b.set_ready("api", "decision", Ok(()));
        assert!(b.get("api").unwrap().ready());
        assert!(b.not_ready().is_empty());
    }

    #[test]
    fn a_successful_evaluation_clears_the_failure_count() {
        let b = StatusBoard::default();
        b.evaluation_failed("api");
        b.evaluation_failed("api");
        assert_eq!(b.get("api").unwrap().failed_evaluations, 2);
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let held = Outcome::Held {
            code: "no_change".into(),
            reason: "r".into(),
        };
        b.evaluated("api", at, held.clone(), Some(30));
        let s = b.get("api").unwrap();
        assert_eq!(
            (s.failed_evaluations, s.last_evaluated_at, s.last_outcome),
            (0, Some(at), Some(held))
        );
    }
}
