//! Folding an actor's state from the log: the latest snapshot of it, then the service's
//! events after the snapshot's position (an indexed, bounded read — never a scan of the
//! global log); and the journal that folds what a handler appended, even when it fails
//! half-way.

use std::cell::RefCell;
use std::rc::Rc;

use events::{Event, EventStore, ExpectedVersion, Metadata, NewEvent, StoreError, StreamAppend};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::messages::Appended;

/// State built by applying a service's events in log order.
pub trait Fold: Default + Clone + Serialize + DeserializeOwned + 'static {
    /// Applies one event of the service at its log position.
    fn apply(&mut self, event: &Event, meta: &Metadata, position: u64);
    /// Position of the last event applied.
    fn position(&self) -> u64;
}

impl Fold for crate::decision::DecisionState {
    fn apply(&mut self, event: &Event, meta: &Metadata, position: u64) {
        crate::decision::DecisionState::apply(self, event, meta, position)
    }
    fn position(&self) -> u64 {
        self.position
    }
}

impl Fold for crate::execution::ExecutionState {
    fn apply(&mut self, event: &Event, meta: &Metadata, position: u64) {
        crate::execution::ExecutionState::apply(self, event, meta, position)
    }
    fn position(&self) -> u64 {
        self.position
    }
}

/// Events read per page while folding.
const PAGE: usize = 1000;

/// The snapshot key of one concern's state of one service.
pub fn snapshot_key(concern: &str, service: &str) -> String {
    format!("{concern}/{service}")
}

/// The state of `key` for `service`: its snapshot (if any and readable) and every event of
/// the service after it.
pub async fn fold<S: Fold>(store: &dyn EventStore, key: &str, service: &str) -> Result<S, StoreError> {
    let mut state: S = match store.load_snapshot(key).await? {
        Some((_, doc)) => serde_json::from_value(doc).unwrap_or_else(|e| {
            tracing::warn!(%key, error = %e, "snapshot unreadable; folding from the start of the service's events");
            S::default()
        }),
        None => S::default(),
    };
    let mut after = state.position();
    loop {
        let page = store.read_service(service, after, PAGE).await?;
        for e in &page {
            state.apply(&e.event, &e.metadata, e.position);
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = last.position,
            _ => return Ok(state),
        }
    }
}

/// Decides when to save a snapshot: after `every` events folded since the last one.
#[derive(Debug, Default)]
pub struct Snapshots {
    folded: u64,
}

impl Snapshots {
    /// `n` more events were folded into the state.
    pub fn folded(&mut self, n: u64) {
        self.folded += n;
    }

    /// The snapshot to write now (position, document), if one is due.
    pub fn due<S: Fold>(&mut self, state: &S, every: u64) -> Option<(u64, serde_json::Value)> {
        if self.folded < every.max(1) {
            return None;
        }
        let doc = serde_json::to_value(state).ok()?;
        self.folded = 0;
        Some((state.position(), doc))
    }
}

/// Appends and remembers what was appended, so that a handler that fails after some
/// appends still folds those into its state (nothing acknowledged by the store is lost).
#[derive(Debug, Clone, Default)]
pub struct Journal(Rc<RefCell<Vec<Appended>>>);

impl Journal {
    /// Appends `events` to `stream` and journals them.
    pub async fn append(
        &self,
        store: &dyn EventStore,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<u64, StoreError> {
        self.append_many(
            store,
            vec![StreamAppend {
                stream: stream.to_string(),
                expected,
                events,
            }],
        )
        .await
    }

    /// Appends to several streams at once (all or nothing) and journals the events; returns
    /// the position of the last one.
    pub async fn append_many(&self, store: &dyn EventStore, appends: Vec<StreamAppend>) -> Result<u64, StoreError> {
        let batches: Vec<Vec<NewEvent>> = appends.iter().map(|a| a.events.clone()).collect();
        let done = store.append_many(appends).await?;
        let mut j = self.0.borrow_mut();
        for (batch, at) in batches.into_iter().zip(&done) {
            let n = batch.len() as u64;
            for (i, e) in batch.into_iter().enumerate() {
                j.push(Appended {
                    event: e.event,
                    metadata: e.metadata,
                    position: at.position + 1 + i as u64 - n,
                });
            }
        }
        Ok(done.last().map_or(0, |a| a.position))
    }

    /// Adds events appended elsewhere (by another actor of the service).
    pub fn extend(&self, appended: Vec<Appended>) {
        self.0.borrow_mut().extend(appended);
    }

    /// Everything journaled, in append order.
    pub fn take(&self) -> Vec<Appended> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}
