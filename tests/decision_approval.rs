//! The decision engine's approval mode with a running actor tree, through the HTTP routes:
//! the waiting proposal carries the engine's target configuration, cost, scores, rollback
//! plan and inputs; approving executes exactly that target and `explain` replays it to the
//! identical decision; rejecting runs nothing.

use std::sync::Arc;

use actix::Actor;
use actix_web::test;
use actors::decision::ScalingPolicy;
use actors::driver::VirtualDriver;
use actors::execution::{ScaleTarget, SimulatedCluster};
use actors::messages::Sample;
use actors::supervisor::{RootSupervisor, StartService};
use actors::testing::context;
use actors::{ForecastSettings, ManualClock};
use chrono::{DateTime, Duration, TimeZone, Utc};
use events::vocabulary::Event;
use predictive_scaler::api::{self, AppState};
use predictive_scaler::backend::Backend;
use serde_json::Value;

fn at(i: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap() + Duration::minutes(5 * i)
}

fn load(i: i64) -> f64 {
    1000.0 + 800.0 * ((i as f64) * std::f64::consts::TAU / 288.0).sin()
}

struct Rig {
    backend: Backend,
    root: actix::Addr<RootSupervisor>,
    driver: tokio::sync::Mutex<VirtualDriver>,
    status: actors::StatusBoard,
    cluster: Arc<SimulatedCluster>,
    _dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::connect(&format!("sqlite://{}", dir.path().join("a.db").display()))
        .await
        .unwrap();
    let clock = ManualClock::at(at(0));
    let cluster = Arc::new(SimulatedCluster::new(Arc::new(clock.clone()), Duration::minutes(3)).with_service("api", 2));
    let mut ctx = context(
        "api",
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
        history_seconds: 3 * 86_400,
        min_points: 3,
        ..ForecastSettings::default()
    };
    ctx.policy = ScalingPolicy {
        // two replicas carry the load (no emergency: those never wait), but not with headroom
        capacity_per_replica: 1000.0,
        decision_interval_s: 300,
        approval_threshold: Some(1), // every change waits for a person
        ..ScalingPolicy::default()
    };
    ctx.reconcile.interval_s = 300;
    let status = ctx.status.clone();
    let root = RootSupervisor::default().start();
    let actors = root.send(StartService(ctx)).await.unwrap().unwrap();
    Rig {
        backend,
        root,
        driver: tokio::sync::Mutex::new(VirtualDriver::new(clock.clone(), actors, 300, at(0))),
        status,
        cluster,
        _dir: dir,
    }
}

impl Rig {
    async fn feed(&self, from: i64, to: i64) {
        let mut d = self.driver.lock().await;
        for i in from..to {
            d.feed(Sample {
                ts: at(i),
                value: load(i),
            })
            .await
            .unwrap();
        }
        events::projections::catch_up(self.backend.store.as_ref(), self.backend.models.as_ref())
            .await
            .unwrap();
    }

    fn state(&self) -> AppState {
        AppState {
            backend: self.backend.clone(),
            root: Some(self.root.clone()),
            status: self.status.clone(),
            prometheus: predictive_scaler::telemetry::prometheus(),
            max_projection_lag: 0,
        }
    }

    async fn events(&self, id: &str) -> Vec<Event> {
        self.backend
            .store
            .read_stream(&events::streams::decision(id.parse().unwrap()), 0)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect()
    }
}

async fn call(
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
    req: test::TestRequest,
) -> (u16, Value) {
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status().as_u16();
    let body = test::read_body(res).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// The one decision that waits for a person, from the API's list.
async fn waiting(
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
) -> String {
    let (s, list) = call(
        app,
        test::TestRequest::get().uri("/api/v1/scaling/decisions?service=api&limit=1000"),
    )
    .await;
    assert_eq!(s, 200, "{list}");
    let waiting: Vec<&Value> = list["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "proposed")
        .collect();
    assert_eq!(waiting.len(), 1, "exactly the newest proposal waits: {list}");
    waiting[0]["decision_id"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn an_approved_decision_executes_the_engines_target_and_explains_itself() {
    let rig = rig().await;
    rig.feed(0, 60).await;
    let app = test::init_service(api::app(rig.state())).await;
    let id = waiting(&app).await;
    let events = rig.events(&id).await;
    let [Event::DecisionProposed(p)] = &events[..] else {
        panic!("only the proposal before a verdict: {events:?}")
    };
    assert_eq!(
        rig.cluster.state("api").await.unwrap().desired,
        2,
        "the cluster waits too"
    );
    assert_eq!(
        (p.current.replicas, p.rollback_to.replicas),
        (2, 2),
        "rollback to the previous state"
    );
    assert!(p.target.instance_type.is_some() && (0.0..=1.0).contains(&p.target.spot_share));
    assert!(p.estimated_hourly_cost.is_some_and(|c| c > 0.0), "{p:?}");
    for k in [
        "cost",
        "performance",
        "stability",
        "risk",
        "transition",
        "total",
        "provisioning_quantile",
    ] {
        assert!(p.scores[k].is_number(), "{k}: {}", p.scores);
    }
    assert!(
        p.reasoning.iter().any(|r| r.contains("newsvendor")),
        "{:?}",
        p.reasoning
    );

    let (s, body) = call(
        &app,
        test::TestRequest::post()
            .uri(&format!("/api/v1/scaling/decisions/{id}/approve"))
            .set_json(serde_json::json!({"approved_by": "alice"})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let types: Vec<&str> = rig.events(&id).await.iter().map(Event::event_type).collect();
    assert_eq!(
        &types[..3],
        ["DecisionProposed", "DecisionApproved", "ScalingStarted"],
        "{types:?}"
    );
    assert_eq!(rig.cluster.state("api").await.unwrap().desired, p.target.replicas);

    let x = predictive_scaler::explain::explain(rig.backend.store.as_ref(), id.parse().unwrap())
        .await
        .unwrap();
    assert!(x.identical, "{x:?}");
    assert_eq!(x.replayed.target.replicas, p.target.replicas);
}

#[actix_web::test]
async fn a_rejected_decision_runs_nothing() {
    let rig = rig().await;
    rig.feed(0, 60).await;
    let app = test::init_service(api::app(rig.state())).await;
    let id = waiting(&app).await;
    let (s, body) = call(
        &app,
        test::TestRequest::post()
            .uri(&format!("/api/v1/scaling/decisions/{id}/reject"))
            .set_json(serde_json::json!({"rejected_by": "bob", "reason": "freeze window"})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let types: Vec<&str> = rig.events(&id).await.iter().map(Event::event_type).collect();
    assert_eq!(types, ["DecisionProposed", "DecisionRejected"]);
    assert_eq!(
        rig.cluster.state("api").await.unwrap().desired,
        2,
        "nothing was executed"
    );
    for verdict in ["approve", "reject"] {
        let (s, e) = call(
            &app,
            test::TestRequest::post().uri(&format!("/api/v1/scaling/decisions/{id}/{verdict}")),
        )
        .await;
        assert_eq!(s, 409, "{verdict} after a rejection: {e}");
    }
}
