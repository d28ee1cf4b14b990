//! In-memory read models, for unit and property tests of the projection logic.
//!
//! Same semantics as the database adapters, shadow rebuild and retention included, and
//! it can be told to fail ([`MemoryReadModels::fail_on`]) to test the projector's error policy.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{DocQuery, OpKind, RELAY_PREFIX, ReadModelStore, RowOp, Val, after_checkpoint, docless_columns, project};
use crate::envelope::RecordedEvent;
use crate::error::StoreError;
use crate::store::EventStore;

type Row = (BTreeMap<&'static str, Val>, Value);
/// Tables by name, each an ordered map from key to row.
pub type Tables = HashMap<&'static str, BTreeMap<String, Row>>;

/// Decides, for one row operation, whether it fails and with which error.
pub type FailRule = Box<dyn Fn(&RowOp) -> Option<StoreError> + Send + Sync>;

#[derive(Default)]
struct State {
    checkpoints: HashMap<String, u64>,
    tables: Tables,
    /// The shadow copy of a rebuild under way, with its checkpoint.
    shadow: Option<(u64, Tables)>,
}

/// Tables as ordered maps from key to (columns, document).
#[derive(Default)]
pub struct MemoryReadModels {
    inner: Mutex<State>,
    fail: Mutex<Option<FailRule>>,
}

fn key_string(key: &[(&'static str, Val)]) -> String {
    format!("{key:?}")
}

fn merge(doc: &mut Value, patch: &Value) {
    if let (Some(d), Some(p)) = (doc.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            d.insert(k.clone(), v.clone());
        }
    }
}

/// Applies one row operation to in-memory tables, with the adapters' semantics.
pub fn apply_op(tables: &mut Tables, op: &RowOp) {
    let table = tables.entry(op.table).or_default();
    let k = key_string(&op.key);
    match op.kind {
        OpKind::Insert => {
            table.entry(k).or_insert_with(|| {
                let cols = op.key.iter().chain(&op.cols).cloned().collect();
                (cols, op.doc.clone())
            });
        }
        OpKind::Replace => {
            let cols = op.key.iter().chain(&op.cols).cloned().collect();
            table.insert(k, (cols, op.doc.clone()));
        }
        OpKind::Patch => {
            if let Some((cols, doc)) = table.get_mut(&k) {
                cols.extend(op.cols.iter().cloned());
                merge(doc, &op.doc);
            }
        }
    }
}

fn cmp_val(a: Option<&Val>, b: Option<&Val>) -> std::cmp::Ordering {
    use Val::*;
    match (a, b) {
        (Some(Text(a)), Some(Text(b))) => a.cmp(b),
        (Some(Int(a)), Some(Int(b))) => a.cmp(b),
        (Some(Float(a)), Some(Float(b))) => a.total_cmp(b),
        (Some(Time(a)), Some(Time(b))) => a.cmp(b),
        (Some(Uuid(a)), Some(Uuid(b))) => a.cmp(b),
        (Some(Bool(a)), Some(Bool(b))) => a.cmp(b),
        (a, b) => a.is_some().cmp(&b.is_some()),
    }
}

fn val_json(v: &Val) -> Value {
    match v {
        Val::Text(s) => Value::from(s.clone()),
        Val::Int(i) => Value::from(*i),
        Val::Float(f) => Value::from(*f),
        Val::Bool(b) => Value::from(*b),
        Val::Time(t) => serde_json::json!(t),
        Val::Uuid(u) => serde_json::json!(u),
    }
}

impl MemoryReadModels {
    /// Makes row operations fail with the error `rule` returns for them (None: succeed);
    /// `None` clears the rule. A failing batch changes nothing, as a rolled-back transaction.
    pub fn fail_on(&self, rule: Option<FailRule>) {
        *self.fail.lock().expect("poisoned") = rule;
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().expect("poisoned")
    }

    /// Applies the events after `checkpoint` to a copy of `tables`; the copy replaces
    /// them only when every operation succeeded. Returns the new checkpoint.
    fn apply_to(&self, tables: &mut Tables, checkpoint: u64, events: &[RecordedEvent]) -> Result<u64, StoreError> {
        let fresh = after_checkpoint(events, checkpoint)?;
        let Some(last) = fresh.last() else {
            return Ok(checkpoint);
        };
        let fail = self.fail.lock().expect("poisoned");
        let mut staged = tables.clone();
        for e in fresh {
            for op in project(e) {
                if let Some(err) = fail.as_ref().and_then(|rule| rule(&op)) {
                    return Err(err);
                }
                apply_op(&mut staged, &op);
            }
        }
        *tables = staged;
        Ok(last.position)
    }
}

#[async_trait]
impl ReadModelStore for MemoryReadModels {
    async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError> {
        Ok(self.state().checkpoints.get(projection).copied().unwrap_or(0))
    }

    async fn apply(&self, projection: &str, events: &[RecordedEvent]) -> Result<u64, StoreError> {
        let mut g = self.state();
        let State {
            checkpoints, tables, ..
        } = &mut *g;
        let pos = self.apply_to(tables, checkpoints.get(projection).copied().unwrap_or(0), events)?;
        checkpoints.insert(projection.to_string(), pos);
        Ok(pos)
    }

    async fn advance(&self, name: &str, position: u64) -> Result<(), StoreError> {
        let mut g = self.state();
        let p = g.checkpoints.entry(name.to_string()).or_insert(0);
        *p = (*p).max(position);
        Ok(())
    }

    async fn reset(&self) -> Result<(), StoreError> {
        let mut g = self.state();
        g.checkpoints.retain(|name, _| name.starts_with(RELAY_PREFIX));
        g.tables.clear();
        Ok(())
    }

    async fn query(&self, q: &DocQuery) -> Result<Vec<Value>, StoreError> {
        let g = self.state();
        let Some(table) = g.tables.get(q.table) else {
            return Ok(Vec::new());
        };
        let mut rows: Vec<&Row> = table
            .values()
            .filter(|(cols, _)| q.filters.iter().all(|(c, v)| cols.get(c) == Some(v)))
            .collect();
        rows.sort_by(|a, b| {
            let o = cmp_val(a.0.get(q.order_by), b.0.get(q.order_by));
            if q.descending { o.reverse() } else { o }
        });
        let docless = docless_columns(q.table);
        Ok(rows
            .into_iter()
            .skip(q.offset.max(0) as usize)
            .take(q.limit.max(0) as usize)
            .map(|(cols, d)| match docless {
                Some(names) => names
                    .iter()
                    .map(|n| (n.to_string(), cols.get(n).map(val_json).unwrap_or(Value::Null)))
                    .collect::<serde_json::Map<_, _>>()
                    .into(),
                None => d.clone(),
            })
            .collect())
    }

    async fn apply_retention(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut g = self.state();
        let mut deleted = 0;
        for table in ["predictions", "prediction_points"] {
            if let Some(rows) = g.tables.get_mut(table) {
                let n = rows.len();
                rows.retain(|_, (cols, _)| !matches!(cols.get("origin"), Some(Val::Time(t)) if *t < before));
                deleted += (n - rows.len()) as u64;
            }
        }
        Ok(deleted)
    }

    async fn shadow_begin(&self) -> Result<u64, StoreError> {
        self.state().shadow = Some((0, Tables::new()));
        Ok(0)
    }

    async fn shadow_apply(&self, events: &[RecordedEvent]) -> Result<u64, StoreError> {
        let mut g = self.state();
        let (checkpoint, tables) = g
            .shadow
            .as_mut()
            .ok_or_else(|| StoreError::Invalid("no rebuild under way (shadow_begin first)".into()))?;
        *checkpoint = self.apply_to(tables, *checkpoint, events)?;
        Ok(*checkpoint)
    }

    async fn shadow_swap(&self, store: &dyn EventStore) -> Result<u64, StoreError> {
        // The tail is read before taking the lock (the store may be slow); the swap itself
        // is one critical section, as the database adapters' one transaction.
        let mut from = self.state().shadow.as_ref().map(|s| s.0).unwrap_or(0);
        let mut tail = Vec::new();
        loop {
            let batch = store.read_all(from, 500).await?;
            let Some(last) = batch.last() else { break };
            from = last.position;
            tail.extend(batch);
        }
        let mut g = self.state();
        let (mut checkpoint, mut tables) = g
            .shadow
            .take()
            .ok_or_else(|| StoreError::Invalid("no rebuild under way (shadow_begin first)".into()))?;
        match self.apply_to(&mut tables, checkpoint, &tail) {
            Ok(p) => checkpoint = p,
            Err(e) => {
                g.shadow = Some((checkpoint, tables));
                return Err(e);
            }
        }
        g.tables = tables;
        g.checkpoints.insert(super::PROJECTION.to_string(), checkpoint);
        Ok(checkpoint)
    }

    async fn shadow_discard(&self) -> Result<(), StoreError> {
        self.state().shadow = None;
        Ok(())
    }
}
