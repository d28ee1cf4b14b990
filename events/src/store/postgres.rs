//! The PostgreSQL adapter: the production store (TimescaleDB when present).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Executor, Row};
use tokio::sync::watch;

use super::sql::{Arg, Dialect, Stmt, table_name};
use super::{Appended, EventRow, EventStore, StreamAppend, check_appends, plan, streams_of};
use crate::envelope::{Metadata, RecordedEvent};
use crate::error::StoreError;
use crate::metrics::{Bucket, MetricSample, MetricStore, check_bucket, validate};
use crate::projections::{
    DocQuery, PROJECTION, ReadModelStore, RowOp, SHADOW_CHECKPOINT, TABLES, Val, after_checkpoint, project,
};
use crate::upcast;

/// Serializes appends so that positions are gap-free and commit in order.
const APPEND_LOCK: i64 = 0x7073_6361_6c65; // "pscale"

/// Event store, read models and metrics in one PostgreSQL database.
pub struct PgStore {
    pool: PgPool,
    head: watch::Sender<u64>,
    timescale: bool,
    partitions: Mutex<HashSet<(i32, u32)>>,
}

impl PgStore {
    /// Connects to `url` and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        // a server that went away answers within seconds (callers degrade and retry), not after
        // the 30 s default
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool (tests) and applies the migrations.
    pub async fn from_pool(pool: PgPool) -> Result<Self, StoreError> {
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        let timescale: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
                .fetch_one(&pool)
                .await?;
        let store = PgStore {
            pool,
            head: watch::channel(0).0,
            timescale,
            partitions: Mutex::new(HashSet::new()),
        };
        let head = store.head().await?;
        store.head.send_replace(head);
        Ok(store)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether metrics live in a TimescaleDB hypertable (else monthly partitions).
    pub fn uses_timescale(&self) -> bool {
        self.timescale
    }

    /// Creates the monthly partitions a batch needs (plain PostgreSQL only).
    async fn ensure_partitions(&self, samples: &[MetricSample]) -> Result<(), StoreError> {
        if self.timescale {
            return Ok(());
        }
        let months: HashSet<(i32, u32)> = samples.iter().map(|s| (s.ts.year(), s.ts.month())).collect();
        for (y, m) in months {
            if self.partitions.lock().expect("poisoned").contains(&(y, m)) {
                continue;
            }
            let start = Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single().expect("valid month");
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            let end = Utc.with_ymd_and_hms(ny, nm, 1, 0, 0, 0).single().expect("valid month");
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS metrics_y{y:04}m{m:02} PARTITION OF metrics \
                 FOR VALUES FROM ('{}') TO ('{}')",
                start.to_rfc3339(),
                end.to_rfc3339()
            );
            self.pool.execute(AssertSqlSafe(sql)).await?;
            self.partitions.lock().expect("poisoned").insert((y, m));
        }
        Ok(())
    }
}

fn row_to_event(r: &PgRow) -> Result<RecordedEvent, StoreError> {
    let event_type: String = r.try_get("event_type")?;
    let schema_version: i32 = r.try_get("schema_version")?;
    let payload: serde_json::Value = r.try_get("payload")?;
    Ok(RecordedEvent {
        position: r.try_get::<i64, _>("position")? as u64,
        stream: r.try_get("stream")?,
        version: r.try_get::<i64, _>("version")? as u64,
        event: upcast::decode_or_malformed(&event_type, schema_version, payload),
        stored_schema_version: schema_version,
        metadata: Metadata {
            event_id: r.try_get("event_id")?,
            correlation_id: r.try_get("correlation_id")?,
            causation_id: r.try_get("causation_id")?,
            caused_by: r.try_get("caused_by")?,
            recorded_at: r.try_get("recorded_at")?,
        },
    })
}

/// A unique violation means an event id already in the log (stream versions are checked
/// under the append lock).
fn refused(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() && db.constraint() == Some("events_event_id_key") => {
            StoreError::Invalid("an event id of this append is already in the log".into())
        }
        _ => StoreError::Database(e),
    }
}

const EVENT_COLUMNS: &str = "position, stream, version, event_type, schema_version, payload, \
     event_id, correlation_id, causation_id, caused_by, recorded_at, service";

/// Rows per multi-row insert of events (12 parameters each).
const EVENTS_PER_INSERT: usize = 500;

impl PgStore {
    /// The version of `stream` and the service of its first event.
    async fn stream_head(tx: &mut PgConnection, stream: &str) -> Result<(u64, Option<String>), StoreError> {
        let (version, service): (i64, Option<String>) = sqlx::query_as(
            "SELECT (SELECT COALESCE(MAX(version), 0)::BIGINT FROM events WHERE stream = $1), \
             (SELECT service FROM events WHERE stream = $1 AND version = 1)",
        )
        .bind(stream)
        .fetch_one(&mut *tx)
        .await?;
        Ok((version as u64, service))
    }

    async fn insert_rows(tx: &mut PgConnection, rows: &[EventRow<'_>]) -> Result<(), sqlx::Error> {
        for chunk in rows.chunks(EVENTS_PER_INSERT) {
            let tuples: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p: Vec<String> = (1..=12).map(|c| format!("${}", i * 12 + c)).collect();
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
                    .bind(&r.payload)
                    .bind(m.event_id)
                    .bind(m.correlation_id)
                    .bind(m.causation_id)
                    .bind(m.caused_by.as_str())
                    .bind(m.recorded_at)
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
impl EventStore for PgStore {
    async fn append_many(&self, appends: Vec<StreamAppend>) -> Result<Vec<Appended>, StoreError> {
        check_appends(&appends)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(APPEND_LOCK)
            .execute(&mut *tx)
            .await?;
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0)::BIGINT FROM events")
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
        let filter = "stream = $1 AND version > $2 ORDER BY version LIMIT $3";
        self.select(filter, Some(stream), after_version, limit).await
    }

    async fn read_service(
        &self,
        service: &str,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let filter = "service = $1 AND position > $2 ORDER BY position LIMIT $3";
        self.select(filter, Some(service), after_position, limit).await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let filter = "position > $1 ORDER BY position LIMIT $2";
        self.select(filter, None, after, limit).await
    }

    async fn head(&self) -> Result<u64, StoreError> {
        let h: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0)::BIGINT FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(h as u64)
    }

    fn head_watch(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    async fn save_snapshot(&self, key: &str, position: u64, state: serde_json::Value) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO snapshots (key, position, state) VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE \
             SET position = EXCLUDED.position, state = EXCLUDED.state, saved_at = now() \
             WHERE EXCLUDED.position >= snapshots.position",
        )
        .bind(key)
        .bind(position as i64)
        .bind(state)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn load_snapshot(&self, key: &str) -> Result<Option<(u64, serde_json::Value)>, StoreError> {
        let row: Option<(i64, serde_json::Value)> =
            sqlx::query_as("SELECT position, state FROM snapshots WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(p, s)| (p as u64, s)))
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

fn bind(q: PgQuery<'_>, arg: Arg) -> PgQuery<'_> {
    match arg {
        Arg::Val(Val::Text(s)) => q.bind(s),
        Arg::Val(Val::Int(i)) => q.bind(i),
        Arg::Val(Val::Float(f)) => q.bind(f),
        Arg::Val(Val::Bool(b)) => q.bind(b),
        Arg::Val(Val::Time(t)) => q.bind(t),
        Arg::Val(Val::Uuid(u)) => q.bind(u),
        Arg::Doc(d) => q.bind(d),
    }
}

async fn run(tx: &mut PgConnection, stmt: Stmt) -> Result<u64, StoreError> {
    let mut q = sqlx::query(AssertSqlSafe(stmt.sql));
    for a in stmt.args {
        q = bind(q, a);
    }
    Ok(q.execute(&mut *tx).await?.rows_affected())
}

async fn execute(tx: &mut PgConnection, sql: String) -> Result<(), StoreError> {
    sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await?;
    Ok(())
}

/// Reads a checkpoint and locks its row until the transaction ends, so that two
/// writers of one projection (or a rebuild's swap and the live projection) take turns.
async fn lock_checkpoint(tx: &mut PgConnection, name: &str) -> Result<u64, StoreError> {
    sqlx::query("INSERT INTO projection_checkpoints (name, position) VALUES ($1, 0) ON CONFLICT DO NOTHING")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    let p: i64 = sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE")
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
    Ok(p as u64)
}

async fn write_checkpoint(tx: &mut PgConnection, name: &str, position: u64) -> Result<(), StoreError> {
    sqlx::query("UPDATE projection_checkpoints SET position = $2 WHERE name = $1")
        .bind(name)
        .bind(position as i64)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Applies the events after the `name` checkpoint to the live or shadow tables and
/// moves that checkpoint, inside the caller's transaction (which has locked it).
async fn apply_in(
    tx: &mut PgConnection,
    name: &str,
    checkpoint: u64,
    events: &[RecordedEvent],
    shadow: bool,
) -> Result<u64, StoreError> {
    let fresh = after_checkpoint(events, checkpoint)?;
    let Some(last) = fresh.last() else {
        return Ok(checkpoint);
    };
    let ops: Vec<RowOp> = fresh.iter().flat_map(project).collect();
    for stmt in Dialect::Postgres.statements(&ops, shadow) {
        run(tx, stmt).await?;
    }
    write_checkpoint(tx, name, last.position).await?;
    Ok(last.position)
}

/// The `CREATE INDEX` statements of a table's indexes other than its primary key.
async fn index_ddl(tx: &mut PgConnection, table: &str) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1::TEXT \
         AND indexname::TEXT <> ($1::TEXT || '_pkey')",
    )
    .bind(table)
    .fetch_all(&mut *tx)
    .await?)
}

#[async_trait]
impl ReadModelStore for PgStore {
    async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError> {
        let p: Option<i64> = sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = $1")
            .bind(projection)
            .fetch_optional(&self.pool)
            .await?;
        Ok(p.unwrap_or(0) as u64)
    }

    async fn apply(&self, projection: &str, events: &[RecordedEvent]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let checkpoint = lock_checkpoint(&mut tx, projection).await?;
        let pos = apply_in(&mut tx, projection, checkpoint, events, false).await?;
        tx.commit().await?;
        Ok(pos)
    }

    async fn advance(&self, name: &str, position: u64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO projection_checkpoints (name, position) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET position = GREATEST(projection_checkpoints.position, EXCLUDED.position)")
            .bind(name)
            .bind(position as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn reset(&self) -> Result<(), StoreError> {
        let tables: Vec<&str> = TABLES.iter().map(|(t, _)| *t).collect();
        let mut tx = self.pool.begin().await?;
        sqlx::query(AssertSqlSafe(format!("TRUNCATE {}", tables.join(", "))))
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM projection_checkpoints WHERE name NOT LIKE 'relay:%'")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn query(&self, q: &DocQuery) -> Result<Vec<serde_json::Value>, StoreError> {
        let stmt = Dialect::Postgres.query(q);
        let mut query = sqlx::query(AssertSqlSafe(stmt.sql));
        for a in stmt.args {
            query = bind(query, a);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<serde_json::Value, _>("doc")?))
            .collect()
    }

    async fn apply_retention(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut deleted = 0;
        for table in ["prediction_points", "predictions"] {
            deleted += sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE origin < $1")))
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn shadow_begin(&self) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        for (table, key) in TABLES {
            let shadow = table_name(table, true);
            execute(&mut tx, format!("DROP TABLE IF EXISTS {shadow}")).await?;
            execute(
                &mut tx,
                format!("CREATE TABLE {shadow} (LIKE {table} INCLUDING DEFAULTS)"),
            )
            .await?;
            let pkey = format!(
                "ALTER TABLE {shadow} ADD CONSTRAINT {shadow}_pkey PRIMARY KEY ({})",
                key.join(", ")
            );
            execute(&mut tx, pkey).await?;
        }
        lock_checkpoint(&mut tx, SHADOW_CHECKPOINT).await?;
        write_checkpoint(&mut tx, SHADOW_CHECKPOINT, 0).await?;
        tx.commit().await?;
        Ok(0)
    }

    async fn shadow_apply(&self, events: &[RecordedEvent]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let checkpoint = lock_checkpoint(&mut tx, SHADOW_CHECKPOINT).await?;
        let pos = apply_in(&mut tx, SHADOW_CHECKPOINT, checkpoint, events, true).await?;
        tx.commit().await?;
        Ok(pos)
    }

    async fn shadow_swap(&self, store: &dyn EventStore) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The live checkpoint's row lock makes the live projection wait for the swap.
        lock_checkpoint(&mut tx, PROJECTION).await?;
        let mut pos = lock_checkpoint(&mut tx, SHADOW_CHECKPOINT).await?;
        loop {
            let tail = store.read_all(pos, 500).await?;
            if tail.is_empty() {
                break;
            }
            pos = apply_in(&mut tx, SHADOW_CHECKPOINT, pos, &tail, true).await?;
        }
        for (table, _) in TABLES {
            let indexes = index_ddl(&mut tx, table).await?;
            let shadow = table_name(table, true);
            execute(&mut tx, format!("DROP TABLE {table}")).await?;
            execute(&mut tx, format!("ALTER TABLE {shadow} RENAME TO {table}")).await?;
            execute(
                &mut tx,
                format!("ALTER TABLE {table} RENAME CONSTRAINT {shadow}_pkey TO {table}_pkey"),
            )
            .await?;
            for sql in indexes {
                execute(&mut tx, sql).await?;
            }
        }
        write_checkpoint(&mut tx, PROJECTION, pos).await?;
        sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1")
            .bind(SHADOW_CHECKPOINT)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(pos)
    }

    async fn shadow_discard(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (table, _) in TABLES {
            execute(&mut tx, format!("DROP TABLE IF EXISTS {}", table_name(table, true))).await?;
        }
        sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1")
            .bind(SHADOW_CHECKPOINT)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Quotes a field for PostgreSQL's CSV COPY format.
fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[async_trait]
impl MetricStore for PgStore {
    async fn insert_batch(&self, samples: &[MetricSample]) -> Result<u64, StoreError> {
        validate(samples)?;
        if samples.is_empty() {
            return Ok(0);
        }
        self.ensure_partitions(samples).await?;
        let mut body = String::with_capacity(samples.len() * 64);
        for s in samples {
            body.push_str(&format!(
                "{},{},{},{:?},{}\n",
                s.ts.to_rfc3339(),
                csv_field(&s.service),
                csv_field(&s.metric),
                s.value,
                csv_field(&s.labels.to_string())
            ));
        }
        let mut conn = self.pool.acquire().await?;
        let mut copy = conn
            .copy_in_raw("COPY metrics (ts, service, metric, value, labels) FROM STDIN WITH (FORMAT csv)")
            .await?;
        copy.send(body.as_bytes()).await?;
        Ok(copy.finish().await?)
    }

    async fn range(
        &self,
        service: &str,
        metric: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MetricSample>, StoreError> {
        let rows = sqlx::query(
            "SELECT ts, value, labels FROM metrics WHERE service = $1 AND metric = $2 AND ts >= $3 AND ts < $4 \
             ORDER BY ts",
        )
        .bind(service)
        .bind(metric)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MetricSample {
                    ts: r.try_get("ts")?,
                    service: service.to_string(),
                    metric: metric.to_string(),
                    value: r.try_get("value")?,
                    labels: r.try_get("labels")?,
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
        let rows = sqlx::query(
            "SELECT date_bin(make_interval(secs => $1), ts, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS start, \
             AVG(value) AS avg, MIN(value) AS min, MAX(value) AS max, COUNT(*) AS n FROM metrics \
             WHERE service = $2 AND metric = $3 AND ts >= $4 AND ts < $5 GROUP BY start ORDER BY start",
        )
        .bind(bucket_seconds as f64)
        .bind(service)
        .bind(metric)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Bucket {
                    start: r.try_get("start")?,
                    avg: r.try_get("avg")?,
                    min: r.try_get("min")?,
                    max: r.try_get("max")?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }

    async fn apply_retention(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM metrics WHERE ts < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
