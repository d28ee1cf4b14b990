//! The model's input layout and normalization, step for step as `scripts/transformer/layout.py`
//! defines them for training; a model that declares another layout is refused.
//!
//! From a history on the regular grid ending at the origin (NaN = missing) and its step:
//! 1. `agg = max(1, (300 + step / 2) / step)` grid steps make one model step (about five
//!    minutes or more: a 1-minute series is read as 5-minute means);
//! 2. the context is the last [`CONTEXT`] block means of `agg` points (over the finite ones;
//!    NaN where none, and in front of a history shorter than the context);
//! 3. a NaN block takes the previous finite block, leading NaN the first finite one;
//! 4. `loc` = mean, `scale` = max(population std, 1e-4 · mean |x|, 1e-9) of the filled context,
//!    `z = (x - loc) / scale` as `f32`; the step input is `log2(agg · step / 300)`.
//!
//! The model returns p10/p50/p90 for [`HORIZON`] model steps in `z` units; grid lead `k`
//! reads model step `ceil(k / agg)`, and `value = loc + scale · z`. A flat context (every value
//! equal) gives the model nothing to read: its forecast is that value, with no width.

/// The layout (and normalization) version the model metadata must declare.
pub const LAYOUT: &str = "pscaler-patch-v1";
/// Model steps of context.
pub const CONTEXT: usize = 288;
/// Model steps forecast.
pub const HORIZON: usize = 24;
/// Output quantile levels, in output order.
pub const QUANTILES: [f64; 3] = [0.1, 0.5, 0.9];
/// The model step the aggregation aims at, in seconds.
const TARGET_STEP_S: i64 = 300;

/// One window ready for the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The normalized context, [`CONTEXT`] values.
    pub z: Vec<f32>,
    /// The step input.
    pub step: f32,
    /// Centre of the normalization.
    pub loc: f64,
    /// Scale of the normalization.
    pub scale: f64,
    /// Whether every value of the filled context is the same.
    pub flat: bool,
}

/// Grid steps per model step.
pub fn agg_of(step_s: i64) -> usize {
    usize::try_from((TARGET_STEP_S + step_s / 2) / step_s.max(1))
        .unwrap_or(1)
        .max(1)
}

/// The step input of a series with this grid step.
pub fn step_feature(step_s: i64) -> f32 {
    ((agg_of(step_s) as f64 * step_s as f64) / TARGET_STEP_S as f64).log2() as f32
}

/// Grid leads the model covers.
pub fn reach(step_s: i64) -> usize {
    HORIZON * agg_of(step_s)
}

/// The last [`CONTEXT`] block means of `agg` points of `x` (NaN where a block has no finite value).
fn blocks(x: &[f64], agg: usize) -> Vec<f64> {
    let need = CONTEXT * agg;
    let pad = need.saturating_sub(x.len());
    let tail = &x[x.len().saturating_sub(need)..];
    (0..CONTEXT)
        .map(|b| {
            let (mut sum, mut n) = (0.0, 0usize);
            for i in b * agg..(b + 1) * agg {
                if let Some(v) = i.checked_sub(pad).map(|j| tail[j]).filter(|v| v.is_finite()) {
                    sum += v;
                    n += 1;
                }
            }
            if n == 0 { f64::NAN } else { sum / n as f64 }
        })
        .collect()
}

/// Forward fill, leading NaN from the first finite value; `None` when nothing is finite.
fn fill(mut b: Vec<f64>) -> Option<Vec<f64>> {
    let first = b.iter().position(|v| v.is_finite())?;
    let head = b[first];
    b[..first].fill(head);
    for i in first + 1..b.len() {
        if !b[i].is_finite() {
            b[i] = b[i - 1];
        }
    }
    Some(b)
}

/// Mean in index order (the order the Python reference sums in).
fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    s / n.max(1) as f64
}

/// The window of the history `x` (regular grid ending at the origin); `None` when no value
/// of the context is finite.
pub fn prepare(x: &[f64], step_s: i64) -> Option<Prepared> {
    let c = fill(blocks(x, agg_of(step_s)))?;
    let loc = mean(c.iter().copied());
    let var = mean(c.iter().map(|v| (v - loc) * (v - loc)));
    let mabs = mean(c.iter().map(|v| v.abs()));
    let scale = var.sqrt().max(1e-4 * mabs).max(1e-9);
    Some(Prepared {
        z: c.iter().map(|v| ((v - loc) / scale) as f32).collect(),
        step: step_feature(step_s),
        flat: c.iter().all(|&v| v == c[0]),
        loc,
        scale,
    })
}

/// p10/p50/p90 values for grid leads `1..=horizon` (at most [`reach`]) from one window's model
/// output `q` (`[3 * HORIZON]`, quantile-major, `z` units).
pub fn to_leads(q: &[f32], p: &Prepared, step_s: i64, horizon: usize) -> [Vec<f64>; 3] {
    let agg = agg_of(step_s);
    let horizon = horizon.min(reach(step_s));
    std::array::from_fn(|qi| {
        (1..=horizon)
            .map(|k| {
                if p.flat {
                    p.loc
                } else {
                    p.loc + p.scale * f64::from(q[qi * HORIZON + k.div_ceil(agg) - 1])
                }
            })
            .collect()
    })
}

/// The history value a normalized context value stands for (the inverse of step 4).
pub fn denormalize(z: f32, p: &Prepared) -> f64 {
    p.loc + p.scale * f64::from(z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregation_aims_at_five_minutes() {
        assert_eq!([60, 120, 300, 600, 1800, 3600].map(agg_of), [5, 3, 1, 1, 1, 1]);
        assert_eq!(step_feature(300), 0.0);
        assert_eq!(step_feature(60), 0.0);
        assert!((step_feature(1800) - 6f32.log2()).abs() < 1e-6);
        assert_eq!((reach(60), reach(300), reach(1800)), (120, 24, 24));
    }

    #[test]
    fn normalization_round_trips_and_fills_gaps() {
        let mut x: Vec<f64> = (0..400).map(|i| 50.0 + (f64::from(i) * 0.1).sin() * 10.0).collect();
        x[399 - 5] = f64::NAN;
        let p = prepare(&x, 300).unwrap();
        assert_eq!(p.z.len(), CONTEXT);
        let back: Vec<f64> = p.z.iter().map(|&z| denormalize(z, &p)).collect();
        let tail = &x[400 - CONTEXT..];
        for (i, (a, b)) in back.iter().zip(tail).enumerate() {
            let want = if b.is_finite() { *b } else { tail[i - 1] };
            assert!((a - want).abs() < 1e-4 * want.abs(), "{i}: {a} vs {want}");
        }
        let m: f64 = p.z.iter().map(|&v| f64::from(v)).sum::<f64>() / CONTEXT as f64;
        let s: f64 = p.z.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / CONTEXT as f64;
        assert!(m.abs() < 1e-5 && (s - 1.0).abs() < 1e-4, "mean {m}, var {s}");
    }

    #[test]
    fn short_flat_and_empty_histories() {
        // shorter than the context: front filled from the first value; flat: the scale floor
        let p = prepare(&[f64::NAN, 4.0, 4.0], 300).unwrap();
        assert!(p.z.iter().all(|&z| z == 0.0) && p.loc == 4.0 && (p.scale - 4e-4).abs() < 1e-12);
        assert!(p.flat && !prepare(&[1.0, 2.0], 300).unwrap().flat);
        assert_eq!(prepare(&[f64::NAN; 10], 300), None);
        // a 1-minute series: 5-minute means ending at the origin
        let x: Vec<f64> = (0..20).map(f64::from).collect();
        let p = prepare(&x, 60).unwrap();
        let last = denormalize(p.z[CONTEXT - 1], &p);
        assert!((last - 17.0).abs() < 1e-4, "mean of 15..=19, got {last}");
        let before = denormalize(p.z[CONTEXT - 2], &p);
        assert!((before - 12.0).abs() < 1e-4, "mean of 10..=14, got {before}");
    }

    #[test]
    fn leads_read_their_model_step() {
        let mut p = Prepared {
            z: vec![0.0; CONTEXT],
            step: 0.0,
            loc: 10.0,
            scale: 2.0,
            flat: false,
        };
        let q: Vec<f32> = (0..3 * HORIZON).map(|i| i as f32).collect();
        let [lo, mid, hi] = to_leads(&q, &p, 60, 7);
        // leads 1..=5 read model step 1, 6..=7 step 2
        assert_eq!(mid, vec![58.0, 58.0, 58.0, 58.0, 58.0, 60.0, 60.0]);
        assert_eq!((lo[0], hi[6]), (10.0, 10.0 + 2.0 * 49.0));
        assert_eq!(to_leads(&q, &p, 300, 100)[1].len(), HORIZON);
        p.flat = true;
        assert_eq!(to_leads(&q, &p, 300, 3), [vec![10.0; 3], vec![10.0; 3], vec![10.0; 3]]);
    }
}
