//! An in-memory event store for unit tests and property tests.
//!
//! It keeps what a database keeps (type name, schema version, JSON payload) and decodes
//! on read, so upcasting and undecodable payloads behave as they do in SQL.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::watch;

use super::{Appended, EventStore, StreamAppend, check_appends, plan, streams_of, validate_stream};
use crate::envelope::{Metadata, RecordedEvent};
use crate::error::StoreError;
use crate::upcast;

/// One stored event, as a database row holds it.
#[derive(Debug, Clone)]
struct Stored {
    stream: String,
    version: u64,
    service: Option<String>,
    event_type: String,
    schema_version: i32,
    payload: serde_json::Value,
    metadata: Metadata,
}

impl Stored {
    fn decode(&self, position: u64) -> RecordedEvent {
        RecordedEvent {
            position,
            stream: self.stream.clone(),
            version: self.version,
            event: upcast::decode_or_malformed(&self.event_type, self.schema_version, self.payload.clone()),
            stored_schema_version: self.schema_version,
            metadata: self.metadata.clone(),
        }
    }
}

#[derive(Default)]
struct Log {
    /// Position `p` is `events[p - 1]`.
    events: Vec<Stored>,
    snapshots: HashMap<String, (u64, serde_json::Value)>,
}

impl Log {
    fn version(&self, stream: &str) -> u64 {
        self.events.iter().filter(|e| e.stream == stream).count() as u64
    }

    fn stream_service(&self, stream: &str) -> Option<String> {
        let first = self.events.iter().find(|e| e.stream == stream && e.version == 1);
        first.and_then(|e| e.service.clone())
    }

    fn select(&self, keep: impl Fn(&Stored) -> bool, after: u64, limit: usize) -> Vec<RecordedEvent> {
        self.events
            .iter()
            .enumerate()
            .skip(after as usize)
            .filter(|(_, e)| keep(e))
            .take(limit)
            .map(|(i, e)| e.decode(i as u64 + 1))
            .collect()
    }
}

/// Keeps the log in a vector; same contract as the database adapters.
pub struct MemoryStore {
    log: Mutex<Log>,
    head: watch::Sender<u64>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            log: Mutex::new(Log::default()),
            head: watch::channel(0).0,
        }
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().expect("memory store poisoned")
    }

    /// Stores a row as it is, without any check: what an older build may have written
    /// (tests of upcasting and of payloads that no longer decode). Returns its position.
    pub fn insert_raw(
        &self,
        stream: &str,
        event_type: &str,
        schema_version: i32,
        payload: serde_json::Value,
        metadata: Metadata,
    ) -> u64 {
        let mut log = self.log();
        let version = log.version(stream) + 1;
        let service = super::service_of(&payload, log.stream_service(stream).as_deref());
        log.events.push(Stored {
            stream: stream.to_string(),
            version,
            service,
            event_type: event_type.to_string(),
            schema_version,
            payload,
            metadata,
        });
        let head = log.events.len() as u64;
        self.head.send_replace(head);
        head
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append_many(&self, appends: Vec<StreamAppend>) -> Result<Vec<Appended>, StoreError> {
        check_appends(&appends)?;
        let mut log = self.log();
        let heads = streams_of(&appends)
            .into_iter()
            .map(|s| (s, (log.version(s), log.stream_service(s))))
            .collect();
        let plan = plan(&appends, log.events.len() as u64, heads)?;
        for row in &plan.rows {
            let id = row.event.metadata.event_id;
            if log.events.iter().any(|e| e.metadata.event_id == id) {
                return Err(StoreError::Invalid(format!("event id {id} is already in the log")));
            }
        }
        for row in plan.rows {
            log.events.push(Stored {
                stream: row.stream.to_string(),
                version: row.version,
                service: row.service,
                event_type: row.event.event.event_type().to_string(),
                schema_version: row.event.event.schema_version(),
                payload: row.payload,
                metadata: row.event.metadata.clone(),
            });
        }
        self.head.send_replace(plan.head);
        Ok(plan.done)
    }

    async fn read_stream(&self, stream: &str, after_version: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_stream_page(stream, after_version, usize::MAX).await
    }

    async fn read_stream_page(
        &self,
        stream: &str,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self
            .log()
            .select(|e| e.stream == stream && e.version > after_version, 0, limit))
    }

    async fn read_service(
        &self,
        service: &str,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self
            .log()
            .select(|e| e.service.as_deref() == Some(service), after_position, limit))
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self.log().select(|_| true, after, limit))
    }

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(self.log().events.len() as u64)
    }

    fn head_watch(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    async fn save_snapshot(&self, key: &str, position: u64, state: serde_json::Value) -> Result<(), StoreError> {
        validate_stream(key).map_err(|_| StoreError::Invalid(format!("snapshot key `{}`", key.escape_debug())))?;
        let mut log = self.log();
        match log.snapshots.get(key) {
            Some((kept, _)) if *kept > position => {}
            _ => {
                log.snapshots.insert(key.to_string(), (position, state));
            }
        }
        Ok(())
    }

    async fn load_snapshot(&self, key: &str) -> Result<Option<(u64, serde_json::Value)>, StoreError> {
        Ok(self.log().snapshots.get(key).cloned())
    }
}
