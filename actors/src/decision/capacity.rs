//! Capacity model: load served per replica of each instance type, warm-up, degradation near saturation, calibration.

use serde::{Deserialize, Serialize};

use super::cost::CostModel;

/// What replicas serve.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct CapacityModel {
    /// Load one replica of the reference type serves at 100 % utilization.
    pub per_replica: f64,
    /// vCPUs of the reference type: other types serve in proportion to theirs.
    pub reference_vcpus: f64,
    /// Seconds from asking for a replica until it serves.
    pub warmup_s: i64,
    /// Utilization from which latency degrades (queueing); above it the performance score falls.
    pub knee_utilization: f64,
}

impl CapacityModel {
    /// Load one replica of `instance_type` serves (the reference capacity for an unknown type).
    pub fn per_replica_of(&self, prices: &dyn CostModel, instance_type: &str) -> f64 {
        let factor = prices
            .price(instance_type)
            .map(|p| p.vcpus / self.reference_vcpus)
            .filter(|f| f.is_finite() && *f > 0.0)
            .unwrap_or(1.0);
        self.per_replica * factor
    }

    /// Load `replicas` replicas of `per_replica` each serve.
    pub fn capacity(per_replica: f64, replicas: u32) -> f64 {
        per_replica * f64::from(replicas)
    }

    /// How much slower requests are at `utilization` than at rest: 1 up to the knee, then the
    /// M/M/1 growth `(1 - knee) / (1 - u)`, infinite at or past saturation.
    pub fn degradation(&self, utilization: f64) -> f64 {
        let knee = self.knee_utilization.clamp(0.0, 0.999);
        if !utilization.is_finite() || utilization >= 1.0 {
            f64::INFINITY
        } else if utilization <= knee {
            1.0
        } else {
            (1.0 - knee) / (1.0 - utilization)
        }
    }

    /// Replicas needed to serve `load` at `per_replica` each (saturating, 0 for a non-number).
    /// A relative 1e-9 of rounding noise does not ask for one more replica.
    pub fn replicas_for(load: f64, per_replica: f64) -> u32 {
        let x = load.max(0.0) / per_replica;
        let r = if x.is_finite() { (x - x * 1e-9).ceil() } else { x };
        if r.is_nan() {
            0
        } else if r >= f64::from(u32::MAX) {
            u32::MAX
        } else {
            r as u32
        }
    }
}

/// One observation for calibration: the load, the utilization it caused and the replicas serving it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadSample {
    pub load: f64,
    pub utilization: f64,
    pub replicas: u32,
}

/// Capacity per replica at 100 % utilization fitted to observations, by least squares through the
/// origin of `load = c * utilization * replicas`; samples that are not finite, idle or saturated
/// (utilization >= 1: the load seen is capped) are left out. `None` with nothing usable.
pub fn calibrate(samples: &[LoadSample]) -> Option<f64> {
    let (num, den) = samples
        .iter()
        .filter(|s| {
            s.load.is_finite()
                && s.load >= 0.0
                && s.utilization.is_finite()
                && s.utilization > 0.0
                && s.utilization < 1.0
                && s.replicas > 0
        })
        .fold((0.0, 0.0), |(n, d), s| {
            let x = s.utilization * f64::from(s.replicas);
            (n + s.load * x, d + x * x)
        });
    (den > 0.0).then(|| num / den).filter(|c| c.is_finite() && *c > 0.0)
}

#[cfg(test)]
mod tests {
    use super::super::cost::{Cloud, PriceTable};
    use super::*;

    fn model() -> CapacityModel {
        CapacityModel {
            per_replica: 100.0,
            reference_vcpus: 2.0,
            warmup_s: 180,
            knee_utilization: 0.8,
        }
    }

    #[test]
    fn bigger_types_serve_in_proportion_to_their_vcpus() {
        let t = PriceTable::bundled();
        let aws = t.cloud(Cloud::Aws);
        assert_eq!(model().per_replica_of(&aws, "m5.large"), 100.0);
        assert_eq!(model().per_replica_of(&aws, "m5.xlarge"), 200.0);
        assert_eq!(model().per_replica_of(&aws, "no-such-type"), 100.0);
        assert_eq!(CapacityModel::capacity(200.0, 3), 600.0);
        assert_eq!(CapacityModel::replicas_for(250.0, 100.0), 3);
        assert_eq!(CapacityModel::replicas_for(f64::NAN, 100.0), 0);
        assert_eq!(CapacityModel::replicas_for(1e300, 1e-300), u32::MAX);
    }

    #[test]
    fn latency_degrades_past_the_knee_and_saturates_at_full_utilization() {
        let m = model();
        assert_eq!(m.degradation(0.5), 1.0);
        assert_eq!(m.degradation(0.8), 1.0);
        assert!((m.degradation(0.9) - 2.0).abs() < 1e-9);
        assert!(m.degradation(0.99) > m.degradation(0.95));
        assert!(m.degradation(1.0).is_infinite() && m.degradation(f64::NAN).is_infinite());
    }

    #[test]
    fn calibration_recovers_the_capacity_from_load_and_utilization() {
        // 4 replicas of capacity 50: load 100 -> 50 % utilization; noise and bad samples mixed in
        let mut samples: Vec<LoadSample> = (1..=9)
            .map(|i| {
                let load = 20.0 * f64::from(i);
                LoadSample {
                    load,
                    utilization: load / 200.0 * if i % 2 == 0 { 1.02 } else { 0.98 },
                    replicas: 4,
                }
            })
            .collect();
        samples.push(LoadSample {
            load: f64::NAN,
            utilization: 0.5,
            replicas: 4,
        });
        samples.push(LoadSample {
            load: 500.0,
            utilization: 1.0,
            replicas: 4,
        }); // saturated
        samples.push(LoadSample {
            load: 10.0,
            utilization: 0.2,
            replicas: 0,
        });
        let c = calibrate(&samples).unwrap();
        assert!((c - 50.0).abs() < 1.0, "{c}");
        assert_eq!(calibrate(&[]), None);
    }
}
