//! Supervision: a crashed actor is restarted by its supervisor, rebuilds its
//! state from the stores, and the pipeline goes on with nothing lost.

use std::sync::Arc;

use actix::Actor;
use actors::decision::ScalingPolicy;
use actors::driver::VirtualDriver;
use actors::execution::{ScaleTarget, SimulatedCluster};
use actors::messages::{Generation, InjectFault, Sample};
use actors::supervisor::{RootSupervisor, StartService};
use actors::testing::context;
use actors::{ForecastSettings, LOAD_METRIC, ManualClock, ServiceContext};
use chrono::{DateTime, Duration, TimeZone, Utc};
use events::EventStore;
use events::metrics::MetricStore;
use events::store::sqlite::SqliteStore;
use events::vocabulary::Event;

fn load(i: i64) -> f64 {
    // A daily cycle between 200 and 1800.
    1000.0 + 800.0 * ((i as f64) * std::f64::consts::TAU / 288.0).sin()
}

fn at(i: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap() + Duration::minutes(5 * i)
}

async fn count(store: &dyn EventStore, f: impl Fn(&Event) -> bool) -> usize {
    store
        .read_all(0, 100_000)
        .await
        .unwrap()
        .iter()
        .filter(|e| f(&e.event))
        .count()
}

async fn feed(d: &mut VirtualDriver, from: i64, to: i64) {
    for i in from..to {
        d.feed(Sample {
            ts: at(i),
            value: load(i),
        })
        .await
        .unwrap();
    }
}

#[actix::test]
async fn a_crashed_actor_is_restarted_and_the_pipeline_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        SqliteStore::connect(dir.path().join("s.db").to_str().unwrap())
            .await
            .unwrap(),
    );
    let clock = ManualClock::at(at(0));
    let cluster = Arc::new(SimulatedCluster::new(Arc::new(clock.clone()), Duration::minutes(3)).with_service("api", 2));
    let mut ctx = context("api", db.clone(), db.clone(), Arc::new(clock.clone()), cluster.clone());
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
        capacity_per_replica: 100.0,
        decision_interval_s: 300,
        ..ScalingPolicy::default()
    };
    ctx.reconcile.interval_s = 300;
    let root = RootSupervisor::default().start();
    let a = root.send(StartService(ctx)).await.unwrap().unwrap();
    let mut driver = VirtualDriver::new(clock.clone(), a.clone(), 300, at(0));
    feed(&mut driver, 0, 300).await;
    let forecasts_before = count(db.as_ref(), |e| matches!(e, Event::ForecastMade(_))).await;
    assert!(forecasts_before > 250, "{forecasts_before}");

    // Crash the forecast and the decision actors; their supervisors restart them.
    a.forecast.send(InjectFault).await.unwrap();
    a.decision.send(InjectFault).await.unwrap();
    assert_eq!(a.forecast.send(Generation).await.unwrap(), 2, "restarted once");
    assert_eq!(a.decision.send(Generation).await.unwrap(), 2, "restarted once");
    assert_eq!(
        a.ingest.send(Generation).await.unwrap(),
        1,
        "the others were left alone"
    );

    // The very next sample forecasts again: the history came back from the metric store.
    feed(&mut driver, 300, 301).await;
    let forecasts_after = count(db.as_ref(), |e| matches!(e, Event::ForecastMade(_))).await;
    assert_eq!(forecasts_after, forecasts_before + 1);
    let f = db
        .read_stream("service/api", 0)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .find_map(|e| match e.event {
            Event::ForecastMade(f) => Some(f),
            _ => None,
        })
        .expect("a forecast");
    assert!(
        f.notes.iter().all(|n| !n.contains("cold start")),
        "rebuilt history, not a cold start: {:?}",
        f.notes
    );

    // The pipeline goes on: load rises, replicas follow.
    feed(&mut driver, 301, 600).await;
    let stored = db.range("api", LOAD_METRIC, at(0), at(600)).await.unwrap();
    assert_eq!(stored.len(), 600, "every acknowledged sample is stored");
    let decisions_after = count(db.as_ref(), |e| matches!(e, Event::DecisionProposed(_))).await;
    let executed = count(db.as_ref(), |e| matches!(e, Event::ScalingSucceeded(_))).await;
    assert!(
        decisions_after > 2 && executed == decisions_after,
        "{decisions_after} decisions, {executed} executed"
    );
    let state = cluster.state("api").await.unwrap();
    let need = (load(599) / 100.0).ceil() as u32;
    assert!(
        state.desired >= need,
        "desired {} must cover the load ({need} replicas)",
        state.desired
    );
}

#[actix::test]
async fn bad_samples_are_refused_by_name_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        SqliteStore::connect(dir.path().join("b.db").to_str().unwrap())
            .await
            .unwrap(),
    );
    let clock = ManualClock::at(at(0));
    let cluster = Arc::new(SimulatedCluster::new(Arc::new(clock.clone()), Duration::minutes(3)).with_service("api", 1));
    let mut ctx = context("api", db.clone(), db.clone(), Arc::new(clock.clone()), cluster);
    ctx.forecast = ForecastSettings {
        model: "snaive".into(),
        step_seconds: 300,
        ..ForecastSettings::default()
    };
    let a = root_start(ctx).await;
    a.ingest.send(Sample { ts: at(0), value: 5.0 }).await.unwrap().unwrap();
    let e = a
        .ingest
        .send(Sample {
            ts: at(1),
            value: f64::NAN,
        })
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a finite number"), "{e}");
    let e = a
        .ingest
        .send(Sample { ts: at(1), value: -3.0 })
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(e.contains("negative"), "{e}");
    clock.set(at(2));
    a.ingest.send(Sample { ts: at(2), value: 6.0 }).await.unwrap().unwrap();
    let stored = db.range("api", LOAD_METRIC, at(0), at(10)).await.unwrap();
    assert_eq!(stored.iter().map(|s| s.value).collect::<Vec<_>>(), vec![5.0, 6.0]);
}

async fn root_start(ctx: ServiceContext) -> actors::supervisor::ServiceActors {
    RootSupervisor::default()
        .start()
        .send(StartService(ctx))
        .await
        .unwrap()
        .unwrap()
}

#[actix::test]
async fn a_stopped_service_lets_its_actors_go_and_can_start_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        SqliteStore::connect(dir.path().join("s.db").to_str().unwrap())
            .await
            .unwrap(),
    );
    let clock = ManualClock::at(at(0));
    let cluster = Arc::new(SimulatedCluster::new(Arc::new(clock.clone()), Duration::minutes(3)).with_service("api", 2));
    let mut ctx = context("api", db.clone(), db.clone(), Arc::new(clock.clone()), cluster);
    ctx.reconcile.timer = true; // a wall-clock timer, which stopping must cancel
    ctx.reconcile.interval_s = 1;
    let root = RootSupervisor::default().start();
    let a = root.send(StartService(ctx.clone())).await.unwrap().unwrap();
    let (wi, wd, wf, we) = (
        a.ingest.downgrade(),
        a.decision.downgrade(),
        a.forecast.downgrade(),
        a.execution.downgrade(),
    );
    drop(a);
    assert!(root.send(actors::supervisor::StopService("api".into())).await.unwrap());
    assert!(
        !root.send(actors::supervisor::StopService("api".into())).await.unwrap(),
        "not running any more"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while wi.upgrade().is_some() || wd.upgrade().is_some() || wf.upgrade().is_some() || we.upgrade().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the actors of a stopped service are gone"
        );
        actix::clock::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        root.send(actors::supervisor::Lookup("api".into()))
            .await
            .unwrap()
            .is_none()
    );
    let again = root.send(StartService(ctx)).await.unwrap().unwrap();
    assert_eq!(
        again.decision.send(actors::messages::Generation).await.unwrap(),
        1,
        "started anew"
    );
}
