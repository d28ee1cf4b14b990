//! The forecast actor: keeps a window of the service's load, and at each
//! cadence runs the configured forecaster (or the model registry's current
//! version of it) and appends a `ForecastMade` event.

use std::collections::VecDeque;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use events::vocabulary::{ForecastMade, ForecastPoint};
use events::{Event, ExpectedVersion, Metadata, NewEvent, streams};
use uuid::Uuid;

use super::registry::ModelRegistry;
use super::{Forecaster, by_name};
use crate::context::{LOAD_METRIC, ServiceContext};
use crate::error::ActorError;
use crate::messages::{ForecastReady, Observed};

/// Namespace of forecast ids: one id per (service, model, origin).
const FORECAST_NS: Uuid = Uuid::from_u128(0x3b9e_0d2c_8a4f_4c71_a5e6_1f2d_3c4b_5a69);

/// One per service.
pub struct ForecastActor {
    ctx: ServiceContext,
    decision: Recipient<ForecastReady>,
    model: Box<dyn Forecaster>,
    /// Where trained model versions are kept; the current version is loaded at each start.
    registry: Option<ModelRegistry>,
    /// The registry version in use, if any.
    model_version: Option<String>,
    /// The registry's current version id when last looked at (used or refused).
    seen_version: Option<String>,
    history: VecDeque<(i64, f64)>,
    last_forecast_at: Option<DateTime<Utc>>,
    generation: u32,
}

impl ForecastActor {
    /// Fails when the configured model is unknown.
    pub fn new(ctx: ServiceContext, decision: Recipient<ForecastReady>) -> Result<Self, ActorError> {
        let model = by_name(&ctx.forecast.model).ok_or_else(|| {
            ActorError::Rejected(format!(
                "unknown forecast model `{}` (known: {})",
                ctx.forecast.model,
                super::model_names().join(", ")
            ))
        })?;
        Ok(ForecastActor {
            ctx,
            decision,
            model,
            registry: None,
            model_version: None,
            seen_version: None,
            history: VecDeque::new(),
            last_forecast_at: None,
            generation: 0,
        })
    }

    /// Uses the registry's current version of the configured model when there is one (models
    /// that are trained ahead: `lgbm` with the `ml` feature), and the built-in model otherwise.
    /// The current version is loaded whenever the actor starts, and a promotion (a changed
    /// `CURRENT`) is picked up at the next forecast.
    pub fn with_registry(mut self, registry: ModelRegistry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Follows the registry's current version: loads it when it changed since the last look
    /// (or always, with `force`); on error, keeps the model it has.
    fn refresh_model(&mut self, force: bool) {
        let Some(reg) = self.registry.clone() else { return };
        #[cfg(feature = "ml")]
        self.refresh_from(&reg, force);
        self.refresh_transformer(&reg, force);
    }

    /// `transformer` and `ensemble` run the registry's current transformer version (an ONNX
    /// file offered by `train --model transformer`) when there is one, the shipped model otherwise.
    fn refresh_transformer(&mut self, reg: &ModelRegistry, force: bool) {
        use super::transformer::{ModelChoice, Transformer, versions};
        let name = self.ctx.forecast.model.clone();
        if name != "transformer" && name != "ensemble" {
            return;
        }
        let service = self.ctx.service.clone();
        let current = reg.current_version(&service, versions::TRANSFORMER).ok().flatten();
        if !force && current == self.seen_version {
            return;
        }
        self.seen_version = current;
        match versions::current(reg, &service) {
            Ok(Some((version, m))) => {
                tracing::info!(%service, %version, "forecast: using transformer registry version");
                let m = ModelChoice::Loaded(m);
                self.model = if name == "transformer" {
                    Box::new(Transformer { model: m })
                } else {
                    Box::new(super::Ensemble {
                        transformer: Some(m),
                        ..Default::default()
                    })
                };
                self.model_version = Some(version);
            }
            Ok(None) => {
                if self.model_version.take().is_some()
                    && let Some(m) = by_name(&name)
                {
                    self.model = m;
                }
            }
            Err(e) => {
                tracing::warn!(%service, error = %e, "transformer registry version not usable; keeping the model in use")
            }
        }
    }

    #[cfg(feature = "ml")]
    fn refresh_from(&mut self, reg: &ModelRegistry, force: bool) {
        use super::models::training::{FrozenLgbm, LGBM};
        if self.ctx.forecast.model != LGBM {
            return;
        }
        let service = self.ctx.service.clone();
        let current = match reg.current_version(&service, LGBM) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(%service, error = %e, "model registry unreadable; keeping the model in use");
                return;
            }
        };
        if !force && current == self.seen_version {
            return;
        }
        self.seen_version = current.clone();
        let Some(version) = current else {
            // no current version (any more): the configured built-in model
            if self.model_version.take().is_some()
                && let Some(m) = by_name(&self.ctx.forecast.model)
            {
                self.model = m;
            }
            return;
        };
        let loaded = reg
            .load(&service, LGBM, &version)
            .map_err(|e| e.to_string())
            .and_then(|(meta, text)| {
                if meta.step_seconds != self.ctx.forecast.step_seconds {
                    return Err(format!(
                        "trained on {} s steps, the service forecasts {} s steps (models.step_seconds)",
                        meta.step_seconds, self.ctx.forecast.step_seconds
                    ));
                }
                FrozenLgbm::from_artifact(&meta.version, &text).map_err(|e| e.to_string())
            });
        match loaded {
            Ok(m) => {
                tracing::info!(%service, %version, "forecast: using model registry version");
                self.model_version = Some(version);
                self.model = Box::new(m);
            }
            Err(e) => {
                tracing::warn!(%service, %version, error = %e, "model registry version not usable; keeping the model in use")
            }
        }
    }

    /// Whether the cadence allows a forecast at `now`.
    fn cadence_elapsed(&self, now: DateTime<Utc>) -> bool {
        self.last_forecast_at
            .is_none_or(|l| (now - l).num_seconds() >= self.ctx.forecast.cadence_seconds)
    }

    fn push(&mut self, ts: i64, value: f64) {
        match self.history.back() {
            Some(&(last, _)) if ts < last => return, // late sample: the window only moves forward
            Some(&(last, _)) if ts == last => {
                self.history.pop_back(); // a duplicate timestamp: the newer value wins
            }
            _ => {}
        }
        self.history.push_back((ts, value));
        let keep_from = ts - self.ctx.forecast.history_seconds;
        while self.history.front().is_some_and(|&(t, _)| t < keep_from) {
            self.history.pop_front();
        }
    }

    /// The forecast due now, if any (pure apart from reading the window).
    fn due_forecast(&self, now: DateTime<Utc>) -> Option<Result<ForecastMade, ActorError>> {
        let f = &self.ctx.forecast;
        if self.history.len() < f.min_points || !self.cadence_elapsed(now) {
            return None;
        }
        let (t, y): (Vec<i64>, Vec<f64>) = self.history.iter().copied().unzip();
        let origin_ts = *t.last()?;
        let horizon = ((f.horizon_minutes * 60) as f64 / f.step_seconds as f64)
            .ceil()
            .max(1.0) as usize;
        let path = match self.model.forecast(&t, &y, f.step_seconds, horizon) {
            Ok(p) => p,
            Err(e) => return Some(Err(e.into())),
        };
        let origin = DateTime::from_timestamp(origin_ts, 0)?;
        let id = Uuid::new_v5(
            &FORECAST_NS,
            format!("{}/{}/{}", self.ctx.service, self.model.name(), origin_ts).as_bytes(),
        );
        let points = (0..path.len())
            .map(|k| ForecastPoint {
                at: origin + chrono::Duration::seconds(f.step_seconds * (k as i64 + 1)),
                p10: path.p10[k],
                p50: path.p50[k],
                p90: path.p90[k],
            })
            .collect();
        Some(Ok(ForecastMade {
            forecast_id: id,
            service: self.ctx.service.clone(),
            model: self.model.name().to_string(),
            model_version: self
                .model_version
                .clone()
                .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string()),
            origin,
            step_seconds: f.step_seconds,
            horizon_minutes: f.horizon_minutes,
            points,
            notes: path.notes,
        }))
    }
}

impl Actor for ForecastActor {
    type Context = Context<Self>;

    /// Reloads the registry's current model version, the history window from the metric
    /// store, and when the last forecast was made from the log, so a restart loses nothing.
    fn started(&mut self, ctx: &mut Self::Context) {
        self.generation += 1;
        self.refresh_model(true);
        let c = self.ctx.clone();
        ctx.wait(
            async move {
                let now = c.clock.now();
                let from = now - chrono::Duration::seconds(c.forecast.history_seconds);
                let samples = c
                    .metrics
                    .range(&c.service, LOAD_METRIC, from, now + chrono::Duration::seconds(1))
                    .await?;
                let last = c
                    .store
                    .read_stream(&streams::service(&c.service), 0)
                    .await?
                    .into_iter()
                    .rev()
                    .find_map(|e| match e.event {
                        Event::ForecastMade(f) => Some(e.metadata.recorded_at.max(f.origin)),
                        _ => None,
                    });
                Ok::<_, ActorError>((samples, last))
            }
            .into_actor(self)
            .map(|res, act, _| match res {
                Ok((samples, last)) => {
                    act.history.clear();
                    for s in samples {
                        act.push(s.ts.timestamp(), s.value);
                    }
                    act.last_forecast_at = last;
                }
                Err(e) => tracing::error!(error = %e, service = %act.ctx.service, "forecast: rebuild failed"),
            }),
        );
    }
}

impl Supervised for ForecastActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(service = %self.ctx.service, "forecast actor restarting");
        self.history.clear();
        self.last_forecast_at = None;
    }
}

impl Handler<Observed> for ForecastActor {
    type Result = AtomicResponse<Self, Result<(), ActorError>>;

    fn handle(&mut self, msg: Observed, _: &mut Self::Context) -> Self::Result {
        self.push(msg.ts.timestamp(), msg.value);
        let now = self.ctx.clock.now();
        if self.cadence_elapsed(now) {
            self.refresh_model(false);
        }
        let due = self.due_forecast(now);
        let c = self.ctx.clone();
        let decision = self.decision.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let Some(made) = due else { return Ok(None) };
                let made = made?;
                let meta = Metadata::new(c.actor_name("forecast"), now);
                c.store
                    .append(
                        &streams::service(&c.service),
                        ExpectedVersion::Any,
                        vec![NewEvent::new(Event::ForecastMade(made.clone()), meta.clone())],
                    )
                    .await?;
                metrics::counter!("pscaler_forecasts_total", "service" => c.service.clone(), "model" => made.model.clone())
                    .increment(1);
                if let Some(p) = made.points.last() {
                    metrics::gauge!("pscaler_forecast_p50", "service" => c.service.clone()).set(p.p50);
                    metrics::gauge!("pscaler_forecast_p90", "service" => c.service.clone()).set(p.p90);
                }
                decision.send(ForecastReady { forecast: made, metadata: meta }).await??;
                Ok(Some(now))
            }
            .into_actor(self)
            .map(|res: Result<Option<DateTime<Utc>>, ActorError>, act, _| {
                match res {
                    Ok(Some(at)) => act.last_forecast_at = Some(at),
                    Ok(None) => {}
                    // A forecaster that refuses this history is not a crash: say so and go on.
                    Err(ActorError::Forecast(e)) => {
                        tracing::warn!(service = %act.ctx.service, error = %e, "no forecast this cycle")
                    }
                    Err(e) => return Err(e),
                }
                Ok(())
            }),
        ))
    }
}

crate::supervision_handlers!(ForecastActor, "forecast");
