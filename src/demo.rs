//! `demo`: the whole pipeline on the embedded default, replaying a real trace
//! through the actors in virtual time, printing what it forecasts and decides.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use actors::decision::ScalingPolicy;
use actors::driver::VirtualDriver;
use actors::execution::SimulatedCluster;
use actors::messages::Sample;
use actors::series::{self, Series};
use actors::supervisor::{RootSupervisor, StartService};
use actors::{
    ForecastSettings, IngestLimits, LOAD_METRIC, ManualClock, ReconcileSettings, ServiceContext, StatusBoard,
};
use anyhow::Context as _;
use chrono::DateTime;
use events::metrics::MetricSample;
use events::projections::{PROJECTION, catch_up};
use events::vocabulary::Event;

use crate::backend::Backend;

/// The trace replayed when no `--input` is given (NAB's NYC taxi demand).
pub const BUNDLED_TRACE: &str = include_str!("../data/nyc_taxi.csv");

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// A series CSV (`timestamp,value`); the bundled NYC taxi trace by default.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Name of the simulated service.
    #[arg(long, default_value = "taxi")]
    pub service: String,
    /// Days of the trace loaded as history before the replay starts.
    #[arg(long, default_value_t = 14.0)]
    pub history_days: f64,
    /// Days of the trace replayed through the actors.
    #[arg(long, default_value_t = 7.0)]
    pub days: f64,
    /// Where the events go; a fresh SQLite file by default (removed first).
    #[arg(long, default_value = "sqlite://data/demo.db")]
    pub database_url: String,
    /// Wall-clock pause after each sample, to watch it live (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub pace_ms: u64,
    /// Print only the summary line.
    #[arg(long)]
    pub quiet: bool,
    /// Forecast model (see `backtest --model`); the built-in default when not given. With
    /// `lgbm`, the model registry's current version for the service is used when there is one.
    #[arg(long)]
    pub model: Option<String>,
    /// The model registry folder; config `models.model_dir` (`--config`) by default.
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
}

/// What a demo run produced.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub samples: usize,
    pub forecasts: usize,
    pub decisions: usize,
    pub executions: usize,
    pub verifications: usize,
    pub rollbacks: usize,
    pub final_replicas: u32,
    pub log_head: u64,
    /// `model@version` of the forecasts, each once, in order of first use (the version is a
    /// model registry id, or the program's version for a built-in model).
    pub models: Vec<String>,
}

fn load(args: &Args) -> anyhow::Result<Series> {
    match &args.input {
        Some(p) => Ok(series::load_series(p)?),
        None => Ok(series::parse_series(
            std::path::Path::new("nyc_taxi.csv"),
            "nyc_taxi",
            BUNDLED_TRACE,
        )?),
    }
}

pub(crate) fn reset_sqlite(url: &str) -> anyhow::Result<()> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        for suffix in ["", "-wal", "-shm"] {
            let f = format!("{path}{suffix}");
            if std::path::Path::new(&f).exists() {
                std::fs::remove_file(&f).with_context(|| format!("removing {f}"))?;
            }
        }
    }
    Ok(())
}

/// Runs the demo inside an actix system; returns what it produced.
pub async fn run(args: &Args) -> anyhow::Result<Summary> {
    let s = load(args)?;
    let per_day = (86_400 / s.step_s.max(1)) as usize;
    let hist = ((args.history_days * per_day as f64) as usize).clamp(2, s.n() - 1);
    let replay = ((args.days * per_day as f64) as usize).min(s.n() - hist);
    anyhow::ensure!(
        replay > 0,
        "the trace has no points left to replay after {hist} history points"
    );
    reset_sqlite(&args.database_url)?;
    let backend = Backend::connect(&args.database_url).await?;
    let t0 = DateTime::from_timestamp(s.t[hist - 1], 0).context("trace time out of range")?;
    let clock = ManualClock::at(t0);

    // History first, as one batch: what a long-running deployment would already hold.
    let history: Vec<MetricSample> = (0..hist)
        .map(|i| MetricSample {
            ts: DateTime::from_timestamp(s.t[i], 0).unwrap_or_default(),
            service: args.service.clone(),
            metric: LOAD_METRIC.into(),
            value: s.y[i].max(0.0),
            labels: serde_json::json!({"source": "demo-history"}),
        })
        .collect();
    backend.metrics.insert_batch(&history).await?;

    // The protocol's physics: one replica serves P99(history) / 20; 3-minute warm-up.
    let capacity = series::percentile_linear(&s.y[..hist], 99.0) / series::REPLICAS_AT_P99;
    let policy = ScalingPolicy {
        capacity_per_replica: capacity.max(f64::MIN_POSITIVE),
        decision_interval_s: s.step_s,
        stale_forecast_s: 3 * s.step_s,
        // The simulated cluster applies replica counts only: plan on-demand capacity.
        spot_shares: vec![0.0],
        ..ScalingPolicy::default()
    };
    let initial = ((s.y[hist - 1] / (capacity * policy.target_utilization)).ceil() as u32)
        .clamp(policy.min_replicas, policy.max_replicas);
    let cluster = Arc::new(
        SimulatedCluster::new(Arc::new(clock.clone()), chrono::Duration::seconds(policy.warmup_s))
            .with_service(&args.service, initial),
    );
    let ctx = ServiceContext {
        service: args.service.clone(),
        store: backend.store.clone(),
        metrics: backend.metrics.clone(),
        clock: Arc::new(clock.clone()),
        target: cluster.clone(),
        forecast: ForecastSettings {
            model: args
                .model
                .clone()
                .unwrap_or_else(|| actors::forecast::DEFAULT_MODEL.into()),
            step_seconds: s.step_s,
            horizon_minutes: (s.step_s / 60).max(1) * 4,
            cadence_seconds: s.step_s,
            model_dir: args
                .model_dir
                .clone()
                .unwrap_or_else(|| actors::forecast::registry::DEFAULT_MODEL_DIR.into()),
            ..ForecastSettings::default()
        },
        policy,
        // one evaluation per trace step, driven below in virtual time
        reconcile: ReconcileSettings {
            interval_s: s.step_s.max(1) as u64,
            ..ReconcileSettings::default()
        },
        ingest: IngestLimits::default(),
        status: StatusBoard::default(),
    };
    let (ctx_model, model_dir) = (ctx.forecast.model.clone(), ctx.forecast.model_dir.clone());
    let root = RootSupervisor::default().start();
    let actors = root.send(StartService(ctx)).await??;
    let mut driver = VirtualDriver::new(clock.clone(), actors, s.step_s.max(1) as u64, t0);
    if !args.quiet {
        println!(
            "demo: {} ({} points every {} s); {} history points, replaying {} ({:.1} days) into {}",
            s.name,
            s.n(),
            s.step_s,
            hist,
            replay,
            replay as f64 / per_day as f64,
            args.database_url
        );
        println!(
            "demo: forecasting with `{}` (model registry {}); one replica serves {capacity:.1}; \
             starting with {initial} replicas\n",
            ctx_model,
            model_dir.display()
        );
    }

    let mut summary = Summary::default();
    let mut seen = backend.store.head().await?;
    for i in hist..hist + replay {
        let ts = DateTime::from_timestamp(s.t[i], 0).context("trace time out of range")?;
        driver
            .feed(Sample {
                ts,
                value: s.y[i].max(0.0),
            })
            .await?;
        summary.samples += 1;
        for e in backend.store.read_all(seen, 10_000).await? {
            seen = e.position;
            tally(&mut summary, &e.event);
            if let Some(line) = describe(&e.event, s.y[i]).filter(|_| !args.quiet) {
                println!("{}  {line}", ts.format("%Y-%m-%d %H:%M"));
            }
        }
        if !args.quiet && (i - hist + 1).is_multiple_of(per_day.max(1)) {
            let done = i - hist + 1;
            eprintln!(
                "progress: {done}/{replay} samples ({:.0}%)",
                100.0 * done as f64 / replay as f64
            );
        }
        if args.pace_ms > 0 {
            tokio::time::sleep(Duration::from_millis(args.pace_ms)).await;
        }
    }
    summary.log_head = catch_up(backend.store.as_ref(), backend.models.as_ref()).await?;
    debug_assert_eq!(backend.models.checkpoint(PROJECTION).await?, summary.log_head);
    summary.final_replicas = actors::execution::ScaleTarget::state(cluster.as_ref(), &args.service)
        .await?
        .desired;
    {
        println!(
            "\ndemo: {} samples -> {} forecasts ({}), {} decisions, {} executions, {} verified, {} rolled back; \
             {} replicas at the end; {} events in the log (read models rebuilt up to it)",
            summary.samples,
            summary.forecasts,
            summary.models.join(", "),
            summary.decisions,
            summary.executions,
            summary.verifications,
            summary.rollbacks,
            summary.final_replicas,
            summary.log_head
        );
    }
    Ok(summary)
}

fn tally(s: &mut Summary, e: &Event) {
    match e {
        Event::ForecastMade(f) => {
            s.forecasts += 1;
            let m = format!("{}@{}", f.model, f.model_version);
            if !s.models.contains(&m) {
                s.models.push(m);
            }
        }
        Event::DecisionProposed(_) => s.decisions += 1,
        Event::ScalingSucceeded(_) => s.executions += 1,
        Event::VerificationPassed(_) => s.verifications += 1,
        Event::RollbackCompleted(_) => s.rollbacks += 1,
        _ => {}
    }
}

/// One line for the events worth showing as the replay runs.
fn describe(e: &Event, load: f64) -> Option<String> {
    Some(match e {
        Event::ForecastMade(f) => {
            let last = f.points.last()?;
            format!(
                "forecast  load {load:>8.0} | next {} min: p10 {:.0}  p50 {:.0}  p90 {:.0}{}",
                f.horizon_minutes,
                last.p10,
                last.p50,
                last.p90,
                if f.notes.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", f.notes.join("; "))
                }
            )
        }
        Event::DecisionProposed(d) => format!(
            "decide    {} {} -> {} replicas: {}",
            d.strategy,
            d.current.replicas,
            d.target.replicas,
            d.reasoning.first().cloned().unwrap_or_default()
        ),
        Event::ScalingSucceeded(x) => format!("execute   scaled to {} replicas", x.replicas),
        Event::VerificationPassed(v) => format!("verify    {} replicas ready", v.ready_replicas),
        Event::VerificationFailed(v) => format!("verify    FAILED: {}", v.reason),
        Event::RollbackCompleted(r) => format!("rollback  back to {} replicas", r.replicas),
        _ => return None,
    })
}
