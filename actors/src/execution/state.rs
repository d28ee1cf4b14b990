//! The execution actor's state, folded from the service's events: decisions executed
//! and waiting for verification, and rollbacks not yet completed. One `apply` serves
//! live handling and rebuild, so a handler error never loses pending work: the state
//! changes only by the events that were appended.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use events::Metadata;
use events::vocabulary::{DecisionProposed, Event, TargetConfig, VerificationCriteria};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What the execution of a decision must achieve, and what to return to if it does not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub decision_id: Uuid,
    pub target: TargetConfig,
    pub rollback_to: TargetConfig,
    pub verification: VerificationCriteria,
}

impl From<&DecisionProposed> for Plan {
    fn from(d: &DecisionProposed) -> Self {
        Plan {
            decision_id: d.decision_id,
            target: d.target.clone(),
            rollback_to: d.rollback_to.clone(),
            verification: d.verification.clone(),
        }
    }
}

/// An executed decision waiting for its verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub plan: Plan,
    /// When the target accepted the change (the `ScalingSucceeded`).
    pub executed_at: DateTime<Utc>,
    /// Metadata of that event: verification continues its chain.
    pub cause: Metadata,
}

/// A rollback that was started and has not completed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollback {
    pub decision_id: Uuid,
    pub to: TargetConfig,
    /// Failed attempts so far.
    pub failed_attempts: u32,
    /// Not before this time.
    pub next_attempt_at: DateTime<Utc>,
    pub cause: Metadata,
}

/// What the execution actor knows of its service, folded from the log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutionState {
    /// Proposals that may still be executed (by id), for their plans.
    proposed: BTreeMap<Uuid, Plan>,
    /// Executed, waiting for verification.
    pub pending: BTreeMap<Uuid, Pending>,
    /// Started and not completed.
    pub rollbacks: BTreeMap<Uuid, Rollback>,
    /// Position of the last event applied (0: none).
    pub position: u64,
}

impl ExecutionState {
    /// Applies one event of the service.
    pub fn apply(&mut self, event: &Event, meta: &Metadata, position: u64) {
        match event {
            Event::DecisionProposed(d) => {
                // a newer proposal: older ones that never started will not start any more
                // unless they wait for a person (they stay until their verdict)
                if !d.requires_approval {
                    self.proposed.clear();
                }
                self.proposed.insert(d.decision_id, Plan::from(d));
            }
            Event::DecisionRejected(x) => self.forget(x.decision_id),
            Event::DecisionExpired(x) => self.forget(x.decision_id),
            Event::DecisionSuperseded(x) => {
                self.forget(x.decision_id);
                self.pending.remove(&x.decision_id);
            }
            Event::ScalingSucceeded(s) => {
                if let Some(plan) = self.proposed.remove(&s.decision_id) {
                    self.pending.insert(
                        s.decision_id,
                        Pending {
                            plan,
                            executed_at: meta.recorded_at,
                            cause: meta.clone(),
                        },
                    );
                }
            }
            Event::ScalingFailed(s) => self.forget(s.decision_id),
            Event::VerificationPassed(v) => {
                self.pending.remove(&v.decision_id);
            }
            Event::VerificationFailed(v) => {
                self.pending.remove(&v.decision_id);
            }
            Event::RollbackStarted(r) => {
                self.rollbacks.insert(
                    r.decision_id,
                    Rollback {
                        decision_id: r.decision_id,
                        to: r.to.clone(),
                        failed_attempts: 0,
                        next_attempt_at: meta.recorded_at,
                        cause: meta.clone(),
                    },
                );
            }
            Event::RollbackFailed(r) => {
                if let Some(rb) = self.rollbacks.get_mut(&r.decision_id) {
                    rb.failed_attempts = r.attempt;
                    rb.next_attempt_at = r.next_attempt_at;
                }
            }
            Event::RollbackCompleted(r) => {
                self.rollbacks.remove(&r.decision_id);
            }
            _ => {}
        }
        self.position = self.position.max(position);
    }

    fn forget(&mut self, id: Uuid) {
        self.proposed.remove(&id);
    }

    /// The plan of a proposal that may be executed.
    pub fn plan(&self, id: Uuid) -> Option<&Plan> {
        self.proposed.get(&id)
    }

    /// Verifications due at `now`: every pending one (each is checked, and either passes,
    /// times out or waits).
    pub fn pending(&self) -> impl Iterator<Item = &Pending> {
        self.pending.values()
    }

    /// Rollbacks whose next attempt is due at `now`.
    pub fn rollbacks_due(&self, now: DateTime<Utc>) -> Vec<Rollback> {
        self.rollbacks
            .values()
            .filter(|r| r.next_attempt_at <= now)
            .cloned()
            .collect()
    }
}

/// Seconds to wait after failed attempt `attempt` (1, 2, ...): 5 s doubling, at most 5 minutes.
pub fn rollback_backoff_s(attempt: u32) -> i64 {
    (5i64 << attempt.saturating_sub(1).min(6)).min(300)
}

#[cfg(test)]
mod tests {
    use events::vocabulary::*;

    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn cfg(replicas: u32) -> TargetConfig {
        TargetConfig {
            replicas,
            instance_type: None,
            spot_share: 0.0,
        }
    }

    fn proposal(id: u128, from: u32, to: u32) -> Event {
        Event::DecisionProposed(DecisionProposed {
            decision_id: Uuid::from_u128(id),
            service: "api".into(),
            strategy: "gradual_ramp".into(),
            current: cfg(from),
            target: cfg(to),
            reasoning: vec![],
            estimated_hourly_cost: None,
            forecast_id: None,
            requires_approval: false,
            inputs: serde_json::Value::Null,
            scores: serde_json::Value::Null,
            rollback_to: cfg(from),
            verification: VerificationCriteria {
                ready_replicas: to,
                timeout_seconds: 600,
                max_utilization: None,
            },
        })
    }

    fn succeeded(id: u128, replicas: u32) -> Event {
        Event::ScalingSucceeded(ScalingSucceeded {
            decision_id: Uuid::from_u128(id),
            service: "api".into(),
            replicas,
        })
    }

    fn given(events: &[(i64, Event)]) -> ExecutionState {
        let mut s = ExecutionState::default();
        for (i, (at, e)) in events.iter().enumerate() {
            s.apply(e, &Metadata::new("test", t(*at)), i as u64 + 1);
        }
        s
    }

    #[test]
    fn an_executed_decision_waits_for_verification_until_it_passes() {
        let s = given(&[(0, proposal(1, 2, 5)), (1, succeeded(1, 5))]);
        let p = s.pending.get(&Uuid::from_u128(1)).expect("pending");
        assert_eq!(p.executed_at, t(1));
        assert_eq!(p.plan.rollback_to.replicas, 2);
        let mut s = s;
        s.apply(
            &Event::VerificationPassed(VerificationPassed {
                decision_id: Uuid::from_u128(1),
                service: "api".into(),
                ready_replicas: 5,
            }),
            &Metadata::new("t", t(200)),
            3,
        );
        assert!(s.pending.is_empty());
    }

    #[test]
    fn a_newer_execution_supersedes_the_pending_one() {
        let s = given(&[
            (0, proposal(1, 2, 5)),
            (1, succeeded(1, 5)),
            (60, proposal(2, 5, 9)),
            (
                61,
                Event::DecisionSuperseded(DecisionSuperseded {
                    decision_id: Uuid::from_u128(1),
                    superseded_by: Uuid::from_u128(2),
                }),
            ),
            (61, succeeded(2, 9)),
        ]);
        assert_eq!(s.pending.keys().copied().collect::<Vec<_>>(), vec![Uuid::from_u128(2)]);
    }

    #[test]
    fn a_failed_rollback_is_retried_with_backoff_until_it_completes() {
        let started = Event::RollbackStarted(RollbackStarted {
            decision_id: Uuid::from_u128(1),
            service: "api".into(),
            to: cfg(2),
            reason: "2 of 5 ready".into(),
        });
        let failed = Event::RollbackFailed(RollbackFailed {
            decision_id: Uuid::from_u128(1),
            service: "api".into(),
            attempt: 1,
            error: "503".into(),
            next_attempt_at: t(700 + rollback_backoff_s(1)),
        });
        let s = given(&[
            (0, proposal(1, 2, 5)),
            (1, succeeded(1, 5)),
            (
                700,
                Event::VerificationFailed(VerificationFailed {
                    decision_id: Uuid::from_u128(1),
                    service: "api".into(),
                    ready_replicas: 2,
                    reason: "2 of 5 ready".into(),
                }),
            ),
            (700, started),
            (700, failed),
        ]);
        assert!(s.pending.is_empty(), "verification settled");
        assert!(s.rollbacks_due(t(701)).is_empty(), "backing off");
        let due = s.rollbacks_due(t(705));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].failed_attempts, 1);
        let mut s = s;
        s.apply(
            &Event::RollbackCompleted(RollbackCompleted {
                decision_id: Uuid::from_u128(1),
                service: "api".into(),
                replicas: 2,
            }),
            &Metadata::new("t", t(706)),
            9,
        );
        assert!(s.rollbacks.is_empty());
    }

    #[test]
    fn backoff_doubles_from_five_seconds_to_five_minutes() {
        let b: Vec<i64> = (1..=9).map(rollback_backoff_s).collect();
        assert_eq!(b, vec![5, 10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn proposals_that_never_ran_do_not_accumulate() {
        let mut events = Vec::new();
        for i in 0..100 {
            events.push((i * 60, proposal(i as u128, 2, 3)));
        }
        let s = given(&events);
        assert_eq!(s.proposed.len(), 1);
    }
}
