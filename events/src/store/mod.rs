//! The event store port: append with an expected version, read, subscribe.

pub mod memory;
pub mod postgres;
mod sql;
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
    /// Global position of the last appended event (of the log's head before it, for an
    /// append of no events).
    pub position: u64,
}

/// Events to append to one stream, if it is at `expected`; one part of [`EventStore::append_many`].
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

impl StreamAppend {
    pub fn new(stream: impl Into<String>, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        StreamAppend {
            stream: stream.into(),
            expected,
            events,
        }
    }
}

/// An append-only event log.
///
/// Contract (checked for every adapter by `tests/contract.rs`):
/// - an append is atomic: all its events or none, across every stream of an
///   [`EventStore::append_many`];
/// - nothing non-finite and nothing [`crate::vocabulary::Event::Malformed`] is ever
///   appended: such an event refuses the whole append with [`StoreError::Invalid`],
///   naming the field;
/// - positions are gap-free and increase in commit order, so a reader that has
///   seen position `p` has seen every event before it;
/// - of two appends to one stream with the same expected version exactly one
///   succeeds and the other gets [`StoreError::Conflict`];
/// - every event belongs to a service or to none: the payload's top-level `service`,
///   else the service of its stream's first event (a decision stream belongs to the
///   decision's service), set when it is appended and read back by [`EventStore::read_service`];
/// - events are returned upcast to their current schema version, and a stored event
///   that cannot be decoded is returned as `Event::Malformed`, never as an error.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends to several streams in one transaction: every stream must be at its
    /// expected version, or nothing is appended ([`StoreError::Conflict`] names the first
    /// that is not). Positions follow the order given; one [`Appended`] per part. A
    /// stream may appear more than once: a later part sees the versions of the earlier.
    async fn append_many(&self, appends: Vec<StreamAppend>) -> Result<Vec<Appended>, StoreError>;

    /// Appends `events` to `stream` if it is at `expected`.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        let mut done = self
            .append_many(vec![StreamAppend::new(stream, expected, events)])
            .await?;
        Ok(done.pop().expect("one part appended, one result"))
    }

    /// Events of one stream with version > `after_version`, oldest first.
    async fn read_stream(&self, stream: &str, after_version: u64) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events of one stream with version > `after_version`, oldest first.
    async fn read_stream_page(
        &self,
        stream: &str,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events of one service (see the contract) with position >
    /// `after_position`, in position order; an index read, never a scan of the log.
    async fn read_service(
        &self,
        service: &str,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events with position > `after`, oldest first.
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Position of the newest event (0 when the log is empty).
    async fn head(&self) -> Result<u64, StoreError>;

    /// Signals every local append; used by subscriptions to wake without polling.
    fn head_watch(&self) -> watch::Receiver<u64>;

    /// Keeps `state` as the snapshot `key` folded up to log position `position`,
    /// unless the snapshot kept is of a later position (a snapshot never moves back).
    /// Snapshots are not read models: a rebuild keeps them.
    async fn save_snapshot(&self, key: &str, position: u64, state: serde_json::Value) -> Result<(), StoreError>;

    /// The snapshot `key` and the position it was folded up to, if there is one.
    async fn load_snapshot(&self, key: &str) -> Result<Option<(u64, serde_json::Value)>, StoreError>;

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

/// Checks every part of an append before anything is written: stream names, the events
/// themselves ([`NewEvent::check`]) and event ids unique within the call.
pub(crate) fn check_appends(appends: &[StreamAppend]) -> Result<(), StoreError> {
    let mut ids = std::collections::HashSet::new();
    for a in appends {
        validate_stream(&a.stream)?;
        for (i, e) in a.events.iter().enumerate() {
            e.check()
                .map_err(|err| StoreError::Invalid(format!("stream `{}`, event {i}: {}", a.stream, inner(err))))?;
            if !ids.insert(e.metadata.event_id) {
                return Err(StoreError::Invalid(format!(
                    "event id {} appears twice in one append",
                    e.metadata.event_id
                )));
            }
        }
    }
    Ok(())
}

fn inner(e: StoreError) -> String {
    match e {
        StoreError::Invalid(m) => m,
        other => other.to_string(),
    }
}

/// The service an event belongs to: its payload's top-level `service`, else its
/// stream's (the service of the stream's first event).
pub(crate) fn service_of(payload: &serde_json::Value, stream_service: Option<&str>) -> Option<String> {
    match payload.get("service") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        _ => stream_service.map(str::to_string),
    }
}

/// An event as it is written: its payload serialized once and the service it belongs to.
pub(crate) struct EventRow<'a> {
    pub event: &'a NewEvent,
    pub stream: &'a str,
    pub version: u64,
    pub position: u64,
    pub payload: serde_json::Value,
    pub service: Option<String>,
}

/// An append laid out: the rows to write, one result per part, the head after it.
pub(crate) struct Plan<'a> {
    pub rows: Vec<EventRow<'a>>,
    pub done: Vec<Appended>,
    pub head: u64,
}

/// The distinct streams of an append, in first-seen order.
pub(crate) fn streams_of(appends: &[StreamAppend]) -> Vec<&str> {
    let mut seen = std::collections::HashSet::new();
    appends
        .iter()
        .map(|a| a.stream.as_str())
        .filter(|s| seen.insert(*s))
        .collect()
}

/// Checks every part's expected version and lays out its rows, given the log's head and
/// each stream's version and service (of its first event) before the append. A stream
/// that appears twice sees the versions its earlier part takes.
pub(crate) fn plan<'a>(
    appends: &'a [StreamAppend],
    mut head: u64,
    mut streams: std::collections::HashMap<&'a str, (u64, Option<String>)>,
) -> Result<Plan<'a>, StoreError> {
    let mut rows = Vec::new();
    let mut done = Vec::with_capacity(appends.len());
    for part in appends {
        let (mut version, mut stream_service) = streams.remove(part.stream.as_str()).unwrap_or_default();
        part.expected.check(&part.stream, version)?;
        for event in &part.events {
            let payload = event.event.payload();
            let service = service_of(&payload, stream_service.as_deref());
            if version == 0 {
                stream_service = service.clone();
            }
            version += 1;
            head += 1;
            rows.push(EventRow {
                event,
                stream: &part.stream,
                version,
                position: head,
                payload,
                service,
            });
        }
        done.push(Appended {
            version,
            position: head,
        });
        streams.insert(&part.stream, (version, stream_service));
    }
    Ok(Plan { rows, done, head })
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
