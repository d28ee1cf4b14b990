//! The transformer as a member of the ensemble: its p50 path from every replay origin and
//! from the forecast origin, in one batched inference.

use super::forecaster::ModelChoice;
use super::layout;
use super::runtime::TransformerError;

/// p50 paths (`h` leads each) from each of `origins` and then from `o`, flattened in that
/// order, all computed from `x[..=origin]` only. Past the model's reach a path holds its last
/// reached value; an origin without a finite value in its context gets NaN (the ensemble
/// replaces NaN by the last value, as for any member).
pub(crate) fn paths(
    model: &ModelChoice,
    x: &[f64],
    origins: &[usize],
    o: usize,
    h: usize,
    step_s: i64,
) -> Result<Vec<f64>, TransformerError> {
    let model = model.get()?;
    let all: Vec<usize> = origins.iter().copied().chain([o]).collect();
    let windows: Vec<Option<layout::Prepared>> = all.iter().map(|&v| layout::prepare(&x[..=v], step_s)).collect();
    let refs: Vec<&layout::Prepared> = windows.iter().flatten().collect();
    let out = model.predict(&refs)?;
    let mut paths = vec![f64::NAN; all.len() * h];
    let mut next = 0;
    for (slot, w) in paths.chunks_mut(h).zip(&windows) {
        let Some(w) = w else { continue };
        let q = &out[next * 3 * layout::HORIZON..(next + 1) * 3 * layout::HORIZON];
        next += 1;
        let [_, p50, _] = layout::to_leads(q, w, step_s, h);
        let last = *p50.last().expect("at least one lead");
        for (k, v) in slot.iter_mut().enumerate() {
            *v = p50.get(k).copied().unwrap_or(last);
        }
    }
    Ok(paths)
}
