//! The model a forecast actor runs: the configured built-in model, or the model registry's
//! current version of it (models trained ahead), followed as promotions happen.

use std::sync::Arc;

use super::registry::ModelRegistry;
use super::{Forecaster, by_name};
use crate::context::ForecastSettings;
use crate::error::ActorError;

/// The model in use and where it came from.
pub struct ModelSlot {
    pub model: Arc<dyn Forecaster>,
    /// The registry version in use, if any.
    pub version: Option<String>,
    registry: Option<ModelRegistry>,
    /// The registry's current version id when last looked at (used or refused).
    seen: Option<String>,
}

impl ModelSlot {
    /// The configured built-in model; fails when its name is unknown.
    pub fn new(settings: &ForecastSettings) -> Result<Self, ActorError> {
        let model = by_name(&settings.model).ok_or_else(|| {
            ActorError::Rejected(format!(
                "unknown forecast model `{}` (known: {})",
                settings.model,
                super::model_names().join(", ")
            ))
        })?;
        Ok(ModelSlot {
            model: Arc::from(model),
            version: None,
            registry: None,
            seen: None,
        })
    }

    /// Always `model`.
    pub fn fixed(model: Arc<dyn Forecaster>) -> Self {
        ModelSlot {
            model,
            version: None,
            registry: None,
            seen: None,
        }
    }

    /// Follows `registry`'s current version of the configured model (see [`Self::refresh`]).
    pub fn with_registry(mut self, registry: ModelRegistry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The version recorded in `ForecastMade.model_version`.
    pub fn version_label(&self) -> String {
        self.version
            .clone()
            .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string())
    }

    /// Loads the registry's current version when it changed since the last look (or always,
    /// with `force`); on error keeps the model in use. Models that are not trained ahead
    /// (everything but `lgbm`, `transformer` and the ensemble that holds it) ignore the registry.
    pub fn refresh(&mut self, service: &str, settings: &ForecastSettings, force: bool) {
        let Some(reg) = self.registry.clone() else { return };
        #[cfg(feature = "ml")]
        self.refresh_from(&reg, service, settings, force);
        self.refresh_transformer(&reg, service, settings, force);
    }

    /// The registry's current transformer version for `transformer` (alone) or `ensemble`
    /// (as its member).
    fn refresh_transformer(&mut self, reg: &ModelRegistry, service: &str, settings: &ForecastSettings, force: bool) {
        use super::transformer::{ModelChoice, Transformer, versions};
        let name = settings.model.as_str();
        if name != "transformer" && name != "ensemble" {
            return;
        }
        let current = reg.current_version(service, versions::TRANSFORMER).ok().flatten();
        if !force && current == self.seen {
            return;
        }
        self.seen = current;
        match versions::current(reg, service) {
            Ok(Some((version, m))) => {
                tracing::info!(%service, %version, "forecast: using transformer registry version");
                let m = ModelChoice::Loaded(m);
                self.model = if name == "transformer" {
                    Arc::new(Transformer { model: m })
                } else {
                    Arc::new(super::Ensemble {
                        transformer: Some(m),
                        ..Default::default()
                    })
                };
                self.version = Some(version);
            }
            Ok(None) => {
                if self.version.take().is_some()
                    && let Some(m) = by_name(name)
                {
                    self.model = Arc::from(m);
                }
            }
            Err(e) => {
                tracing::warn!(%service, error = %e, "transformer registry version not usable; keeping the model in use")
            }
        }
    }

    #[cfg(feature = "ml")]
    fn refresh_from(&mut self, reg: &ModelRegistry, service: &str, settings: &ForecastSettings, force: bool) {
        use super::models::training::{FrozenLgbm, LGBM};
        if settings.model != LGBM {
            return;
        }
        let current = match reg.current_version(service, LGBM) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(%service, error = %e, "model registry unreadable; keeping the model in use");
                return;
            }
        };
        if !force && current == self.seen {
            return;
        }
        self.seen = current.clone();
        let Some(version) = current else {
            // no current version (any more): the configured built-in model
            if self.version.take().is_some()
                && let Some(m) = by_name(&settings.model)
            {
                self.model = Arc::from(m);
            }
            return;
        };
        let loaded = reg
            .load(service, LGBM, &version)
            .map_err(|e| e.to_string())
            .and_then(|(meta, text)| {
                if meta.step_seconds != settings.step_seconds {
                    return Err(format!(
                        "trained on {} s steps, the service forecasts {} s steps (models.step_seconds)",
                        meta.step_seconds, settings.step_seconds
                    ));
                }
                FrozenLgbm::from_artifact(&meta.version, &text).map_err(|e| e.to_string())
            });
        match loaded {
            Ok(m) => {
                tracing::info!(%service, %version, "forecast: using model registry version");
                self.version = Some(version);
                self.model = Arc::new(m);
            }
            Err(e) => {
                tracing::warn!(%service, %version, error = %e, "model registry version not usable; keeping the model in use")
            }
        }
    }
}
