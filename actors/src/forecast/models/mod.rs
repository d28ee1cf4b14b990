//! Statistical and machine-learnt models (feature `ml`): MSTL + ETS and Prophet from augurs,
//! LightGBM quantile regression on the feature pipeline, and the ensemble that combines them
//! with the simple components.
//!
//! Every model here is a [`Forecaster`](super::Forecaster): deterministic, causal (it reads
//! only the history it is given) and bounded in cost (each caps the history it fits on).
//! Models that are expensive to fit (Prophet, LightGBM) fit at most once per UTC day of
//! origins: at an origin `o` they use the fit on the history up to the start of `o`'s day
//! (`cutoff`), cached by a hash of exactly that training data, and apply it from `o` with
//! the data after the cutoff; a cache miss refits the same model, so results do not depend
//! on the order or the threads forecasts run on.
//!
//! Shared rules for awkward input (on top of [`validate`](super::grid::validate)):
//! gaps of up to 3 steps are interpolated, longer ones are filled with the value one day
//! before (else the last value) because augurs and the feature pipeline need a full grid;
//! NaN/inf observations are dropped; a history too short or too flat for the model falls
//! back to the last value with the spread of past changes, and says so in the notes.

pub mod combiner;
pub mod event_residuals;
pub mod holidays;
pub mod lgbm;
pub mod mstl;
pub mod prophet;
pub mod training;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub(crate) use super::ensemble::fallback;
use super::grid::{regularize, validate};
use super::{ForecastError, QuantilePath, steps_of};

/// A regular, gap-free history ending at the origin.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// Epoch seconds of `x[0]`; `x[i]` is at `t0 + i * step_s`.
    pub t0: i64,
    /// Values, all finite.
    pub x: Vec<f64>,
    pub step_s: i64,
    /// Steps in an hour, a day and a week.
    pub hour: usize,
    pub day: usize,
    pub week: usize,
    /// Whether the history never went negative (forecasts are then clamped at 0).
    pub nonneg: bool,
    /// Data problems worth a note.
    pub notes: Vec<String>,
}

impl Prepared {
    /// Epoch seconds of index `i`.
    pub fn time(&self, i: usize) -> i64 {
        self.t0 + i as i64 * self.step_s
    }

    /// Index of the origin (the last point).
    pub fn origin(&self) -> usize {
        self.x.len() - 1
    }
}

/// Validates and regularizes the last `max_len` steps of `(t, y)`, filling every gap.
pub(crate) fn prepare(
    t: &[i64],
    y: &[f64],
    step_s: i64,
    horizon: usize,
    max_len: usize,
) -> Result<Prepared, ForecastError> {
    validate(t, y, step_s, horizon)?;
    let grid = regularize(t, y, step_s, max_len);
    let mut notes = Vec::new();
    let day = steps_of(24.0 * 60.0, step_s);
    let first = grid.x.iter().position(|v| v.is_finite());
    let Some(first) = first else {
        return Err(ForecastError::NonFinite);
    };
    let mut x = grid.x[first..].to_vec();
    let mut long_gaps = 0;
    for i in 1..x.len() {
        if !x[i].is_finite() {
            long_gaps += 1;
            x[i] = if i >= day && x[i - day].is_finite() {
                x[i - day]
            } else {
                x[i - 1]
            };
        }
    }
    notes.extend(grid.duplicate_note());
    if grid.filled + long_gaps + grid.non_finite > 0 {
        notes.push(format!(
            "history: {} gap points interpolated, {long_gaps} missing points filled from the day before or the last value, {} non-finite values dropped",
            grid.filled, grid.non_finite
        ));
    }
    let t_last = *t.last().expect("validated: non-empty");
    let t0 = t_last - (x.len() as i64 - 1) * step_s;
    Ok(Prepared {
        t0,
        x,
        step_s,
        hour: steps_of(60.0, step_s),
        day,
        week: steps_of(7.0 * 24.0 * 60.0, step_s),
        nonneg: grid.nonneg,
        notes,
    })
}

/// Whether every value of the path is finite.
pub(crate) fn all_finite(p: &QuantilePath) -> bool {
    p.p10.iter().chain(&p.p50).chain(&p.p90).all(|v| v.is_finite())
}

/// Index of the last point at or before the start of the origin's UTC day (the training
/// cutoff of the once-a-day models), or `None` when that leaves fewer than `min_len` points.
pub(crate) fn day_cutoff(p: &Prepared, min_len: usize) -> Option<usize> {
    let start = p.time(p.origin()).div_euclid(86_400) * 86_400;
    if start < p.t0 {
        return None;
    }
    let idx = usize::try_from((start - p.t0) / p.step_s).ok()?;
    (idx + 1 >= min_len).then_some(idx)
}

/// FNV-1a over the training data and the settings that shape a fit: the cache key.
pub(crate) fn fit_key(tag: &str, t0: i64, step_s: i64, x: &[f64], extra: &[u64]) -> u64 {
    let mut bytes = Vec::with_capacity(x.len() * 8 + 64);
    bytes.extend_from_slice(tag.as_bytes());
    bytes.extend_from_slice(&t0.to_le_bytes());
    bytes.extend_from_slice(&step_s.to_le_bytes());
    for v in x {
        bytes.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    for e in extra {
        bytes.extend_from_slice(&e.to_le_bytes());
    }
    super::features::fnv1a64(&bytes)
}

/// The cached values and their insertion order.
type Slots<V> = (HashMap<u64, Arc<V>>, Vec<u64>);

/// A small bounded map of fitted models by [`fit_key`]. Evicts the oldest insertion; a miss
/// refits, so its contents never change a result, only the time it takes.
#[derive(Debug)]
pub(crate) struct FitCache<V> {
    inner: Mutex<Slots<V>>,
    capacity: usize,
}

impl<V> FitCache<V> {
    pub fn new(capacity: usize) -> Self {
        FitCache {
            inner: Mutex::new((HashMap::new(), Vec::new())),
            capacity: capacity.max(1),
        }
    }

    pub fn get(&self, key: u64) -> Option<Arc<V>> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.0.get(&key).cloned()
    }

    pub fn insert(&self, key: u64, value: V) -> Arc<V> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let v = Arc::new(value);
        if g.0.insert(key, v.clone()).is_none() {
            g.1.push(key);
        }
        while g.1.len() > self.capacity {
            let old = g.1.remove(0);
            g.0.remove(&old);
        }
        v
    }

    /// The cached value for `key`, or `fit()` stored and returned.
    pub fn get_or_fit<E>(&self, key: u64, fit: impl FnOnce() -> Result<V, E>) -> Result<Arc<V>, E> {
        if let Some(v) = self.get(key) {
            return Ok(v);
        }
        fit().map(|v| self.insert(key, v))
    }
}

#[cfg(test)]
mod tests;
