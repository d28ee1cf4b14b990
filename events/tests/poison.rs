//! No poison pill: nothing non-finite is appended, a stored event that no longer decodes
//! is read back as `Malformed` and dead-lettered, and an event whose rows the database
//! refuses is dead-lettered while the projection goes on; on every adapter.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use events::projections::memory::MemoryReadModels;
use events::projections::{
    DEAD_LETTER_ALERT, DocQuery, Projector, ReadModelStore, Val, catch_up, dead_letter_alert_id, rebuild,
};
use events::store::memory::MemoryStore;
use events::vocabulary::*;
use events::{Event, EventStore, ExpectedVersion, Metadata, NewEvent, StoreError, StreamAppend};
use uuid::Uuid;

mod common;
use common::{Rig, decision, docs, dump, forecast, new, t};

fn with_p50(service: &str, step: usize, value: f64) -> Event {
    let Event::ForecastMade(mut f) = forecast(service, 0) else {
        unreachable!()
    };
    f.points[step].p50 = value;
    Event::ForecastMade(f)
}

async fn non_finite_numbers_are_never_appended(rig: Rig) {
    let store = &rig.store;
    store
        .append("service/a", ExpectedVersion::Any, vec![new(forecast("a", 0))])
        .await
        .unwrap();
    // One bad event refuses the whole call, on every stream, naming type and field.
    let err = store
        .append_many(vec![
            StreamAppend::new("service/a", ExpectedVersion::Exact(1), vec![new(forecast("a", 5))]),
            StreamAppend::new("service/b", ExpectedVersion::Any, vec![new(with_p50("b", 1, f64::NAN))]),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("ForecastMade.p50[1] is NaN"), "{err}");
    let err = store
        .append(
            "service/a",
            ExpectedVersion::Any,
            vec![new(with_p50("a", 0, 1e300 * 1e300))],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ForecastMade.p50[0] is infinite"), "{err}");
    assert_eq!(store.head().await.unwrap(), 1, "nothing of a refused append is stored");
    assert_eq!(store.read_stream("service/b", 0).await.unwrap().len(), 0);
    // The same check at construction, for callers that want it early.
    let meta = Metadata::new("test", t(0));
    let err = NewEvent::try_new(with_p50("a", 1, f64::NEG_INFINITY), meta.clone()).unwrap_err();
    assert!(err.to_string().contains("ForecastMade.p50[1] is -infinite"), "{err}");
    assert!(NewEvent::try_new(forecast("a", 0), meta.clone()).is_ok());
    // A malformed event read from the log is not part of the vocabulary that can be appended.
    let m = Event::Malformed(Malformed {
        event_type: "ForecastMade".into(),
        schema_version: 2,
        payload: serde_json::json!({}),
        error: "x".into(),
    });
    let err = store.append("x", ExpectedVersion::Any, vec![new(m)]).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(_)) && err.to_string().contains("malformed"),
        "{err}"
    );
    assert_eq!(store.head().await.unwrap(), 1);
}

/// A ForecastMade v2 as an older build wrote it when a forecast held NaN: `null` values.
const POISONED_V2: &str = r#"{"forecast_id":"8f1c1b0e-7d3c-4d59-9a57-9e8d1bb0f5a1","service":"checkout","model":"snaive","model_version":"0","origin":"2024-03-01T00:01:00Z","horizon_minutes":10,"step_seconds":300,"points":[{"at":"2024-03-01T00:06:00Z","p10":null,"p50":null,"p90":null}],"notes":[]}"#;

async fn an_undecodable_event_is_read_back_and_dead_lettered(rig: Rig) {
    let (store, models) = (rig.store.as_ref(), rig.models.as_ref());
    store
        .append(
            "service/checkout",
            ExpectedVersion::Any,
            vec![new(forecast("checkout", 0))],
        )
        .await
        .unwrap();
    let bad = rig
        .insert_raw("service/checkout", "ForecastMade", 2, POISONED_V2, "checkout")
        .await;
    store
        .append(
            "service/checkout",
            ExpectedVersion::Any,
            vec![new(forecast("checkout", 30))],
        )
        .await
        .unwrap();
    // Every read returns it, as Malformed, instead of failing.
    let all = store.read_all(0, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    let Event::Malformed(m) = &all[1].event else {
        panic!("expected a malformed event, got {:?}", all[1].event)
    };
    assert_eq!((m.event_type.as_str(), m.schema_version), ("ForecastMade", 2));
    assert!(m.error.contains("null"), "{}", m.error);
    assert_eq!(store.read_stream("service/checkout", 0).await.unwrap()[1], all[1]);
    assert_eq!(store.read_service("checkout", 0, 10).await.unwrap().len(), 3);
    // The projection records it, alerts, and goes on.
    assert_eq!(catch_up(store, models).await.unwrap(), 3);
    let letters = docs(models, "dead_letters", "position").await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["position"], bad);
    assert_eq!(letters[0]["event_type"], "ForecastMade");
    assert!(letters[0]["error"].as_str().unwrap().contains("null"));
    assert_eq!(letters[0]["payload"]["service"], "checkout");
    let alerts = models
        .query(&DocQuery::new("alert_logs", "raised_at").filter("alert_id", Val::Uuid(dead_letter_alert_id(bad))))
        .await
        .unwrap();
    assert_eq!(
        alerts.len(),
        1,
        "one alert per dead letter, with the id of its position"
    );
    assert_eq!(
        (alerts[0]["alert_type"].as_str(), alerts[0]["severity"].as_str()),
        (Some(DEAD_LETTER_ALERT), Some("critical"))
    );
    let message = alerts[0]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("position {bad}")) && message.contains("ForecastMade"),
        "{message}"
    );
    let current = docs(models, "current_predictions", "service").await;
    assert_eq!(
        current[0]["origin"],
        serde_json::json!(t(30)),
        "the next forecast was projected"
    );
    // A rebuild goes through it too, to the same read models.
    let live = dump(models).await;
    assert_eq!(rebuild(store, models).await.unwrap(), 3);
    assert_eq!(dump(models).await, live);
}

async fn a_row_the_database_refuses_is_dead_lettered(rig: Rig) {
    let (store, models) = (rig.store.as_ref(), rig.models.as_ref());
    rig.refuse_decisions_over(100).await;
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    for (id, replicas) in ids.iter().zip([6, 500, 7]) {
        store
            .append(
                &events::streams::decision(*id),
                ExpectedVersion::NoStream,
                vec![new(decision(*id, replicas))],
            )
            .await
            .unwrap();
    }
    let head = store.head().await.unwrap();
    assert_eq!(
        catch_up(store, models).await.unwrap(),
        head,
        "the projection is not stuck"
    );
    let decisions = docs(models, "scaling_decisions", "proposed_at").await;
    let mut kept: Vec<u64> = decisions
        .iter()
        .map(|d| d["target"]["replicas"].as_u64().unwrap())
        .collect();
    kept.sort();
    assert_eq!(kept, vec![6, 7], "the events around the refused one are projected");
    let letters = docs(models, "dead_letters", "position").await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["position"], 2);
    assert_eq!(letters[0]["event_type"], "DecisionProposed");
    assert!(
        letters[0]["error"].as_str().unwrap().contains("refused"),
        "{}",
        letters[0]["error"]
    );
    assert_eq!(letters[0]["payload"]["target"]["replicas"], 500);
}

each_adapter!(
    non_finite_numbers_are_never_appended,
    an_undecodable_event_is_read_back_and_dead_lettered,
    a_row_the_database_refuses_is_dead_lettered,
);

#[tokio::test]
async fn transient_failures_are_retried_and_never_dead_lettered() {
    let store = Arc::new(MemoryStore::new());
    let models = Arc::new(MemoryReadModels::default());
    let seen = Arc::new(AtomicUsize::new(0));
    models.fail_on(Some(Box::new(move |_| {
        (seen.fetch_add(1, Ordering::SeqCst) < 5).then_some(StoreError::Database(sqlx::Error::PoolTimedOut))
    })));
    for i in 0..3 {
        store
            .append("service/a", ExpectedVersion::Any, vec![new(forecast("a", i))])
            .await
            .unwrap();
    }
    // A transient error is returned for a retry: nothing applied, nothing dead-lettered.
    let err = catch_up(store.as_ref(), models.as_ref()).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(models.checkpoint(events::projections::PROJECTION).await.unwrap(), 0);
    let projector = Projector::spawn(store.clone(), models.clone(), Duration::from_millis(10));
    assert!(
        projector.wait_for(3, Duration::from_secs(20)).await,
        "the projection catches up after the faults pass"
    );
    assert!(docs(models.as_ref(), "dead_letters", "position").await.is_empty());
    assert_eq!(docs(models.as_ref(), "prediction_points", "at").await.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projector_survives_lost_database_connections() {
    let rig = Rig::postgres().await;
    let common::Adapter::Postgres(pg) = &rig.adapter else {
        unreachable!()
    };
    let projector = Projector::spawn(rig.store.clone(), rig.models.clone(), Duration::from_millis(20));
    for round in 0..3 {
        rig.store
            .append("service/a", ExpectedVersion::Any, vec![new(forecast("a", round))])
            .await
            .unwrap();
        // Every other session of this database is cut off, the projector's included.
        let admin = sqlx::PgPool::connect(&events::testing::admin_url()).await.unwrap();
        let db: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(pg.pool())
            .await
            .unwrap();
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(db)
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
    }
    let head = rig.store.head().await.unwrap();
    assert!(
        projector.wait_for(head, Duration::from_secs(30)).await,
        "caught up after the connections came back"
    );
    assert!(
        docs(rig.models.as_ref(), "dead_letters", "position").await.is_empty(),
        "a lost connection never dead-letters"
    );
}
