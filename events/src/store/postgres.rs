//! The PostgreSQL adapter: the production store (TimescaleDB when present).

use std::collections::HashSet;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Executor, Row};
use tokio::sync::watch;

use super::{Appended, EventStore, ExpectedVersion, validate_stream};
use crate::envelope::{Metadata, NewEvent, RecordedEvent};
use crate::error::StoreError;
use crate::metrics::{Bucket, MetricSample, MetricStore, check_bucket, validate};
use crate::projections::{DocQuery, OpKind, ReadModelStore, RowOp, TABLES, Val, project};
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
        let pool = PgPoolOptions::new().max_connections(8).connect(url).await?;
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
        event: upcast::decode(&event_type, schema_version, payload)?,
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

#[async_trait]
impl EventStore for PgStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        validate_stream(stream)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(APPEND_LOCK)
            .execute(&mut *tx)
            .await?;
        let current: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0)::BIGINT FROM events WHERE stream = $1")
            .bind(stream)
            .fetch_one(&mut *tx)
            .await?;
        expected.check(stream, current as u64)?;
        let mut position: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0)::BIGINT FROM events")
            .fetch_one(&mut *tx)
            .await?;
        let mut version = current;
        for e in &events {
            version += 1;
            position += 1;
            sqlx::query(
                "INSERT INTO events (position, stream, version, event_type, schema_version, payload, \
                 event_id, correlation_id, causation_id, caused_by, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(position)
            .bind(stream)
            .bind(version)
            .bind(e.event.event_type())
            .bind(e.event.schema_version())
            .bind(e.event.payload())
            .bind(e.metadata.event_id)
            .bind(e.metadata.correlation_id)
            .bind(e.metadata.causation_id)
            .bind(&e.metadata.caused_by)
            .bind(e.metadata.recorded_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.head.send_replace(position as u64);
        Ok(Appended {
            version: version as u64,
            position: position as u64,
        })
    }

    async fn read_stream(&self, stream: &str, after_version: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query("SELECT * FROM events WHERE stream = $1 AND version > $2 ORDER BY version")
            .bind(stream)
            .bind(after_version as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_event).collect()
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query("SELECT * FROM events WHERE position > $1 ORDER BY position LIMIT $2")
            .bind(after as i64)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_event).collect()
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
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

fn bind<'q>(q: PgQuery<'q>, v: &Val) -> PgQuery<'q> {
    match v {
        Val::Text(s) => q.bind(s.clone()),
        Val::Int(i) => q.bind(*i),
        Val::Float(f) => q.bind(*f),
        Val::Bool(b) => q.bind(*b),
        Val::Time(t) => q.bind(*t),
        Val::Uuid(u) => q.bind(*u),
    }
}

/// The SQL of one row operation; placeholders number key, cols, then doc (insert)
/// or cols, doc, then key (patch).
fn op_sql(op: &RowOp) -> String {
    let keys: Vec<&str> = op.key.iter().map(|(c, _)| *c).collect();
    match op.kind {
        OpKind::Insert | OpKind::Replace => {
            let names: Vec<&str> = op.key.iter().chain(&op.cols).map(|(c, _)| *c).collect();
            let params: Vec<String> = (1..=names.len() + 1).map(|i| format!("${i}")).collect();
            let conflict = if op.kind == OpKind::Insert {
                "DO NOTHING".to_string()
            } else {
                let sets: Vec<String> = op
                    .cols
                    .iter()
                    .map(|(c, _)| format!("{c} = EXCLUDED.{c}"))
                    .chain(["doc = EXCLUDED.doc".to_string()])
                    .collect();
                format!("DO UPDATE SET {}", sets.join(", "))
            };
            format!(
                "INSERT INTO {} ({}, doc) VALUES ({}) ON CONFLICT ({}) {conflict}",
                op.table,
                names.join(", "),
                params.join(", "),
                keys.join(", ")
            )
        }
        OpKind::Patch => {
            let n = op.cols.len();
            let sets: Vec<String> = op
                .cols
                .iter()
                .enumerate()
                .map(|(i, (c, _))| format!("{c} = ${}", i + 1))
                .collect();
            let wheres: Vec<String> = keys
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c} = ${}", n + 2 + i))
                .collect();
            format!(
                "UPDATE {} SET {}{}doc = doc || ${} WHERE {}",
                op.table,
                sets.join(", "),
                if sets.is_empty() { "" } else { ", " },
                n + 1,
                wheres.join(" AND ")
            )
        }
    }
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
        // Lock the checkpoint row so two projector instances cannot interleave.
        sqlx::query("INSERT INTO projection_checkpoints (name, position) VALUES ($1, 0) ON CONFLICT DO NOTHING")
            .bind(projection)
            .execute(&mut *tx)
            .await?;
        let current: i64 = sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE")
            .bind(projection)
            .fetch_one(&mut *tx)
            .await?;
        let mut pos = current as u64;
        let start = pos;
        for e in events.iter().filter(|e| e.position > start) {
            for op in project(e) {
                let sql = op_sql(&op);
                let mut q = sqlx::query(AssertSqlSafe(sql));
                if op.kind == OpKind::Patch {
                    for (_, v) in &op.cols {
                        q = bind(q, v);
                    }
                    q = q.bind(op.doc.clone());
                    for (_, v) in &op.key {
                        q = bind(q, v);
                    }
                } else {
                    for (_, v) in op.key.iter().chain(&op.cols) {
                        q = bind(q, v);
                    }
                    q = q.bind(op.doc.clone());
                }
                q.execute(&mut *tx).await?;
            }
            pos = e.position;
        }
        sqlx::query("UPDATE projection_checkpoints SET position = $2 WHERE name = $1")
            .bind(projection)
            .bind(pos as i64)
            .execute(&mut *tx)
            .await?;
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
        let wheres: Vec<String> = q
            .filters
            .iter()
            .enumerate()
            .map(|(i, (c, _))| format!("{c} = ${}", i + 1))
            .collect();
        let n = q.filters.len();
        let sql = format!(
            "SELECT doc FROM {} {} ORDER BY {} {} LIMIT ${} OFFSET ${}",
            q.table,
            if wheres.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", wheres.join(" AND "))
            },
            q.order_by,
            if q.descending { "DESC" } else { "ASC" },
            n + 1,
            n + 2
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (_, v) in &q.filters {
            query = bind(query, v);
        }
        let rows = query.bind(q.limit).bind(q.offset).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<serde_json::Value, _>("doc")?))
            .collect()
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
