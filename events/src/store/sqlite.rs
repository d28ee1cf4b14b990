//! The SQLite adapter: the embedded default, one file, no server.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{AssertSqlSafe, Row};
use tokio::sync::watch;
use uuid::Uuid;

use super::{Appended, EventStore, ExpectedVersion, validate_stream};
use crate::envelope::{Metadata, NewEvent, RecordedEvent};
use crate::error::StoreError;
use crate::metrics::{Bucket, MetricSample, MetricStore, check_bucket, validate};
use crate::projections::{DocQuery, OpKind, ReadModelStore, RowOp, TABLES, Val, project};
use crate::time::{from_text, to_text};
use crate::upcast;

/// Event store, read models and metrics in one SQLite database.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    head: watch::Sender<u64>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or a
    /// plain path) and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let url = if url.starts_with("sqlite:") {
            url.to_string()
        } else {
            format!("sqlite://{url}")
        };
        let opts = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        let store = SqliteStore {
            pool,
            head: watch::channel(0).0,
        };
        let head = store.head().await?;
        store.head.send_replace(head);
        Ok(store)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn row_to_event(r: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    let event_type: String = r.try_get("event_type")?;
    let schema_version: i32 = r.try_get("schema_version")?;
    let payload: String = r.try_get("payload")?;
    let payload = serde_json::from_str(&payload).map_err(|e| StoreError::Payload {
        event_type: event_type.clone(),
        message: e.to_string(),
    })?;
    let uuid = |col: &str| -> Result<Uuid, StoreError> {
        let s: String = r.try_get(col)?;
        Uuid::parse_str(&s).map_err(|e| StoreError::Invalid(format!("stored {col} `{s}`: {e}")))
    };
    let causation: Option<String> = r.try_get("causation_id")?;
    Ok(RecordedEvent {
        position: r.try_get::<i64, _>("position")? as u64,
        stream: r.try_get("stream")?,
        version: r.try_get::<i64, _>("version")? as u64,
        event: upcast::decode(&event_type, schema_version, payload)?,
        stored_schema_version: schema_version,
        metadata: Metadata {
            event_id: uuid("event_id")?,
            correlation_id: uuid("correlation_id")?,
            causation_id: causation
                .map(|s| Uuid::parse_str(&s))
                .transpose()
                .map_err(|e| StoreError::Invalid(format!("stored causation_id: {e}")))?,
            caused_by: r.try_get("caused_by")?,
            recorded_at: from_text(&r.try_get::<String, _>("recorded_at")?)?,
        },
    })
}

fn conflict_or(e: sqlx::Error, stream: &str, expected: ExpectedVersion) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
            stream: stream.to_string(),
            expected: format!("{expected:?}"),
            actual: 0,
        },
        _ => StoreError::Database(e),
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        validate_stream(stream)?;
        // IMMEDIATE takes the write lock now, so the version read below cannot go stale.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let current: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?")
            .bind(stream)
            .fetch_one(&mut *tx)
            .await?;
        expected.check(stream, current as u64)?;
        let mut position: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
            .fetch_one(&mut *tx)
            .await?;
        let mut version = current;
        for e in &events {
            version += 1;
            position += 1;
            sqlx::query(
                "INSERT INTO events (position, stream, version, event_type, schema_version, payload, \
                 event_id, correlation_id, causation_id, caused_by, recorded_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(position)
            .bind(stream)
            .bind(version)
            .bind(e.event.event_type())
            .bind(e.event.schema_version())
            .bind(e.event.payload().to_string())
            .bind(e.metadata.event_id.to_string())
            .bind(e.metadata.correlation_id.to_string())
            .bind(e.metadata.causation_id.map(|c| c.to_string()))
            .bind(&e.metadata.caused_by)
            .bind(to_text(e.metadata.recorded_at))
            .execute(&mut *tx)
            .await
            .map_err(|err| conflict_or(err, stream, expected))?;
        }
        tx.commit().await?;
        self.head.send_replace(position as u64);
        Ok(Appended {
            version: version as u64,
            position: position as u64,
        })
    }

    async fn read_stream(&self, stream: &str, after_version: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query("SELECT * FROM events WHERE stream = ? AND version > ? ORDER BY version")
            .bind(stream)
            .bind(after_version as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_event).collect()
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query("SELECT * FROM events WHERE position > ? ORDER BY position LIMIT ?")
            .bind(after as i64)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_event).collect()
    }

    async fn head(&self) -> Result<u64, StoreError> {
        let h: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(h as u64)
    }

    fn head_watch(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

fn bind<'q>(q: SqliteQuery<'q>, v: &Val) -> SqliteQuery<'q> {
    match v {
        Val::Text(s) => q.bind(s.clone()),
        Val::Int(i) => q.bind(*i),
        Val::Float(f) => q.bind(*f),
        Val::Bool(b) => q.bind(*b),
        Val::Time(t) => q.bind(to_text(*t)),
        Val::Uuid(u) => q.bind(u.to_string()),
    }
}

/// The SQL of one row operation, with `?` placeholders in key, cols, doc order.
fn op_sql(op: &RowOp) -> String {
    let names: Vec<&str> = op.key.iter().chain(&op.cols).map(|(c, _)| *c).collect();
    let keys: Vec<&str> = op.key.iter().map(|(c, _)| *c).collect();
    match op.kind {
        OpKind::Insert | OpKind::Replace => {
            let conflict = if op.kind == OpKind::Insert {
                "DO NOTHING".to_string()
            } else {
                let sets: Vec<String> = op
                    .cols
                    .iter()
                    .map(|(c, _)| format!("{c} = excluded.{c}"))
                    .chain(["doc = excluded.doc".to_string()])
                    .collect();
                format!("DO UPDATE SET {}", sets.join(", "))
            };
            format!(
                "INSERT INTO {} ({}, doc) VALUES ({}) ON CONFLICT ({}) {conflict}",
                op.table,
                names.join(", "),
                vec!["?"; names.len() + 1].join(", "),
                keys.join(", "),
            )
        }
        OpKind::Patch => {
            let sets: Vec<String> = op.cols.iter().map(|(c, _)| format!("{c} = ?")).collect();
            let wheres: Vec<String> = keys.iter().map(|c| format!("{c} = ?")).collect();
            let sets = sets.into_iter().chain(["doc = json_patch(doc, ?)".to_string()]);
            format!(
                "UPDATE {} SET {} WHERE {}",
                op.table,
                sets.collect::<Vec<_>>().join(", "),
                wheres.join(" AND ")
            )
        }
    }
}

#[async_trait]
impl ReadModelStore for SqliteStore {
    async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError> {
        let p: Option<i64> = sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = ?")
            .bind(projection)
            .fetch_optional(&self.pool)
            .await?;
        Ok(p.unwrap_or(0) as u64)
    }

    async fn apply(&self, projection: &str, events: &[RecordedEvent]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let current: Option<i64> = sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = ?")
            .bind(projection)
            .fetch_optional(&mut *tx)
            .await?;
        let mut pos = current.unwrap_or(0) as u64;
        let start = pos;
        for e in events.iter().filter(|e| e.position > start) {
            for op in project(e) {
                let sql = op_sql(&op);
                let mut q = sqlx::query(AssertSqlSafe(sql));
                if op.kind == OpKind::Patch {
                    for (_, v) in &op.cols {
                        q = bind(q, v);
                    }
                    q = q.bind(op.doc.to_string());
                    for (_, v) in &op.key {
                        q = bind(q, v);
                    }
                } else {
                    for (_, v) in op.key.iter().chain(&op.cols) {
                        q = bind(q, v);
                    }
                    q = q.bind(op.doc.to_string());
                }
                q.execute(&mut *tx).await?;
            }
            pos = e.position;
        }
        sqlx::query(
            "INSERT INTO projection_checkpoints (name, position) VALUES (?, ?) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        )
        .bind(projection)
        .bind(pos as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(pos)
    }

    async fn advance(&self, name: &str, position: u64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO projection_checkpoints (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET position = MAX(position, excluded.position)")
            .bind(name)
            .bind(position as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn reset(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (table, _) in TABLES {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM projection_checkpoints")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn query(&self, q: &DocQuery) -> Result<Vec<serde_json::Value>, StoreError> {
        let wheres: Vec<String> = q.filters.iter().map(|(c, _)| format!("{c} = ?")).collect();
        let sql = format!(
            "SELECT doc FROM {} {} ORDER BY {} {} LIMIT ? OFFSET ?",
            q.table,
            if wheres.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", wheres.join(" AND "))
            },
            q.order_by,
            if q.descending { "DESC" } else { "ASC" },
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (_, v) in &q.filters {
            query = bind(query, v);
        }
        let rows = query.bind(q.limit).bind(q.offset).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let s: String = r.try_get("doc")?;
                serde_json::from_str(&s).map_err(|e| StoreError::Invalid(format!("stored document: {e}")))
            })
            .collect()
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

#[async_trait]
impl MetricStore for SqliteStore {
    async fn insert_batch(&self, samples: &[MetricSample]) -> Result<u64, StoreError> {
        validate(samples)?;
        let mut tx = self.pool.begin().await?;
        for s in samples {
            sqlx::query("INSERT INTO metrics (ts, service, metric, value, labels) VALUES (?, ?, ?, ?, ?)")
                .bind(ms(s.ts))
                .bind(&s.service)
                .bind(&s.metric)
                .bind(s.value)
                .bind(s.labels.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(samples.len() as u64)
    }

    async fn range(
        &self,
        service: &str,
        metric: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MetricSample>, StoreError> {
        let rows = sqlx::query(
            "SELECT ts, value, labels FROM metrics WHERE service = ? AND metric = ? AND ts >= ? AND ts < ? \
             ORDER BY ts",
        )
        .bind(service)
        .bind(metric)
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let labels: String = r.try_get("labels")?;
                Ok(MetricSample {
                    ts: from_ms(r.try_get("ts")?),
                    service: service.to_string(),
                    metric: metric.to_string(),
                    value: r.try_get("value")?,
                    labels: serde_json::from_str(&labels).unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn aggregate(
        &self,
        service: &str,
        metric: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket_seconds: i64,
    ) -> Result<Vec<Bucket>, StoreError> {
        check_bucket(bucket_seconds)?;
        let b = bucket_seconds * 1000;
        // The same buckets as PostgreSQL's date_bin with the Unix epoch as origin.
        let rows = sqlx::query(
            "SELECT (ts - (((ts % ?1) + ?1) % ?1)) AS start, AVG(value) AS avg, MIN(value) AS min, \
             MAX(value) AS max, COUNT(*) AS n FROM metrics \
             WHERE service = ?2 AND metric = ?3 AND ts >= ?4 AND ts < ?5 GROUP BY start ORDER BY start",
        )
        .bind(b)
        .bind(service)
        .bind(metric)
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Bucket {
                    start: from_ms(r.try_get("start")?),
                    avg: r.try_get("avg")?,
                    min: r.try_get("min")?,
                    max: r.try_get("max")?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }

    async fn apply_retention(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM metrics WHERE ts < ?")
            .bind(ms(cutoff))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
