//! The Kubernetes scale target against an HTTP-level fake of the API server:
//! the real kube client, real requests, a fake that records them.
#![cfg(feature = "kubernetes")]

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpResponse, HttpServer, web};
use actors::execution::{KubernetesTarget, ScaleTarget, TargetState};
use serde_json::{Value, json};

#[derive(Default)]
struct Fake {
    desired: i64,
    ready: i64,
    requests: Vec<(String, String, Value)>,
    /// Answer every request with 500 (an API server in trouble).
    failing: bool,
}

fn internal_error() -> HttpResponse {
    HttpResponse::InternalServerError().json(json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "InternalError", "code": 500,
        "message": "etcdserver: request timed out", "metadata": {}
    }))
}

type Shared = Arc<Mutex<Fake>>;

const BASE: &str = "/apis/apps/v1/namespaces/shop/deployments";

fn not_found(name: &str) -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
        "message": format!("deployments.apps \"{name}\" not found"), "metadata": {}
    }))
}

fn scale(name: &str, f: &Fake) -> Value {
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
           "metadata": {"name": name, "namespace": "shop"},
           "spec": {"replicas": f.desired}, "status": {"replicas": f.desired}})
}

async fn get_deployment(state: web::Data<Shared>, name: web::Path<String>) -> HttpResponse {
    let mut f = state.lock().unwrap();
    f.requests
        .push(("GET".into(), format!("{BASE}/{name}/status"), Value::Null));
    if f.failing {
        return internal_error();
    }
    if name.as_str() != "checkout" {
        return not_found(&name);
    }
    HttpResponse::Ok().json(json!({
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": *name, "namespace": "shop"},
        "spec": {"replicas": f.desired, "selector": {"matchLabels": {"app": "checkout"}},
                 "template": {"metadata": {"labels": {"app": "checkout"}}, "spec": {"containers": []}}},
        "status": {"replicas": f.desired, "readyReplicas": f.ready}
    }))
}

async fn patch_scale(
    state: web::Data<Shared>,
    name: web::Path<String>,
    body: web::Bytes,
    req: actix_web::HttpRequest,
) -> HttpResponse {
    let mut f = state.lock().unwrap();
    let patch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let ctype = req
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    f.requests
        .push((format!("PATCH {ctype}"), format!("{BASE}/{name}/scale"), patch.clone()));
    if f.failing {
        return internal_error();
    }
    if name.as_str() != "checkout" {
        return not_found(&name);
    }
    if let Some(r) = patch["spec"]["replicas"].as_i64() {
        f.desired = r;
    }
    HttpResponse::Ok().json(scale(&name, &f))
}

async fn start_fake() -> (String, Shared, actix_web::dev::ServerHandle) {
    let state: Shared = Arc::new(Mutex::new(Fake {
        desired: 2,
        ready: 2,
        requests: vec![],
        failing: false,
    }));
    let data = web::Data::new(state.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route(&format!("{BASE}/{{name}}/status"), web::get().to(get_deployment))
            .route(&format!("{BASE}/{{name}}/scale"), web::patch().to(patch_scale))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (format!("http://{addr}"), state, handle)
}

fn target(url: &str) -> KubernetesTarget {
    let mut config = kube::Config::new(url.parse().unwrap());
    config.default_namespace = "shop".into();
    KubernetesTarget::new(kube::Client::try_from(config).unwrap(), "shop")
}

#[actix_web::test]
async fn scales_a_deployment_through_its_scale_subresource() {
    let (url, fake, handle) = start_fake().await;
    let t = target(&url);
    assert_eq!(t.state("checkout").await.unwrap(), TargetState { desired: 2, ready: 2 });
    t.scale("checkout", 5).await.unwrap();
    assert_eq!(
        t.state("checkout").await.unwrap(),
        TargetState { desired: 5, ready: 2 },
        "new pods warming up"
    );
    fake.lock().unwrap().ready = 5;
    assert_eq!(t.state("checkout").await.unwrap(), TargetState { desired: 5, ready: 5 });
    let reqs = fake.lock().unwrap().requests.clone();
    let patch = reqs.iter().find(|r| r.0.starts_with("PATCH")).unwrap();
    assert!(patch.0.contains("application/merge-patch+json"), "{}", patch.0);
    assert_eq!(patch.1, format!("{BASE}/checkout/scale"));
    assert_eq!(patch.2, json!({"spec": {"replicas": 5}}));
    handle.stop(false).await;
}

#[actix_web::test]
async fn an_unknown_deployment_is_a_named_error() {
    let (url, _fake, handle) = start_fake().await;
    let t = target(&url);
    let e = t.scale("payments", 3).await.unwrap_err().to_string();
    assert!(e.contains("payments") && e.contains("not found"), "{e}");
    let e = t.state("payments").await.unwrap_err().to_string();
    assert!(e.contains("payments") && e.contains("not found"), "{e}");
    handle.stop(false).await;
}

#[actix_web::test]
async fn an_unreachable_api_server_is_an_error_not_a_hang() {
    let t = target("http://127.0.0.1:1");
    let e = tokio::time::timeout(std::time::Duration::from_secs(30), t.state("checkout"))
        .await
        .expect("answers");
    assert!(e.is_err());
}

/// The control loop on the Kubernetes target while the API server answers 500: it holds
/// (code `target_unavailable`, recorded once), loses nothing, and scales on its own once the
/// API server recovers.
#[actix_web::test]
async fn the_loop_holds_while_the_api_server_fails_and_recovers_on_its_own() {
    use actix::Actor;
    use actors::driver::VirtualDriver;
    use actors::messages::{Outcome, Sample};
    use actors::supervisor::{RootSupervisor, StartService};
    use chrono::{Duration, TimeZone, Utc};
    use events::EventStore;
    use events::vocabulary::Event;

    let (url, fake, handle) = start_fake().await;
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        events::store::sqlite::SqliteStore::connect(dir.path().join("k.db").to_str().unwrap())
            .await
            .unwrap(),
    );
    let at = |m: i64| Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap() + Duration::minutes(m);
    let clock = actors::ManualClock::at(at(0));
    let mut ctx = actors::testing::context(
        "checkout",
        db.clone(),
        db.clone(),
        Arc::new(clock.clone()),
        Arc::new(target(&url)),
    );
    ctx.forecast.model = "snaive".into();
    ctx.policy.capacity_per_replica = 100.0;
    ctx.policy.spot_shares = vec![0.0];
    ctx.reconcile.interval_s = 60;
    let a = RootSupervisor::default()
        .start()
        .send(StartService(ctx))
        .await
        .unwrap()
        .unwrap();
    let mut d = VirtualDriver::new(clock.clone(), a, 60, at(0));
    for i in 0..5 {
        d.feed(Sample {
            ts: at(i),
            value: 150.0,
        })
        .await
        .unwrap();
    }
    fake.lock().unwrap().failing = true;
    let mut held = Vec::new();
    for i in 5..10 {
        let (_, out) = d
            .feed(Sample {
                ts: at(i),
                value: 900.0,
            })
            .await
            .unwrap();
        held.extend(out);
    }
    assert!(
        held.iter()
            .all(|o| matches!(o, Outcome::Held { code, .. } if code == "target_unavailable")),
        "{held:?}"
    );
    let log: Vec<Event> = db
        .read_all(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    let recorded = log
        .iter()
        .filter(|e| matches!(e, Event::DecisionHeld(h) if h.code == "target_unavailable"))
        .count();
    assert_eq!(recorded, 1, "one DecisionHeld for the whole outage");
    assert!(!log.iter().any(|e| matches!(e, Event::ScalingStarted(_))));
    fake.lock().unwrap().failing = false;
    let (_, out) = d
        .feed(Sample {
            ts: at(10),
            value: 900.0,
        })
        .await
        .unwrap();
    assert!(matches!(out.last(), Some(Outcome::Proposed { .. })), "{out:?}");
    assert!(
        fake.lock().unwrap().desired >= 9,
        "scaled for the load once the API server answered"
    );
    handle.stop(false).await;
}
