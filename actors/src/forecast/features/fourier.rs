//! Fourier seasonality terms: sin/cos of the first harmonics of fixed periods (daily, weekly, custom) at a timestamp.
//!
//! For a period `P` seconds and harmonic `k`, the terms are
//! `sin(2πk·φ)`, `cos(2πk·φ)` with phase `φ = (t mod P) / P`, taken from the
//! epoch in UTC (so the daily phase is 0 at midnight UTC). The remainder is
//! taken in integers first, so the phase is exact for any epoch timestamp.

use std::f64::consts::TAU;

use serde::{Deserialize, Serialize};

use super::span_name;

/// One seasonal period and how many harmonics of it to emit (two features each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FourierTerm {
    /// The period in seconds (positive).
    pub period_seconds: u64,
    /// Harmonics `1..=harmonics` (at least one).
    pub harmonics: u32,
}

impl FourierTerm {
    /// Daily seasonality, 3 harmonics.
    pub const DAILY: FourierTerm = FourierTerm {
        period_seconds: 86_400,
        harmonics: 3,
    };
    /// Weekly seasonality, 2 harmonics.
    pub const WEEKLY: FourierTerm = FourierTerm {
        period_seconds: 604_800,
        harmonics: 2,
    };
}

/// Feature names, per term then per harmonic: `fourier_{period}_sin{k}`, `fourier_{period}_cos{k}`.
pub fn names(terms: &[FourierTerm]) -> Vec<String> {
    let mut v = Vec::new();
    for term in terms {
        let p = span_name(term.period_seconds as i64);
        for k in 1..=term.harmonics {
            v.push(format!("fourier_{p}_sin{k}"));
            v.push(format!("fourier_{p}_cos{k}"));
        }
    }
    v
}

/// Appends the terms at `t` (epoch seconds) to `out`, in [`names`] order. Periods must be
/// positive and fit an `i64` (the pipeline checks this).
pub fn extract(terms: &[FourierTerm], t: i64, out: &mut Vec<f64>) {
    for term in terms {
        let p = term.period_seconds as i64;
        let phase = t.rem_euclid(p) as f64 / p as f64;
        for k in 1..=term.harmonics {
            let (s, c) = (TAU * f64::from(k) * phase).sin_cos();
            out.push(s);
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn daily_harmonics_at_six_in_the_morning() {
        // 06:00 UTC on any day: phase 1/4.
        let t = 19_000 * 86_400 + 6 * 3600;
        let mut out = Vec::new();
        extract(&[FourierTerm::DAILY], t, &mut out);
        assert_eq!(out.len(), 6);
        let want = [1.0, 0.0, 0.0, -1.0, -1.0, 0.0]; // k=1: (1,0); k=2: (0,-1); k=3: (-1,0)
        for (a, b) in out.iter().zip(want) {
            close(*a, b);
        }
    }

    #[test]
    fn weekly_and_custom_periods() {
        // Half a week after the epoch (a Thursday 00:00): phase 1/2.
        let mut out = Vec::new();
        let hour = FourierTerm {
            period_seconds: 3600,
            harmonics: 1,
        };
        extract(&[FourierTerm::WEEKLY, hour], 302_400 + 604_800 * 100, &mut out);
        let want = [0.0, -1.0, 0.0, 1.0, 0.0, 1.0];
        assert_eq!(out.len(), want.len());
        for (a, b) in out.iter().zip(want) {
            close(*a, b);
        }
        // Negative timestamps use the Euclidean remainder: 15 minutes before the epoch is phase 3/4.
        out.clear();
        extract(&[hour], -900, &mut out);
        close(out[0], -1.0);
        close(out[1], 0.0);
    }

    #[test]
    fn names_follow_terms() {
        let n = names(&[
            FourierTerm::WEEKLY,
            FourierTerm {
                period_seconds: 90,
                harmonics: 1,
            },
        ]);
        assert_eq!(
            n,
            [
                "fourier_10080m_sin1",
                "fourier_10080m_cos1",
                "fourier_10080m_sin2",
                "fourier_10080m_cos2",
                "fourier_90s_sin1",
                "fourier_90s_cos1"
            ]
        );
    }
}
