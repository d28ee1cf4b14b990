//! `bench-runtime`: many services on one process in virtual time — resident memory and
//! log size at every simulated day (memory must stay flat once the forecast windows are
//! full), then a restart: the time until every service's actors have folded their state from
//! the log again. Prints figures; no test times anything.

use std::sync::Arc;
use std::time::Instant;

use actix::Actor;
use actors::driver::VirtualDriver;
use actors::execution::SimulatedCluster;
use actors::messages::{Generation, Sample};
use actors::supervisor::{RootSupervisor, StartService};
use actors::{ForecastSettings, ManualClock, StatusBoard};
use anyhow::Context as _;
use chrono::{DateTime, Duration};

use crate::backend::Backend;
use crate::bench::synthetic;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Services run at once.
    #[arg(long, default_value_t = 1000)]
    pub services: usize,
    /// Simulated days.
    #[arg(long, default_value_t = 7.0)]
    pub days: f64,
    /// Seconds between samples and between evaluations of each service.
    #[arg(long, default_value_t = 300)]
    pub step_seconds: i64,
    /// The forecasting model.
    #[arg(long, default_value = "snaive")]
    pub model: String,
    /// The store (a fresh SQLite file by default; a postgres:// URL is used as it is).
    #[arg(long, default_value = "sqlite://data/bench-runtime.db")]
    pub database_url: String,
}

/// Resident set size of this process in MiB (Linux), or NaN.
pub fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<f64>().ok()))
        .map_or(f64::NAN, |pages| pages * 4096.0 / (1024.0 * 1024.0))
}

fn services(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("svc-{i:04}")).collect()
}

/// Starts every service's actors on `backend`; returns their drivers.
async fn start_all(
    args: &Args,
    backend: &Backend,
    clock: &ManualClock,
    cluster: Arc<SimulatedCluster>,
    status: &StatusBoard,
    first_tick: DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<VirtualDriver>> {
    let root = RootSupervisor::default().start();
    let mut drivers = Vec::with_capacity(args.services);
    for name in services(args.services) {
        let mut ctx = actors::testing::context(
            &name,
            backend.store.clone(),
            backend.metrics.clone(),
            Arc::new(clock.clone()),
            cluster.clone(),
        );
        ctx.forecast = ForecastSettings {
            model: args.model.clone(),
            step_seconds: args.step_seconds,
            horizon_minutes: 60,
            cadence_seconds: args.step_seconds,
            history_seconds: 7 * 86_400,
            ..ForecastSettings::default()
        };
        ctx.policy.capacity_per_replica = 100.0;
        ctx.policy.spot_shares = vec![0.0];
        ctx.policy.decision_interval_s = args.step_seconds;
        ctx.reconcile.interval_s = args.step_seconds as u64;
        ctx.status = status.clone();
        let a = root.send(StartService(ctx)).await??;
        drivers.push(VirtualDriver::new(
            clock.clone(),
            a,
            args.step_seconds as u64,
            first_tick,
        ));
    }
    Ok(drivers)
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.services > 0 && args.step_seconds > 0,
        "--services and --step-seconds must be positive"
    );
    crate::demo::reset_sqlite(&args.database_url)?;
    let backend = Backend::connect(&args.database_url).await?;
    let steps = (args.days * 86_400.0 / args.step_seconds as f64) as usize;
    let (t, _) = synthetic(0, steps, args.step_seconds);
    let t0 = DateTime::from_timestamp(t[0], 0).context("time")?;
    let clock = ManualClock::at(t0);
    let mut cluster = SimulatedCluster::new(Arc::new(clock.clone()), Duration::minutes(3));
    for s in services(args.services) {
        cluster = cluster.with_service(&s, 2);
    }
    let cluster = Arc::new(cluster);
    let status = StatusBoard::default();
    let mut drivers = start_all(args, &backend, &clock, cluster.clone(), &status, t0).await?;
    let series: Vec<Vec<f64>> = (0..args.services)
        .map(|i| synthetic(i as u64, steps, args.step_seconds).1)
        .collect();
    println!(
        "bench-runtime: {} services, {:.1} simulated days at {} s, model {}, store {}",
        args.services, args.days, args.step_seconds, args.model, backend.kind
    );
    println!("{:>5} {:>10} {:>12} {:>10}", "day", "rss MiB", "log events", "wall s");
    let started = Instant::now();
    let per_day = (86_400 / args.step_seconds) as usize;
    println!(
        "{:>5} {:>10.1} {:>12} {:>10.1}",
        0,
        rss_mib(),
        backend.store.head().await?,
        0.0
    );
    for k in 0..steps {
        let ts = DateTime::from_timestamp(t[k], 0).context("time")?;
        for (d, y) in drivers.iter_mut().zip(&series) {
            d.feed(Sample { ts, value: y[k] }).await?;
        }
        if (k + 1) % per_day == 0 {
            let day = (k + 1) / per_day;
            let head = backend.store.head().await?;
            println!(
                "{day:>5} {:>10.1} {head:>12} {:>10.1}",
                rss_mib(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    drop(drivers);
    let head = backend.store.head().await?;
    let restart = Instant::now();
    let fresh = StatusBoard::default();
    let again = start_all(args, &backend, &clock, cluster, &fresh, clock.now_utc()).await?;
    // a message is answered only once the actor's rebuild (which holds its mailbox) is done
    for d in &again {
        let a = d.actors();
        a.decision.send(Generation).await?;
        a.execution.send(Generation).await?;
        a.forecast.send(Generation).await?;
    }
    anyhow::ensure!(
        fresh.not_ready().is_empty(),
        "services not ready: {:?}",
        fresh.not_ready()
    );
    println!(
        "restart: {} services ready in {:.2} s with {head} events in the log (rss {:.1} MiB)",
        args.services,
        restart.elapsed().as_secs_f64(),
        rss_mib()
    );
    Ok(())
}
