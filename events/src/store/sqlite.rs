//! The SQLite adapter: the embedded default, one file, no server.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row};
use tokio::sync::watch;
use uuid::Uuid;

use super::sql::{Arg, Dialect, Stmt, table_name};
use super::{Appended, EventRow, EventStore, StreamAppend, check_appends, plan, streams_of};
use crate::envelope::{Metadata, RecordedEvent};
use crate::error::StoreError;
use crate::metrics::{Bucket, MetricSample, MetricStore, check_bucket, validate};
use crate::projections::{
    DocQuery, PROJECTION, ReadModelStore, RowOp, SHADOW_CHECKPOINT, TABLES, Val, after_checkpoint, project,
};
use crate::time::{from_text, to_text};
use crate::upcast;
use crate::vocabulary::{Event, Malformed};

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
            // FULL: a commit is on disk before it is acknowledged, power loss included
            // (ADR 6); throughput comes from batching appends, not from weaker syncs.
            .synchronous(SqliteSynchronous::Full)
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
    let raw: String = r.try_get("payload")?;
    let event = match serde_json::from_str(&raw) {
        Ok(payload) => upcast::decode_or_malformed(&event_type, schema_version, payload),
        Err(e) => Event::Malformed(Malformed {
            event_type,
            schema_version,
            payload: serde_json::Value::String(raw),
            error: format!("the stored payload is not JSON: {e}"),
        }),
    };
    let uuid = |col: &str| -> Result<Uuid, StoreError> {
        let s: String = r.try_get(col)?;
        Uuid::parse_str(&s).map_err(|e| StoreError::Invalid(format!("stored {col} `{s}`: {e}")))
    };
    let causation: Option<String> = r.try_get("causation_id")?;
    Ok(RecordedEvent {
        position: r.try_get::<i64, _>("position")? as u64,
        stream: r.try_get("stream")?,
        version: r.try_get::<i64, _>("version")? as u64,
        event,
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

/// A unique violation means an event id already in the log (stream versions are checked
/// under the append lock).
fn refused(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() && db.message().contains("event_id") => {
            StoreError::Invalid("an event id of this append is already in the log".into())
        }
        _ => StoreError::Database(e),
    }
}

const EVENT_COLUMNS: &str = "position, stream, version, event_type, schema_version, payload, \
     event_id, correlation_id, causation_id, caused_by, recorded_at, service";

/// Rows per multi-row insert of events (12 parameters each).
const EVENTS_PER_INSERT: usize = 200;

impl SqliteStore {
    /// The version of `stream` and the service of its first event.
    async fn stream_head(tx: &mut sqlx::SqliteConnection, stream: &str) -> Result<(u64, Option<String>), StoreError> {
        let (version, service): (i64, Option<String>) = sqlx::query_as(
            "SELECT (SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?1), \
             (SELECT service FROM events WHERE stream = ?1 AND version = 1)",
        )
        .bind(stream)
        .fetch_one(&mut *tx)
        .await?;
        Ok((version as u64, service))
    }

    async fn insert_rows(tx: &mut sqlx::SqliteConnection, rows: &[EventRow<'_>]) -> Result<(), sqlx::Error> {
        for chunk in rows.chunks(EVENTS_PER_INSERT) {
            let tuples: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p: Vec<String> = (1..=12).map(|c| format!("?{}", i * 12 + c)).collect();
                    format!("({})", p.join(", "))
                })
                .collect();
            let sql = format!("INSERT INTO events ({EVENT_COLUMNS}) VALUES {}", tuples.join(", "));
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for r in chunk {
                let m = &r.event.metadata;
                q = q
                    .bind(r.position as i64)
                    .bind(r.stream)
                    .bind(r.version as i64)
                    .bind(r.event.event.event_type())
                    .bind(r.event.event.schema_version())
                    .bind(r.payload.to_string())
                    .bind(m.event_id.to_string())
                    .bind(m.correlation_id.to_string())
                    .bind(m.causation_id.map(|c| c.to_string()))
                    .bind(m.caused_by.as_str())
                    .bind(to_text(m.recorded_at))
                    .bind(r.service.as_deref());
            }
            q.execute(&mut *tx).await?;
        }
        Ok(())
    }

    /// Events matching `filter`, whose parameters are `key` (if any), then `after`, then the limit.
    async fn select(
        &self,
        filter: &str,
        key: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut q = sqlx::query(AssertSqlSafe(format!("SELECT * FROM events WHERE {filter}")));
        if let Some(k) = key {
            q = q.bind(k);
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = q.bind(after as i64).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(row_to_event).collect()
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append_many(&self, appends: Vec<StreamAppend>) -> Result<Vec<Appended>, StoreError> {
        check_appends(&appends)?;
        // IMMEDIATE takes the write lock now, so the versions read below cannot go stale.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
            .fetch_one(&mut *tx)
            .await?;
        let mut heads = HashMap::new();
        for stream in streams_of(&appends) {
            heads.insert(stream, Self::stream_head(&mut tx, stream).await?);
        }
        let plan = plan(&appends, head as u64, heads)?;
        Self::insert_rows(&mut tx, &plan.rows).await.map_err(refused)?;
        tx.commit().await?;
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
        let filter = "stream = ?1 AND version > ?2 ORDER BY version LIMIT ?3";
        self.select(filter, Some(stream), after_version, limit).await
    }

    async fn read_service(
        &self,
        service: &str,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let filter = "service = ?1 AND position > ?2 ORDER BY position LIMIT ?3";
        self.select(filter, Some(service), after_position, limit).await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let filter = "position > ?1 ORDER BY position LIMIT ?2";
        self.select(filter, None, after, limit).await
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

    async fn save_snapshot(&self, key: &str, position: u64, state: serde_json::Value) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO snapshots (key, position, state) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE \
             SET position = excluded.position, state = excluded.state WHERE excluded.position >= snapshots.position",
        )
        .bind(key)
        .bind(position as i64)
        .bind(state.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn load_snapshot(&self, key: &str) -> Result<Option<(u64, serde_json::Value)>, StoreError> {
        let row: Option<(i64, String)> = sqlx::query_as("SELECT position, state FROM snapshots WHERE key = ?1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|(p, s)| {
            let state = serde_json::from_str(&s)
                .map_err(|e| StoreError::Invalid(format!("stored snapshot `{key}` is not JSON: {e}")))?;
            Ok((p as u64, state))
        })
        .transpose()
    }
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

fn bind(q: SqliteQuery<'_>, arg: Arg) -> SqliteQuery<'_> {
    match arg {
        Arg::Val(Val::Text(s)) => q.bind(s),
        Arg::Val(Val::Int(i)) => q.bind(i),
        Arg::Val(Val::Float(f)) => q.bind(f),
        Arg::Val(Val::Bool(b)) => q.bind(b),
        Arg::Val(Val::Time(t)) => q.bind(to_text(t)),
        Arg::Val(Val::Uuid(u)) => q.bind(u.to_string()),
        Arg::Doc(d) => q.bind(d.to_string()),
    }
}

async fn run(tx: &mut sqlx::SqliteConnection, stmt: Stmt) -> Result<u64, StoreError> {
    let mut q = sqlx::query(AssertSqlSafe(stmt.sql));
    for a in stmt.args {
        q = bind(q, a);
    }
    Ok(q.execute(&mut *tx).await?.rows_affected())
}

async fn read_checkpoint(tx: &mut sqlx::SqliteConnection, name: &str) -> Result<u64, StoreError> {
    let p: Option<i64> = sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = ?1")
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(p.unwrap_or(0) as u64)
}

async fn write_checkpoint(tx: &mut sqlx::SqliteConnection, name: &str, position: u64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, position) VALUES (?1, ?2) \
         ON CONFLICT (name) DO UPDATE SET position = excluded.position",
    )
    .bind(name)
    .bind(position as i64)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Applies the events after the `name` checkpoint to the live or shadow tables and
/// moves that checkpoint, inside the caller's transaction.
async fn apply_in(
    tx: &mut sqlx::SqliteConnection,
    name: &str,
    events: &[RecordedEvent],
    shadow: bool,
) -> Result<u64, StoreError> {
    let checkpoint = read_checkpoint(tx, name).await?;
    let fresh = after_checkpoint(events, checkpoint)?;
    let Some(last) = fresh.last() else {
        return Ok(checkpoint);
    };
    let ops: Vec<RowOp> = fresh.iter().flat_map(project).collect();
    for stmt in Dialect::Sqlite.statements(&ops, shadow) {
        run(tx, stmt).await?;
    }
    write_checkpoint(tx, name, last.position).await?;
    Ok(last.position)
}

/// The `CREATE` statements of a table's secondary indexes.
async fn index_ddl(tx: &mut sqlx::SqliteConnection, table: &str) -> Result<Vec<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL")
            .bind(table)
            .fetch_all(&mut *tx)
            .await?,
    )
}

#[async_trait]
impl ReadModelStore for SqliteStore {
    async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        read_checkpoint(&mut conn, projection).await
    }

    async fn apply(&self, projection: &str, events: &[RecordedEvent]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let pos = apply_in(&mut tx, projection, events, false).await?;
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for (table, _) in TABLES {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM projection_checkpoints WHERE name NOT LIKE 'relay:%'")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn query(&self, q: &DocQuery) -> Result<Vec<serde_json::Value>, StoreError> {
        let stmt = Dialect::Sqlite.query(q);
        let mut query = sqlx::query(AssertSqlSafe(stmt.sql));
        for a in stmt.args {
            query = bind(query, a);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let s: String = r.try_get("doc")?;
                serde_json::from_str(&s).map_err(|e| StoreError::Invalid(format!("stored document: {e}")))
            })
            .collect()
    }

    async fn apply_retention(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut deleted = 0;
        for table in ["prediction_points", "predictions"] {
            deleted += sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE origin < ?1")))
                .bind(to_text(before))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn shadow_begin(&self) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for (table, _) in TABLES {
            let shadow = table_name(table, true);
            sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {shadow}")))
                .execute(&mut *tx)
                .await?;
            let ddl: String = sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1")
                .bind(*table)
                .fetch_one(&mut *tx)
                .await?;
            let body = ddl
                .find('(')
                .map(|i| &ddl[i..])
                .ok_or_else(|| StoreError::Invalid(format!("unexpected definition of {table}: {ddl}")))?;
            sqlx::query(AssertSqlSafe(format!("CREATE TABLE {shadow} {body}")))
                .execute(&mut *tx)
                .await?;
        }
        write_checkpoint(&mut tx, SHADOW_CHECKPOINT, 0).await?;
        tx.commit().await?;
        Ok(0)
    }

    async fn shadow_apply(&self, events: &[RecordedEvent]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let pos = apply_in(&mut tx, SHADOW_CHECKPOINT, events, true).await?;
        tx.commit().await?;
        Ok(pos)
    }

    async fn shadow_swap(&self, store: &dyn EventStore) -> Result<u64, StoreError> {
        // The write lock holds appends and the live projection until the swap commits.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut pos = read_checkpoint(&mut tx, SHADOW_CHECKPOINT).await?;
        loop {
            let tail = store.read_all(pos, 500).await?;
            if tail.is_empty() {
                break;
            }
            pos = apply_in(&mut tx, SHADOW_CHECKPOINT, &tail, true).await?;
        }
        for (table, _) in TABLES {
            let indexes = index_ddl(&mut tx, table).await?;
            for sql in [
                format!("DROP TABLE {table}"),
                format!("ALTER TABLE {} RENAME TO {table}", table_name(table, true)),
            ]
            .into_iter()
            .chain(indexes)
            {
                sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await?;
            }
        }
        write_checkpoint(&mut tx, PROJECTION, pos).await?;
        sqlx::query("DELETE FROM projection_checkpoints WHERE name = ?1")
            .bind(SHADOW_CHECKPOINT)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(pos)
    }

    async fn shadow_discard(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for (table, _) in TABLES {
            sqlx::query(AssertSqlSafe(format!(
                "DROP TABLE IF EXISTS {}",
                table_name(table, true)
            )))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM projection_checkpoints WHERE name = ?1")
            .bind(SHADOW_CHECKPOINT)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Samples per multi-row insert (5 parameters each).
const METRICS_PER_INSERT: usize = 500;

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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for chunk in samples.chunks(METRICS_PER_INSERT) {
            let tuples: Vec<String> = (0..chunk.len())
                .map(|i| {
                    format!(
                        "(?{}, ?{}, ?{}, ?{}, ?{})",
                        i * 5 + 1,
                        i * 5 + 2,
                        i * 5 + 3,
                        i * 5 + 4,
                        i * 5 + 5
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO metrics (ts, service, metric, value, labels) VALUES {}",
                tuples.join(", ")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for s in chunk {
                q = q
                    .bind(ms(s.ts))
                    .bind(s.service.as_str())
                    .bind(s.metric.as_str())
                    .bind(s.value)
                    .bind(s.labels.to_string());
            }
            q.execute(&mut *tx).await?;
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
