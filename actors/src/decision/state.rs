//! The decision actor's state, folded from the service's events: one `apply` for live
//! handling and for rebuild (from a snapshot and the events after it).

use std::collections::BTreeMap;

use events::Metadata;
use events::vocabulary::{DecisionProposed, Event};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A proposal that waits for a person's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Awaiting {
    pub proposal: DecisionProposed,
    /// Metadata of the `DecisionProposed` event (the verdict continues its chain).
    pub metadata: Metadata,
    /// Its log position.
    pub position: u64,
}

impl Awaiting {
    /// Epoch seconds at which the proposal was recorded.
    pub fn proposed_at(&self) -> i64 {
        self.metadata.recorded_at.timestamp()
    }
}

/// The fleet the service runs on, as far as the log knows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fleet {
    /// Instance type; `None`: the policy's reference type.
    pub instance_type: Option<String>,
    /// Share of the fleet on spot.
    pub spot_share: f64,
}

/// The last reason the controller recorded for holding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub code: String,
    /// The reason's wording with its numbers left out: a new wording is a new reason.
    pub shape: u64,
    pub replicas: u32,
}

impl Hold {
    pub fn new(code: &str, reason: &str, replicas: u32) -> Hold {
        Hold {
            code: code.to_string(),
            shape: shape(reason),
            replicas,
        }
    }
}

/// FNV-1a of `reason` without its digits, signs and decimal points.
fn shape(reason: &str) -> u64 {
    reason
        .bytes()
        .filter(|b| !(b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+')))
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// What the decision actor knows of its service, folded from the log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecisionState {
    /// When replicas were last added (epoch seconds of the `ScalingStarted`).
    pub last_scale_up_at: Option<i64>,
    /// When replicas were last removed.
    pub last_scale_down_at: Option<i64>,
    /// Proposals waiting for a person, by decision id.
    pub awaiting: BTreeMap<Uuid, Awaiting>,
    /// Proposals executed (or being executed) and not yet settled, for the fleet they ask for.
    in_flight: BTreeMap<Uuid, Fleet>,
    /// The fleet of the last configuration that was scaled to (or rolled back to).
    pub fleet: Fleet,
    /// The last recorded hold (`DecisionHeld`); cleared by a proposal.
    pub hold: Option<Hold>,
    /// Position of the last event applied (0: none).
    pub position: u64,
}

impl DecisionState {
    /// Applies one event of the service (events of other services must not be given).
    pub fn apply(&mut self, event: &Event, meta: &Metadata, position: u64) {
        let at = meta.recorded_at.timestamp();
        match event {
            Event::DecisionProposed(d) => {
                self.hold = None;
                let fleet = Fleet {
                    instance_type: d.target.instance_type.clone(),
                    spot_share: d.target.spot_share,
                };
                // handlers are atomic: an earlier proposal not waiting for a person has been
                // executed (or refused) by now
                let awaiting = &self.awaiting;
                self.in_flight.retain(|id, _| awaiting.contains_key(id));
                self.in_flight.insert(d.decision_id, fleet);
                if d.requires_approval {
                    self.awaiting.insert(
                        d.decision_id,
                        Awaiting {
                            proposal: d.clone(),
                            metadata: meta.clone(),
                            position,
                        },
                    );
                }
            }
            Event::DecisionApproved(x) => {
                self.awaiting.remove(&x.decision_id);
            }
            Event::DecisionRejected(x) => self.settle(x.decision_id),
            Event::DecisionSuperseded(x) => self.settle(x.decision_id),
            Event::DecisionExpired(x) => self.settle(x.decision_id),
            Event::ScalingStarted(s) => {
                if s.to_replicas > s.from_replicas {
                    self.last_scale_up_at = Some(at);
                } else if s.to_replicas < s.from_replicas {
                    self.last_scale_down_at = Some(at);
                }
            }
            Event::ScalingSucceeded(s) => {
                if let Some(f) = self.in_flight.remove(&s.decision_id) {
                    self.fleet = f;
                }
            }
            Event::ScalingFailed(s) => self.settle(s.decision_id),
            Event::RollbackStarted(r) => {
                self.fleet = Fleet {
                    instance_type: r.to.instance_type.clone(),
                    spot_share: r.to.spot_share,
                };
            }
            Event::DecisionHeld(h) => self.hold = Some(Hold::new(&h.code, &h.reason, h.replicas)),
            _ => {}
        }
        self.position = self.position.max(position);
    }

    /// A decision that will not be executed (any more).
    fn settle(&mut self, id: Uuid) {
        self.awaiting.remove(&id);
        self.in_flight.remove(&id);
    }

    /// Proposals that have waited longer than `ttl_s` at `now` (epoch seconds).
    pub fn expired(&self, now: i64, ttl_s: i64) -> Vec<(Uuid, i64)> {
        self.awaiting
            .iter()
            .filter(|(_, a)| now - a.proposed_at() > ttl_s)
            .map(|(id, a)| (*id, now - a.proposed_at()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use events::vocabulary::*;

    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn proposal(id: u128, from: u32, to: u32, approval: bool) -> Event {
        Event::DecisionProposed(DecisionProposed {
            decision_id: Uuid::from_u128(id),
            service: "api".into(),
            strategy: "gradual_ramp".into(),
            current: TargetConfig {
                replicas: from,
                instance_type: Some("m5.large".into()),
                spot_share: 0.0,
            },
            target: TargetConfig {
                replicas: to,
                instance_type: Some("c5.xlarge".into()),
                spot_share: 0.3,
            },
            reasoning: vec![],
            estimated_hourly_cost: None,
            forecast_id: None,
            requires_approval: approval,
            inputs: serde_json::Value::Null,
            scores: serde_json::Value::Null,
            rollback_to: TargetConfig {
                replicas: from,
                instance_type: Some("m5.large".into()),
                spot_share: 0.0,
            },
            verification: VerificationCriteria {
                ready_replicas: to,
                timeout_seconds: 600,
                max_utilization: None,
            },
        })
    }

    fn started(id: u128, from: u32, to: u32) -> Event {
        Event::ScalingStarted(ScalingStarted {
            decision_id: Uuid::from_u128(id),
            service: "api".into(),
            from_replicas: from,
            to_replicas: to,
            executor: "simulated".into(),
        })
    }

    fn succeeded(id: u128, replicas: u32) -> Event {
        Event::ScalingSucceeded(ScalingSucceeded {
            decision_id: Uuid::from_u128(id),
            service: "api".into(),
            replicas,
        })
    }

    /// given(events at times) -> the folded state
    fn given(events: &[(i64, Event)]) -> DecisionState {
        let mut s = DecisionState::default();
        for (i, (at, e)) in events.iter().enumerate() {
            s.apply(e, &Metadata::new("test", t(*at)), i as u64 + 1);
        }
        s
    }

    #[test]
    fn an_executed_scale_up_sets_the_time_and_the_fleet() {
        let s = given(&[
            (0, proposal(1, 2, 5, false)),
            (1, started(1, 2, 5)),
            (2, succeeded(1, 5)),
        ]);
        assert_eq!(s.last_scale_up_at, Some(t(1).timestamp()));
        assert_eq!(s.last_scale_down_at, None);
        assert_eq!(s.fleet.instance_type.as_deref(), Some("c5.xlarge"));
        assert_eq!(s.fleet.spot_share, 0.3);
        assert!(s.awaiting.is_empty());
        assert_eq!(s.position, 3);
    }

    #[test]
    fn a_failed_execution_leaves_the_fleet_and_a_scale_down_sets_its_time() {
        let failed = Event::ScalingFailed(ScalingFailed {
            decision_id: Uuid::from_u128(1),
            service: "api".into(),
            error: "boom".into(),
        });
        let s = given(&[(0, proposal(1, 5, 2, false)), (1, started(1, 5, 2)), (2, failed)]);
        assert_eq!(s.last_scale_down_at, Some(t(1).timestamp()));
        assert_eq!(s.fleet, Fleet::default(), "nothing was applied");
        assert!(s.in_flight.is_empty());
    }

    #[test]
    fn proposals_wait_until_a_verdict_or_expiry_and_expire_after_the_ttl() {
        let s = given(&[(0, proposal(1, 2, 40, true)), (100, proposal(2, 2, 41, true))]);
        assert_eq!(s.awaiting.len(), 2);
        assert_eq!(s.expired(t(700).timestamp(), 600), vec![(Uuid::from_u128(1), 700)]);
        let mut s2 = s.clone();
        s2.apply(
            &Event::DecisionExpired(DecisionExpired {
                decision_id: Uuid::from_u128(1),
                service: "api".into(),
                waited_seconds: 700,
            }),
            &Metadata::new("t", t(700)),
            3,
        );
        s2.apply(
            &Event::DecisionApproved(DecisionApproved {
                decision_id: Uuid::from_u128(2),
                approved_by: "ops".into(),
                comment: None,
            }),
            &Metadata::new("t", t(701)),
            4,
        );
        assert!(s2.awaiting.is_empty());
        s2.apply(&started(2, 2, 41), &Metadata::new("t", t(702)), 5);
        s2.apply(&succeeded(2, 41), &Metadata::new("t", t(703)), 6);
        assert_eq!(
            s2.fleet.instance_type.as_deref(),
            Some("c5.xlarge"),
            "the approved one ran"
        );
    }

    #[test]
    fn a_rollback_returns_the_fleet_and_a_hold_is_remembered_until_the_next_proposal() {
        let rollback = Event::RollbackStarted(RollbackStarted {
            decision_id: Uuid::from_u128(1),
            service: "api".into(),
            to: TargetConfig {
                replicas: 2,
                instance_type: Some("m5.large".into()),
                spot_share: 0.0,
            },
            reason: "not ready".into(),
        });
        let held = Event::DecisionHeld(DecisionHeld {
            service: "api".into(),
            code: "cooldown".into(),
            reason: "r".into(),
            replicas: 2,
        });
        let s = given(&[
            (0, proposal(1, 2, 5, false)),
            (1, started(1, 2, 5)),
            (2, succeeded(1, 5)),
            (900, rollback),
            (901, held),
        ]);
        assert_eq!(s.fleet.instance_type.as_deref(), Some("m5.large"));
        assert_eq!(s.hold, Some(Hold::new("cooldown", "r", 2)));
        assert_eq!(
            Hold::new("hold", "last scale-up 12 s ago", 2),
            Hold::new("hold", "last scale-up 130 s ago", 2)
        );
        assert_ne!(
            Hold::new("hold", "last scale-up 12 s ago", 2),
            Hold::new("hold", "no forecast", 2)
        );
        let mut s = s;
        s.apply(&proposal(2, 2, 3, false), &Metadata::new("t", t(960)), 9);
        assert_eq!(s.hold, None);
    }

    #[test]
    fn the_state_survives_a_snapshot_round_trip() {
        let s = given(&[
            (0, proposal(1, 2, 40, true)),
            (1, proposal(2, 2, 5, false)),
            (2, started(2, 2, 5)),
        ]);
        let back: DecisionState = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
