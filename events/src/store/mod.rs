//! The event store port: append with an expected version, read, subscribe.

pub mod memory;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;
use tokio::sync::watch;

use crate::envelope::{NewEvent, RecordedEvent};
use crate::error::StoreError;

/// What the writer believes the stream's version to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the version is.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be exactly at this version (0 = no events).
    Exact(u64),
}

impl ExpectedVersion {
    /// Checks the stream's actual version against this expectation.
    pub fn check(self, stream: &str, actual: u64) -> Result<(), StoreError> {
        let ok = match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(v) => v == actual,
        };
        if ok {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                stream: stream.to_string(),
                expected: match self {
                    ExpectedVersion::Any => "any".into(),
                    ExpectedVersion::NoStream => "no stream".into(),
                    ExpectedVersion::Exact(v) => v.to_string(),
                },
                actual,
            })
        }
    }
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The stream's version after the append.
    pub version: u64,
    /// Global position of the last appended event.
    pub position: u64,
}

/// An append-only event log.
///
/// Contract (checked for every adapter by `tests/contract.rs`):
/// - an append is atomic: all its events or none;
/// - positions are gap-free and increase in commit order, so a reader that has
///   seen position `p` has seen every event before it;
/// - of two appends to one stream with the same expected version exactly one
///   succeeds and the other gets [`StoreError::Conflict`];
/// - events are returned upcast to their current schema version.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` if it is at `expected`.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError>;

    /// Events of one stream with version > `after_version`, oldest first.
    async fn read_stream(&self, stream: &str, after_version: u64) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events with position > `after`, oldest first.
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Position of the newest event (0 when the log is empty).
    async fn head(&self) -> Result<u64, StoreError>;

    /// Signals every local append; used by subscriptions to wake without polling.
    fn head_watch(&self) -> watch::Receiver<u64>;

    /// Whether the store answers.
    async fn ping(&self) -> Result<(), StoreError> {
        self.head().await.map(|_| ())
    }
}

/// A subscription: catches up from a position, then follows new appends.
///
/// It wakes on local appends and also polls (every `poll`) so that appends
/// made by other processes sharing the database are seen too.
pub fn subscribe(
    store: Arc<dyn EventStore>,
    after: u64,
    poll: Duration,
) -> impl Stream<Item = Result<RecordedEvent, StoreError>> + Send {
    const BATCH: usize = 512;
    futures::stream::unfold(
        (
            store.clone(),
            after,
            std::collections::VecDeque::new(),
            store.head_watch(),
        ),
        move |(store, mut pos, mut buf, mut watch)| async move {
            loop {
                if let Some(e) = buf.pop_front() {
                    let e: RecordedEvent = e;
                    pos = e.position;
                    return Some((Ok(e), (store, pos, buf, watch)));
                }
                match store.read_all(pos, BATCH).await {
                    Ok(batch) if !batch.is_empty() => buf.extend(batch),
                    Ok(_) => {
                        watch.borrow_and_update();
                        let _ = tokio::time::timeout(poll, watch.changed()).await;
                    }
                    Err(e) => return Some((Err(e), (store, pos, buf, watch))),
                }
            }
        },
    )
}

/// Refuses stream names that would be ambiguous in the log.
pub(crate) fn validate_stream(stream: &str) -> Result<(), StoreError> {
    if stream.is_empty() || stream.len() > 200 || stream.chars().any(|c| c.is_control()) {
        return Err(StoreError::Invalid(format!(
            "stream name `{}` must be 1-200 printable characters",
            stream.escape_debug()
        )));
    }
    Ok(())
}
