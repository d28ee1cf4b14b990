//! Restart benchmark support: fills a store with a million events fast, then times the
//! bounded startup read of one service (its snapshot, then `read_service` after it) and,
//! for contrast, the same read without a snapshot.
//!
//! `cargo run -p pscaler-events --example restart_bench -- [--events N] [--services S] [--pg URL | --sqlite PATH]`
//! (default: 1,000,000 events over 1,000 services in a temporary SQLite file).

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use events::store::{postgres::PgStore, sqlite::SqliteStore};
use events::vocabulary::*;
use events::{Event, EventStore, ExpectedVersion, Metadata, NewEvent, StreamAppend, streams};
use serde_json::json;
use uuid::Uuid;

/// Events per `append_many` call while filling.
const FILL_BATCH: usize = 5_000;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The `n`-th event of service `s`: mostly forecasts (12 points), every tenth a decision step.
fn event(s: usize, n: usize) -> (String, NewEvent) {
    let service = format!("svc-{s:04}");
    let at = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap() + Duration::minutes(n as i64 * 5);
    let meta = Metadata::new(format!("actor:forecast/{service}"), at);
    if n % 10 == 9 {
        let id = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{service}/{n}").as_bytes());
        let e = Event::ScalingSucceeded(ScalingSucceeded {
            decision_id: id,
            service: service.clone(),
            replicas: 3 + (n % 7) as u32,
        });
        return (streams::decision(id), NewEvent::new(e, meta));
    }
    let points = (1..=12)
        .map(|k| ForecastPoint {
            at: at + Duration::minutes(5 * k),
            p10: 90.0 + k as f64,
            p50: 100.0 + k as f64,
            p90: 110.0 + k as f64,
        })
        .collect();
    let e = Event::ForecastMade(ForecastMade {
        forecast_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{service}/{n}").as_bytes()),
        service: service.clone(),
        model: "ensemble".into(),
        model_version: "0.1.0".into(),
        origin: at,
        step_seconds: 300,
        horizon_minutes: 60,
        points,
        notes: vec![],
    });
    (streams::service(&service), NewEvent::new(e, meta))
}

/// Fills the log, services interleaved the way a live system writes them.
async fn fill(store: &dyn EventStore, total: usize, services: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut batch = Vec::with_capacity(FILL_BATCH);
    for i in 0..total {
        let (stream, e) = event(i % services, i / services);
        batch.push(StreamAppend::new(stream, ExpectedVersion::Any, vec![e]));
        if batch.len() == FILL_BATCH || i + 1 == total {
            store.append_many(std::mem::take(&mut batch)).await?;
        }
    }
    Ok(())
}

/// Reads one service after `from`, a page at a time; returns the events read.
async fn read_service(
    store: &dyn EventStore,
    service: &str,
    mut from: u64,
) -> Result<usize, Box<dyn std::error::Error>> {
    let mut n = 0;
    loop {
        let page = store.read_service(service, from, 1_000).await?;
        let Some(last) = page.last() else { return Ok(n) };
        from = last.position;
        n += page.len();
    }
}

async fn bench(store: Arc<dyn EventStore>, total: usize, services: usize) -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    fill(store.as_ref(), total, services).await?;
    let filled = t.elapsed().as_secs_f64();
    let head = store.head().await?;
    println!(
        "  filled {head} events over {services} services in {filled:.1} s ({:.0} events/s)",
        head as f64 / filled
    );
    // Snapshots as the runtime would keep them: each service folded up to 99 % of the log.
    let snapshot_at = head * 99 / 100;
    for s in (0..services).step_by((services / 10).max(1)) {
        store
            .save_snapshot(&format!("decision/svc-{s:04}"), snapshot_at, json!({"pending": []}))
            .await?;
    }
    let (mut with, mut without, mut read) = (Vec::new(), Vec::new(), 0);
    for s in (0..services).step_by((services / 10).max(1)) {
        let service = format!("svc-{s:04}");
        let t = Instant::now();
        let from = store
            .load_snapshot(&format!("decision/{service}"))
            .await?
            .map(|(p, _)| p)
            .unwrap_or(0);
        read += read_service(store.as_ref(), &service, from).await?;
        with.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        read_service(store.as_ref(), &service, 0).await?;
        without.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let max = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    println!(
        "  startup read of one service, snapshot + read_service after it: mean {:.2} ms, max {:.2} ms ({} events read over {} services)",
        mean(&with),
        max(&with),
        read,
        with.len()
    );
    println!(
        "  the same without a snapshot (the service's whole history, {} events): mean {:.1} ms, max {:.1} ms",
        total / services,
        mean(&without),
        max(&without)
    );
    println!(
        "  1,000 services started one after the other would read for ~{:.1} s with snapshots, ~{:.1} s without",
        mean(&with) * 1000.0 / 1e3,
        mean(&without) * 1000.0 / 1e3
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let total: usize = arg(&args, "--events")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let services: usize = arg(&args, "--services")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000);
    if let Some(url) = arg(&args, "--pg") {
        println!("PostgreSQL");
        return bench(Arc::new(PgStore::connect(&url).await?), total, services).await;
    }
    let dir = tempfile::tempdir()?;
    let path = arg(&args, "--sqlite").unwrap_or_else(|| dir.path().join("restart.db").display().to_string());
    println!("SQLite ({path})");
    bench(Arc::new(SqliteStore::connect(&path).await?), total, services).await
}
