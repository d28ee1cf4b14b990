//! The pure forecasting core: quantile forecasts of a load series from its causal history.
//!
//! Every model implements [`Forecaster`]: given the history up to and
//! including the origin (`t` in epoch seconds, `y` the values) and the series
//! interval, it returns p10/p50/p90 for the next `horizon` steps. Models are
//! deterministic and read nothing but their arguments. Start with
//! [`ensemble::Ensemble`] (the default), which combines the simple
//! `components` with per-lead weights learnt on the tail of the history and
//! takes its intervals from its own past errors ([`conformal`]), with the
//! short-term [`transformer`] (an ONNX model served by ONNX Runtime) as one more
//! member when its runtime loads; [`snaive::SeasonalNaive`] is the floor every
//! model is measured against.

pub mod actor;
pub(crate) mod components;
pub mod conformal;
pub mod ensemble;
pub mod features;
pub(crate) mod grid;
#[cfg(feature = "ml")]
pub mod models;
pub mod registry;
pub mod slot;
pub mod snaive;
pub mod state;
pub mod transformer;
pub mod window;

#[cfg(test)]
mod tests;

pub use ensemble::Ensemble;
pub use snaive::SeasonalNaive;

/// Forecast quantiles for leads `1..=horizon` (index `k-1` is lead `k`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QuantilePath {
    /// Lower quantile (10 %).
    pub p10: Vec<f64>,
    /// Median.
    pub p50: Vec<f64>,
    /// Upper quantile (90 %).
    pub p90: Vec<f64>,
    /// What the model did that a reader should know (fallbacks, data problems, weights).
    pub notes: Vec<String>,
}

impl QuantilePath {
    /// Number of leads.
    pub fn len(&self) -> usize {
        self.p50.len()
    }

    /// Whether the path has no leads.
    pub fn is_empty(&self) -> bool {
        self.p50.is_empty()
    }
}

/// Why a forecast could not be made.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ForecastError {
    /// No observations at all.
    #[error("empty history: nothing to forecast from")]
    EmptyHistory,
    /// The horizon is zero steps.
    #[error("bad horizon {0}: at least one step is needed")]
    BadHorizon(usize),
    /// The interval is not positive.
    #[error("bad interval {0} s: must be positive")]
    BadStep(i64),
    /// `t` and `y` differ in length.
    #[error("history has {t} timestamps but {y} values")]
    LengthMismatch {
        /// Timestamps given.
        t: usize,
        /// Values given.
        y: usize,
    },
    /// Timestamps go backwards.
    #[error("timestamps are not sorted: index {index} is earlier than the one before")]
    Unsorted {
        /// First index that is out of order.
        index: usize,
    },
    /// No observation is a finite number.
    #[error("no finite value in the history")]
    NonFinite,
}

/// A quantile forecaster.
pub trait Forecaster: Send + Sync {
    /// Short stable name (as given to [`by_name`]).
    fn name(&self) -> &'static str;
    /// `t` (epoch seconds) and `y`: the history up to and including the origin, causal; `step_s` the series interval.
    fn forecast(&self, t: &[i64], y: &[f64], step_s: i64, horizon: usize) -> Result<QuantilePath, ForecastError>;
    /// Forecasts several series (those due in a cycle) at once, results in job order; a model
    /// that can batch (the transformer) runs one inference for all of them.
    fn forecast_batch(&self, jobs: &[Job]) -> Vec<Result<QuantilePath, ForecastError>> {
        jobs.iter()
            .map(|j| self.forecast(j.t, j.y, j.step_s, j.horizon))
            .collect()
    }
}

/// One forecast of a batch: the history up to the origin, its interval and the horizon.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    /// Epoch seconds, sorted.
    pub t: &'a [i64],
    /// Values.
    pub y: &'a [f64],
    /// Series interval in seconds.
    pub step_s: i64,
    /// Leads to forecast.
    pub horizon: usize,
}

/// The model used when none is named.
pub const DEFAULT_MODEL: &str = "ensemble";

/// Names [`by_name`] knows, the default first.
pub fn model_names() -> &'static [&'static str] {
    #[cfg(feature = "ml")]
    {
        &[
            "ensemble",
            "snaive",
            "transformer",
            "ensemble-simple",
            "ensemble-ml",
            "mstl",
            "ets",
            "prophet",
            "lgbm",
        ]
    }
    #[cfg(not(feature = "ml"))]
    {
        &["ensemble", "snaive", "transformer", "ensemble-simple"]
    }
}

/// The model of that name, if any.
pub fn by_name(name: &str) -> Option<Box<dyn Forecaster>> {
    match name {
        "ensemble" => Some(Box::new(Ensemble::default())),
        "snaive" => Some(Box::new(SeasonalNaive)),
        "transformer" => Some(Box::new(transformer::Transformer::default())),
        "ensemble-simple" => Some(Box::new(Ensemble::simple())),
        #[cfg(feature = "ml")]
        "ensemble-ml" => Some(Box::new(models::combiner::Combiner::default())),
        #[cfg(feature = "ml")]
        "mstl" => Some(Box::new(models::mstl::Mstl)),
        #[cfg(feature = "ml")]
        "ets" => Some(Box::new(models::mstl::Ets)),
        #[cfg(feature = "ml")]
        "prophet" => Some(Box::new(models::prophet::Prophet::default())),
        #[cfg(feature = "ml")]
        "lgbm" => Some(Box::new(models::lgbm::Lgbm::default())),
        _ => None,
    }
}

/// Steps of `step_s` in `minutes`, at least one (the protocol's rounding).
pub(crate) fn steps_of(minutes: f64, step_s: i64) -> usize {
    crate::series::steps(minutes, step_s)
}

/// Clamps at zero where the history never went negative, and orders p10 <= p50 <= p90.
pub(crate) fn finish(path: &mut QuantilePath, nonneg: bool) {
    for i in 0..path.p50.len() {
        let (mut a, mut b, mut c) = (path.p10[i], path.p50[i], path.p90[i]);
        if nonneg {
            a = a.max(0.0);
            b = b.max(0.0);
            c = c.max(0.0);
        }
        b = b.clamp(a.min(c), a.max(c));
        path.p10[i] = a.min(b);
        path.p90[i] = c.max(b);
        path.p50[i] = b;
    }
}
