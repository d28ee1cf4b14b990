//! Runs the projection: catch up from the checkpoint, follow the log, rebuild.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;

use super::ReadModelStore;
use crate::error::StoreError;
use crate::store::{EventStore, subscribe};

/// The name under which the read models keep their checkpoint.
pub const PROJECTION: &str = "read_models";

const BATCH: usize = 500;

/// Applies every event after the checkpoint; returns the checkpoint reached.
pub async fn catch_up(store: &dyn EventStore, models: &dyn ReadModelStore) -> Result<u64, StoreError> {
    let mut pos = models.checkpoint(PROJECTION).await?;
    loop {
        let batch = store.read_all(pos, BATCH).await?;
        if batch.is_empty() {
            return Ok(pos);
        }
        pos = models.apply(PROJECTION, &batch).await?;
    }
}

/// Drops every read model and rebuilds it from the whole log.
pub async fn rebuild(store: &dyn EventStore, models: &dyn ReadModelStore) -> Result<u64, StoreError> {
    models.reset().await?;
    catch_up(store, models).await
}

/// A background task that keeps the read models caught up with the log.
pub struct Projector {
    checkpoint: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Projector {
    /// Catches up, then follows appends; the checkpoint is published on a watch.
    pub fn spawn(store: Arc<dyn EventStore>, models: Arc<dyn ReadModelStore>, poll: Duration) -> Self {
        let (tx, rx) = watch::channel(0u64);
        let task = tokio::spawn(async move {
            loop {
                match Self::follow(store.clone(), models.clone(), poll, &tx).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::error!(error = %e, "projection failed; retrying");
                        tokio::time::sleep(poll).await;
                    }
                }
            }
        });
        Projector { checkpoint: rx, task }
    }

    async fn follow(
        store: Arc<dyn EventStore>,
        models: Arc<dyn ReadModelStore>,
        poll: Duration,
        tx: &watch::Sender<u64>,
    ) -> Result<(), StoreError> {
        let start = catch_up(store.as_ref(), models.as_ref()).await?;
        tx.send_replace(start);
        let events = subscribe(store.clone(), start, poll);
        let mut chunks = std::pin::pin!(events.ready_chunks(BATCH));
        while let Some(chunk) = chunks.next().await {
            let batch = chunk.into_iter().collect::<Result<Vec<_>, _>>()?;
            let pos = models.apply(PROJECTION, &batch).await?;
            tx.send_replace(pos);
        }
        Ok(())
    }

    /// The position the read models have reached.
    pub fn checkpoint(&self) -> u64 {
        *self.checkpoint.borrow()
    }

    /// Waits until the read models have applied `position` (or the timeout passes).
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut rx = self.checkpoint.clone();
        tokio::time::timeout(timeout, rx.wait_for(|p| *p >= position))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl Drop for Projector {
    fn drop(&mut self) {
        self.task.abort();
    }
}
