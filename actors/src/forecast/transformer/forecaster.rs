//! The `transformer` model: the ONNX patch encoder's p10/p50/p90 for the leads it reaches
//! (2 h at 5-minute steps), the simple ensemble's beyond them, batched across series.

use std::sync::Arc;

use super::layout::{self, Prepared};
use super::runtime::{OnnxModel, TransformerError};
use crate::forecast::ensemble::Ensemble;
use crate::forecast::grid::{regularize, validate};
use crate::forecast::{ForecastError, Forecaster, Job, QuantilePath, finish};

/// Which ONNX model a forecaster runs.
#[derive(Debug, Clone, Default)]
pub enum ModelChoice {
    /// The model shipped with the build (`data/transformer/model.onnx`).
    #[default]
    Shipped,
    /// A model already loaded (a registry version).
    Loaded(Arc<OnnxModel>),
}

impl ModelChoice {
    /// The loaded model, or why there is none.
    pub fn get(&self) -> Result<Arc<OnnxModel>, TransformerError> {
        match self {
            ModelChoice::Shipped => OnnxModel::shipped(),
            ModelChoice::Loaded(m) => Ok(m.clone()),
        }
    }
}

/// The transformer forecaster (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct Transformer {
    /// The model it runs.
    pub model: ModelChoice,
}

/// A job after validation and preparation.
struct Ready {
    window: Option<Prepared>,
    nonneg: bool,
    notes: Vec<String>,
}

fn ready(job: &Job) -> Result<Ready, ForecastError> {
    validate(job.t, job.y, job.step_s, job.horizon)?;
    let grid = regularize(job.t, job.y, job.step_s, layout::CONTEXT * layout::agg_of(job.step_s));
    let mut notes = grid.history_notes();
    let need = layout::CONTEXT * layout::agg_of(job.step_s);
    if grid.x.len() < need {
        notes.push(format!(
            "history of {} steps is shorter than the transformer's context of {need} steps: filled from its first value",
            grid.x.len()
        ));
    }
    Ok(Ready {
        window: layout::prepare(&grid.x, job.step_s),
        nonneg: grid.nonneg,
        notes,
    })
}

impl Transformer {
    /// Forecasts every job with one inference over all of them (the batch API a cycle calls);
    /// results in job order. Without a usable runtime or model every job gets the simple
    /// ensemble's forecast, with the reason in its notes.
    fn run_batch(&self, jobs: &[Job]) -> Vec<Result<QuantilePath, ForecastError>> {
        let prepared: Vec<Result<Ready, ForecastError>> = jobs.iter().map(ready).collect();
        let windows: Vec<&Prepared> = prepared
            .iter()
            .filter_map(|r| r.as_ref().ok().and_then(|r| r.window.as_ref()))
            .collect();
        let outputs = self.model.get().and_then(|m| m.predict(&windows));
        let mut next = 0;
        jobs.iter()
            .zip(prepared)
            .map(|(job, r)| {
                let Ready { window, nonneg, notes } = r?;
                let q = match (&window, &outputs) {
                    (Some(w), Ok(out)) => {
                        next += 1;
                        Ok((w, &out[(next - 1) * 3 * layout::HORIZON..next * 3 * layout::HORIZON]))
                    }
                    (None, _) => Err("no finite value in the last day of history".to_string()),
                    (Some(_), Err(e)) => Err(format!("transformer unavailable: {e}")),
                };
                assemble(job, nonneg, notes, q)
            })
            .collect()
    }
}

/// The path of one job from its model output (or the reason there is none).
fn assemble(
    job: &Job,
    nonneg: bool,
    notes: Vec<String>,
    q: Result<(&Prepared, &[f32]), String>,
) -> Result<QuantilePath, ForecastError> {
    let reach = layout::reach(job.step_s);
    let simple = || Ensemble::simple().forecast(job.t, job.y, job.step_s, job.horizon);
    let mut path = match q {
        Ok((w, q)) => {
            let [p10, p50, p90] = layout::to_leads(q, w, job.step_s, job.horizon);
            let mut path = QuantilePath {
                p10,
                p50,
                p90,
                notes: Vec::new(),
            };
            if job.horizon > reach {
                let rest = simple()?;
                path.p10.extend_from_slice(&rest.p10[reach..]);
                path.p50.extend_from_slice(&rest.p50[reach..]);
                path.p90.extend_from_slice(&rest.p90[reach..]);
                path.notes.push(format!(
                    "leads past {reach} (the transformer's reach) from the simple ensemble"
                ));
            }
            path
        }
        Err(reason) => {
            let mut p = simple()?;
            p.notes.insert(0, format!("{reason}: simple ensemble instead"));
            p
        }
    };
    path.notes.splice(0..0, notes);
    finish(&mut path, nonneg);
    Ok(path)
}

impl Forecaster for Transformer {
    fn name(&self) -> &'static str {
        "transformer"
    }

    fn forecast(&self, t: &[i64], y: &[f64], step_s: i64, horizon: usize) -> Result<QuantilePath, ForecastError> {
        let job = Job { t, y, step_s, horizon };
        self.run_batch(&[job]).pop().expect("one job, one result")
    }

    fn forecast_batch(&self, jobs: &[Job]) -> Vec<Result<QuantilePath, ForecastError>> {
        self.run_batch(jobs)
    }
}
