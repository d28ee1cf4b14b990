//! Layered configuration: `config/default.toml`, then a file given on the
//! command line, then `PSCALER_*` environment variables; validated at start-up
//! with errors that name the bad key.

use std::path::Path;

use actors::ForecastSettings;
use actors::decision::ScalingPolicy;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};

/// The defaults, compiled in so the binary runs from any directory.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub services: Vec<String>,
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub kafka: KafkaSettings,
    pub redis: RedisSettings,
    pub prometheus: PrometheusSettings,
    pub kubernetes: KubernetesSettings,
    pub aws: AwsSettings,
    pub execution: ExecutionSettings,
    pub models: ForecastSettings,
    pub scaling: ScalingPolicy,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    pub metrics_retention_days: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub bind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    pub brokers: String,
    pub events_topic: String,
    pub consumer_group: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSettings {
    pub url: String,
    pub scrape_interval_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSettings {
    pub namespace: String,
    pub in_cluster: bool,
    pub kubeconfig: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    pub region: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExecutionSettings {
    pub target: String,
    pub initial_replicas: u32,
}

/// The scale targets compiled into this build.
#[cfg(feature = "kubernetes")]
pub const EXECUTION_TARGETS: &[&str] = &["simulated", "kubernetes"];
/// The scale targets compiled into this build.
#[cfg(not(feature = "kubernetes"))]
pub const EXECUTION_TARGETS: &[&str] = &["simulated"];

/// A configuration that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key is unknown, missing or of the wrong type.
    #[error("configuration: {0}")]
    Parse(String),
    /// A value is out of its range.
    #[error("configuration: `{key}` {problem}")]
    Invalid { key: &'static str, problem: String },
}

impl Settings {
    /// Loads the layers (defaults, `file`, environment) and validates them.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_with(file, Env::prefixed("PSCALER_").split("__"))
    }

    fn load_with(file: Option<&Path>, env: Env) -> Result<Settings, ConfigError> {
        let mut fig = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(f) = file {
            if !f.exists() {
                return Err(ConfigError::Parse(format!("file {} does not exist", f.display())));
            }
            fig = fig.merge(Toml::file(f));
        }
        let s: Settings = fig.merge(env).extract().map_err(|e| {
            let key = if e.path.is_empty() {
                String::new()
            } else {
                format!(" at `{}`", e.path.join("."))
            };
            ConfigError::Parse(format!("{}{key}", e.kind))
        })?;
        s.validate()?;
        Ok(s)
    }

    /// Range checks that types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, problem: String| Err(ConfigError::Invalid { key, problem });
        let p = &self.scaling;
        if self.services.is_empty() || self.services.iter().any(|s| s.trim().is_empty()) {
            return bad("services", "must list at least one non-empty service name".into());
        }
        if !(self.database.url.starts_with("sqlite:") || self.database.url.starts_with("postgres")) {
            return bad(
                "database.url",
                format!("`{}` must start with sqlite:// or postgres://", self.database.url),
            );
        }
        if p.min_replicas > p.max_replicas {
            return bad(
                "scaling.min_replicas",
                format!(
                    "({}) must not exceed scaling.max_replicas ({})",
                    p.min_replicas, p.max_replicas
                ),
            );
        }
        if !(p.target_utilization > 0.0 && p.target_utilization <= 1.0) {
            return bad(
                "scaling.target_utilization",
                format!("({}) must be in (0, 1]", p.target_utilization),
            );
        }
        if !(p.capacity_per_replica.is_finite() && p.capacity_per_replica > 0.0) {
            return bad(
                "scaling.capacity_per_replica",
                format!("({}) must be a positive number", p.capacity_per_replica),
            );
        }
        if p.warmup_s < 0 || p.decision_interval_s <= 0 {
            return bad(
                "scaling.decision_interval_s",
                "must be positive, and warmup_s not negative".into(),
            );
        }
        let m = &self.models;
        if actors::forecast::by_name(&m.model).is_none() {
            return bad(
                "models.model",
                format!(
                    "`{}` is unknown (known: {})",
                    m.model,
                    actors::forecast::model_names().join(", ")
                ),
            );
        }
        if m.step_seconds <= 0 || m.horizon_minutes <= 0 || m.cadence_seconds <= 0 || m.history_seconds <= 0 {
            return bad(
                "models",
                "step_seconds, horizon_minutes, cadence_seconds and history_seconds must be positive".into(),
            );
        }
        if m.model_dir.as_os_str().is_empty() {
            return bad("models.model_dir", "must name a folder".into());
        }
        if m.model_dir.exists() && !m.model_dir.is_dir() {
            return bad(
                "models.model_dir",
                format!("(`{}`) exists and is not a folder", m.model_dir.display()),
            );
        }
        if !EXECUTION_TARGETS.contains(&self.execution.target.as_str()) {
            return bad(
                "execution.target",
                format!(
                    "`{}` is not available in this build (available: {})",
                    self.execution.target,
                    EXECUTION_TARGETS.join(", ")
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An environment layer that reads nothing (tests must not see the caller's variables).
    fn env(_: &[(&str, &str)]) -> Env {
        Env::prefixed("PSCALER_UNSET_IN_TESTS_")
    }

    #[test]
    fn defaults_load_and_validate() {
        let s = Settings::load_with(None, env(&[])).unwrap();
        assert_eq!(s.database.url, "sqlite://data/pscaler.db");
        assert_eq!(s.services, vec!["default"]);
        assert_eq!(s.scaling.max_replicas, 200);
    }

    #[test]
    fn a_file_overrides_defaults_and_unknown_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[scaling]\nmax_replicas = 7\n").unwrap();
        let s = Settings::load_with(Some(&f), env(&[])).unwrap();
        assert_eq!(s.scaling.max_replicas, 7);
        std::fs::write(&f, "[database]\nurll = \"x\"\n").unwrap();
        let e = Settings::load_with(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(e.contains("urll") && e.contains("database"), "{e}");
        std::fs::write(&f, "[scaling]\nmin_replicas = 9\nmax_replicas = 3\n").unwrap();
        let e = Settings::load_with(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(e.contains("scaling.min_replicas"), "{e}");
        let e = Settings::load_with(Some(&dir.path().join("missing.toml")), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type
    fn the_model_registry_folder_comes_from_the_layers_and_must_be_a_folder() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            let s = Settings::load(None).expect("loads");
            assert_eq!(
                s.models.model_dir,
                Path::new(actors::forecast::registry::DEFAULT_MODEL_DIR)
            );
            jail.create_file("c.toml", "[models]\nmodel_dir = \"trained\"\n")?;
            let s = Settings::load(Some(Path::new("c.toml"))).expect("loads");
            assert_eq!(s.models.model_dir, Path::new("trained"));
            jail.set_env("PSCALER_MODELS__MODEL_DIR", "/srv/pscaler/models");
            let s = Settings::load(Some(Path::new("c.toml"))).expect("loads");
            assert_eq!(s.models.model_dir, Path::new("/srv/pscaler/models"));
            // a file where the folder should be, and an empty name, are refused by key
            jail.set_env("PSCALER_MODELS__MODEL_DIR", "c.toml");
            let e = Settings::load(None).unwrap_err().to_string();
            assert!(e.contains("models.model_dir") && e.contains("not a folder"), "{e}");
            jail.set_env("PSCALER_MODELS__MODEL_DIR", "");
            let e = Settings::load(None).unwrap_err().to_string();
            assert!(e.contains("models.model_dir"), "{e}");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type
    fn environment_variables_override_files() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("PSCALER_DATABASE__URL", "postgres://x@localhost/db");
            jail.set_env("PSCALER_SCALING__MAX_REPLICAS", "42");
            let s = Settings::load(None).expect("loads");
            assert_eq!(s.database.url, "postgres://x@localhost/db");
            assert_eq!(s.scaling.max_replicas, 42);
            jail.set_env("PSCALER_MODELS__MODEL", "crystal-ball");
            let e = Settings::load(None).unwrap_err().to_string();
            assert!(e.contains("models.model") && e.contains("crystal-ball"), "{e}");
            Ok(())
        });
    }
}
