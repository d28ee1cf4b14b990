//! Runs the projection: catch up from the checkpoint, follow the log, rebuild.
//!
//! Error policy: a batch that fails for good (the database refuses a row) is retried
//! event by event, and the event that fails is dead-lettered ([`dead_lettered`]) so the
//! projection goes on; a transient failure (connection lost, pool timeout, busy
//! database) is retried with backoff and never dead-letters anything.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;

use super::{DEAD_LETTERS_TOTAL, ReadModelStore, dead_lettered};
use crate::envelope::RecordedEvent;
use crate::error::StoreError;
use crate::store::{EventStore, subscribe};
use crate::vocabulary::Event;

/// The name under which the read models keep their checkpoint.
pub const PROJECTION: &str = "read_models";

const BATCH: usize = 500;

/// How many times a rebuild retries its final swap (a permanent failure there is an event
/// appended during the rebuild that the next shadow catch-up dead-letters).
const SWAP_TRIES: usize = 3;

/// Which copy of the read models a batch goes to.
#[derive(Clone, Copy)]
enum Target<'a> {
    Live(&'a str),
    Shadow,
}

impl Target<'_> {
    async fn apply(self, models: &dyn ReadModelStore, events: &[RecordedEvent]) -> Result<u64, StoreError> {
        match self {
            Target::Live(name) => models.apply(name, events).await,
            Target::Shadow => models.shadow_apply(events).await,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Target::Live(_) => "live",
            Target::Shadow => "rebuild",
        }
    }
}

/// Applies a batch; if the database refuses it for good, applies it event by event and
/// dead-letters the events it refuses. Transient errors are returned for the caller to retry.
async fn apply_batch(
    models: &dyn ReadModelStore,
    target: Target<'_>,
    checkpoint: u64,
    batch: &[RecordedEvent],
) -> Result<u64, StoreError> {
    let err = match target.apply(models, batch).await {
        Ok(pos) => {
            count_dead_letters(target, checkpoint, batch);
            return Ok(pos);
        }
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => e,
    };
    tracing::warn!(error = %err, events = batch.len(), "projection batch refused; applying event by event");
    let mut pos = checkpoint;
    for e in batch.iter().filter(|e| e.position > checkpoint) {
        pos = match target.apply(models, std::slice::from_ref(e)).await {
            Ok(p) => {
                count_dead_letters(target, pos, std::slice::from_ref(e));
                p
            }
            Err(err) if err.is_transient() => return Err(err),
            Err(err) => {
                tracing::error!(position = e.position, event_type = e.event.type_name(), error = %err,
                    "the read models refuse this event; dead-lettered");
                let p = target
                    .apply(models, &[dead_lettered(e, &format!("row operations refused: {err}"))])
                    .await?;
                metrics::counter!(DEAD_LETTERS_TOTAL, "projection" => target.label()).increment(1);
                p
            }
        };
    }
    Ok(pos)
}

/// Counts the malformed events a successful batch has just dead-lettered.
fn count_dead_letters(target: Target<'_>, checkpoint: u64, batch: &[RecordedEvent]) {
    let n = batch
        .iter()
        .filter(|e| e.position > checkpoint && matches!(e.event, Event::Malformed(_)))
        .inspect(|e| {
            tracing::error!(
                position = e.position,
                event_type = e.event.type_name(),
                "an event that does not decode was dead-lettered"
            )
        })
        .count();
    if n > 0 {
        metrics::counter!(DEAD_LETTERS_TOTAL, "projection" => target.label()).increment(n as u64);
    }
}

/// Applies every event after `pos` to `target`; returns the position reached.
async fn catch_up_from(
    store: &dyn EventStore,
    models: &dyn ReadModelStore,
    target: Target<'_>,
    mut pos: u64,
) -> Result<u64, StoreError> {
    loop {
        let batch = store.read_all(pos, BATCH).await?;
        if batch.is_empty() {
            return Ok(pos);
        }
        pos = apply_batch(models, target, pos, &batch).await?;
    }
}

/// Applies every event after the checkpoint; returns the checkpoint reached.
pub async fn catch_up(store: &dyn EventStore, models: &dyn ReadModelStore) -> Result<u64, StoreError> {
    let pos = models.checkpoint(PROJECTION).await?;
    catch_up_from(store, models, Target::Live(PROJECTION), pos).await
}

/// Rebuilds every read model from the whole log into shadow tables and swaps them in
/// only when they are complete; on failure the live read models and their checkpoint are
/// as they were. Returns the checkpoint of the rebuilt read models.
pub async fn rebuild(store: &dyn EventStore, models: &dyn ReadModelStore) -> Result<u64, StoreError> {
    let result = rebuild_shadow(store, models).await;
    if result.is_err()
        && let Err(e) = models.shadow_discard().await
    {
        tracing::warn!(error = %e, "could not drop the shadow read models of a failed rebuild");
    }
    result
}

async fn rebuild_shadow(store: &dyn EventStore, models: &dyn ReadModelStore) -> Result<u64, StoreError> {
    let mut pos = models.shadow_begin().await?;
    for attempt in 1..=SWAP_TRIES {
        pos = catch_up_from(store, models, Target::Shadow, pos).await?;
        match models.shadow_swap(store).await {
            Ok(done) => return Ok(done),
            Err(e) if attempt < SWAP_TRIES => {
                tracing::warn!(error = %e, attempt, "rebuild swap failed; catching up again")
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the last attempt returns")
}

/// A background task that keeps the read models caught up with the log.
pub struct Projector {
    checkpoint: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

/// Backoff after a failure: from `poll` (at least 50 ms), doubling, at most 30 s.
fn backoff(poll: Duration, failures: u32) -> Duration {
    let base = poll.max(Duration::from_millis(50));
    base.saturating_mul(1 << failures.min(10)).min(Duration::from_secs(30))
}

impl Projector {
    /// Catches up, then follows appends; the checkpoint is published on a watch. Failures
    /// are retried with backoff for ever (see the module's error policy).
    pub fn spawn(store: Arc<dyn EventStore>, models: Arc<dyn ReadModelStore>, poll: Duration) -> Self {
        let (tx, rx) = watch::channel(0u64);
        let task = tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                let before = *tx.borrow();
                match Self::follow(store.clone(), models.clone(), poll, &tx).await {
                    Ok(()) => return,
                    Err(e) => {
                        failures = if *tx.borrow() > before { 0 } else { failures + 1 };
                        let wait = backoff(poll, failures);
                        tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, "projection failed; retrying");
                        tokio::time::sleep(wait).await;
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
        let mut pos = start;
        while let Some(chunk) = chunks.next().await {
            let batch = chunk.into_iter().collect::<Result<Vec<_>, _>>()?;
            pos = apply_batch(models.as_ref(), Target::Live(PROJECTION), pos, &batch).await?;
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

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_up_to_a_ceiling() {
        let p = Duration::from_millis(100);
        assert_eq!(backoff(p, 0), Duration::from_millis(100));
        assert_eq!(backoff(p, 3), Duration::from_millis(800));
        assert_eq!(backoff(p, 40), Duration::from_secs(30));
    }
}
