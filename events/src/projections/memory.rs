//! In-memory read models, for unit and property tests of the projection logic.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

use super::{DocQuery, OpKind, RELAY_PREFIX, ReadModelStore, RowOp, Val, project};
use crate::envelope::RecordedEvent;
use crate::error::StoreError;

type Row = (BTreeMap<&'static str, Val>, Value);
/// Tables by name, each an ordered map from key to row.
pub type Tables = HashMap<&'static str, BTreeMap<String, Row>>;

/// Tables as ordered maps from key to (columns, document).
#[derive(Default)]
pub struct MemoryReadModels {
    inner: Mutex<(HashMap<String, u64>, Tables)>,
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

#[async_trait]
impl ReadModelStore for MemoryReadModels {
    async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError> {
        let g = self.inner.lock().expect("poisoned");
        Ok(g.0.get(projection).copied().unwrap_or(0))
    }

    async fn apply(&self, projection: &str, events: &[RecordedEvent]) -> Result<u64, StoreError> {
        let mut g = self.inner.lock().expect("poisoned");
        let (checkpoints, tables) = &mut *g;
        let mut pos = checkpoints.get(projection).copied().unwrap_or(0);
        let start = pos;
        for e in events.iter().filter(|e| e.position > start) {
            for op in project(e) {
                apply_op(tables, &op);
            }
            pos = e.position;
        }
        checkpoints.insert(projection.to_string(), pos);
        Ok(pos)
    }

    async fn advance(&self, name: &str, position: u64) -> Result<(), StoreError> {
        let mut g = self.inner.lock().expect("poisoned");
        let p = g.0.entry(name.to_string()).or_insert(0);
        *p = (*p).max(position);
        Ok(())
    }

    async fn reset(&self) -> Result<(), StoreError> {
        let mut g = self.inner.lock().expect("poisoned");
        g.0.retain(|name, _| name.starts_with(RELAY_PREFIX));
        g.1.clear();
        Ok(())
    }

    async fn query(&self, q: &DocQuery) -> Result<Vec<Value>, StoreError> {
        let g = self.inner.lock().expect("poisoned");
        let Some(table) = g.1.get(q.table) else {
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
        Ok(rows
            .into_iter()
            .skip(q.offset.max(0) as usize)
            .take(q.limit.max(0) as usize)
            .map(|(_, d)| d.clone())
            .collect())
    }
}
