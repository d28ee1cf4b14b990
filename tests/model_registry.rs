//! The model registry end to end (feature `ml`), on SQLite and on PostgreSQL: `predictive-scaler
//! train`, run as the binary with `--config`, trains a LightGBM version on a slice of the bundled
//! real trace, promotes it in the configured registry and records `ModelTrained` on the service's
//! stream in the configured store, where the read models and the audit API show it. A second
//! version, trained on one more day, replaces it only if it scores better on the newer holdout
//! window. Forecast actors given that registry forecast with the current version: the one of a
//! service already running when it was promoted (picked up at its next forecast), and one
//! started afterwards, which refuses a version trained on another interval.
#![cfg(feature = "ml")]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use actix::Actor;
use actix_web::test;
use actors::decision::ScalingPolicy;
use actors::driver::VirtualDriver;
use actors::execution::SimulatedCluster;
use actors::forecast::actor::ForecastActor;
use actors::forecast::registry::ModelRegistry;
use actors::messages::{Generation, LatestForecast, Observed, Sample};
use actors::supervisor::{RootSupervisor, StartService};
use actors::testing::context;
use actors::{ForecastSettings, LOAD_METRIC, ManualClock};
use chrono::DateTime;
use events::metrics::MetricSample;
use events::projections::{DocQuery, Val};
use events::vocabulary::{Event, ForecastMade, ModelTrained};
use events::{EventStore, streams};
use predictive_scaler::api::{self, AppState};
use predictive_scaler::backend::Backend;
use serde_json::Value;

const TRACE: &str = include_str!("../data/nyc_taxi.csv");
const SERVICE: &str = "taxi";
/// The trace's interval.
const STEP: i64 = 1800;
/// Points of the trace the first version is trained on (twelve days); the second one sees a day
/// more. The actors get the points from `TRAINED` on.
const TRAINED: usize = 576;
const DAY: usize = 48;

/// The first `n` points of the bundled trace as `(epoch seconds, value)`.
fn trace(n: usize) -> Vec<(i64, f64)> {
    TRACE
        .lines()
        .skip(1)
        .take(n)
        .map(|l| {
            let (ts, v) = l.split_once(',').unwrap();
            let ts = chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S").unwrap();
            (ts.and_utc().timestamp(), v.trim().parse().unwrap())
        })
        .collect()
}

fn at(ts: i64) -> DateTime<chrono::Utc> {
    DateTime::from_timestamp(ts, 0).unwrap()
}

/// Writes the first `n` points of the trace to a CSV in `dir`, then runs `predictive-scaler
/// --config CONFIG train …` on it, isolated from the caller's `PSCALER_*` variables; returns
/// the printed event payload.
fn train(config: &Path, dir: &Path, n: usize) -> Value {
    let input = dir.join(format!("taxi-{n}.csv"));
    std::fs::write(&input, TRACE.lines().take(n + 1).collect::<Vec<_>>().join("\n")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_predictive-scaler"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("PSCALER_")) {
        cmd.env_remove(k);
    }
    let out = cmd
        .env("RUST_LOG", "warn")
        .arg("--config")
        .arg(config)
        .args(["train", "--service", SERVICE, "--input"])
        .arg(&input)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "train failed: {stderr}");
    assert!(
        !stderr.contains("note:"),
        "the configuration runs the version: {stderr}"
    );
    serde_json::from_slice(&out.stdout).expect("train prints the event as JSON")
}

fn forecast_settings(model_dir: &Path) -> ForecastSettings {
    ForecastSettings {
        model: "lgbm".into(),
        step_seconds: STEP,
        horizon_minutes: 60,
        cadence_seconds: STEP,
        model_dir: model_dir.to_path_buf(),
        ..ForecastSettings::default()
    }
}

/// The `ForecastMade` events of the service's stream.
async fn forecasts(store: &dyn EventStore) -> Vec<ForecastMade> {
    store
        .read_stream(&streams::service(SERVICE), 0)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.event {
            Event::ForecastMade(f) => Some(f),
            _ => None,
        })
        .collect()
}

fn assert_runs_version(f: &ForecastMade, version: &str) {
    assert_eq!((f.model.as_str(), f.model_version.as_str()), ("lgbm", version), "{f:?}");
    assert!(
        f.notes.iter().any(|n| n == &format!("registry version {version}")),
        "the notes name the version: {:?}",
        f.notes
    );
    assert_eq!(f.points.len(), 2, "an hour at 30-minute steps");
    assert!(
        f.points
            .iter()
            .all(|p| p.p10 <= p.p50 && p.p50 <= p.p90 && p.p50.is_finite())
    );
}

/// The `ModelTrained` events of the service's stream, with who appended them.
async fn trained(store: &dyn EventStore) -> Vec<(ModelTrained, String)> {
    store
        .read_stream(&streams::service(SERVICE), 0)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.event {
            Event::ModelTrained(m) => Some((m, e.metadata.caused_by)),
            _ => None,
        })
        .collect()
}

/// The service's `model_performance` documents, oldest window first.
async fn performance(backend: &Backend) -> Vec<Value> {
    backend
        .models
        .query(
            &DocQuery::new("model_performance", "window_end")
                .filter("service", Val::Text(SERVICE.into()))
                .ascending(),
        )
        .await
        .unwrap()
}

#[actix_web::test]
async fn train_on_sqlite_records_a_version_that_the_forecast_actors_then_run() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("pscaler.db").display());
    train_records_a_version_that_the_forecast_actors_then_run(dir.path(), &url).await;
}

#[actix_web::test]
async fn train_on_postgres_records_a_version_that_the_forecast_actors_then_run() {
    let dir = tempfile::tempdir().unwrap();
    let url = events::testing::fresh_postgres_url().await;
    train_records_a_version_that_the_forecast_actors_then_run(dir.path(), &url).await;
}

async fn train_records_a_version_that_the_forecast_actors_then_run(dir: &Path, url: &str) {
    let model_dir = dir.join("models");
    let config = dir.join("pscaler.toml");
    std::fs::write(
        &config,
        format!(
            "services = [\"{SERVICE}\"]\n[database]\nurl = \"{url}\"\n[models]\nmodel = \"lgbm\"\n\
             step_seconds = {STEP}\nmodel_dir = \"{}\"\n",
            model_dir.display()
        ),
    )
    .unwrap();
    let points = trace(TRAINED + 4);

    // A service running on the configured store before any version exists: its forecast
    // actor has the (empty) registry and has started.
    let backend = Backend::connect(url).await.unwrap();
    let history: Vec<MetricSample> = points[..TRAINED]
        .iter()
        .map(|&(ts, value)| MetricSample {
            ts: at(ts),
            service: SERVICE.into(),
            metric: LOAD_METRIC.into(),
            value,
            labels: serde_json::json!({}),
        })
        .collect();
    backend.metrics.insert_batch(&history).await.unwrap();
    let clock = ManualClock::at(at(points[TRAINED - 1].0));
    let cluster = Arc::new(
        SimulatedCluster::new(Arc::new(clock.clone()), chrono::Duration::minutes(3)).with_service(SERVICE, 20),
    );
    let mut ctx = context(
        SERVICE,
        backend.store.clone(),
        backend.metrics.clone(),
        Arc::new(clock.clone()),
        cluster,
    );
    ctx.forecast = forecast_settings(&model_dir);
    ctx.policy = ScalingPolicy {
        capacity_per_replica: 1000.0,
        decision_interval_s: STEP,
        ..ScalingPolicy::default()
    };
    ctx.reconcile.interval_s = STEP as u64;
    let root = RootSupervisor::default().start();
    let running = root.send(StartService(ctx.clone())).await.unwrap().unwrap();
    assert_eq!(running.forecast.send(Generation).await.unwrap(), 1);
    let mut driver = VirtualDriver::new(clock.clone(), running, STEP as u64, at(points[TRAINED].0));

    // train: the first version is promoted and recorded in the store `serve` uses
    let payload = train(&config, dir, TRAINED);
    let v1 = payload["model_version"].as_str().unwrap().to_string();
    assert_eq!(payload["promoted"], true);
    assert_eq!(payload["previous_version"], Value::Null);
    assert!(payload["points"].as_u64().unwrap() > 0 && payload["mae"].as_f64().unwrap().is_finite());
    let registry = ModelRegistry::new(&model_dir);
    assert_eq!(
        registry.current_version(SERVICE, "lgbm").unwrap().as_deref(),
        Some(v1.as_str())
    );
    let recorded = trained(backend.store.as_ref()).await;
    assert_eq!(recorded.len(), 1, "one ModelTrained on service/{SERVICE}");
    let (m1, by) = &recorded[0];
    assert_eq!((m1.service.as_str(), m1.model_version.as_str()), (SERVICE, v1.as_str()));
    assert!(m1.promoted && m1.horizon_minutes == 60);
    assert_eq!(by, "system");

    // the read models are brought up to it: a model_performance row with the holdout score
    let rows = performance(&backend).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["model_version"], v1.as_str());
    assert!((rows[0]["mae"].as_f64().unwrap() - m1.mae).abs() <= 1e-9 * m1.mae.abs().max(1.0));
    assert_eq!(rows[0]["promoted"], true);

    // and the audit API serves the event
    let app = test::init_service(api::app(AppState {
        backend: backend.clone(),
        root: None,
        status: Default::default(),
        prometheus: predictive_scaler::telemetry::prometheus(),
        max_projection_lag: 0,
    }))
    .await;
    let res = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&format!("/api/v1/audit/events?stream=service/{SERVICE}"))
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = serde_json::from_slice(&test::read_body(res).await).unwrap();
    assert!(
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event_type"] == "ModelTrained" && e["payload"]["model_version"] == v1.as_str()),
        "{body}"
    );

    // the running service picks the promotion up at its next forecast
    let (ts, value) = points[TRAINED];
    driver.feed(Sample { ts: at(ts), value }).await.unwrap();
    let made = forecasts(backend.store.as_ref()).await;
    assert_eq!(made.len(), 1, "one forecast, with the new version");
    assert_runs_version(&made[0], &v1);

    // a version trained on one more day competes with v1 on that newer holdout window
    let payload = train(&config, dir, TRAINED + DAY);
    let recorded = trained(backend.store.as_ref()).await;
    assert_eq!(recorded.len(), 2);
    let m2 = &recorded[1].0;
    assert_eq!(payload["model_version"], m2.model_version.as_str());
    assert_ne!(m2.model_version, v1);
    assert_eq!(m2.previous_version.as_deref(), Some(v1.as_str()));
    assert!(m2.holdout_end > m1.holdout_end);
    let previous_mae = m2.previous_mae.expect("v1 re-scored on the new window");
    assert_eq!(m2.promoted, m2.mae < previous_mae, "{m2:?}");
    let current = if m2.promoted { &m2.model_version } else { &v1 };
    assert_eq!(
        registry.current_version(SERVICE, "lgbm").unwrap().as_ref(),
        Some(current)
    );
    let rows = performance(&backend).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1]["model_version"], m2.model_version.as_str());
    assert_eq!(rows[1]["promoted"], m2.promoted);

    // the running service forecasts with whichever is current now
    let (ts, value) = points[TRAINED + 1];
    driver.feed(Sample { ts: at(ts), value }).await.unwrap();
    let made = forecasts(backend.store.as_ref()).await;
    assert_eq!(made.len(), 2);
    assert_runs_version(&made[1], current);

    // and so does a forecast actor started now, from its first forecast
    let fresh = ForecastActor::new(ctx).unwrap().with_registry(registry.clone()).start();
    assert_eq!(fresh.send(Generation).await.unwrap(), 1);
    let fresh_forecast = |i: usize| {
        let (ts, value) = points[i];
        clock.set(at(ts));
        let fresh = fresh.clone();
        async move {
            fresh.send(Observed { ts: at(ts), value }).await.unwrap().unwrap();
            let answer = fresh.send(LatestForecast { now: at(ts) }).await.unwrap();
            assert_eq!(answer.problem, None);
            answer.latest.expect("a forecast").forecast
        }
    };
    let f = fresh_forecast(TRAINED + 2).await;
    assert_eq!(
        f.origin,
        at(points[TRAINED + 2].0),
        "the fresh actor forecast from the new sample"
    );
    assert_runs_version(&f, current);

    // a version trained on another interval is refused: the actor keeps the one it runs
    let (mut meta, artifact) = registry.current(SERVICE, "lgbm").unwrap().unwrap();
    (meta.version, meta.step_seconds) = ("v-five-minutes".into(), 300);
    registry.save(&meta, &artifact).unwrap();
    registry.promote(SERVICE, "lgbm", &meta.version).unwrap();
    let f = fresh_forecast(TRAINED + 3).await;
    assert_eq!(f.origin, at(points[TRAINED + 3].0));
    assert_runs_version(&f, current);
}
