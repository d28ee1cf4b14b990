//! `train` (feature `ml`): trains a LightGBM version on a series, scores it on the most recent
//! holdout window and offers it to the model registry (blue-green: it becomes current only if
//! it beats the current version on that window). Prints the `ModelTrained` event as JSON.

use std::path::PathBuf;

use actors::forecast::models::training;
use actors::forecast::registry::{DEFAULT_MODEL_DIR, ModelRegistry};
use actors::series;

/// Options of `predictive-scaler train`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The series CSV (`timestamp,value`).
    #[arg(long)]
    pub input: PathBuf,
    /// The service the model is for (registry folder name).
    #[arg(long)]
    pub service: String,
    /// The model registry folder (config `models.model_dir`).
    #[arg(long, default_value = DEFAULT_MODEL_DIR)]
    pub model_dir: PathBuf,
    /// Horizon the version is scored at, in minutes.
    #[arg(long, default_value_t = 60)]
    pub horizon_minutes: u32,
    /// Days at the end of the series held out for scoring.
    #[arg(long, default_value_t = 1.0)]
    pub holdout_days: f64,
}

/// Runs `predictive-scaler train`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let s = series::load_series(&args.input)?;
    let horizon = series::steps(f64::from(args.horizon_minutes), s.step_s);
    let registry = ModelRegistry::new(&args.model_dir);
    let trained = training::train_and_offer(
        &registry,
        &args.service,
        &s.t,
        &s.y,
        s.step_s,
        horizon,
        args.holdout_days,
    )?;
    let e = &trained.event;
    eprintln!(
        "{}: lgbm version {} holdout MAE {:.4} (current {}: {}) -> {}",
        s.name,
        e.model_version,
        e.mae,
        e.previous_version.as_deref().unwrap_or("none"),
        e.previous_mae.map_or("-".to_string(), |m| format!("{m:.4}")),
        if e.promoted {
            "promoted"
        } else {
            "kept the current version"
        }
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&events::Event::ModelTrained(e.clone()).payload())?
    );
    Ok(())
}
