//! Fixtures shared by the store and projection tests: events, histories, and a rig per
//! adapter (in-memory, SQLite in a temporary file, PostgreSQL in a fresh database) that
//! can also write a row as an older build would have and make the database refuse rows.
#![allow(dead_code)]

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use events::projections::memory::MemoryReadModels;
use events::projections::{DocQuery, OpKind, ReadModelStore, TABLES, Val};
use events::store::{memory::MemoryStore, postgres::PgStore, sqlite::SqliteStore};
use events::vocabulary::*;
use events::{Event, EventStore, ExpectedVersion, Metadata, NewEvent, StoreError};
use serde_json::json;
use uuid::Uuid;

pub fn t(min: i64) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(min)
}

/// A two-point forecast of `service` made at minute `origin_min`.
pub fn forecast(service: &str, origin_min: i64) -> Event {
    Event::ForecastMade(ForecastMade {
        forecast_id: Uuid::new_v4(),
        service: service.into(),
        model: "snaive".into(),
        model_version: "1".into(),
        origin: t(origin_min),
        step_seconds: 300,
        horizon_minutes: 10,
        points: (1..=2)
            .map(|k| ForecastPoint {
                at: t(origin_min + 5 * k),
                p10: 1.0,
                p50: 2.0 * k as f64,
                p90: 3.0,
            })
            .collect(),
        notes: vec![],
    })
}

pub fn new(e: Event) -> NewEvent {
    NewEvent::new(e, Metadata::new("test", t(0)))
}

pub fn cfg(replicas: u32) -> TargetConfig {
    TargetConfig {
        replicas,
        instance_type: None,
        spot_share: 0.0,
    }
}

/// A decision of `checkout` to go from 2 to `replicas` replicas, waiting for approval.
pub fn decision(id: Uuid, replicas: u32) -> Event {
    Event::DecisionProposed(DecisionProposed {
        decision_id: id,
        service: "checkout".into(),
        strategy: "gradual_ramp".into(),
        current: cfg(2),
        target: cfg(replicas),
        reasoning: vec!["p90 needs it".into()],
        estimated_hourly_cost: Some(1.5),
        forecast_id: None,
        requires_approval: true,
        inputs: json!({"x": 1}),
        scores: json!({}),
        rollback_to: cfg(2),
        verification: VerificationCriteria {
            ready_replicas: replicas,
            timeout_seconds: 300,
            max_utilization: None,
        },
    })
}

pub fn approved(id: Uuid) -> Event {
    Event::DecisionApproved(DecisionApproved {
        decision_id: id,
        approved_by: "alice".into(),
        comment: None,
    })
}

/// A forecast, a decision approved and executed, and a later forecast; returns the decision id.
pub async fn some_history(store: &dyn EventStore) -> Uuid {
    let id = Uuid::new_v4();
    store
        .append(
            "service/checkout",
            ExpectedVersion::Any,
            vec![new(forecast("checkout", 0))],
        )
        .await
        .unwrap();
    let stream = events::streams::decision(id);
    store
        .append(&stream, ExpectedVersion::NoStream, vec![new(decision(id, 6))])
        .await
        .unwrap();
    store
        .append(
            &stream,
            ExpectedVersion::Exact(1),
            vec![
                new(approved(id)),
                new(Event::ScalingStarted(ScalingStarted {
                    decision_id: id,
                    service: "checkout".into(),
                    from_replicas: 2,
                    to_replicas: 6,
                    executor: "simulated".into(),
                })),
                new(Event::ScalingSucceeded(ScalingSucceeded {
                    decision_id: id,
                    service: "checkout".into(),
                    replicas: 6,
                })),
            ],
        )
        .await
        .unwrap();
    store
        .append(
            "service/checkout",
            ExpectedVersion::Any,
            vec![new(forecast("checkout", 30))],
        )
        .await
        .unwrap();
    id
}

/// Every read model's documents, each table's sorted, so that two dumps compare equal
/// whatever order the database returns rows of equal sort key in.
pub async fn dump(models: &dyn ReadModelStore) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for (table, key) in TABLES {
        out.push(json!(table));
        let mut docs = models
            .query(&DocQuery::new(table, key[0]).ascending().limit(100_000))
            .await
            .unwrap();
        docs.sort_by_key(|d| d.to_string());
        out.extend(docs);
    }
    out
}

pub async fn docs(models: &dyn ReadModelStore, table: &'static str, order_by: &'static str) -> Vec<serde_json::Value> {
    models
        .query(&DocQuery::new(table, order_by).ascending().limit(100_000))
        .await
        .unwrap()
}

pub async fn sqlite() -> (Arc<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::connect(dir.path().join("events.db").to_str().unwrap())
        .await
        .unwrap();
    (Arc::new(s), dir)
}

pub async fn pg() -> Arc<PgStore> {
    Arc::new(
        PgStore::connect(&events::testing::fresh_postgres_url().await)
            .await
            .unwrap(),
    )
}

/// The adapter behind a [`Rig`], for what only raw access can do.
pub enum Adapter {
    Memory(Arc<MemoryStore>, Arc<MemoryReadModels>),
    Sqlite(Arc<SqliteStore>, tempfile::TempDir),
    Postgres(Arc<PgStore>),
}

/// One adapter's log and read models.
pub struct Rig {
    pub store: Arc<dyn EventStore>,
    pub models: Arc<dyn ReadModelStore>,
    pub adapter: Adapter,
}

impl Rig {
    pub async fn memory() -> Rig {
        let (s, m) = (Arc::new(MemoryStore::new()), Arc::new(MemoryReadModels::default()));
        Rig {
            store: s.clone(),
            models: m.clone(),
            adapter: Adapter::Memory(s, m),
        }
    }

    pub async fn sqlite() -> Rig {
        let (s, dir) = sqlite().await;
        Rig {
            store: s.clone(),
            models: s.clone(),
            adapter: Adapter::Sqlite(s, dir),
        }
    }

    pub async fn postgres() -> Rig {
        let s = pg().await;
        Rig {
            store: s.clone(),
            models: s.clone(),
            adapter: Adapter::Postgres(s),
        }
    }

    /// Appends a row without any check, as an older build could have written it, to the
    /// end of `stream`; `payload` is the stored JSON text. Returns its position.
    pub async fn insert_raw(&self, stream: &str, event_type: &str, version: i32, payload: &str, service: &str) -> u64 {
        let head = self.store.head().await.unwrap() as i64 + 1;
        let v = self.store.read_stream(stream, 0).await.unwrap().len() as i64 + 1;
        let meta = Metadata::new("old-build", t(1));
        match &self.adapter {
            Adapter::Memory(s, _) => s.insert_raw(
                stream,
                event_type,
                version,
                serde_json::from_str(payload).unwrap(),
                meta,
            ),
            Adapter::Sqlite(s, _) => {
                sqlx::query(
                    "INSERT INTO events (position, stream, version, event_type, schema_version, payload, event_id, \
                     correlation_id, causation_id, caused_by, recorded_at, service) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, 'old-build', '2024-03-01T00:01:00.000000Z', ?)",
                )
                .bind(head)
                .bind(stream)
                .bind(v)
                .bind(event_type)
                .bind(version)
                .bind(payload)
                .bind(meta.event_id.to_string())
                .bind(meta.correlation_id.to_string())
                .bind(service)
                .execute(s.pool())
                .await
                .unwrap();
                head as u64
            }
            Adapter::Postgres(s) => {
                sqlx::query(
                    "INSERT INTO events (position, stream, version, event_type, schema_version, payload, event_id, \
                     correlation_id, causation_id, caused_by, recorded_at, service) \
                     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, NULL, 'old-build', now(), $9)",
                )
                .bind(head)
                .bind(stream)
                .bind(v)
                .bind(event_type)
                .bind(version)
                .bind(payload)
                .bind(meta.event_id)
                .bind(meta.correlation_id)
                .bind(service)
                .execute(s.pool())
                .await
                .unwrap();
                head as u64
            }
        }
    }

    /// Makes the database refuse, for good, any decision row targeting more than
    /// `replicas` replicas (a trigger, a check constraint, an injected error).
    pub async fn refuse_decisions_over(&self, replicas: i64) {
        match &self.adapter {
            Adapter::Memory(_, m) => m.fail_on(Some(Box::new(move |op| {
                let over = op.kind == OpKind::Insert
                    && op.table == "scaling_decisions"
                    && op
                        .cols
                        .iter()
                        .any(|(c, v)| *c == "target_replicas" && matches!(v, Val::Int(r) if *r > replicas));
                over.then(|| StoreError::Invalid("scaling_decisions: target_replicas over the limit".into()))
            }))),
            Adapter::Sqlite(s, _) => {
                let sql = format!(
                    "CREATE TRIGGER refuse_big BEFORE INSERT ON scaling_decisions WHEN NEW.target_replicas > {replicas} \
                     BEGIN SELECT RAISE(ABORT, 'target_replicas over the limit'); END"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(s.pool()).await.unwrap();
            }
            Adapter::Postgres(s) => {
                let sql = format!(
                    "ALTER TABLE scaling_decisions ADD CONSTRAINT refuse_big CHECK (target_replicas <= {replicas})"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(s.pool()).await.unwrap();
            }
        }
    }

    /// Names of shadow tables left in the database.
    pub async fn shadow_tables(&self) -> Vec<String> {
        match &self.adapter {
            Adapter::Memory(..) => Vec::new(),
            Adapter::Sqlite(s, _) => sqlx::query_scalar("SELECT name FROM sqlite_master WHERE name LIKE '%shadow%'")
                .fetch_all(s.pool())
                .await
                .unwrap(),
            Adapter::Postgres(s) => {
                sqlx::query_scalar("SELECT tablename::TEXT FROM pg_tables WHERE tablename LIKE '%shadow%'")
                    .fetch_all(s.pool())
                    .await
                    .unwrap()
            }
        }
    }
}

/// One test per adapter, each given a fresh [`Rig`].
#[macro_export]
macro_rules! each_adapter {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                super::$name(super::common::Rig::memory().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::common::Rig::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::common::Rig::postgres().await).await;
            }
        }
    )*};
}
