//! An in-memory event store for unit tests and property tests.

use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::watch;

use super::{Appended, EventStore, ExpectedVersion};
use crate::envelope::{NewEvent, RecordedEvent};
use crate::error::StoreError;

/// Keeps the log in a vector; same contract as the database adapters.
pub struct MemoryStore {
    log: Mutex<Vec<RecordedEvent>>,
    head: watch::Sender<u64>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            log: Mutex::new(Vec::new()),
            head: watch::channel(0).0,
        }
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        super::validate_stream(stream)?;
        let mut log = self.log.lock().expect("memory store poisoned");
        let current = log.iter().filter(|e| e.stream == stream).count() as u64;
        expected.check(stream, current)?;
        let mut ids = std::collections::HashSet::new();
        for e in &events {
            let id = e.metadata.event_id;
            if !ids.insert(id) || log.iter().any(|r| r.metadata.event_id == id) {
                return Err(StoreError::Invalid(format!("event id {id} is already in the log")));
            }
        }
        let mut version = current;
        for e in events {
            version += 1;
            let position = log.len() as u64 + 1;
            log.push(RecordedEvent {
                position,
                stream: stream.to_string(),
                version,
                stored_schema_version: e.event.schema_version(),
                event: e.event,
                metadata: e.metadata,
            });
        }
        let position = log.len() as u64;
        self.head.send_replace(position);
        Ok(Appended { version, position })
    }

    async fn read_stream(&self, stream: &str, after_version: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.log.lock().expect("memory store poisoned");
        Ok(log
            .iter()
            .filter(|e| e.stream == stream && e.version > after_version)
            .cloned()
            .collect())
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.log.lock().expect("memory store poisoned");
        Ok(log.iter().skip(after as usize).take(limit).cloned().collect())
    }

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(self.log.lock().expect("memory store poisoned").len() as u64)
    }

    fn head_watch(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }
}
