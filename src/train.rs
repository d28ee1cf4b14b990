//! `train` (feature `ml`): trains a LightGBM version on a series — or, with `--model transformer
//! --onnx FILE`, takes a retrained transformer (`scripts/transformer/`) — scores it on the most
//! recent holdout window and offers it to the model registry in `models.model_dir` (blue-green:
//! it becomes current only if it beats the current version on that window). The `ModelTrained`
//! event that records the outcome is appended to the service's stream in the configured event
//! store (`database.url`, the one `serve` uses), the read models are brought up to it, and it
//! is printed as JSON.

use std::path::PathBuf;

use actors::forecast::models::training;
use actors::forecast::registry::ModelRegistry;
use actors::forecast::transformer::training as transformer_training;
use actors::series;
use anyhow::Context as _;
use events::vocabulary::ModelTrained;
use events::{Event, ExpectedVersion, Metadata, NewEvent, streams};

use crate::backend::Backend;
use crate::config::Settings;
use crate::serve::redact;

/// Options of `predictive-scaler train`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The series CSV (`timestamp,value`).
    #[arg(long)]
    pub input: PathBuf,
    /// The service the model is for (registry folder name, event stream `service/<name>`).
    #[arg(long)]
    pub service: String,
    /// The model registry folder; config `models.model_dir` by default.
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// Horizon the version is scored at, in minutes; config `models.horizon_minutes` by default.
    #[arg(long)]
    pub horizon_minutes: Option<u32>,
    /// Days at the end of the series held out for scoring.
    #[arg(long, default_value_t = 1.0)]
    pub holdout_days: f64,
    /// The model to offer a version of: `lgbm` (trained here) or `transformer` (an ONNX file
    /// trained by scripts/transformer/train.py, given with --onnx).
    #[arg(long, default_value = training::LGBM)]
    pub model: String,
    /// The ONNX file to offer (with `--model transformer`).
    #[arg(long)]
    pub onnx: Option<PathBuf>,
}

/// What a `train` run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The recorded event.
    pub event: ModelTrained,
    /// Its position in the log.
    pub position: u64,
}

/// Runs `predictive-scaler train` against the configured store and registry.
pub async fn run(args: &Args, settings: &Settings) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        args.holdout_days.is_finite() && args.holdout_days > 0.0,
        "--holdout-days must be a positive number of days"
    );
    let s = series::load_series(&args.input)?;
    let horizon_minutes = args
        .horizon_minutes
        .map_or(settings.models.horizon_minutes as f64, f64::from);
    anyhow::ensure!(horizon_minutes > 0.0, "the horizon must be at least one minute");
    let horizon = series::steps(horizon_minutes, s.step_s);
    let model_dir = args.model_dir.as_ref().unwrap_or(&settings.models.model_dir);
    let onnx = onnx_bytes(args)?;
    for problem in unused_by_serve(args, settings, s.step_s) {
        eprintln!("train: note: {problem}");
    }
    // connect first: a wrong database.url should not cost a training run
    let url = &settings.database.url;
    let backend = Backend::connect(url)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))?;

    let registry = ModelRegistry::new(model_dir);
    let trained = match onnx {
        Some(bytes) => transformer_training::offer_onnx(
            &registry,
            &args.service,
            &bytes,
            &s.t,
            &s.y,
            s.step_s,
            horizon,
            args.holdout_days,
        )?,
        None => training::train_and_offer(
            &registry,
            &args.service,
            &s.t,
            &s.y,
            s.step_s,
            horizon,
            args.holdout_days,
        )?,
    };
    let e = trained.event;
    let stream = streams::service(&args.service);
    let appended = backend
        .store
        .append(
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::new(
                Event::ModelTrained(e.clone()),
                Metadata::new("system", chrono::Utc::now()),
            )],
        )
        .await
        .with_context(|| format!("appending ModelTrained to {stream} (the registry already holds the version)"))?;
    let head = events::projections::catch_up(backend.store.as_ref(), backend.models.as_ref())
        .await
        .context("bringing the read models up to the log")?;
    eprintln!(
        "{}: {} version {} holdout MAE {:.4} (current {}: {}) -> {}; recorded at log position {} of {stream} \
         in {} (read models at {head}); registry {}",
        s.name,
        e.model,
        e.model_version,
        e.mae,
        e.previous_version.as_deref().unwrap_or("none"),
        e.previous_mae.map_or("-".to_string(), |m| format!("{m:.4}")),
        outcome(&e),
        appended.position,
        redact(url),
        model_dir.display(),
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&Event::ModelTrained(e.clone()).payload())?
    );
    Ok(Outcome {
        event: e,
        position: appended.position,
    })
}

/// The ONNX file to offer with `--model transformer` (`None` for LightGBM), checked against the options.
fn onnx_bytes(args: &Args) -> anyhow::Result<Option<Vec<u8>>> {
    match (args.model.as_str(), &args.onnx) {
        (training::LGBM, None) => Ok(None),
        (transformer_training::TRANSFORMER, Some(path)) => std::fs::read(path)
            .with_context(|| format!("reading {}", path.display()))
            .map(Some),
        (transformer_training::TRANSFORMER, None) => {
            anyhow::bail!(
                "--model transformer needs --onnx FILE (scripts/transformer/train.py and export.py write one)"
            )
        }
        (training::LGBM, Some(_)) => anyhow::bail!("--onnx goes with --model transformer"),
        (other, _) => anyhow::bail!("--model {other}: train offers `lgbm` or `transformer` versions"),
    }
}

/// What the registry did with the version, in words.
fn outcome(e: &ModelTrained) -> &'static str {
    match (e.promoted, &e.previous_version) {
        (true, _) => "promoted",
        (false, _) if e.points == 0 => "not promoted: no point of the holdout window could be scored",
        // the registry had it already (same artifact and window): nothing to compare
        (false, None) => "already the current version",
        (false, Some(_)) => "kept the current version",
    }
}

/// Why `serve`, as configured, would not run the version this run trains (it is trained and
/// recorded anyway: the configuration may change before the next start).
fn unused_by_serve(args: &Args, settings: &Settings, step_s: i64) -> Vec<String> {
    let mut out = Vec::new();
    if !settings.services.contains(&args.service) {
        out.push(format!(
            "`{}` is not among the configured services ({})",
            args.service,
            settings.service_names().join(", ")
        ));
    }
    let runs = match args.model.as_str() {
        training::LGBM => vec![training::LGBM],
        _ => vec![transformer_training::TRANSFORMER, "ensemble"],
    };
    if !runs.contains(&settings.models.model.as_str()) {
        out.push(format!(
            "models.model is `{}`: the forecast actor runs {} registry versions when it is `{}`",
            settings.models.model,
            args.model,
            runs.join("` or `")
        ));
    }
    if args.model == training::LGBM && settings.models.step_seconds != step_s {
        out.push(format!(
            "the series is every {step_s} s but models.step_seconds is {}: the forecast actor refuses a version \
             trained on another interval",
            settings.models.step_seconds
        ));
    }
    out
}
