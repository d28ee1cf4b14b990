//! Layered configuration: `config/default.toml`, then a file given on the
//! command line, then `PSCALER_*` environment variables; validated at start-up
//! with errors that name the bad key.

use std::path::Path;

use actors::decision::ScalingPolicy;
use actors::{ForecastSettings, IngestLimits, ReconcileSettings};
use figment::Figment;

use crate::services::Services;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};

/// The defaults, compiled in so the binary runs from any directory.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The services this instance scales: names, or a table per service (see `services`).
    pub services: Services,
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
    #[serde(default)]
    pub reconcile: ReconcileSettings,
    #[serde(default)]
    pub ingest: IngestLimits,
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
    Invalid { key: String, problem: String },
}

impl Settings {
    /// Loads the layers (defaults, `file`, environment) and validates them.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_with(file, Env::prefixed("PSCALER_").split("__"))
    }

    /// The layers without the environment (tests: nothing of the caller's variables leaks in).
    pub fn load_isolated(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_with(file, Env::prefixed("PSCALER_UNSET_IN_TESTS_"))
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

    /// Range checks that types alone cannot express, section by section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.services.is_empty() || self.services.0.keys().any(|s| s.trim().is_empty()) {
            return bad(
                "services",
                "must name at least one service, each with a non-empty name".into(),
            );
        }
        self.validate_stores()?;
        validate_scaling(&self.scaling, "scaling")?;
        validate_models(&self.models, "models")?;
        validate_reconcile(&self.reconcile)?;
        validate_ingest(&self.ingest)?;
        self.validate_execution()?;
        crate::services::plans(self).map(|_| ())
    }

    /// The configured service names, in order.
    pub fn service_names(&self) -> Vec<String> {
        self.services.names()
    }

    fn validate_stores(&self) -> Result<(), ConfigError> {
        let d = &self.database;
        if !(d.url.starts_with("sqlite:") || d.url.starts_with("postgres")) {
            return bad(
                "database.url",
                "must start with sqlite:// or postgres:// (the value is not shown: it may hold a password)".into(),
            );
        }
        check("database.max_connections", d.max_connections >= 1, || {
            "must be at least 1".into()
        })?;
        check("database.metrics_retention_days", d.metrics_retention_days >= 1, || {
            "must be at least 1".into()
        })?;
        let port_ok = self
            .http
            .bind
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        check("http.bind", port_ok, || {
            format!("`{}` is not host:port", self.http.bind)
        })?;
        check(
            "prometheus.scrape_interval_seconds",
            self.prometheus.scrape_interval_seconds >= 1,
            || "must be at least 1".into(),
        )?;
        check("kafka.events_topic", !self.kafka.events_topic.trim().is_empty(), || {
            "must name a topic".into()
        })
    }

    fn validate_execution(&self) -> Result<(), ConfigError> {
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

    /// The ingest limits in force: the configured ones, with the metrics retention as the
    /// oldest sample accepted.
    pub fn ingest_limits(&self) -> IngestLimits {
        IngestLimits {
            max_age_s: i64::from(self.database.metrics_retention_days) * 86_400,
            ..self.ingest.clone()
        }
    }
}

fn bad(key: impl Into<String>, problem: String) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid {
        key: key.into(),
        problem,
    })
}

fn check(key: impl Into<String>, ok: bool, problem: impl FnOnce() -> String) -> Result<(), ConfigError> {
    if ok { Ok(()) } else { bad(key, problem()) }
}

/// `[models]` (or a service's `models` overrides under `prefix`).
pub(crate) fn validate_models(m: &ForecastSettings, prefix: &str) -> Result<(), ConfigError> {
    if actors::forecast::by_name(&m.model).is_none() {
        return bad(
            format!("{prefix}.model"),
            format!(
                "`{}` is unknown (known: {})",
                m.model,
                actors::forecast::model_names().join(", ")
            ),
        );
    }
    if m.step_seconds <= 0 || m.horizon_minutes <= 0 || m.cadence_seconds <= 0 || m.history_seconds <= 0 {
        return bad(
            prefix,
            "step_seconds, horizon_minutes, cadence_seconds and history_seconds must be positive".into(),
        );
    }
    check(format!("{prefix}.min_points"), m.min_points >= 1, || {
        "must be at least 1".into()
    })?;
    if m.model_dir.as_os_str().is_empty() {
        return bad(format!("{prefix}.model_dir"), "must name a folder".into());
    }
    if m.model_dir.exists() && !m.model_dir.is_dir() {
        return bad(
            format!("{prefix}.model_dir"),
            format!("(`{}`) exists and is not a folder", m.model_dir.display()),
        );
    }
    Ok(())
}

fn in_unit(x: f64) -> bool {
    (0.0..=1.0).contains(&x)
}

/// `[scaling]` (or a service's `scaling` overrides under `prefix`).
pub(crate) fn validate_scaling(p: &ScalingPolicy, prefix: &str) -> Result<(), ConfigError> {
    let k = |name: &str| format!("{prefix}.{name}");
    check(k("max_replicas"), p.max_replicas >= 1, || "must be at least 1".into())?;
    check(k("min_replicas"), p.min_replicas <= p.max_replicas, || {
        format!("({}) must not exceed max_replicas ({})", p.min_replicas, p.max_replicas)
    })?;
    check(
        k("target_utilization"),
        p.target_utilization > 0.0 && p.target_utilization <= 1.0,
        || format!("({}) must be in (0, 1]", p.target_utilization),
    )?;
    check(
        k("capacity_per_replica"),
        p.capacity_per_replica.is_finite() && p.capacity_per_replica > 0.0,
        || format!("({}) must be a positive number", p.capacity_per_replica),
    )?;
    check(k("warmup_s"), p.warmup_s >= 0, || "must not be negative".into())?;
    check(k("decision_interval_s"), p.decision_interval_s > 0, || {
        "must be positive".into()
    })?;
    check(k("scale_down_cooldown_s"), p.scale_down_cooldown_s >= 0, || {
        "must not be negative".into()
    })?;
    check(k("max_step_up"), p.max_step_up >= 1, || {
        format!(
            "({}) must be at least 1: a ramp must be able to add replicas",
            p.max_step_up
        )
    })?;
    check(k("max_step_down"), p.max_step_down >= 1, || {
        format!("({}) must be at least 1", p.max_step_down)
    })?;
    check(
        k("approval_threshold"),
        p.approval_threshold.is_none_or(|t| t >= 1),
        || "must be at least 1 replica (leave it out to approve nothing)".into(),
    )?;
    check(k("stale_forecast_s"), p.stale_forecast_s > 0, || {
        "must be positive".into()
    })?;
    check(k("stale_state_s"), p.stale_state_s.is_none_or(|s| s > 0), || {
        "must be positive".into()
    })?;
    check(
        k("burst_factor"),
        p.burst_factor.is_finite() && p.burst_factor > 1.0,
        || format!("({}) must be a number above 1", p.burst_factor),
    )?;
    check(
        k("spot_shares"),
        !p.spot_shares.is_empty() && p.spot_shares.iter().all(|s| s.is_finite() && in_unit(*s)),
        || format!("({:?}) must list shares in [0, 1]", p.spot_shares),
    )?;
    check(
        k("violation_cost_per_minute"),
        p.violation_cost_per_minute.is_finite() && p.violation_cost_per_minute >= 0.0,
        || "must be a non-negative number".into(),
    )?;
    check(
        k("provisioning_quantile"),
        p.provisioning_quantile.is_none_or(|q| q > 0.0 && q < 1.0),
        || "must be in (0, 1)".into(),
    )?;
    check(
        k("knee_utilization"),
        p.knee_utilization > 0.0 && p.knee_utilization <= 1.0,
        || "must be in (0, 1]".into(),
    )?;
    let w = &p.weights;
    check(
        k("weights"),
        [w.cost, w.performance, w.stability, w.risk, w.transition]
            .iter()
            .all(|x| x.is_finite() && *x >= 0.0),
        || "must be non-negative numbers".into(),
    )?;
    check(
        k("prices"),
        p.prices.iter().all(|x| {
            x.vcpus.is_finite() && x.vcpus > 0.0 && x.on_demand_hourly.is_finite() && x.on_demand_hourly >= 0.0
        }),
        || "each price needs positive vcpus and a non-negative on_demand_hourly".into(),
    )
}

/// `[reconcile]`.
fn validate_reconcile(r: &ReconcileSettings) -> Result<(), ConfigError> {
    check("reconcile.interval_s", (1..=3600).contains(&r.interval_s), || {
        format!("({}) must be between 1 and 3600", r.interval_s)
    })?;
    check("reconcile.approval_ttl_s", r.approval_ttl_s > 0, || {
        "must be positive".into()
    })?;
    check(
        "reconcile.approval_tolerance",
        r.approval_tolerance.is_finite() && in_unit(r.approval_tolerance),
        || format!("({}) must be in [0, 1]", r.approval_tolerance),
    )?;
    check("reconcile.fit_timeout_s", r.fit_timeout_s >= 1, || {
        "must be at least 1".into()
    })?;
    check("reconcile.snapshot_every", r.snapshot_every >= 1, || {
        "must be at least 1".into()
    })
}

/// `[ingest]`.
fn validate_ingest(i: &IngestLimits) -> Result<(), ConfigError> {
    check("ingest.max_future_s", i.max_future_s >= 0, || {
        "must not be negative".into()
    })?;
    check("ingest.max_value", i.max_value.is_finite() && i.max_value > 0.0, || {
        "must be a positive number".into()
    })?;
    check(
        "ingest.spike_factor",
        i.spike_factor.is_finite() && i.spike_factor > 1.0,
        || "must be a number above 1".into(),
    )?;
    check("ingest.spike_confirm", i.spike_confirm >= 1, || {
        "must be at least 1".into()
    })?;
    check("ingest.recent_s", i.recent_s > 0, || "must be positive".into())
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
        assert_eq!(s.service_names(), vec!["default"]);
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
    fn every_section_refuses_unknown_keys_and_out_of_range_values_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        let refused = |text: &str| {
            std::fs::write(&f, text).unwrap();
            Settings::load_with(Some(&f), env(&[])).unwrap_err().to_string()
        };
        // a typo would silently switch the approval gate off
        let e = refused("[scaling]\napproval_treshold = 1\n");
        assert!(e.contains("approval_treshold") && e.contains("scaling"), "{e}");
        let e = refused("[scaling.weights]\ncosts = 1.0\n");
        assert!(e.contains("costs"), "{e}");
        let e = refused("[reconcile]\nintervall_s = 5\n");
        assert!(e.contains("intervall_s"), "{e}");
        let e = refused("[ingest]\nmax_valu = 5\n");
        assert!(e.contains("max_valu"), "{e}");
        for (text, key) in [
            ("[scaling]\nspot_shares = [5.0]\n", "scaling.spot_shares"),
            ("[scaling]\nmax_step_up = 0\n", "scaling.max_step_up"),
            ("[scaling]\nmax_step_down = 0\n", "scaling.max_step_down"),
            ("[scaling]\nburst_factor = 0.5\n", "scaling.burst_factor"),
            (
                "[scaling]\nprovisioning_quantile = 1.5\n",
                "scaling.provisioning_quantile",
            ),
            ("[scaling]\napproval_threshold = 0\n", "scaling.approval_threshold"),
            ("[reconcile]\ninterval_s = 0\n", "reconcile.interval_s"),
            (
                "[reconcile]\napproval_tolerance = 2.0\n",
                "reconcile.approval_tolerance",
            ),
            ("[ingest]\nspike_factor = 1.0\n", "ingest.spike_factor"),
            ("[ingest]\nmax_value = -1.0\n", "ingest.max_value"),
            ("[http]\nbind = \"8080\"\n", "http.bind"),
            ("[database]\nmax_connections = 0\n", "database.max_connections"),
        ] {
            let e = refused(text);
            assert!(e.contains(key), "{text} -> {e}");
        }
    }

    #[test]
    fn a_bad_database_url_is_named_without_printing_it() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[database]\nurl = \"mysql://root:hunter2@db/x\"\n").unwrap();
        let e = Settings::load_with(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(e.contains("database.url") && !e.contains("hunter2"), "{e}");
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
