//! Bounded reads: a page of a stream, the events of one service by index, snapshots, and
//! atomic appends across streams; on every adapter, plus the migration's backfill.

use events::store::StreamAppend;
use events::vocabulary::*;
use events::{Event, EventStore, ExpectedVersion, StoreError};
use serde_json::json;
use uuid::Uuid;

mod common;
use common::{Rig, approved, decision, forecast, new, some_history};

fn config_changed() -> Event {
    Event::ConfigurationChanged(ConfigurationChanged {
        key: "scaling.target_utilization".into(),
        old_value: json!(0.7),
        new_value: json!(0.6),
        changed_by: "alice".into(),
    })
}

async fn a_stream_is_read_a_page_at_a_time(rig: Rig) {
    let store = rig.store.as_ref();
    let events: Vec<_> = (0..7).map(|i| new(forecast("a", i))).collect();
    store
        .append("service/a", ExpectedVersion::NoStream, events)
        .await
        .unwrap();
    store
        .append("service/b", ExpectedVersion::Any, vec![new(forecast("b", 0))])
        .await
        .unwrap();
    let page = store.read_stream_page("service/a", 0, 3).await.unwrap();
    assert_eq!(page.iter().map(|e| e.version).collect::<Vec<_>>(), vec![1, 2, 3]);
    let page = store.read_stream_page("service/a", 3, 3).await.unwrap();
    assert_eq!(page.iter().map(|e| e.version).collect::<Vec<_>>(), vec![4, 5, 6]);
    assert_eq!(store.read_stream_page("service/a", 6, 3).await.unwrap().len(), 1);
    assert!(store.read_stream_page("service/a", 7, 3).await.unwrap().is_empty());
    assert!(store.read_stream_page("service/none", 0, 3).await.unwrap().is_empty());
}

async fn a_service_is_read_by_index_with_its_decision_streams(rig: Rig) {
    let store = rig.store.as_ref();
    let id = some_history(store).await; // positions 1-6, all of checkout
    store
        .append("config", ExpectedVersion::Any, vec![new(config_changed())])
        .await
        .unwrap();
    store
        .append("service/web", ExpectedVersion::Any, vec![new(forecast("web", 0))])
        .await
        .unwrap();
    // An approval names no service: it belongs to its decision stream's service.
    store
        .append(
            &events::streams::decision(id),
            ExpectedVersion::Any,
            vec![new(approved(id))],
        )
        .await
        .unwrap();
    let ours = store.read_service("checkout", 0, 100).await.unwrap();
    assert_eq!(
        ours.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6, 9]
    );
    let page = store.read_service("checkout", 2, 2).await.unwrap();
    assert_eq!(page.iter().map(|e| e.position).collect::<Vec<_>>(), vec![3, 4]);
    assert!(matches!(page[0].event, Event::DecisionApproved(_)));
    assert_eq!(store.read_service("web", 0, 100).await.unwrap().len(), 1);
    assert!(store.read_service("nobody", 0, 100).await.unwrap().is_empty());
    // A new decision stream takes the service of its first event.
    let other = Uuid::new_v4();
    store
        .append_many(vec![StreamAppend::new(
            events::streams::decision(other),
            ExpectedVersion::NoStream,
            vec![new(decision(other, 3)), new(approved(other))],
        )])
        .await
        .unwrap();
    assert_eq!(store.read_service("checkout", 9, 100).await.unwrap().len(), 2);
}

async fn snapshots_never_move_back(rig: Rig) {
    let store = rig.store.as_ref();
    assert_eq!(store.load_snapshot("decision/checkout").await.unwrap(), None);
    store
        .save_snapshot("decision/checkout", 10, json!({"pending": [1]}))
        .await
        .unwrap();
    store
        .save_snapshot("decision/web", 3, json!({"pending": []}))
        .await
        .unwrap();
    assert_eq!(
        store.load_snapshot("decision/checkout").await.unwrap(),
        Some((10, json!({"pending": [1]})))
    );
    store
        .save_snapshot("decision/checkout", 7, json!({"stale": true}))
        .await
        .unwrap();
    assert_eq!(
        store.load_snapshot("decision/checkout").await.unwrap().unwrap().0,
        10,
        "an older state is ignored"
    );
    store
        .save_snapshot("decision/checkout", 12, json!({"pending": []}))
        .await
        .unwrap();
    assert_eq!(
        store.load_snapshot("decision/checkout").await.unwrap(),
        Some((12, json!({"pending": []})))
    );
    assert_eq!(store.load_snapshot("decision/web").await.unwrap().unwrap().0, 3);
}

async fn an_append_across_streams_is_all_or_nothing(rig: Rig) {
    let store = rig.store.as_ref();
    let (old, new_id) = (Uuid::new_v4(), Uuid::new_v4());
    let old_stream = events::streams::decision(old);
    store
        .append(&old_stream, ExpectedVersion::NoStream, vec![new(decision(old, 4))])
        .await
        .unwrap();
    let superseded = || {
        new(Event::DecisionSuperseded(DecisionSuperseded {
            decision_id: old,
            superseded_by: new_id,
        }))
    };
    // The second part conflicts: nothing of the first is appended either.
    let err = store
        .append_many(vec![
            StreamAppend::new(&old_stream, ExpectedVersion::Exact(1), vec![superseded()]),
            StreamAppend::new(
                events::streams::decision(new_id),
                ExpectedVersion::Exact(3),
                vec![new(decision(new_id, 6))],
            ),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(store.head().await.unwrap(), 1);
    assert_eq!(store.read_stream(&old_stream, 0).await.unwrap().len(), 1);
    // A good one lands whole, positions in the order given, one result per part.
    let done = store
        .append_many(vec![
            StreamAppend::new(&old_stream, ExpectedVersion::Exact(1), vec![superseded()]),
            StreamAppend::new(
                events::streams::decision(new_id),
                ExpectedVersion::NoStream,
                vec![new(decision(new_id, 6))],
            ),
            StreamAppend::new(&old_stream, ExpectedVersion::Exact(2), vec![]),
            StreamAppend::new(
                "service/checkout",
                ExpectedVersion::Any,
                vec![new(forecast("checkout", 0)), new(forecast("checkout", 5))],
            ),
        ])
        .await
        .unwrap();
    let got: Vec<(u64, u64)> = done.iter().map(|a| (a.version, a.position)).collect();
    assert_eq!(got, vec![(2, 2), (1, 3), (2, 3), (2, 5)]);
    let all = store.read_all(0, 10).await.unwrap();
    let streams: Vec<String> = all.iter().map(|e| e.stream.clone()).collect();
    assert_eq!(streams[1..3], [old_stream.clone(), events::streams::decision(new_id)]);
    // A duplicate event id anywhere refuses the whole call.
    let twice = new(forecast("x", 0));
    let err = store
        .append_many(vec![
            StreamAppend::new("service/x", ExpectedVersion::Any, vec![twice.clone()]),
            StreamAppend::new("service/y", ExpectedVersion::Any, vec![twice]),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert_eq!(store.head().await.unwrap(), 5);
}

each_adapter!(
    a_stream_is_read_a_page_at_a_time,
    a_service_is_read_by_index_with_its_decision_streams,
    snapshots_never_move_back,
    an_append_across_streams_is_all_or_nothing,
);

const V2_DECISION_ROWS: &[(&str, &str, &str)] = &[
    (
        "service/checkout",
        "ForecastMade",
        r#"{"forecast_id":"6f1c1b0e-7d3c-4d59-9a57-9e8d1bb0f5a1","service":"checkout","model":"snaive","model_version":"0","origin":"2024-01-01T00:00:00Z","horizon_minutes":5,"step_seconds":300,"points":[{"at":"2024-01-01T00:05:00Z","p10":1.0,"p50":2.0,"p90":3.0}],"notes":[]}"#,
    ),
    ("decision/d1", "DecisionProposed", r#"{"service":"checkout"}"#),
    (
        "decision/d1",
        "DecisionApproved",
        r#"{"decision_id":"6f1c1b0e-7d3c-4d59-9a57-9e8d1bb0f5a1","approved_by":"a"}"#,
    ),
    (
        "config",
        "ConfigurationChanged",
        r#"{"key":"k","old_value":1,"new_value":2,"changed_by":"a"}"#,
    ),
    ("decision/d2", "DecisionApproved", r#"not json"#),
];

/// The migration gives rows written before it their service: the payload's, else the
/// service of their stream's first event.
#[tokio::test]
async fn the_migration_backfills_services_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let mut before = sqlx::migrate!("../migrations/sqlite");
    before.migrations = std::borrow::Cow::Owned(before.migrations.iter().filter(|m| m.version < 3).cloned().collect());
    before.run(&pool).await.unwrap();
    for (i, (stream, event_type, payload)) in V2_DECISION_ROWS.iter().enumerate() {
        let version = V2_DECISION_ROWS[..i].iter().filter(|r| r.0 == *stream).count() + 1;
        sqlx::query("INSERT INTO events VALUES (?, ?, ?, ?, 1, ?, ?, ?, NULL, 'v0', '2024-01-01T00:00:00.000000Z')")
            .bind(i as i64 + 1)
            .bind(stream)
            .bind(version as i64)
            .bind(event_type)
            .bind(payload)
            .bind(Uuid::new_v4().to_string())
            .bind(Uuid::new_v4().to_string())
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    let store = events::store::sqlite::SqliteStore::connect(path.to_str().unwrap())
        .await
        .unwrap();
    let ours: Vec<u64> = store
        .read_service("checkout", 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(ours, vec![1, 2, 3]);
    let services: Vec<Option<String>> = sqlx::query_scalar("SELECT service FROM events ORDER BY position")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(services[3..], [None, None]);
}

#[tokio::test]
async fn the_migration_backfills_services_postgres() {
    let url = events::testing::fresh_postgres_url().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut before = sqlx::migrate!("../migrations/postgres");
    before.migrations = std::borrow::Cow::Owned(before.migrations.iter().filter(|m| m.version < 3).cloned().collect());
    before.run(&pool).await.unwrap();
    for (i, (stream, event_type, payload)) in V2_DECISION_ROWS.iter().enumerate().take(4) {
        let version = V2_DECISION_ROWS[..i].iter().filter(|r| r.0 == *stream).count() + 1;
        sqlx::query("INSERT INTO events VALUES ($1, $2, $3, $4, 1, $5::jsonb, $6, $7, NULL, 'v0', now())")
            .bind(i as i64 + 1)
            .bind(stream)
            .bind(version as i64)
            .bind(event_type)
            .bind(payload)
            .bind(Uuid::new_v4())
            .bind(Uuid::new_v4())
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    let store = events::store::postgres::PgStore::connect(&url).await.unwrap();
    let ours: Vec<u64> = store
        .read_service("checkout", 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(ours, vec![1, 2, 3]);
}
