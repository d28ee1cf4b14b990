//! Prediction intervals from a model's own past errors, pooled over neighbouring leads.

use crate::series::quantile_sorted;

/// Nominal coverage of [p10, p90].
pub const COVERAGE: f64 = 0.8;

/// Fewest residuals a lead's pool must hold before its quantiles are trusted.
pub const MIN_POOL: usize = 60;

/// The quantile levels `(lo, hi)` of calibration scores that give a central interval of
/// `coverage` when the scores come from `n` exchangeable draws: split conformal's finite-sample
/// correction, `hi = (1 + coverage) / 2 * (n + 1) / n` (capped at 1), `lo = 1 - hi`. With few
/// draws the interval widens; with many it tends to the plain quantiles.
pub fn conformal_levels(coverage: f64, n: usize) -> (f64, f64) {
    let upper = (1.0 + coverage.clamp(0.0, 1.0)) / 2.0;
    let hi = if n == 0 {
        1.0
    } else {
        (upper * (n as f64 + 1.0) / n as f64).min(1.0)
    };
    (1.0 - hi, hi)
}

/// Lead buckets `[1], [2, 3], [4, 7], ...` (1-based, inclusive), covering `1..=horizon`.
fn buckets(horizon: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut lo = 1;
    while lo <= horizon {
        let hi = (2 * lo - 1).min(horizon);
        out.push((lo, hi));
        lo = hi + 1;
    }
    out
}

/// For each lead `1..=residuals.len()`, the (`lo`, `hi`) empirical quantiles of the residuals
/// (actual minus forecast) of its bucket of leads, widened to neighbouring buckets until at
/// least [`MIN_POOL`] residuals are pooled. `residuals[k-1]` holds the finite residuals at lead `k`.
/// Leads with no residual anywhere get `(0, 0)`.
pub fn lead_quantiles(residuals: &[Vec<f64>], lo: f64, hi: f64) -> Vec<(f64, f64)> {
    let h = residuals.len();
    let bs = buckets(h);
    let count = |b: usize| -> usize { (bs[b].0..=bs[b].1).map(|k| residuals[k - 1].len()).sum() };
    let mut out = vec![(0.0, 0.0); h];
    let mut pool = Vec::new();
    for b in 0..bs.len() {
        let (mut first, mut last) = (b, b);
        let mut n = count(b);
        while n < MIN_POOL && (first > 0 || last + 1 < bs.len()) {
            if last + 1 < bs.len() {
                last += 1;
                n += count(last);
            }
            if n < MIN_POOL && first > 0 {
                first -= 1;
                n += count(first);
            }
        }
        pool.clear();
        for k in bs[first].0..=bs[last].1 {
            pool.extend_from_slice(&residuals[k - 1]);
        }
        if pool.is_empty() {
            continue;
        }
        pool.sort_unstable_by(f64::total_cmp);
        let q = (quantile_sorted(&pool, lo), quantile_sorted(&pool, hi));
        for slot in &mut out[bs[b].0 - 1..bs[b].1] {
            *slot = q;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformal_levels_widen_with_few_draws_and_tend_to_the_plain_quantiles() {
        let (lo, hi) = conformal_levels(0.8, 9);
        assert!(
            (hi - 1.0).abs() < 1e-12 && lo.abs() < 1e-12,
            "9 draws: the extremes, got {lo} {hi}"
        );
        let (lo, hi) = conformal_levels(0.8, 96);
        assert!((hi - 0.9 * 97.0 / 96.0).abs() < 1e-12 && (lo - (1.0 - hi)).abs() < 1e-12);
        let (lo, hi) = conformal_levels(0.8, 1_000_000);
        assert!((hi - 0.9).abs() < 1e-5 && (lo - 0.1).abs() < 1e-5);
        assert_eq!(conformal_levels(0.8, 0), (0.0, 1.0));
        assert!(conformal_levels(0.8, 10).1 < conformal_levels(0.8, 5).1);
    }

    #[test]
    fn buckets_cover_the_horizon() {
        assert_eq!(buckets(1), vec![(1, 1)]);
        assert_eq!(buckets(6), vec![(1, 1), (2, 3), (4, 6)]);
    }

    #[test]
    fn quantiles_come_from_the_pooled_residuals() {
        // 100 residuals 0..99 at every lead: the 10 % and 90 % points are 9.9 and 89.1
        let r: Vec<Vec<f64>> = (0..4).map(|_| (0..100).map(f64::from).collect()).collect();
        for (a, b) in lead_quantiles(&r, 0.1, 0.9) {
            assert!((a - 9.9).abs() < 1e-9 && (b - 89.1).abs() < 1e-9);
        }
    }

    #[test]
    fn small_pools_borrow_from_neighbours_and_empty_is_zero() {
        let mut r = vec![vec![1.0]; 3];
        r.push((0..100).map(|_| 5.0).collect());
        let q = lead_quantiles(&r, 0.1, 0.9);
        assert!(q[0].0 > 1.0, "lead 1 pooled with later leads: {q:?}");
        assert_eq!(lead_quantiles(&[vec![], vec![]], 0.1, 0.9), vec![(0.0, 0.0); 2]);
    }
}
