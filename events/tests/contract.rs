//! The contract every event store adapter keeps, run against each of them:
//! in-memory, SQLite (a temporary file) and PostgreSQL (a fresh database per test).

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use events::metrics::{MetricSample, MetricStore};
use events::projections::{DocQuery, ReadModelStore, Val, catch_up, rebuild};
use events::store::{memory::MemoryStore, subscribe};
use events::{Event, EventStore, ExpectedVersion, Metadata, NewEvent, StoreError};
use futures::StreamExt;
use serde_json::json;

mod common;
use common::{dump, forecast, new, pg, some_history, sqlite, t};

async fn append_and_read(store: Arc<dyn EventStore>) {
    let a = store
        .append(
            "service/a",
            ExpectedVersion::NoStream,
            vec![new(forecast("a", 0)), new(forecast("a", 5))],
        )
        .await
        .unwrap();
    assert_eq!((a.version, a.position), (2, 2));
    let b = store
        .append("service/b", ExpectedVersion::Any, vec![new(forecast("b", 0))])
        .await
        .unwrap();
    assert_eq!((b.version, b.position), (1, 3));
    let s = store.read_stream("service/a", 0).await.unwrap();
    assert_eq!(s.iter().map(|e| e.version).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(store.read_stream("service/a", 1).await.unwrap().len(), 1);
    let all = store.read_all(0, 100).await.unwrap();
    assert_eq!(all.iter().map(|e| e.position).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(all[2].stream, "service/b");
    assert_eq!(store.read_all(1, 1).await.unwrap()[0].position, 2);
    assert_eq!(store.head().await.unwrap(), 3);
    // Payload and metadata survive the round trip exactly.
    let e = forecast("c", 7);
    let meta = Metadata::new("user:alice", t(3));
    store
        .append(
            "service/c",
            ExpectedVersion::Exact(0),
            vec![NewEvent::new(e.clone(), meta.clone())],
        )
        .await
        .unwrap();
    let got = store.read_stream("service/c", 0).await.unwrap().remove(0);
    assert_eq!(got.event, e);
    assert_eq!(got.metadata, meta);
    assert_eq!(Some(got.stored_schema_version), Event::current_version("ForecastMade"));
}

async fn expected_versions(store: Arc<dyn EventStore>) {
    store
        .append("s", ExpectedVersion::NoStream, vec![new(forecast("a", 0))])
        .await
        .unwrap();
    let err = store
        .append("s", ExpectedVersion::NoStream, vec![new(forecast("a", 0))])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let err = store
        .append("s", ExpectedVersion::Exact(5), vec![new(forecast("a", 0))])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { actual: 1, .. }), "{err}");
    store
        .append("s", ExpectedVersion::Exact(1), vec![new(forecast("a", 0))])
        .await
        .unwrap();
    assert_eq!(store.read_stream("s", 0).await.unwrap().len(), 2);
    let err = store
        .append("", ExpectedVersion::Any, vec![new(forecast("a", 0))])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("stream name"), "{err}");
}

async fn concurrent_appends(store: Arc<dyn EventStore>) {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append("race", ExpectedVersion::Exact(0), vec![new(forecast("r", 0))])
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("expected a conflict, got {e}"),
        }
    }
    assert_eq!(ok, 1, "exactly one writer wins");
    assert_eq!(store.read_stream("race", 0).await.unwrap().len(), 1);
}

async fn append_is_atomic(store: Arc<dyn EventStore>) {
    let dup = Metadata::new("test", t(0));
    let err = store
        .append(
            "atomic",
            ExpectedVersion::Any,
            vec![
                NewEvent::new(forecast("a", 0), dup.clone()),
                NewEvent::new(forecast("a", 5), dup),
            ],
        )
        .await;
    assert!(err.is_err(), "a duplicate event id must refuse the append");
    assert_eq!(store.head().await.unwrap(), 0, "nothing of a refused append is stored");
}

async fn subscription_catches_up_then_follows(store: Arc<dyn EventStore>) {
    for i in 0..3 {
        store
            .append("sub", ExpectedVersion::Any, vec![new(forecast("s", i))])
            .await
            .unwrap();
    }
    let mut sub = Box::pin(subscribe(store.clone(), 1, Duration::from_millis(50)));
    let first: Vec<u64> = sub.by_ref().take(2).map(|e| e.unwrap().position).collect().await;
    assert_eq!(first, vec![2, 3]);
    let writer = store.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        writer
            .append(
                "sub",
                ExpectedVersion::Any,
                vec![new(forecast("s", 9)), new(forecast("s", 10))],
            )
            .await
            .unwrap();
    });
    let next = tokio::time::timeout(
        Duration::from_secs(10),
        sub.by_ref().take(2).map(|e| e.unwrap().position).collect::<Vec<_>>(),
    )
    .await
    .expect("the subscription follows new appends");
    assert_eq!(next, vec![4, 5]);
}

async fn projections_rebuild_to_the_same(store: Arc<dyn EventStore>, models: Arc<dyn ReadModelStore>) {
    let id = some_history(store.as_ref()).await;
    let head = catch_up(store.as_ref(), models.as_ref()).await.unwrap();
    assert_eq!(head, store.head().await.unwrap());
    let d = models
        .query(&DocQuery::new("scaling_decisions", "proposed_at").filter("decision_id", Val::Uuid(id)))
        .await
        .unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["status"], "executed");
    assert_eq!(d[0]["approved_by"], "alice");
    assert_eq!(d[0]["target"]["replicas"], 6);
    let current = models
        .query(&DocQuery::new("current_predictions", "origin"))
        .await
        .unwrap();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["origin"], json!(t(30)));
    let live = dump(models.as_ref()).await;
    // Seeing every event again changes nothing.
    let all = store.read_all(0, 1000).await.unwrap();
    models.apply("another", &all).await.unwrap();
    assert_eq!(dump(models.as_ref()).await, live);
    rebuild(store.as_ref(), models.as_ref()).await.unwrap();
    assert_eq!(
        dump(models.as_ref()).await,
        live,
        "a rebuild gives the live read models"
    );
}

async fn metrics_contract(m: Arc<dyn MetricStore>) {
    let s = |min: i64, v: f64| MetricSample {
        ts: t(min),
        service: "checkout".into(),
        metric: "rps".into(),
        value: v,
        labels: json!({"region": "eu"}),
    };
    let batch: Vec<_> = (0..20).map(|i| s(i, i as f64)).collect();
    assert_eq!(m.insert_batch(&batch).await.unwrap(), 20);
    let r = m.range("checkout", "rps", t(5), t(10)).await.unwrap();
    assert_eq!(
        r.iter().map(|x| x.value).collect::<Vec<_>>(),
        vec![5.0, 6.0, 7.0, 8.0, 9.0]
    );
    assert_eq!(r[0].labels, json!({"region": "eu"}));
    let b = m.aggregate("checkout", "rps", t(0), t(20), 300).await.unwrap();
    assert_eq!(b.len(), 4);
    assert_eq!(
        (b[1].start, b[1].avg, b[1].min, b[1].max, b[1].count),
        (t(5), 7.0, 5.0, 9.0, 5)
    );
    assert!(m.aggregate("checkout", "rps", t(0), t(20), 0).await.is_err());
    // A bad sample refuses the batch, names itself, and loses nothing stored before.
    let mut bad: Vec<_> = (20..25).map(|i| s(i, 1.0)).collect();
    bad[3].value = f64::NAN;
    let err = m.insert_batch(&bad).await.unwrap_err().to_string();
    assert!(err.contains("sample 3") && err.contains("finite"), "{err}");
    assert_eq!(m.range("checkout", "rps", t(0), t(60)).await.unwrap().len(), 20);
    // Retention removes what is older than the cutoff only.
    assert_eq!(m.apply_retention(t(15)).await.unwrap(), 15);
    assert_eq!(m.range("checkout", "rps", t(0), t(60)).await.unwrap().len(), 5);
}

macro_rules! contract {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn memory() {
                super::$name(Arc::new(MemoryStore::new())).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (s, _dir) = super::sqlite().await;
                super::$name(s).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::pg().await).await;
            }
        }
    };
}

contract!(append_and_read);
contract!(expected_versions);
contract!(concurrent_appends);
contract!(append_is_atomic);
contract!(subscription_catches_up_then_follows);

#[tokio::test]
async fn projections_memory() {
    let models = Arc::new(events::projections::memory::MemoryReadModels::default());
    projections_rebuild_to_the_same(Arc::new(MemoryStore::new()), models).await;
}

#[tokio::test]
async fn projections_sqlite() {
    let (s, _dir) = sqlite().await;
    projections_rebuild_to_the_same(s.clone(), s).await;
}

#[tokio::test]
async fn projections_postgres() {
    let s = pg().await;
    projections_rebuild_to_the_same(s.clone(), s).await;
}

#[tokio::test]
async fn metrics_sqlite() {
    let (s, _dir) = sqlite().await;
    metrics_contract(s).await;
}

#[tokio::test]
async fn metrics_postgres() {
    let s = pg().await;
    assert!(!s.uses_timescale() || s.uses_timescale());
    metrics_contract(s.clone()).await;
    // Without TimescaleDB, the samples landed in a monthly partition, not the default one.
    if !s.uses_timescale() {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM metrics_y2024m03")
            .fetch_one(s.pool())
            .await
            .unwrap();
        assert_eq!(n, 5);
        let d: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM metrics_default")
            .fetch_one(s.pool())
            .await
            .unwrap();
        assert_eq!(d, 0);
    }
}

const V1_FORECAST: &str = r#"{"forecast_id":"6f1c1b0e-7d3c-4d59-9a57-9e8d1bb0f5a1","service":"old","model":"snaive","model_version":"0","origin":"2024-01-01T00:00:00Z","horizon_minutes":10,"step_minutes":5,"p10":[1.0,2.0],"p50":[2.0,3.0],"p90":[3.0,4.0]}"#;

const V2_FORECAST: &str = r#"{"forecast_id":"7f1c1b0e-7d3c-4d59-9a57-9e8d1bb0f5a1","service":"old","model":"snaive","model_version":"0","origin":"2024-01-01T00:00:00Z","horizon_minutes":10,"step_seconds":300,"points":[{"at":"2024-01-01T00:05:00Z","p10":1.0,"p50":2.0,"p90":3.0},{"at":"2024-01-01T00:10:00Z","p10":2.0,"p50":3.0,"p90":4.0}],"notes":["v2"]}"#;

fn assert_upcast(e: &events::RecordedEvent, stored: i32) {
    assert_eq!(e.stored_schema_version, stored);
    let Event::ForecastMade(f) = &e.event else {
        panic!("not a forecast: {:?}", e.event)
    };
    assert_eq!(f.step_seconds, 300);
    assert_eq!(f.points.len(), 2);
    assert_eq!(f.points[0].at, Utc.with_ymd_and_hms(2024, 1, 1, 0, 5, 0).unwrap());
    assert_eq!((f.points[1].p10, f.points[1].p50, f.points[1].p90), (2.0, 3.0, 4.0));
}

/// Payloads stored as v1 and v2 rows read back as the current ForecastMade; the rows keep
/// their old shape (upcasting happens on read only).
async fn old_payloads_are_upcast(rig: common::Rig) {
    rig.insert_raw("service/old", "ForecastMade", 1, V1_FORECAST, "old")
        .await;
    rig.insert_raw("service/old", "ForecastMade", 2, V2_FORECAST, "old")
        .await;
    let all = rig.store.read_all(0, 10).await.unwrap();
    assert_upcast(&all[0], 1);
    assert_upcast(&all[1], 2);
    assert_eq!(rig.store.read_stream("service/old", 1).await.unwrap()[0], all[1]);
    // Written again, it is v3: columns, no `points`.
    let payload = all[1].event.payload();
    assert!(
        payload.get("points").is_none() && payload["p50"] == json!([2.0, 3.0]),
        "{payload}"
    );
    if let common::Adapter::Sqlite(s, _) = &rig.adapter {
        let v: Vec<i64> = sqlx::query_scalar("SELECT schema_version FROM events ORDER BY position")
            .fetch_all(s.pool())
            .await
            .unwrap();
        assert_eq!(v, vec![1, 2]);
    }
}

each_adapter!(old_payloads_are_upcast);

#[tokio::test]
async fn the_log_refuses_edits() {
    let (s, _dir) = sqlite().await;
    s.append("x", ExpectedVersion::Any, vec![new(forecast("x", 0))])
        .await
        .unwrap();
    let err = sqlx::query("DELETE FROM events").execute(s.pool()).await.unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let p = pg().await;
    p.append("x", ExpectedVersion::Any, vec![new(forecast("x", 0))])
        .await
        .unwrap();
    let err = sqlx::query("UPDATE events SET stream = 'y'")
        .execute(p.pool())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}
