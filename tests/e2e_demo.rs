//! End to end: `demo` replays a real trace for a few simulated days through the
//! actors; the API then serves the forecasts, decisions and executions it made,
//! and a rebuild of the read models from the log gives the same answers.

use actix_web::test;
use predictive_scaler::api::{self, AppState};
use predictive_scaler::backend::Backend;
use predictive_scaler::demo;
use serde_json::Value;

async fn get(
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
    uri: &str,
) -> (u16, Value) {
    let res = test::call_service(app, test::TestRequest::get().uri(uri).to_request()).await;
    let status = res.status().as_u16();
    let body = test::read_body(res).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[actix_web::test]
async fn demo_on_sqlite_produces_events_that_the_api_serves() {
    let dir = tempfile::tempdir().unwrap();
    demo_produces_events_that_the_api_serves(format!("sqlite://{}", dir.path().join("demo.db").display())).await;
}

#[actix_web::test]
async fn demo_on_postgres_produces_events_that_the_api_serves() {
    demo_produces_events_that_the_api_serves(events::testing::fresh_postgres_url().await).await;
}

async fn demo_produces_events_that_the_api_serves(url: String) {
    let args = demo::Args {
        input: None,
        service: "taxi".into(),
        history_days: 14.0,
        days: 3.0,
        database_url: url.clone(),
        pace_ms: 0,
        quiet: true,
        model: None,
        model_dir: None,
    };
    let summary = demo::run(&args).await.unwrap();
    assert_eq!(summary.samples, 144, "three days of 30-minute samples");
    assert_eq!(
        summary.forecasts, 145,
        "one forecast at the start, then one per sample at a 30-minute cadence"
    );
    assert!(summary.decisions > 10, "{summary:?}");
    assert!(summary.executions > 10 && summary.verifications > 0, "{summary:?}");

    let backend = Backend::connect(&url).await.unwrap();
    let state = AppState {
        backend: backend.clone(),
        root: None,
        status: Default::default(),
        prometheus: predictive_scaler::telemetry::prometheus(),
        max_projection_lag: 0,
    };
    let app = test::init_service(api::app(state)).await;

    let (s, ready) = get(&app, "/health/ready").await;
    assert_eq!(s, 200, "{ready}");
    assert_eq!(ready["log_head"], summary.log_head);

    let (s, p) = get(&app, "/api/v1/predictions/current?service=taxi").await;
    assert_eq!(s, 200);
    let p = &p["predictions"][0];
    assert_eq!(p["service"], "taxi");
    assert_eq!(p["points"].as_array().unwrap().len(), 4, "two hours at 30-minute steps");

    let (s, list) = get(&app, "/api/v1/scaling/decisions?service=taxi&limit=1000").await;
    assert_eq!(s, 200);
    let decisions = list["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), summary.decisions);
    let verified = decisions
        .iter()
        .find(|d| d["status"] == "verified")
        .expect("a verified decision");
    let id = verified["decision_id"].as_str().unwrap();

    let (s, one) = get(&app, &format!("/api/v1/scaling/decisions/{id}")).await;
    assert_eq!(s, 200);
    let types: Vec<&str> = one["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "DecisionProposed",
            "ScalingStarted",
            "ScalingSucceeded",
            "VerificationPassed"
        ]
    );
    assert!(!one["decision"]["reasoning"].as_array().unwrap().is_empty());

    let (s, audit) = get(&app, &format!("/api/v1/audit/events?stream=decision/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(audit["events"].as_array().unwrap().len(), 4);
    let (_, all) = get(&app, "/api/v1/audit/events?from=0&limit=5").await;
    assert_eq!(all["events"][0]["position"], 1);

    // Unknown ids are 404, malformed parameters 400, both as JSON errors.
    let (s, e) = get(&app, "/api/v1/scaling/decisions/00000000-0000-0000-0000-000000000000").await;
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("not_found")));
    let (s, e) = get(&app, "/api/v1/scaling/decisions/not-a-uuid").await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("bad_request")));
    let (s, _) = get(&app, "/api/v1/scaling/decisions?limit=0").await;
    assert_eq!(s, 400);
    let (s, _) = get(&app, "/api/v1/audit/events?from=minus-one").await;
    assert_eq!(s, 400);
    let (s, _) = get(&app, "/api/v1/scaling/decisions?colour=blue").await;
    assert_eq!(s, 400, "unknown parameters are refused, not ignored");

    // `replay --rebuild`: the rebuilt read models answer exactly as the live ones.
    let before = get(&app, "/api/v1/scaling/decisions?limit=1000").await.1;
    let current_rows = || async {
        let q = events::projections::DocQuery::new("current_predictions", "service").limit(100);
        backend.models.query(&q).await.unwrap()
    };
    let current = current_rows().await;
    // Hot reads are cached: the second read of the same route is a hit.
    let first = test::call_service(
        &app,
        test::TestRequest::get().uri("/api/v1/predictions/current").to_request(),
    )
    .await;
    let second = test::call_service(
        &app,
        test::TestRequest::get().uri("/api/v1/predictions/current").to_request(),
    )
    .await;
    assert_eq!(first.headers().get("x-cache").unwrap(), "miss");
    assert_eq!(second.headers().get("x-cache").unwrap(), "hit");
    assert_eq!(test::read_body(first).await, test::read_body(second).await);
    events::projections::rebuild(backend.store.as_ref(), backend.models.as_ref())
        .await
        .unwrap();
    assert_eq!(get(&app, "/api/v1/scaling/decisions?limit=1000").await.1, before);
    assert_eq!(current_rows().await, current);

    // Every recorded decision replays to itself.
    let x = predictive_scaler::explain::explain(backend.store.as_ref(), id.parse().unwrap())
        .await
        .unwrap();
    assert!(x.identical, "{x:?}");
}

#[actix_web::test]
async fn prometheus_metrics_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::connect(&format!("sqlite://{}", dir.path().join("m.db").display()))
        .await
        .unwrap();
    let state = AppState {
        backend,
        root: None,
        status: Default::default(),
        prometheus: predictive_scaler::telemetry::prometheus(),
        max_projection_lag: 0,
    };
    let app = test::init_service(api::app(state)).await;
    let _ = get(&app, "/health").await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(res.status(), 200);
    let text = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(text.contains("pscaler_http_requests_total"), "{text}");
}
