//! Execution, verification and rollback against the simulated cluster.

use std::sync::Arc;

use actix::Actor;
use chrono::{Duration, TimeZone, Utc};
use events::store::memory::MemoryStore;
use events::vocabulary::*;
use events::{Event, EventStore, Metadata};
use uuid::Uuid;

use super::*;
use crate::clock::ManualClock;
use crate::messages::{Execute, Tick};

fn decision(from: u32, to: u32) -> DecisionProposed {
    let cfg = |r| TargetConfig {
        replicas: r,
        instance_type: None,
        spot_share: 0.0,
    };
    DecisionProposed {
        decision_id: Uuid::new_v4(),
        service: "api".into(),
        strategy: "gradual_ramp".into(),
        current: cfg(from),
        target: cfg(to),
        reasoning: vec![],
        estimated_hourly_cost: None,
        forecast_id: None,
        requires_approval: false,
        inputs: serde_json::json!({}),
        scores: serde_json::json!({}),
        rollback_to: cfg(from),
        verification: VerificationCriteria {
            ready_replicas: to,
            timeout_seconds: 600,
            max_utilization: None,
        },
    }
}

struct Rig {
    clock: ManualClock,
    cluster: Arc<SimulatedCluster>,
    store: Arc<MemoryStore>,
    exe: actix::Addr<ExecutionActor>,
}

fn rig() -> Rig {
    let clock = ManualClock::at(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap());
    let cluster = Arc::new(SimulatedCluster::new(Arc::new(clock.clone()), Duration::minutes(3)).with_service("api", 2));
    let store = Arc::new(MemoryStore::new());
    let ctx = crate::testing::context(
        "api",
        store.clone(),
        Arc::new(NoMetrics),
        Arc::new(clock.clone()),
        cluster.clone(),
    );
    let exe = ExecutionActor::new(ctx).start();
    Rig {
        clock,
        cluster,
        store,
        exe,
    }
}

impl Rig {
    /// Proposes `d` (as the decision actor would) and executes it.
    async fn execute(&self, d: &DecisionProposed) -> Vec<crate::messages::Appended> {
        let meta = Metadata::new("test", self.clock.now_utc());
        let at = self
            .store
            .append(
                &events::streams::decision(d.decision_id),
                events::ExpectedVersion::NoStream,
                vec![events::NewEvent::new(Event::DecisionProposed(d.clone()), meta.clone())],
            )
            .await
            .unwrap();
        self.exe
            .send(Execute {
                decision: d.clone(),
                proposed: meta.clone(),
                proposed_at_position: at.position,
                cause: meta,
            })
            .await
            .unwrap()
            .unwrap()
    }

    async fn tick(&self) -> Result<Vec<crate::messages::Appended>, crate::ActorError> {
        self.exe
            .send(Tick {
                now: self.clock.now_utc(),
            })
            .await
            .unwrap()
    }
}

/// Execution never reads metrics.
struct NoMetrics;

#[async_trait::async_trait]
impl events::metrics::MetricStore for NoMetrics {
    async fn insert_batch(&self, _: &[events::metrics::MetricSample]) -> Result<u64, events::StoreError> {
        unreachable!("execution stores no metrics")
    }
    async fn range(
        &self,
        _: &str,
        _: &str,
        _: chrono::DateTime<Utc>,
        _: chrono::DateTime<Utc>,
    ) -> Result<Vec<events::metrics::MetricSample>, events::StoreError> {
        unreachable!("execution reads no metrics")
    }
    async fn aggregate(
        &self,
        _: &str,
        _: &str,
        _: chrono::DateTime<Utc>,
        _: chrono::DateTime<Utc>,
        _: i64,
    ) -> Result<Vec<events::metrics::Bucket>, events::StoreError> {
        unreachable!("execution reads no metrics")
    }
    async fn apply_retention(&self, _: chrono::DateTime<Utc>) -> Result<u64, events::StoreError> {
        unreachable!("execution keeps no metrics")
    }
}

async fn types(store: &MemoryStore, id: Uuid) -> Vec<&'static str> {
    store
        .read_stream(&events::streams::decision(id), 0)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event.event_type())
        .collect()
}

#[actix::test]
async fn given_replicas_warm_up_when_the_warmup_passes_then_the_decision_is_verified() {
    let r = rig();
    let d = decision(2, 5);
    let appended = r.execute(&d).await;
    assert_eq!(appended.len(), 2, "the execution actor answers with what it appended");
    r.clock.advance(Duration::minutes(1));
    r.tick().await.unwrap();
    assert_eq!(
        types(&r.store, d.decision_id).await,
        ["DecisionProposed", "ScalingStarted", "ScalingSucceeded"],
        "still warming up"
    );
    r.clock.advance(Duration::minutes(3));
    r.tick().await.unwrap();
    assert_eq!(
        types(&r.store, d.decision_id).await,
        [
            "DecisionProposed",
            "ScalingStarted",
            "ScalingSucceeded",
            "VerificationPassed"
        ]
    );
}

#[actix::test]
async fn given_replicas_that_never_get_ready_when_the_timeout_passes_then_it_rolls_back() {
    let r = rig();
    r.cluster.stall_new_replicas(true);
    let d = decision(2, 6);
    r.execute(&d).await;
    r.clock.advance(Duration::minutes(5));
    r.tick().await.unwrap();
    assert_eq!(
        r.cluster.state("api").await.unwrap(),
        TargetState { desired: 6, ready: 2 },
        "waiting"
    );
    r.clock.advance(Duration::minutes(6));
    r.tick().await.unwrap();
    assert_eq!(
        types(&r.store, d.decision_id).await,
        [
            "DecisionProposed",
            "ScalingStarted",
            "ScalingSucceeded",
            "VerificationFailed",
            "RollbackStarted",
            "RollbackCompleted"
        ]
    );
    assert_eq!(
        r.cluster.state("api").await.unwrap(),
        TargetState { desired: 2, ready: 2 },
        "back where it was"
    );
    let events = r
        .store
        .read_stream(&events::streams::decision(d.decision_id), 0)
        .await
        .unwrap();
    let Event::VerificationFailed(f) = &events[3].event else {
        panic!()
    };
    assert!(f.reason.contains("2 of 6"), "{}", f.reason);
    // The rollback chain keeps the decision's correlation id.
    assert!(
        events
            .iter()
            .all(|e| e.metadata.correlation_id == events[0].metadata.correlation_id)
    );
}

#[actix::test]
async fn given_the_target_refuses_when_executing_then_scaling_failed_is_recorded() {
    let r = rig();
    r.cluster.fail_next(1);
    let d = decision(2, 4);
    r.execute(&d).await;
    assert_eq!(
        types(&r.store, d.decision_id).await,
        ["DecisionProposed", "ScalingStarted", "ScalingFailed"]
    );
    assert_eq!(r.cluster.state("api").await.unwrap().desired, 2, "nothing changed");
}

#[actix::test]
async fn a_newer_execution_supersedes_an_unverified_one() {
    let r = rig();
    let (a, b) = (decision(2, 5), decision(5, 7));
    r.execute(&a).await;
    r.execute(&b).await;
    assert_eq!(
        types(&r.store, a.decision_id).await,
        [
            "DecisionProposed",
            "ScalingStarted",
            "ScalingSucceeded",
            "DecisionSuperseded"
        ]
    );
    r.clock.advance(Duration::minutes(4));
    r.tick().await.unwrap();
    assert_eq!(types(&r.store, b.decision_id).await.last(), Some(&"VerificationPassed"));
}

#[actix::test]
async fn a_transient_target_error_during_verification_loses_nothing() {
    let r = rig();
    let d = decision(2, 5);
    r.execute(&d).await;
    r.clock.advance(Duration::minutes(4));
    r.cluster.fail_state_next(1);
    assert!(r.tick().await.is_err(), "the target did not answer");
    assert_eq!(
        types(&r.store, d.decision_id).await,
        ["DecisionProposed", "ScalingStarted", "ScalingSucceeded"],
        "nothing decided on a failed read"
    );
    r.tick().await.unwrap();
    assert_eq!(
        types(&r.store, d.decision_id).await.last(),
        Some(&"VerificationPassed"),
        "the pending verification survived the error"
    );
}

#[actix::test]
async fn a_failing_rollback_is_retried_with_backoff_alerts_and_completes() {
    let r = rig();
    r.cluster.stall_new_replicas(true);
    let d = decision(2, 6);
    r.execute(&d).await;
    r.cluster.fail_next(4);
    r.clock.advance(Duration::minutes(11));
    r.tick().await.unwrap();
    assert_eq!(
        types(&r.store, d.decision_id).await[3..],
        ["VerificationFailed", "RollbackStarted", "RollbackFailed"]
    );
    r.tick().await.unwrap();
    assert_eq!(
        types(&r.store, d.decision_id).await.len(),
        6,
        "backing off: no attempt at once"
    );
    for _ in 0..4 {
        r.clock.advance(Duration::minutes(5));
        r.tick().await.unwrap();
    }
    let after = types(&r.store, d.decision_id).await;
    assert_eq!(after.iter().filter(|t| **t == "RollbackFailed").count(), 4);
    assert_eq!(after.last(), Some(&"RollbackCompleted"), "{after:?}");
    let alerts = r.store.read_stream(events::streams::ALERTS, 0).await.unwrap();
    assert_eq!(alerts.len(), 1, "one alert after the third failure");
    let Event::AlertRaised(a) = &alerts[0].event else {
        panic!()
    };
    assert_eq!(
        (a.alert_type.as_str(), a.severity.as_str()),
        ("rollback_failing", "critical")
    );
    assert_eq!(r.cluster.state("api").await.unwrap().desired, 2);
}

#[actix::test]
async fn a_restarted_execution_actor_folds_its_pending_verifications_from_the_log() {
    let r = rig();
    let d = decision(2, 5);
    r.execute(&d).await;
    // a new process: another actor on the same log
    let ctx = crate::testing::context(
        "api",
        r.store.clone(),
        Arc::new(NoMetrics),
        Arc::new(r.clock.clone()),
        r.cluster.clone(),
    );
    let again = ExecutionActor::new(ctx).start();
    r.clock.advance(Duration::minutes(4));
    again.send(Tick { now: r.clock.now_utc() }).await.unwrap().unwrap();
    assert_eq!(types(&r.store, d.decision_id).await.last(), Some(&"VerificationPassed"));
}

#[tokio::test]
async fn the_simulated_cluster_lets_pending_replicas_go_first() {
    let clock = ManualClock::at(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap());
    let c = SimulatedCluster::new(Arc::new(clock.clone()), Duration::minutes(3)).with_service("s", 3);
    c.scale("s", 5).await.unwrap();
    assert_eq!(c.state("s").await.unwrap(), TargetState { desired: 5, ready: 3 });
    c.scale("s", 4).await.unwrap();
    assert_eq!(
        c.state("s").await.unwrap(),
        TargetState { desired: 4, ready: 3 },
        "a pending one went first"
    );
    c.scale("s", 2).await.unwrap();
    assert_eq!(c.state("s").await.unwrap(), TargetState { desired: 2, ready: 2 });
    clock.advance(Duration::minutes(3));
    assert!(
        c.scale("nope", 1)
            .await
            .unwrap_err()
            .to_string()
            .contains("unknown service")
    );
}
