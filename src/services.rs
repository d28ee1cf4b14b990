//! Per-service configuration: `services` is either a list of names (every service runs on the
//! global `[scaling]` and `[models]`), or one table per service whose `scaling` and `models`
//! tables override any key of the global ones for that service:
//!
//! ```toml
//! [services.checkout]
//! initial_replicas = 4
//! [services.checkout.scaling]
//! max_replicas = 50
//! capacity_per_replica = 120.0
//! approval_threshold = 10
//! [services.checkout.models]
//! model = "snaive"
//! ```
//!
//! [`plans`] turns the settings into one [`ServicePlan`] per service, validated like the global
//! sections; errors name the service and the key (`services.checkout.scaling.max_step_up`).

use std::collections::BTreeMap;
use std::fmt;

use actors::ForecastSettings;
use actors::decision::ScalingPolicy;
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::config::{ConfigError, Settings};

/// One service's table under `[services.<name>]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Keys of `[scaling]` that differ for this service.
    #[serde(default)]
    pub scaling: Map<String, Value>,
    /// Keys of `[models]` that differ for this service.
    #[serde(default)]
    pub models: Map<String, Value>,
    /// Replicas the service starts with on the simulated cluster (`execution.initial_replicas`
    /// when not given).
    #[serde(default)]
    pub initial_replicas: Option<u32>,
}

/// The configured services by name: a list of names or a table per service.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Services(pub BTreeMap<String, ServiceSpec>);

impl Services {
    /// The names, in order.
    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for Services {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Services;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of service names or a table per service")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Services, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(name) = seq.next_element::<String>()? {
                    if out.insert(name.clone(), ServiceSpec::default()).is_some() {
                        return Err(serde::de::Error::custom(format!("service `{name}` is listed twice")));
                    }
                }
                Ok(Services(out))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Services, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(name) = map.next_key::<String>()? {
                    let spec = map.next_value::<ServiceSpec>()?;
                    out.insert(name, spec);
                }
                Ok(Services(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Everything one service runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    pub name: String,
    pub policy: ScalingPolicy,
    pub forecast: ForecastSettings,
    pub initial_replicas: u32,
}

/// Sets `over`'s keys in `base`, table by table.
fn merge(base: &mut Value, over: &Map<String, Value>) {
    let Value::Object(b) = base else { return };
    for (k, v) in over {
        match (b.get_mut(k), v) {
            (Some(slot @ Value::Object(_)), Value::Object(o)) => merge(slot, o),
            _ => {
                b.insert(k.clone(), v.clone());
            }
        }
    }
}

/// `global` with `over` on top, read back as `T` (unknown keys refused by the type).
fn overridden<T: Serialize + serde::de::DeserializeOwned>(
    global: &T,
    over: &Map<String, Value>,
    key: &str,
) -> Result<T, ConfigError> {
    let mut v = serde_json::to_value(global).map_err(|e| ConfigError::Parse(format!("{key}: {e}")))?;
    merge(&mut v, over);
    serde_json::from_value(v).map_err(|e| ConfigError::Parse(format!("{e} at `{key}`")))
}

/// One validated plan per configured service, in name order.
pub fn plans(s: &Settings) -> Result<Vec<ServicePlan>, ConfigError> {
    s.services
        .0
        .iter()
        .map(|(name, spec)| {
            let scaling_key = format!("services.{name}.scaling");
            let policy = overridden(&s.scaling, &spec.scaling, &scaling_key)?;
            crate::config::validate_scaling(&policy, &scaling_key)?;
            let models_key = format!("services.{name}.models");
            let forecast = overridden(&s.models, &spec.models, &models_key)?;
            crate::config::validate_models(&forecast, &models_key)?;
            Ok(ServicePlan {
                name: name.clone(),
                policy,
                forecast,
                initial_replicas: spec.initial_replicas.unwrap_or(s.execution.initial_replicas),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, text).unwrap();
        Settings::load_isolated(Some(&f))
    }

    #[test]
    fn a_list_of_names_runs_every_service_on_the_global_settings() {
        let s = load("services = [\"a\", \"b\"]\n[scaling]\nmax_replicas = 9\n").unwrap();
        let p = plans(&s).unwrap();
        assert_eq!(p.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(p.iter().all(|p| p.policy.max_replicas == 9 && p.policy == s.scaling));
    }

    #[test]
    fn a_table_per_service_overrides_keys_of_the_global_sections() {
        let s = load(
            "[services.checkout]\ninitial_replicas = 4\n\
             [services.checkout.scaling]\nmax_replicas = 50\napproval_threshold = 10\n\
             [services.checkout.scaling.weights]\ncost = 0.5\n\
             [services.checkout.models]\nmodel = \"snaive\"\n\
             [services.search]\n[scaling]\ncapacity_per_replica = 70.0\n",
        )
        .unwrap();
        let p = plans(&s).unwrap();
        let (checkout, search) = (&p[0], &p[1]);
        assert_eq!(checkout.name, "checkout");
        assert_eq!(checkout.policy.max_replicas, 50);
        assert_eq!(checkout.policy.approval_threshold, Some(10));
        assert_eq!(checkout.policy.weights.cost, 0.5);
        assert_eq!(
            checkout.policy.weights.risk, s.scaling.weights.risk,
            "other weights stay"
        );
        assert_eq!(
            checkout.policy.capacity_per_replica, 70.0,
            "the global value where none is given"
        );
        assert_eq!(
            (checkout.forecast.model.as_str(), checkout.initial_replicas),
            ("snaive", 4)
        );
        assert_eq!(search.policy, s.scaling);
        assert_eq!(search.initial_replicas, s.execution.initial_replicas);
    }

    #[test]
    fn a_bad_key_or_value_of_one_service_is_named_with_the_service() {
        let e = load("[services.checkout.scaling]\nmax_replicaz = 5\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("max_replicaz") && e.contains("services.checkout.scaling"),
            "{e}"
        );
        let e = load("[services.checkout.scaling]\nmax_step_up = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("services.checkout.scaling.max_step_up"), "{e}");
        let e = load("[services.checkout]\nscalling = {}\n").unwrap_err().to_string();
        assert!(e.contains("scalling"), "{e}");
        let e = load("[services.checkout.models]\nmodel = \"crystal-ball\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("services.checkout.models.model") && e.contains("crystal-ball"),
            "{e}"
        );
        let e = load("services = [\"a\", \"a\"]\n").unwrap_err().to_string();
        assert!(e.contains("twice"), "{e}");
    }
}
