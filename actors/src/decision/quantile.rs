//! Any quantile of a load from its p10/p50/p90, and the newsvendor provisioning quantile.
//!
//! A forecast gives three quantiles. Between and beyond them the load is read
//! as a *split normal*: below the median a normal with scale
//! `(p50 - p10) / z(0.9)`, above it one with scale `(p90 - p50) / z(0.9)`
//! (`z` the standard normal quantile, `z(0.9) = 1.2816`). So p10, p50 and p90
//! are reproduced exactly, quantiles between them are interpolated in normal
//! scores, and those beyond them are extrapolated with the tail's own spread.
//! Crossed inputs are sorted first; a zero spread is a point mass.

use serde::{Deserialize, Serialize};

/// The standard normal quantile at 0.9.
pub const Z90: f64 = 1.281_551_565_545;

/// Lowest and highest provisioning quantile the engine uses: below the median an SLO is
/// planned to fail most of the time; beyond 0.995 the extrapolated tail means little.
pub const QUANTILE_RANGE: (f64, f64) = (0.5, 0.995);

/// Three quantiles of one load value.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct Band {
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
}

impl Band {
    /// A band from three quantiles, sorted if they cross.
    pub fn new(p10: f64, p50: f64, p90: f64) -> Band {
        let mut v = [p10, p50, p90];
        v.sort_by(f64::total_cmp);
        Band {
            p10: v[0],
            p50: v[1],
            p90: v[2],
        }
    }

    /// A known value (no uncertainty).
    pub fn point(x: f64) -> Band {
        Band { p10: x, p50: x, p90: x }
    }

    /// Whether all three values are finite.
    pub fn is_finite(&self) -> bool {
        self.p10.is_finite() && self.p50.is_finite() && self.p90.is_finite()
    }

    /// The quantile `q` (0 < q < 1) under the split normal.
    pub fn at(&self, q: f64) -> f64 {
        // the given quantiles exactly, not through the approximation
        if q == 0.1 {
            return self.p10;
        } else if q == 0.5 {
            return self.p50;
        } else if q == 0.9 {
            return self.p90;
        }
        let z = normal_quantile(q.clamp(1e-9, 1.0 - 1e-9));
        let scale = if z < 0.0 {
            (self.p50 - self.p10) / Z90
        } else {
            (self.p90 - self.p50) / Z90
        };
        self.p50 + z * scale
    }

    /// P(load <= x) under the split normal.
    pub fn cdf(&self, x: f64) -> f64 {
        let scale = if x < self.p50 {
            (self.p50 - self.p10) / Z90
        } else {
            (self.p90 - self.p50) / Z90
        };
        if scale <= 0.0 || !scale.is_finite() {
            return if x >= self.p50 { 1.0 } else { 0.0 };
        }
        normal_cdf((x - self.p50) / scale)
    }
}

/// The newsvendor quantile `under / (under + over)`: the cost of a violated minute against
/// the cost of an idle replica-minute, to 1e-6 and clamped to [`QUANTILE_RANGE`]; `None` if either cost
/// is not a positive finite number.
pub fn newsvendor(violation_cost: f64, idle_cost: f64) -> Option<f64> {
    let ok = |c: f64| c.is_finite() && c > 0.0;
    (ok(violation_cost) && ok(idle_cost))
        // rounded to 1e-6 so that a ratio meant as 0.9 reads the forecast's own p90
        .then(|| ((violation_cost / (violation_cost + idle_cost)) * 1e6).round() / 1e6)
        .map(|q| q.clamp(QUANTILE_RANGE.0, QUANTILE_RANGE.1))
}

/// The standard normal CDF (Abramowitz & Stegun 7.1.26 for erf, error below 1.5e-7).
pub fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 { 0.5 * (1.0 + erf) } else { 0.5 * (1.0 - erf) }
}

/// The standard normal quantile (Acklam's rational approximation, relative error below 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.024_25 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.024_25 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_given_quantiles_are_reproduced_and_the_rest_interpolated() {
        let b = Band::new(80.0, 100.0, 130.0);
        assert!((b.at(0.1) - 80.0).abs() < 1e-6);
        assert!((b.at(0.5) - 100.0).abs() < 1e-9);
        assert!((b.at(0.9) - 130.0).abs() < 1e-6);
        // between: monotone; beyond: the upper tail's spread
        assert!(b.at(0.7) > 100.0 && b.at(0.7) < 130.0);
        assert!((b.at(0.975) - (100.0 + 1.959_964 * 30.0 / Z90)).abs() < 1e-3);
        assert!((b.cdf(130.0) - 0.9).abs() < 1e-6 && (b.cdf(80.0) - 0.1).abs() < 1e-6);
    }

    #[test]
    fn crossed_and_degenerate_bands_are_sane() {
        let b = Band::new(130.0, 100.0, 80.0);
        assert_eq!((b.p10, b.p50, b.p90), (80.0, 100.0, 130.0));
        let p = Band::point(5.0);
        assert_eq!(p.at(0.99), 5.0);
        assert_eq!((p.cdf(4.9), p.cdf(5.0)), (0.0, 1.0));
    }

    #[test]
    fn newsvendor_quantile_weighs_violation_against_idle_cost() {
        assert_eq!(newsvendor(9.0, 1.0), Some(0.9));
        assert_eq!(newsvendor(1.0, 1.0), Some(0.5));
        assert_eq!(newsvendor(1.0, 9.0), Some(0.5), "never below the median");
        assert_eq!(newsvendor(1e9, 1.0), Some(0.995));
        assert_eq!(newsvendor(f64::NAN, 1.0), None);
        assert_eq!(newsvendor(1.0, 0.0), None);
    }

    #[test]
    fn normal_helpers_agree_with_each_other() {
        for p in [0.001, 0.05, 0.1, 0.5, 0.8, 0.95, 0.999] {
            assert!((normal_cdf(normal_quantile(p)) - p).abs() < 1e-6, "{p}");
        }
        assert!((normal_quantile(0.9) - Z90).abs() < 1e-8);
    }
}
