//! Risk model: spot interruption, under-provisioning from the forecast's spread, and instability; one score in [0, 1].

use serde::{Deserialize, Serialize};

use super::quantile::Band;

/// The risks of one candidate configuration, each a probability-like number in [0, 1].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct RiskAssessment {
    /// Share of the capacity expected to be lost to spot interruptions within a day.
    pub spot_interruption: f64,
    /// Probability that the load exceeds the capacity at the worst point of the lead time.
    pub under_provisioning: f64,
    /// How disruptive the change is: its size relative to the fleet, doubled inside the cooldown.
    pub stability: f64,
    /// `1 - (1 - spot) (1 - under) (1 - stability)`: the chance that at least one goes wrong.
    pub overall: f64,
}

fn unit(x: f64) -> f64 {
    if x.is_finite() { x.clamp(0.0, 1.0) } else { 1.0 }
}

/// Spot risk: the spot share times the probability that one spot replica is interrupted within a day.
pub fn spot_risk(spot_share: f64, interruption_per_day: f64) -> f64 {
    unit(unit(spot_share) * interruption_per_day.max(0.0))
}

/// Under-provisioning risk: the highest `P(load > capacity)` over the bands of the lead time.
pub fn under_provisioning_risk(capacity: f64, window: &[Band]) -> f64 {
    window
        .iter()
        .map(|b| 1.0 - b.cdf(capacity))
        .fold(0.0, f64::max)
        .clamp(0.0, 1.0)
}

/// Stability risk: the change relative to the current fleet, doubled when the last change was
/// within `cooldown_s` (rapid changes in a row); `since_last_change_s` None: never changed.
pub fn stability_risk(current: u32, target: u32, since_last_change_s: Option<i64>, cooldown_s: i64) -> f64 {
    let rel = f64::from(current.abs_diff(target)) / f64::from(current.max(1));
    let rapid = target != current && since_last_change_s.is_some_and(|s| s < cooldown_s);
    unit(if rapid { 2.0 * rel } else { rel } * 0.5)
}

impl RiskAssessment {
    /// Combines the three risks.
    pub fn new(spot_interruption: f64, under_provisioning: f64, stability: f64) -> RiskAssessment {
        let (s, u, t) = (unit(spot_interruption), unit(under_provisioning), unit(stability));
        RiskAssessment {
            spot_interruption: s,
            under_provisioning: u,
            stability: t,
            overall: unit(1.0 - (1.0 - s) * (1.0 - u) * (1.0 - t)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_provisioning_follows_the_forecast_spread() {
        let w = [Band::new(80.0, 100.0, 120.0), Band::new(90.0, 110.0, 130.0)];
        let at_p90 = under_provisioning_risk(130.0, &w);
        assert!((at_p90 - 0.1).abs() < 1e-6, "the worst step decides: {at_p90}");
        assert!(under_provisioning_risk(200.0, &w) < 1e-6);
        assert!(under_provisioning_risk(50.0, &w) > 0.99);
        assert_eq!(under_provisioning_risk(10.0, &[]), 0.0);
    }

    #[test]
    fn overall_risk_stays_in_the_unit_interval() {
        for (s, u, t) in [(0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (f64::NAN, 0.2, 0.1), (-1.0, 2.0, 0.5)] {
            let r = RiskAssessment::new(s, u, t);
            assert!((0.0..=1.0).contains(&r.overall), "{r:?}");
        }
        let r = RiskAssessment::new(0.1, 0.2, 0.0);
        assert!((r.overall - 0.28).abs() < 1e-12);
        assert_eq!(spot_risk(0.5, 0.01), 0.005);
    }

    #[test]
    fn rapid_and_large_changes_are_riskier() {
        assert_eq!(stability_risk(10, 10, Some(0), 300), 0.0);
        let calm = stability_risk(10, 15, Some(1000), 300);
        let rapid = stability_risk(10, 15, Some(60), 300);
        assert!((calm - 0.25).abs() < 1e-12 && (rapid - 0.5).abs() < 1e-12);
        assert_eq!(stability_risk(0, 100, None, 300), 1.0);
    }
}
