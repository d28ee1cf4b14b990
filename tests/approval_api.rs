//! Approval mode through the HTTP API: a decision above the approval threshold
//! waits as `proposed` until a person approves (then it is executed) or
//! rejects it; a verdict on anything else is refused with a JSON error.

use std::sync::Arc;

use actix::Actor;
use actix_web::test;
use actors::decision::ScalingPolicy;
use actors::driver::VirtualDriver;
use actors::execution::SimulatedCluster;
use actors::messages::Sample;
use actors::supervisor::{RootSupervisor, StartService};
use actors::testing::context;
use actors::{ForecastSettings, ManualClock};
use chrono::{DateTime, Duration, TimeZone, Utc};
use events::projections::catch_up;
use predictive_scaler::api::{self, AppState};
use predictive_scaler::backend::Backend;
use serde_json::{Value, json};

fn at(i: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 3, 0, 0, 0).unwrap() + Duration::minutes(5 * i)
}

async fn feed(d: &mut VirtualDriver, from: i64, to: i64, load: f64) {
    for i in from..to {
        d.feed(Sample { ts: at(i), value: load }).await.unwrap();
    }
}

#[actix_web::test]
async fn decisions_wait_for_a_person_and_follow_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::connect(&format!("sqlite://{}", dir.path().join("a.db").display()))
        .await
        .unwrap();
    let clock = ManualClock::at(at(0));
    let cluster =
        Arc::new(SimulatedCluster::new(Arc::new(clock.clone()), Duration::minutes(3)).with_service("shop", 2));
    let mut ctx = context(
        "shop",
        backend.store.clone(),
        backend.metrics.clone(),
        Arc::new(clock.clone()),
        cluster.clone(),
    );
    ctx.forecast = ForecastSettings {
        model: "snaive".into(),
        step_seconds: 300,
        horizon_minutes: 30,
        cadence_seconds: 300,
        history_seconds: 86_400,
        min_points: 3,
        ..ForecastSettings::default()
    };
    ctx.policy = ScalingPolicy {
        capacity_per_replica: 10.0,
        decision_interval_s: 300,
        approval_threshold: Some(1),
        ..ScalingPolicy::default()
    };
    ctx.reconcile.interval_s = 300;
    let status = ctx.status.clone();
    let root = RootSupervisor::default().start();
    let a = root.send(StartService(ctx)).await.unwrap().unwrap();
    let mut d = VirtualDriver::new(clock.clone(), a, 300, at(0));
    let state = AppState {
        backend: backend.clone(),
        root: Some(root),
        status,
        prometheus: predictive_scaler::telemetry::prometheus(),
        max_projection_lag: 0,
    };
    let app = test::init_service(api::app(state)).await;
    let call = |req: test::TestRequest| {
        let app = &app;
        async move {
            let res = test::call_service(app, req.to_request()).await;
            let status = res.status().as_u16();
            (
                status,
                serde_json::from_slice::<Value>(&test::read_body(res).await).unwrap_or(Value::Null),
            )
        }
    };
    let waiting = || async {
        catch_up(backend.store.as_ref(), backend.models.as_ref()).await.unwrap();
        let (_, list) =
            call(test::TestRequest::get().uri("/api/v1/scaling/decisions?service=shop&status=proposed")).await;
        list["decisions"].as_array().unwrap().clone()
    };

    // Load nears what two replicas serve at the target utilization (not above
    // their capacity: emergencies never wait): the engine wants more, and waits.
    feed(&mut d, 0, 3, 15.0).await;
    assert!(waiting().await.is_empty());
    feed(&mut d, 3, 4, 19.0).await;
    let w = waiting().await;
    assert_eq!(w.len(), 1, "one decision waits: {w:?}");
    let id = w[0]["decision_id"].as_str().unwrap().to_string();
    let target = w[0]["target"]["replicas"].as_u64().unwrap() as u32;
    assert!(target > 2);
    assert_eq!(cluster.calls(), vec![], "nothing executed before the approval");

    let (s, body) = call(
        test::TestRequest::post()
            .uri(&format!("/api/v1/scaling/decisions/{id}/approve"))
            .set_json(json!({"approved_by": "alice", "comment": "expected campaign"})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        cluster.calls(),
        vec![("shop".to_string(), target)],
        "executed once approved"
    );
    catch_up(backend.store.as_ref(), backend.models.as_ref()).await.unwrap();
    let (_, one) = call(test::TestRequest::get().uri(&format!("/api/v1/scaling/decisions/{id}"))).await;
    assert_eq!(one["decision"]["approved_by"], "alice");
    assert_eq!(one["decision"]["status"], "executed");

    // A second verdict on the same decision is a conflict; unknown ids are 404.
    let (s, e) = call(test::TestRequest::post().uri(&format!("/api/v1/scaling/decisions/{id}/reject"))).await;
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("conflict")), "{e}");
    let (s, _) =
        call(test::TestRequest::post().uri("/api/v1/scaling/decisions/00000000-0000-0000-0000-000000000001/approve"))
            .await;
    assert_eq!(s, 404);

    // Load drops: a scale-down waits too, and a rejection leaves the cluster alone.
    feed(&mut d, 4, 20, 2.0).await;
    let w = waiting().await;
    assert_eq!(
        w.len(),
        1,
        "the newest proposal waits, older ones are superseded: {w:?}"
    );
    let id2 = w[0]["decision_id"].as_str().unwrap().to_string();
    let (s, body) = call(
        test::TestRequest::post()
            .uri(&format!("/api/v1/scaling/decisions/{id2}/reject"))
            .set_json(json!({"rejected_by": "bob", "reason": "keep headroom"})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(cluster.calls().len(), 1, "a rejected decision is not executed");
    catch_up(backend.store.as_ref(), backend.models.as_ref()).await.unwrap();
    let (_, one) = call(test::TestRequest::get().uri(&format!("/api/v1/scaling/decisions/{id2}"))).await;
    assert_eq!(one["decision"]["status"], "rejected");
    assert_eq!(one["decision"]["rejection_reason"], "keep headroom");
}
