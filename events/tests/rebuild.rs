//! A rebuild never leaves the read models emptied: it fills shadow tables and swaps them
//! in only on success. Read-model retention drops old forecast rows, which a rebuild
//! restores from the log. On every adapter.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use events::projections::{PROJECTION, Projector, catch_up, rebuild};
use events::store::StreamAppend;
use events::{Appended, EventStore, ExpectedVersion, RecordedEvent, StoreError};
use tokio::sync::watch;

mod common;
use common::{Rig, docs, dump, forecast, new, some_history, t};

/// A log that fails reads once `budget` events have been read through it.
struct FailingAfter {
    inner: Arc<dyn EventStore>,
    budget: AtomicU64,
}

#[async_trait]
impl EventStore for FailingAfter {
    async fn append_many(&self, appends: Vec<StreamAppend>) -> Result<Vec<Appended>, StoreError> {
        self.inner.append_many(appends).await
    }
    async fn read_stream(&self, stream: &str, after: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, after).await
    }
    async fn read_stream_page(&self, stream: &str, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream_page(stream, after, limit).await
    }
    async fn read_service(&self, service: &str, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_service(service, after, limit).await
    }
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let budget = self.budget.load(Ordering::SeqCst);
        if budget == 0 {
            return Err(StoreError::Invalid("injected: the log went away mid-rebuild".into()));
        }
        let batch = self.inner.read_all(after, limit.min(budget as usize)).await?;
        self.budget.fetch_sub(batch.len() as u64, Ordering::SeqCst);
        Ok(batch)
    }
    async fn head(&self) -> Result<u64, StoreError> {
        self.inner.head().await
    }
    fn head_watch(&self) -> watch::Receiver<u64> {
        self.inner.head_watch()
    }
    async fn save_snapshot(&self, key: &str, position: u64, state: serde_json::Value) -> Result<(), StoreError> {
        self.inner.save_snapshot(key, position, state).await
    }
    async fn load_snapshot(&self, key: &str) -> Result<Option<(u64, serde_json::Value)>, StoreError> {
        self.inner.load_snapshot(key).await
    }
}

async fn a_failed_rebuild_leaves_the_live_read_models_intact(rig: Rig) {
    let (store, models) = (rig.store.as_ref(), rig.models.as_ref());
    some_history(store).await;
    for i in 0..4 {
        store
            .append("service/web", ExpectedVersion::Any, vec![new(forecast("web", 60 + i))])
            .await
            .unwrap();
    }
    let head = catch_up(store, models).await.unwrap();
    models.advance("relay:kafka", 3).await.unwrap();
    store
        .save_snapshot("decision/checkout", 4, serde_json::json!({"n": 1}))
        .await
        .unwrap();
    let live = dump(models).await;
    assert!(live.len() > 15, "there is something to lose");
    for budget in [0, 3, 7] {
        let failing = FailingAfter {
            inner: rig.store.clone(),
            budget: AtomicU64::new(budget),
        };
        let err = rebuild(&failing, models).await.unwrap_err();
        assert!(err.to_string().contains("injected"), "{err}");
        assert_eq!(dump(models).await, live, "after a rebuild failed at event {budget}");
        assert_eq!(models.checkpoint(PROJECTION).await.unwrap(), head);
        assert!(rig.shadow_tables().await.is_empty(), "{:?}", rig.shadow_tables().await);
    }
    // The read models keep working after the failed rebuilds, and a good one gives the same.
    store
        .append("service/web", ExpectedVersion::Any, vec![new(forecast("web", 90))])
        .await
        .unwrap();
    assert_eq!(catch_up(store, models).await.unwrap(), head + 1);
    let live = dump(models).await;
    assert_eq!(rebuild(store, models).await.unwrap(), head + 1);
    assert_eq!(dump(models).await, live);
    assert!(rig.shadow_tables().await.is_empty());
    // Relay checkpoints and snapshots are not read models: a rebuild keeps them.
    assert_eq!(models.checkpoint("relay:kafka").await.unwrap(), 3);
    assert_eq!(store.load_snapshot("decision/checkout").await.unwrap().unwrap().0, 4);
    // A second rebuild over the swapped tables works too (their indexes and keys came along).
    assert_eq!(rebuild(store, models).await.unwrap(), head + 1);
    assert_eq!(dump(models).await, live);
}

async fn a_rebuild_beside_the_live_projection_loses_nothing(rig: Rig) {
    some_history(rig.store.as_ref()).await;
    let projector = Projector::spawn(rig.store.clone(), rig.models.clone(), Duration::from_millis(20));
    let writer = rig.store.clone();
    let appends = tokio::spawn(async move {
        for i in 0..40 {
            writer
                .append("service/web", ExpectedVersion::Any, vec![new(forecast("web", i))])
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    for _ in 0..3 {
        rebuild(rig.store.as_ref(), rig.models.as_ref()).await.unwrap();
    }
    appends.await.unwrap();
    let head = rig.store.head().await.unwrap();
    assert!(projector.wait_for(head, Duration::from_secs(30)).await);
    drop(projector);
    let live = dump(rig.models.as_ref()).await;
    rebuild(rig.store.as_ref(), rig.models.as_ref()).await.unwrap();
    assert_eq!(
        dump(rig.models.as_ref()).await,
        live,
        "every event reached the read models once"
    );
    assert_eq!(docs(rig.models.as_ref(), "prediction_points", "at").await.len(), 2 * 42);
}

async fn retention_drops_old_forecast_rows_that_a_rebuild_restores(rig: Rig) {
    let (store, models) = (rig.store.as_ref(), rig.models.as_ref());
    for origin in [0, 60, 120, 180] {
        store
            .append("service/a", ExpectedVersion::Any, vec![new(forecast("a", origin))])
            .await
            .unwrap();
    }
    catch_up(store, models).await.unwrap();
    let full = dump(models).await;
    // Before minute 120: two forecasts of two points each.
    assert_eq!(models.apply_retention(t(120)).await.unwrap(), 2 + 4);
    let origins: Vec<_> = docs(models, "predictions", "origin")
        .await
        .iter()
        .map(|d| d["origin"].clone())
        .collect();
    assert_eq!(origins, vec![serde_json::json!(t(120)), serde_json::json!(t(180))]);
    assert_eq!(docs(models, "prediction_points", "at").await.len(), 4);
    assert_eq!(
        docs(models, "current_predictions", "service").await.len(),
        1,
        "the current forecast stays"
    );
    assert_eq!(models.apply_retention(t(120)).await.unwrap(), 0);
    rebuild(store, models).await.unwrap();
    assert_eq!(dump(models).await, full, "the log restores what retention dropped");
}

async fn documents_do_not_repeat_their_columns(rig: Rig) {
    let (store, models) = (rig.store.as_ref(), rig.models.as_ref());
    let id = some_history(store).await;
    catch_up(store, models).await.unwrap();
    let predictions = docs(models, "predictions", "origin").await;
    assert!(predictions[0].get("points").is_none(), "{}", predictions[0]);
    assert_eq!(predictions[0]["steps"], 2);
    let current = docs(models, "current_predictions", "service").await;
    assert_eq!(
        current[0]["points"].as_array().unwrap().len(),
        2,
        "the API serves the whole current forecast"
    );
    let points = docs(models, "prediction_points", "at").await;
    assert_eq!(points.len(), 4);
    assert_eq!(points[0]["service"], "checkout");
    assert_eq!(points[0]["p50"], 2.0);
    let decisions = docs(models, "scaling_decisions", "proposed_at").await;
    assert_eq!(decisions[0]["decision_id"], serde_json::json!(id));
    assert!(decisions[0].get("inputs").is_none(), "the inputs stay in the log");
    assert_eq!(decisions[0]["target"]["replicas"], 6);
}

each_adapter!(
    a_failed_rebuild_leaves_the_live_read_models_intact,
    a_rebuild_beside_the_live_projection_loses_nothing,
    retention_drops_old_forecast_rows_that_a_rebuild_restores,
    documents_do_not_repeat_their_columns,
);
