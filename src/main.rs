//! The `predictive-scaler` command line.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
#[cfg(feature = "ml")]
use predictive_scaler::train;
use predictive_scaler::{
    backend::Backend, backtest, bench, bench_runtime, config::Settings, demo, explain, serve, simulate, telemetry,
};

#[derive(Parser)]
#[command(
    name = "predictive-scaler",
    version,
    about = "Forecasts service load and scales ahead of demand"
)]
struct Cli {
    /// A TOML file layered over config/default.toml (then PSCALER_* variables).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the actors for the configured services and the HTTP API.
    Serve,
    /// Replay a real trace through the whole pipeline in virtual time (embedded default).
    Demo(demo::Args),
    /// Create or upgrade the database schema.
    Migrate,
    /// Bring the read models up to the log, or rebuild them from scratch.
    Replay {
        /// Rebuild every read model from the whole log, beside the live ones; they are
        /// swapped in only when complete (a failed rebuild leaves the live ones as they were).
        #[arg(long)]
        rebuild: bool,
    },
    /// Rolling-origin forecasts of a series, in the evaluation protocol's format.
    Backtest(backtest::Args),
    /// Replay a series as demand through forecast and decision; write the replica schedule.
    Simulate(simulate::Args),
    /// Time one forecast cycle over many series (prints figures).
    Bench(bench::Args),
    /// Run many services in virtual time: memory per simulated day, then restart time (prints figures).
    BenchRuntime(bench_runtime::Args),
    /// Train a LightGBM version, offer it to the model registry (blue-green) and record
    /// `ModelTrained` in the configured event store (feature `ml`).
    #[cfg(feature = "ml")]
    Train(train::Args),
    /// Re-run a recorded decision on its recorded inputs and show the reasoning.
    Explain {
        /// The decision id.
        id: uuid::Uuid,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Backtest(a) => backtest::run(&a),
        Command::Simulate(a) => simulate::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::BenchRuntime(a) => {
            telemetry::init_logging_with("warn");
            actix::System::new().block_on(async move { bench_runtime::run(&a).await })
        }
        Command::Demo(mut a) => {
            telemetry::init_logging_with("warn");
            if a.model_dir.is_none() {
                a.model_dir = Some(Settings::load(cli.config.as_deref())?.models.model_dir);
            }
            actix::System::new().block_on(async move { demo::run(&a).await.map(|_| ()) })
        }
        command => {
            telemetry::init_logging();
            let settings = Settings::load(cli.config.as_deref())?;
            actix::System::new().block_on(run(command, settings, cli.config))
        }
    }
}

async fn run(command: Command, settings: Settings, config_file: Option<PathBuf>) -> anyhow::Result<()> {
    let url = settings.database.url.clone();
    let connect = || async {
        Backend::connect(&url)
            .await
            .with_context(|| format!("connecting to {}", serve::redact(&url)))
    };
    match command {
        Command::Serve => serve::run(settings, config_file).await,
        Command::Migrate => {
            let b = connect().await?;
            println!("migrated {} database {}", b.kind, serve::redact(&url));
            Ok(())
        }
        Command::Replay { rebuild } => {
            let b = connect().await?;
            let pos = if rebuild {
                events::projections::rebuild(b.store.as_ref(), b.models.as_ref()).await?
            } else {
                events::projections::catch_up(b.store.as_ref(), b.models.as_ref()).await?
            };
            println!(
                "read models {} up to log position {pos}",
                if rebuild {
                    "rebuilt beside the live ones and swapped in"
                } else {
                    "caught up"
                }
            );
            let letters = b
                .models
                .query(&events::projections::DocQuery::new("dead_letters", "position").limit(1000))
                .await?;
            if !letters.is_empty() {
                let more = if letters.len() == 1000 { " or more" } else { "" };
                println!(
                    "{}{more} event(s) could not be projected and were dead-lettered (read model `dead_letters`), \
                     the newest at log position {}",
                    letters.len(),
                    letters[0]["position"]
                );
            }
            Ok(())
        }
        Command::Explain { id } => {
            let b = connect().await?;
            let x = explain::explain(b.store.as_ref(), id).await?;
            println!("{}", serde_json::to_string_pretty(&x)?);
            anyhow::ensure!(x.identical, "the replayed decision differs from the recorded one");
            Ok(())
        }
        #[cfg(feature = "ml")]
        Command::Train(a) => train::run(&a, &settings).await.map(|_| ()),
        Command::Backtest(_)
        | Command::Simulate(_)
        | Command::Bench(_)
        | Command::BenchRuntime(_)
        | Command::Demo(_) => {
            unreachable!("handled in main")
        }
    }
}
