//! What a month of one service costs in storage: appends a month at 1-minute samples in
//! the realistic mix (43,200 metric samples, a 60-point ForecastMade every 5 minutes,
//! ~300 decisions with their chains), projects it, applies a 7-day read-model retention,
//! and prints the SQLite file size and the PostgreSQL relation sizes.
//!
//! `cargo run -p pscaler-events --example storage_month [-- --pg URL | --no-pg]`
//! (PostgreSQL: `TEST_PG_URL` or the local server; a fresh database is created and kept
//! out of the way under a `pscaler_test_` name).

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use events::metrics::{MetricSample, MetricStore};
use events::projections::{ReadModelStore, catch_up};
use events::store::{postgres::PgStore, sqlite::SqliteStore};
use events::vocabulary::*;
use events::{Event, EventStore, ExpectedVersion, Metadata, NewEvent, StreamAppend, round_sig, streams};
use serde_json::json;
use uuid::Uuid;

const SERVICE: &str = "checkout";
const DAYS: i64 = 30;
const FORECAST_EVERY_MIN: i64 = 5;
const POINTS: i64 = 60;
const DECISIONS: i64 = 300;
const RETENTION_DAYS: i64 = 7;

/// A small deterministic generator (xorshift), so every run writes the same month.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap()
}

/// Load at minute `m`: a daily cycle around 800 requests/s.
fn load(m: i64, noise: &mut Noise) -> f64 {
    let day = (m % 1440) as f64 / 1440.0 * std::f64::consts::TAU;
    800.0 + 400.0 * day.sin() + 40.0 * noise.next()
}

fn forecast(origin_min: i64, noise: &mut Noise) -> Event {
    let origin = start() + Duration::minutes(origin_min);
    let points = (1..=POINTS)
        .map(|k| {
            let p50 = load(origin_min + k * FORECAST_EVERY_MIN, noise);
            ForecastPoint {
                at: origin + Duration::minutes(k * FORECAST_EVERY_MIN),
                p10: round_sig(p50 * (0.85 + 0.02 * noise.next()), 6),
                p50: round_sig(p50, 6),
                p90: round_sig(p50 * (1.15 + 0.02 * noise.next()), 6),
            }
        })
        .collect();
    Event::ForecastMade(ForecastMade {
        forecast_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{SERVICE}/{origin_min}").as_bytes()),
        service: SERVICE.into(),
        model: "ensemble".into(),
        model_version: "0.1.0".into(),
        origin,
        step_seconds: FORECAST_EVERY_MIN * 60,
        horizon_minutes: POINTS * FORECAST_EVERY_MIN,
        points,
        notes: vec![],
    })
}

fn target(replicas: u32) -> TargetConfig {
    TargetConfig {
        replicas,
        instance_type: Some("m5.large".into()),
        spot_share: 0.0,
    }
}

/// A decision chain: proposed (every third waits for an approval), started, succeeded,
/// verified. Its inputs are sized like today's (a DecisionProposed averages 2.7 KB).
fn decision_chain(i: i64, at: DateTime<Utc>) -> Vec<NewEvent> {
    let id = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("decision/{i}").as_bytes());
    let (from, to) = (4 + (i % 5) as u32, 5 + ((i + 2) % 6) as u32);
    let path: Vec<f64> = (0..60).map(|k| round_sig(800.0 + k as f64 * 3.3, 6)).collect();
    let inputs = json!({
        "state": {"replicas": from, "ready": from, "utilization": 0.62, "at": at},
        "forecast": {"origin": at, "step_seconds": 300, "p50": path, "p90": path},
        "policy": {"min_replicas": 2, "max_replicas": 40, "target_utilization": 0.7,
                   "capacity_per_replica": 150.0, "cooldown_up_seconds": 300, "cooldown_down_seconds": 900,
                   "approval_threshold": 10, "max_step_up": 10, "max_step_down": 3},
        "now": at.timestamp(),
    });
    let meta = |m: i64| Metadata::new(format!("actor:decision/{SERVICE}"), at + Duration::seconds(m));
    let mut chain = vec![NewEvent::new(
        Event::DecisionProposed(DecisionProposed {
            decision_id: id,
            service: SERVICE.into(),
            strategy: "gradual_ramp".into(),
            current: target(from),
            target: target(to),
            reasoning: vec![
                format!("p90 of the next 15 minutes needs {to} replicas at 70 % utilization"),
                "within the step budget and cooldown".into(),
            ],
            estimated_hourly_cost: Some(0.096 * to as f64),
            forecast_id: None,
            requires_approval: i % 3 == 0,
            inputs,
            scores: json!({"cost": 0.71, "performance": 0.93, "stability": 0.88, "risk": 0.12, "transition": 0.8}),
            rollback_to: target(from),
            verification: VerificationCriteria {
                ready_replicas: to,
                timeout_seconds: 600,
                max_utilization: Some(0.85),
            },
        }),
        meta(0),
    )];
    if i % 3 == 0 {
        chain.push(NewEvent::new(
            Event::DecisionApproved(DecisionApproved {
                decision_id: id,
                approved_by: "sre-oncall".into(),
                comment: None,
            }),
            meta(60),
        ));
    }
    let service = SERVICE.to_string();
    chain.extend([
        NewEvent::new(
            Event::ScalingStarted(ScalingStarted {
                decision_id: id,
                service: service.clone(),
                from_replicas: from,
                to_replicas: to,
                executor: "kubernetes".into(),
            }),
            meta(61),
        ),
        NewEvent::new(
            Event::ScalingSucceeded(ScalingSucceeded {
                decision_id: id,
                service: service.clone(),
                replicas: to,
            }),
            meta(62),
        ),
        NewEvent::new(
            Event::VerificationPassed(VerificationPassed {
                decision_id: id,
                service,
                ready_replicas: to,
            }),
            meta(300),
        ),
    ]);
    chain
}

/// The month, as appends of one hour each, and the metric samples by day.
fn month() -> (Vec<Vec<StreamAppend>>, Vec<Vec<MetricSample>>) {
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let minutes = DAYS * 1440;
    let every_decision = minutes / DECISIONS;
    let mut hours = Vec::new();
    for hour in 0..DAYS * 24 {
        let mut appends = Vec::new();
        for m in (hour * 60..hour * 60 + 60).step_by(FORECAST_EVERY_MIN as usize) {
            let meta = Metadata::new(format!("actor:forecast/{SERVICE}"), start() + Duration::minutes(m));
            appends.push(StreamAppend::new(
                streams::service(SERVICE),
                ExpectedVersion::Any,
                vec![NewEvent::new(forecast(m, &mut noise), meta)],
            ));
            if m % every_decision < FORECAST_EVERY_MIN {
                let i = m / every_decision;
                let chain = decision_chain(i, start() + Duration::minutes(m));
                let Event::DecisionProposed(d) = &chain[0].event else {
                    unreachable!()
                };
                appends.push(StreamAppend::new(
                    streams::decision(d.decision_id),
                    ExpectedVersion::NoStream,
                    chain,
                ));
            }
        }
        hours.push(appends);
    }
    let days = (0..DAYS)
        .map(|d| {
            (d * 1440..(d + 1) * 1440)
                .map(|m| MetricSample {
                    ts: start() + Duration::minutes(m),
                    service: SERVICE.into(),
                    metric: "load".into(),
                    value: round_sig(load(m, &mut noise), 6),
                    labels: json!({}),
                })
                .collect()
        })
        .collect();
    (hours, days)
}

/// Appends the month, projects it and applies the retention; prints the timings.
async fn fill<S>(store: Arc<S>) -> Result<(), Box<dyn std::error::Error>>
where
    S: EventStore + ReadModelStore + MetricStore,
{
    let (hours, days) = month();
    let t = Instant::now();
    for day in &days {
        store.insert_batch(day).await?;
    }
    let metrics = t.elapsed();
    let t = Instant::now();
    for appends in hours {
        store.append_many(appends).await?;
    }
    let append = t.elapsed();
    let t = Instant::now();
    let head = catch_up(store.as_ref(), store.as_ref()).await?;
    let project = t.elapsed();
    let cutoff = start() + Duration::days(DAYS - RETENTION_DAYS);
    let dropped = ReadModelStore::apply_retention(store.as_ref(), cutoff).await?;
    println!(
        "  {head} events appended in {:.1} s (hourly append_many), projected in {:.1} s; \
         43,200 samples stored in {:.1} s; retention dropped {dropped} read-model rows older than {RETENTION_DAYS} days",
        append.as_secs_f64(),
        project.as_secs_f64(),
        metrics.as_secs_f64()
    );
    Ok(())
}

fn mb(bytes: i64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

async fn sqlite() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("month.db");
    let store = Arc::new(SqliteStore::connect(path.to_str().unwrap()).await?);
    println!("SQLite ({})", path.display());
    fill(store.clone()).await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(store.pool())
        .await?;
    let size = std::fs::metadata(&path)?.len() as i64;
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        .fetch_all(store.pool())
        .await
        .unwrap_or_default();
    let payloads: Vec<(String, i64, f64)> = sqlx::query_as(
        "SELECT event_type, COUNT(*), AVG(LENGTH(payload)) FROM events GROUP BY event_type ORDER BY 2 DESC",
    )
    .fetch_all(store.pool())
    .await?;
    for (event_type, n, avg) in &payloads {
        println!("  {n:>6} {event_type:<20} payload {avg:>6.0} bytes on average");
    }
    sqlx::query("VACUUM").execute(store.pool()).await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(store.pool())
        .await?;
    let vacuumed = std::fs::metadata(&path)?.len() as i64;
    println!(
        "  file: {} as written, {} after VACUUM (the steady state: freed pages are reused)",
        mb(size),
        mb(vacuumed)
    );
    for (name, bytes) in rows.iter().take(12) {
        println!("    {name:<40} {}", mb(*bytes));
    }
    Ok(())
}

/// Every relation of the schema (metrics with its partitions), largest first, with its
/// indexes and TOAST.
async fn relation_sizes(store: &PgStore) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.relname::TEXT, (pg_total_relation_size(c.oid) + COALESCE((SELECT SUM(pg_total_relation_size(i.inhrelid)) \
         FROM pg_inherits i WHERE i.inhparent = c.oid), 0))::BIGINT AS bytes FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
         ORDER BY 2 DESC",
    )
    .fetch_all(store.pool())
    .await
}

async fn postgres(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(PgStore::connect(url).await?);
    println!("PostgreSQL ({})", url.rsplit('/').next().unwrap_or(url));
    fill(store.clone()).await?;
    sqlx::query("VACUUM ANALYZE").execute(store.pool()).await?;
    let vacuumed = relation_sizes(&store).await?;
    // VACUUM FULL: the live data, what autovacuum converges to once dead rows are reused.
    sqlx::query("VACUUM FULL").execute(store.pool()).await?;
    let full = relation_sizes(&store).await?;
    let total = |rows: &[(String, i64)]| rows.iter().map(|r| r.1).sum::<i64>();
    println!(
        "  relations with their indexes and TOAST: {} after VACUUM, {} after VACUUM FULL (live data)",
        mb(total(&vacuumed)),
        mb(total(&full))
    );
    for (name, bytes) in full.iter().filter(|r| r.1 > 16_384) {
        let before = vacuumed.iter().find(|r| &r.0 == name).map_or(0, |r| r.1);
        println!("    {name:<40} {:>10} ({} after VACUUM)", mb(*bytes), mb(before));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    sqlite().await?;
    if args.iter().any(|a| a == "--no-pg") {
        return Ok(());
    }
    let url = match args.iter().position(|a| a == "--pg") {
        Some(i) => args.get(i + 1).cloned().ok_or("--pg needs a URL")?,
        None => events::testing::fresh_postgres_url().await,
    };
    postgres(&url).await
}
