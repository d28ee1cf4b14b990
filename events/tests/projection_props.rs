//! Property: any sequence of appends, delivered in any batches and at least
//! once, projects to the same read models as a rebuild from the log.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use events::projections::memory::{MemoryReadModels, apply_op};
use events::projections::{DocQuery, ReadModelStore, TABLES, project, rebuild};
use events::store::memory::MemoryStore;
use events::vocabulary::*;
use events::{Event, EventStore, ExpectedVersion, Metadata, NewEvent};
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

#[derive(Debug, Clone)]
enum Cmd {
    Forecast(u8, i64),
    Propose(u8, u32),
    Approve(u8),
    Reject(u8),
    Execute(u8, u32),
    RollBack(u8),
    Schedule(u8),
    UpdateImpact(u8, u8),
    Cancel(u8),
    Alert(u8),
    Ack(u8),
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        (0..3u8, 0..500i64).prop_map(|(s, o)| Cmd::Forecast(s, o)),
        (0..4u8, 1..50u32).prop_map(|(d, r)| Cmd::Propose(d, r)),
        (0..4u8).prop_map(Cmd::Approve),
        (0..4u8).prop_map(Cmd::Reject),
        (0..4u8, 1..50u32).prop_map(|(d, r)| Cmd::Execute(d, r)),
        (0..4u8).prop_map(Cmd::RollBack),
        (0..3u8).prop_map(Cmd::Schedule),
        (0..3u8, 0..40u8).prop_map(|(b, i)| Cmd::UpdateImpact(b, i)),
        (0..3u8).prop_map(Cmd::Cancel),
        (0..3u8).prop_map(Cmd::Alert),
        (0..3u8).prop_map(Cmd::Ack),
    ]
}

fn id(kind: u8, n: u8) -> Uuid {
    Uuid::from_u128(((kind as u128) << 64) | n as u128)
}

fn cfg(r: u32) -> TargetConfig {
    TargetConfig {
        replicas: r,
        instance_type: None,
        spot_share: 0.0,
    }
}

fn to_event(c: &Cmd, i: usize) -> (String, Event) {
    let at = |m: i64| Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(m);
    let svc = |s: u8| format!("svc{s}");
    match *c {
        Cmd::Forecast(s, o) => (
            format!("service/{}", svc(s)),
            Event::ForecastMade(ForecastMade {
                forecast_id: Uuid::from_u128(i as u128 + 1),
                service: svc(s),
                model: "snaive".into(),
                model_version: "1".into(),
                origin: at(o),
                step_seconds: 60,
                horizon_minutes: 2,
                points: vec![
                    ForecastPoint {
                        at: at(o + 1),
                        p10: 1.0,
                        p50: o as f64,
                        p90: 9.0,
                    },
                    ForecastPoint {
                        at: at(o + 2),
                        p10: 1.0,
                        p50: 2.0,
                        p90: 9.0,
                    },
                ],
                notes: vec![],
            }),
        ),
        Cmd::Propose(d, r) => (
            format!("decision/{}", id(1, d)),
            Event::DecisionProposed(DecisionProposed {
                decision_id: id(1, d),
                service: svc(d % 2),
                strategy: "gradual_ramp".into(),
                current: cfg(1),
                target: cfg(r),
                reasoning: vec![],
                estimated_hourly_cost: None,
                forecast_id: None,
                requires_approval: r > 10,
                inputs: json!({}),
                scores: json!({}),
                rollback_to: cfg(1),
                verification: VerificationCriteria {
                    ready_replicas: r,
                    timeout_seconds: 60,
                    max_utilization: None,
                },
            }),
        ),
        Cmd::Approve(d) => (
            format!("decision/{}", id(1, d)),
            Event::DecisionApproved(DecisionApproved {
                decision_id: id(1, d),
                approved_by: "op".into(),
                comment: None,
            }),
        ),
        Cmd::Reject(d) => (
            format!("decision/{}", id(1, d)),
            Event::DecisionRejected(DecisionRejected {
                decision_id: id(1, d),
                rejected_by: "op".into(),
                reason: None,
            }),
        ),
        Cmd::Execute(d, r) => (
            format!("decision/{}", id(1, d)),
            Event::ScalingSucceeded(ScalingSucceeded {
                decision_id: id(1, d),
                service: svc(d % 2),
                replicas: r,
            }),
        ),
        Cmd::RollBack(d) => (
            format!("decision/{}", id(1, d)),
            Event::RollbackCompleted(RollbackCompleted {
                decision_id: id(1, d),
                service: svc(d % 2),
                replicas: 1,
            }),
        ),
        Cmd::Schedule(b) => (
            format!("business-event/{}", id(2, b)),
            Event::BusinessEventScheduled(BusinessEventScheduled {
                event_id: id(2, b),
                service: svc(b),
                kind: "campaign".into(),
                name: format!("c{b}"),
                starts_at: at(10),
                ends_at: at(20),
                expected_impact: 1.5,
                source: "test".into(),
            }),
        ),
        Cmd::UpdateImpact(b, x) => (
            format!("business-event/{}", id(2, b)),
            Event::BusinessEventUpdated(BusinessEventUpdated {
                event_id: id(2, b),
                starts_at: None,
                ends_at: Some(at(30 + x as i64)),
                expected_impact: Some(x as f64 / 10.0),
                actual_impact: None,
            }),
        ),
        Cmd::Cancel(b) => (
            format!("business-event/{}", id(2, b)),
            Event::BusinessEventCancelled(BusinessEventCancelled {
                event_id: id(2, b),
                reason: None,
            }),
        ),
        Cmd::Alert(a) => (
            "alerts".into(),
            Event::AlertRaised(AlertRaised {
                alert_id: id(3, a),
                service: None,
                alert_type: "accuracy".into(),
                severity: "warning".into(),
                message: "m".into(),
            }),
        ),
        Cmd::Ack(a) => (
            "alerts".into(),
            Event::AlertAcknowledged(AlertAcknowledged {
                alert_id: id(3, a),
                acknowledged_by: "op".into(),
            }),
        ),
    }
}

async fn dump(models: &dyn ReadModelStore) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for (table, key) in TABLES {
        out.push(json!(table));
        out.extend(
            models
                .query(&DocQuery::new(table, key[0]).ascending().limit(100_000))
                .await
                .unwrap(),
        );
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_history_replays_to_the_same_read_models(
        cmds in proptest::collection::vec(cmd(), 0..60),
        cuts in proptest::collection::vec(1usize..8, 1..20),
        redeliver in 0usize..5,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let store = Arc::new(MemoryStore::new());
            let live = MemoryReadModels::default();
            let mut delivered = 0usize;
            let mut cut = cuts.iter().cycle();
            for (i, c) in cmds.iter().enumerate() {
                let (stream, event) = to_event(c, i);
                let meta = Metadata::new("prop", Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
                    + chrono::Duration::seconds(i as i64));
                store.append(&stream, ExpectedVersion::Any, vec![NewEvent::new(event, meta)]).await.unwrap();
                // Deliver in uneven batches, each re-sending a few events already seen.
                if (i + 1) % cut.next().unwrap() == 0 {
                    let from = delivered.saturating_sub(redeliver) as u64;
                    let batch = store.read_all(from, 1000).await.unwrap();
                    live.apply("p", &batch).await.unwrap();
                    delivered = i + 1;
                }
            }
            let rest = store.read_all(0, 10_000).await.unwrap();
            live.apply("p", &rest).await.unwrap();

            // At-least-once without a checkpoint: every event's operations applied twice.
            let mut twice = HashMap::new();
            for e in &rest {
                for op in project(e).iter().chain(project(e).iter()) {
                    apply_op(&mut twice, op);
                }
            }

            let rebuilt = MemoryReadModels::default();
            rebuild(store.as_ref(), &rebuilt).await.unwrap();
            let expected = dump(&rebuilt).await;
            prop_assert_eq!(dump(&live).await, expected.clone());
            let once = MemoryReadModels::default();
            once.apply("p", &rest).await.unwrap();
            prop_assert_eq!(dump(&once).await, expected);
            // The twice-applied tables hold the same rows as the rebuilt ones.
            let rows: usize = twice.values().map(|t| t.len()).sum();
            let rebuilt_rows = dump(&rebuilt).await.len() - TABLES.len();
            prop_assert_eq!(rows, rebuilt_rows);
            Ok(())
        })?;
    }
}
