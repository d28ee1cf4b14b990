//! Cost model: on-demand and spot prices per instance type for AWS, GCP and Azure behind one trait.
//!
//! The bundled table (`data/prices/cloud_prices.json`) holds public list prices
//! for a handful of types per cloud; [`PriceTable::from_json`] / [`PriceTable::load`]
//! refresh it from a file. A price that is not a finite non-negative number is
//! treated as unknown: it makes that configuration's cost `None` and is left out
//! of totals instead of turning them into NaN.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The bundled price table.
pub const BUNDLED_PRICES: &str = include_str!("../../../data/prices/cloud_prices.json");

/// Hours in an average month (8760 / 12), as the clouds bill them.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// A cloud provider.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    #[default]
    Aws,
    Gcp,
    Azure,
}

/// Prices and size of one instance type.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InstancePrice {
    pub cloud: Cloud,
    #[serde(default)]
    pub region: String,
    pub instance_type: String,
    /// Virtual CPUs: capacity scales with them across types of one service.
    pub vcpus: f64,
    #[serde(default)]
    pub memory_gib: f64,
    /// On-demand price per hour.
    pub on_demand_hourly: f64,
    /// Spot / preemptible price per hour; `None`: no spot offer.
    #[serde(default)]
    pub spot_hourly: Option<f64>,
    /// Share of spot instances interrupted within a month.
    #[serde(default)]
    pub interruption_monthly: Option<f64>,
}

/// A price that can be added up: finite and not negative.
fn usable(p: f64) -> Option<f64> {
    (p.is_finite() && p >= 0.0).then_some(p)
}

impl InstancePrice {
    /// Probability that one spot instance is interrupted within `seconds`, from the monthly
    /// rate as a constant hazard; 0 without a known rate.
    pub fn interruption_within(&self, seconds: f64) -> f64 {
        let m = self
            .interruption_monthly
            .filter(|m| m.is_finite())
            .unwrap_or(0.0)
            .clamp(0.0, 0.999_999);
        let hazard_per_s = -(1.0 - m).ln() / (HOURS_PER_MONTH * 3600.0);
        1.0 - (-hazard_per_s * seconds.max(0.0)).exp()
    }

    /// Expected hourly price of one spot replica: the spot price, plus, for each expected
    /// interruption, an on-demand replica for the warm-up of its replacement. `None` without
    /// a usable spot price.
    pub fn expected_spot_hourly(&self, warmup_s: f64) -> Option<f64> {
        let spot = usable(self.spot_hourly?)?;
        let per_hour = self.interruption_within(3600.0);
        let replacement = usable(self.on_demand_hourly).unwrap_or(spot) * warmup_s.max(0.0) / 3600.0;
        Some(spot + per_hour * replacement)
    }
}

/// A configuration to price: replicas of one type, a share of them on spot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct TargetConfig {
    pub replicas: u32,
    pub instance_type: String,
    /// Share of the replicas on spot (0..=1).
    pub spot_share: f64,
}

impl TargetConfig {
    /// Replicas on spot (the share rounded down: spot is the optional part).
    pub fn spot_replicas(&self) -> u32 {
        let s = if self.spot_share.is_finite() {
            self.spot_share.clamp(0.0, 1.0)
        } else {
            0.0
        };
        (f64::from(self.replicas) * s).floor() as u32
    }
}

/// The cost model of one cloud.
pub trait CostModel {
    /// Which cloud this prices.
    fn cloud(&self) -> Cloud;
    /// The price entry of a type; `None` if the type is unknown to this cloud.
    fn price(&self, instance_type: &str) -> Option<&InstancePrice>;
    /// Every type this cloud prices.
    fn instance_types(&self) -> Vec<&str>;

    /// Hourly cost of a configuration: on-demand replicas at list price, spot ones at their
    /// expected price (see [`InstancePrice::expected_spot_hourly`]); `None` if a needed price
    /// is unknown or unusable.
    fn hourly_cost(&self, cfg: &TargetConfig, warmup_s: f64) -> Option<f64> {
        let p = self.price(&cfg.instance_type)?;
        let spot = cfg.spot_replicas();
        let on_demand = cfg.replicas - spot;
        let od = if on_demand > 0 {
            usable(p.on_demand_hourly)? * f64::from(on_demand)
        } else {
            0.0
        };
        let sp = if spot > 0 {
            p.expected_spot_hourly(warmup_s)? * f64::from(spot)
        } else {
            0.0
        };
        Some(od + sp)
    }

    /// Monthly cost of a configuration held for a month.
    fn monthly_cost(&self, cfg: &TargetConfig, warmup_s: f64) -> Option<f64> {
        self.hourly_cost(cfg, warmup_s).map(|h| h * HOURS_PER_MONTH)
    }
}

/// Adds up the costs that are known; returns the total and how many were left out.
pub fn total_known(costs: impl IntoIterator<Item = Option<f64>>) -> (f64, usize) {
    costs
        .into_iter()
        .fold((0.0, 0), |(sum, missing), c| match c.and_then(usable) {
            Some(c) => (sum + c, missing),
            None => (sum, missing + 1),
        })
}

/// Every price of every cloud.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PriceTable {
    pub prices: Vec<InstancePrice>,
}

/// What went wrong reading a price table.
#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    /// The file could not be read.
    #[error("{path}: cannot read the price table: {source}")]
    Io { path: String, source: std::io::Error },
    /// The text is not a price table.
    #[error("price table: {0}")]
    Format(#[from] serde_json::Error),
}

impl PriceTable {
    /// The bundled table.
    pub fn bundled() -> PriceTable {
        PriceTable::from_json(BUNDLED_PRICES).unwrap_or_default()
    }

    /// A table from JSON text (`{"prices": [...]}`, other keys ignored).
    pub fn from_json(text: &str) -> Result<PriceTable, PriceError> {
        Ok(serde_json::from_str(text)?)
    }

    /// A table from a JSON file (to refresh the bundled prices).
    pub fn load(path: &Path) -> Result<PriceTable, PriceError> {
        let text = std::fs::read_to_string(path).map_err(|source| PriceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        PriceTable::from_json(&text)
    }

    /// This table with `newer` entries replacing the same (cloud, type) and adding new ones.
    pub fn refreshed(&self, newer: &[InstancePrice]) -> PriceTable {
        let mut prices: Vec<InstancePrice> = self
            .prices
            .iter()
            .filter(|p| {
                !newer
                    .iter()
                    .any(|n| n.cloud == p.cloud && n.instance_type == p.instance_type)
            })
            .cloned()
            .collect();
        prices.extend(newer.iter().cloned());
        PriceTable { prices }
    }

    /// The cost model of one cloud.
    pub fn cloud(&self, cloud: Cloud) -> CloudPrices<'_> {
        CloudPrices { cloud, table: self }
    }
}

/// One cloud's view of a [`PriceTable`]: AWS, GCP and Azure are this same type behind
/// [`CostModel`], differing only in which entries they see.
#[derive(Debug, Clone, Copy)]
pub struct CloudPrices<'a> {
    cloud: Cloud,
    table: &'a PriceTable,
}

impl CostModel for CloudPrices<'_> {
    fn cloud(&self) -> Cloud {
        self.cloud
    }

    fn price(&self, instance_type: &str) -> Option<&InstancePrice> {
        self.table
            .prices
            .iter()
            .find(|p| p.cloud == self.cloud && p.instance_type == instance_type)
    }

    fn instance_types(&self) -> Vec<&str> {
        self.table
            .prices
            .iter()
            .filter(|p| p.cloud == self.cloud)
            .map(|p| p.instance_type.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(replicas: u32, t: &str, spot: f64) -> TargetConfig {
        TargetConfig {
            replicas,
            instance_type: t.into(),
            spot_share: spot,
        }
    }

    #[test]
    fn the_bundled_table_prices_every_cloud() {
        let t = PriceTable::bundled();
        for cloud in [Cloud::Aws, Cloud::Gcp, Cloud::Azure] {
            let m = t.cloud(cloud);
            assert!(m.instance_types().len() >= 4, "{cloud:?}");
            for ty in m.instance_types() {
                let p = m.price(ty).unwrap();
                assert!(p.on_demand_hourly > 0.0 && p.vcpus > 0.0, "{p:?}");
                assert!(p.spot_hourly.is_none_or(|s| s < p.on_demand_hourly), "{p:?}");
            }
        }
        let aws = t.cloud(Cloud::Aws);
        let c = aws.hourly_cost(&cfg(10, "m5.large", 0.0), 180.0).unwrap();
        assert!((c - 0.96).abs() < 1e-9);
        assert!((aws.monthly_cost(&cfg(10, "m5.large", 0.0), 180.0).unwrap() - 0.96 * 730.0).abs() < 1e-6);
        assert!(aws.price("e2-standard-2").is_none(), "a GCP type is unknown to AWS");
    }

    #[test]
    fn spot_is_cheaper_but_its_expected_price_counts_interruptions() {
        let t = PriceTable::bundled();
        let aws = t.cloud(Cloud::Aws);
        let p = aws.price("c5.large").unwrap();
        let e = p.expected_spot_hourly(180.0).unwrap();
        assert!(e > p.spot_hourly.unwrap() && e < p.on_demand_hourly, "{e}");
        let all_od = aws.hourly_cost(&cfg(10, "c5.large", 0.0), 180.0).unwrap();
        let half = aws.hourly_cost(&cfg(10, "c5.large", 0.5), 180.0).unwrap();
        assert!(half < all_od);
        // 30 % of 10 = 3 spot replicas
        assert_eq!(cfg(10, "c5.large", 0.3).spot_replicas(), 3);
        // a monthly rate of 10 % is reproduced over a month
        assert!((p.interruption_within(HOURS_PER_MONTH * 3600.0) - 0.10).abs() < 1e-9);
        // no spot offer: a configuration that needs one has no price
        let az = t.cloud(Cloud::Azure);
        assert!(az.hourly_cost(&cfg(4, "Standard_B2s", 0.5), 180.0).is_none());
        assert!(az.hourly_cost(&cfg(4, "Standard_B2s", 0.0), 180.0).is_some());
    }

    #[test]
    fn a_nan_price_does_not_poison_totals() {
        let bad = InstancePrice {
            cloud: Cloud::Gcp,
            region: String::new(),
            instance_type: "n2-standard-2".into(),
            vcpus: 2.0,
            memory_gib: 8.0,
            on_demand_hourly: f64::NAN,
            spot_hourly: Some(f64::INFINITY),
            interruption_monthly: Some(f64::NAN),
        };
        let t = PriceTable::bundled().refreshed(&[bad]);
        let gcp = t.cloud(Cloud::Gcp);
        assert_eq!(gcp.hourly_cost(&cfg(3, "n2-standard-2", 0.0), 180.0), None);
        assert_eq!(gcp.hourly_cost(&cfg(3, "n2-standard-2", 0.7), 180.0), None);
        let fleet = [
            gcp.hourly_cost(&cfg(3, "n2-standard-2", 0.0), 180.0),
            gcp.hourly_cost(&cfg(2, "e2-standard-2", 0.0), 180.0),
            Some(f64::NAN),
        ];
        let (total, missing) = total_known(fleet);
        assert!(total.is_finite() && (total - 2.0 * 0.067006).abs() < 1e-9, "{total}");
        assert_eq!(missing, 2);
        assert_eq!(gcp.price("n2-standard-2").unwrap().interruption_within(3600.0), 0.0);
    }

    #[test]
    fn a_table_is_refreshed_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(
            &path,
            r#"{"prices":[{"cloud":"aws","instance_type":"m5.large","vcpus":2,"on_demand_hourly":0.1,"spot_hourly":0.03}]}"#,
        )
        .unwrap();
        let newer = PriceTable::load(&path).unwrap();
        let t = PriceTable::bundled().refreshed(&newer.prices);
        assert_eq!(t.cloud(Cloud::Aws).price("m5.large").unwrap().on_demand_hourly, 0.1);
        assert_eq!(t.prices.len(), PriceTable::bundled().prices.len());
        assert!(PriceTable::load(&dir.path().join("missing.json")).is_err());
        assert!(PriceTable::from_json("{").is_err());
    }
}
