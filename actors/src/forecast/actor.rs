//! The forecast actor: keeps a window of the service's load and, when the control loop asks
//! for the forecast to decide on, makes a new one if its cadence has come — the model runs on
//! the blocking pool within a time limit, so a slow model never holds up other services —
//! appends it as `ForecastMade` and answers with the latest forecast it has.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use events::vocabulary::{ForecastMade, ForecastPoint};
use events::{Event, ExpectedVersion, Metadata, NewEvent, round_sig, streams};
use uuid::Uuid;

use super::registry::ModelRegistry;
use super::slot::ModelSlot;
use super::state::ForecastState;
use super::window::LoadWindow;
use super::{Forecaster, QuantilePath};
use crate::context::{LOAD_METRIC, ServiceContext};
use crate::error::ActorError;
use crate::history::{Snapshots, fold, snapshot_key};
use crate::messages::{ForecastAnswer, LatestForecast, Observed};

/// Namespace of forecast ids: one id per (service, model, origin).
const FORECAST_NS: Uuid = Uuid::from_u128(0x3b9e_0d2c_8a4f_4c71_a5e6_1f2d_3c4b_5a69);

/// Significant digits kept of each forecast number (the event stays compact; decisions and
/// `explain` read the same rounded numbers).
const DIGITS: u32 = 6;

/// One per service.
pub struct ForecastActor {
    ctx: ServiceContext,
    slot: ModelSlot,
    window: LoadWindow,
    state: ForecastState,
    snapshots: Snapshots,
    /// When the last forecast was made (by the clock), for the cadence.
    last_made_at: Option<DateTime<Utc>>,
    /// Set while a model run is on the blocking pool (one that ran past its time limit
    /// keeps it set until it returns).
    busy: Arc<AtomicBool>,
    ready: bool,
    generation: u32,
}

impl ForecastActor {
    /// Fails when the configured model is unknown.
    pub fn new(ctx: ServiceContext) -> Result<Self, ActorError> {
        let slot = ModelSlot::new(&ctx.forecast)?;
        let window = LoadWindow::new(ctx.forecast.step_seconds, ctx.forecast.history_seconds);
        Ok(ForecastActor {
            ctx,
            slot,
            window,
            state: ForecastState::default(),
            snapshots: Snapshots::default(),
            last_made_at: None,
            busy: Arc::new(AtomicBool::new(false)),
            ready: false,
            generation: 0,
        })
    }

    /// Runs `model` instead of the configured one (and follows no registry).
    pub fn with_model(mut self, model: Arc<dyn Forecaster>) -> Self {
        self.slot = ModelSlot::fixed(model);
        self
    }

    /// Follows the registry's current version of the configured model (see [`ModelSlot`]).
    pub fn with_registry(mut self, registry: ModelRegistry) -> Self {
        self.slot = self.slot.with_registry(registry);
        self
    }

    /// Whether a forecast is due at `now`: `Err(Some(why))` when one would be but cannot be
    /// made, `Err(None)` when the cadence has not come or nothing new was observed.
    fn due(&self, now: DateTime<Utc>) -> Result<(), Option<String>> {
        let f = &self.ctx.forecast;
        if !self.ready {
            return Err(Some("the forecast actor's state is not rebuilt yet".into()));
        }
        if self.window.len() < f.min_points {
            return Err(Some(format!(
                "{} samples in the window, {} needed",
                self.window.len(),
                f.min_points
            )));
        }
        let too_soon = self
            .last_made_at
            .is_some_and(|l| (now - l).num_seconds() < f.cadence_seconds);
        let nothing_new = match (&self.state.latest, self.window.newest()) {
            (Some((l, _)), Some(n)) => n <= l.origin.timestamp(),
            _ => false,
        };
        if too_soon || nothing_new { Err(None) } else { Ok(()) }
    }

    fn horizon(&self) -> usize {
        let f = &self.ctx.forecast;
        ((f.horizon_minutes * 60) as f64 / f.step_seconds as f64)
            .ceil()
            .max(1.0) as usize
    }

    /// The event for `path` forecast from `origin`.
    fn made(&self, origin: DateTime<Utc>, path: QuantilePath) -> Result<ForecastMade, String> {
        let f = &self.ctx.forecast;
        let name = self.slot.model.name();
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        if !(finite(&path.p10) && finite(&path.p50) && finite(&path.p90)) {
            return Err(format!("model `{name}` gave non-finite numbers"));
        }
        let points = (0..path.len())
            .map(|k| ForecastPoint {
                at: origin + chrono::Duration::seconds(f.step_seconds * (k as i64 + 1)),
                p10: round_sig(path.p10[k], DIGITS),
                p50: round_sig(path.p50[k], DIGITS),
                p90: round_sig(path.p90[k], DIGITS),
            })
            .collect();
        let id = format!("{}/{}/{}", self.ctx.service, name, origin.timestamp());
        Ok(ForecastMade {
            forecast_id: Uuid::new_v5(&FORECAST_NS, id.as_bytes()),
            service: self.ctx.service.clone(),
            model: name.to_string(),
            model_version: self.slot.version_label(),
            origin,
            step_seconds: f.step_seconds,
            horizon_minutes: f.horizon_minutes,
            points,
            notes: path.notes,
        })
    }
}

/// Runs `model` on the blocking pool, at most `limit`; `busy` stays set until it returns.
async fn run_model(
    model: Arc<dyn Forecaster>,
    busy: Arc<AtomicBool>,
    (t, y): (Vec<i64>, Vec<f64>),
    step_s: i64,
    horizon: usize,
    limit: Duration,
) -> Result<QuantilePath, String> {
    if busy.swap(true, Ordering::SeqCst) {
        return Err("the model's previous run has not returned yet".into());
    }
    let name = model.name();
    let job = tokio::task::spawn_blocking(move || {
        let out = model.forecast(&t, &y, step_s, horizon);
        busy.store(false, Ordering::SeqCst);
        out
    });
    match tokio::time::timeout(limit, job).await {
        Ok(Ok(Ok(path))) => Ok(path),
        Ok(Ok(Err(e))) => Err(format!("model `{name}`: {e}")),
        Ok(Err(e)) => Err(format!("model `{name}` failed: {e}")),
        Err(_) => Err(format!("model `{name}` ran past its {} s limit", limit.as_secs_f64())),
    }
}

impl Actor for ForecastActor {
    type Context = Context<Self>;

    /// Reloads the registry's current model version, the window from the metric store and
    /// the latest forecast from the log (snapshot + the service's events after it); until
    /// that succeeds the actor makes no forecast, and it retries with backoff.
    fn started(&mut self, ctx: &mut Self::Context) {
        self.generation += 1;
        self.slot.refresh(&self.ctx.service, &self.ctx.forecast, true);
        self.rebuild(ctx, 0);
    }
}

impl ForecastActor {
    fn rebuild(&mut self, ctx: &mut Context<Self>, attempt: u32) {
        let c = self.ctx.clone();
        ctx.wait(
            async move {
                let now = c.clock.now();
                let from = now - chrono::Duration::seconds(c.forecast.history_seconds);
                let samples = c
                    .metrics
                    .range(&c.service, LOAD_METRIC, from, now + chrono::Duration::seconds(1))
                    .await?;
                let key = snapshot_key("forecast", &c.service);
                let state: ForecastState = fold(c.store.as_ref(), &key, &c.service).await?;
                Ok::<_, ActorError>((samples, state))
            }
            .into_actor(self)
            .map(move |res, act, ctx| match res {
                Ok((samples, state)) => {
                    act.window.clear();
                    for s in samples {
                        act.window.insert(s.ts.timestamp(), s.value);
                    }
                    act.last_made_at = state.latest.as_ref().map(|(f, m)| m.recorded_at.max(f.origin));
                    act.state = state;
                    act.ready = true;
                    act.ctx.status.set_ready(&act.ctx.service, "forecast", Ok(()));
                }
                Err(e) => {
                    act.ready = false;
                    tracing::error!(error = %e, service = %act.ctx.service, attempt, "forecast: rebuild failed; retrying");
                    act.ctx
                        .status
                        .set_ready(&act.ctx.service, "forecast", Err(format!("rebuild failed: {e}")));
                    ctx.run_later(crate::supervisor::backoff(attempt), move |act, ctx| {
                        act.rebuild(ctx, attempt + 1)
                    });
                }
            }),
        );
    }
}

impl Supervised for ForecastActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(service = %self.ctx.service, "forecast actor restarting");
        self.ready = false;
    }
}

impl Handler<Observed> for ForecastActor {
    type Result = Result<(), ActorError>;

    fn handle(&mut self, msg: Observed, _: &mut Self::Context) -> Self::Result {
        self.window.insert(msg.ts.timestamp(), msg.value);
        Ok(())
    }
}

impl Handler<LatestForecast> for ForecastActor {
    type Result = AtomicResponse<Self, ForecastAnswer>;

    fn handle(&mut self, msg: LatestForecast, _: &mut Self::Context) -> Self::Result {
        let now = msg.now;
        if let Err(problem) = self.due(now) {
            self.ctx.status.forecast_problem(&self.ctx.service, problem.clone());
            let answer = ForecastAnswer {
                latest: self.state.ready(),
                problem,
            };
            return AtomicResponse::new(Box::pin(fut::ready(answer)));
        }
        self.slot.refresh(&self.ctx.service, &self.ctx.forecast, false);
        let series = self.window.series();
        let origin = self.window.newest().and_then(|t| DateTime::from_timestamp(t, 0));
        let (model, busy) = (self.slot.model.clone(), self.busy.clone());
        let (step, horizon) = (self.ctx.forecast.step_seconds, self.horizon());
        let limit = Duration::from_secs(self.ctx.reconcile.fit_timeout_s.max(1));
        AtomicResponse::new(Box::pin(
            async move { run_model(model, busy, series, step, horizon, limit).await }
                .into_actor(self)
                .then(move |path, act, _| {
                    let made = path.and_then(|p| act.made(origin.unwrap_or(now), p));
                    let c = act.ctx.clone();
                    async move {
                        let made = made?;
                        let meta = Metadata::new(c.actor_name("forecast"), now);
                        let e = NewEvent::new(Event::ForecastMade(made.clone()), meta.clone());
                        let at = c
                            .store
                            .append(&streams::service(&c.service), ExpectedVersion::Any, vec![e])
                            .await
                            .map_err(|e| format!("appending the forecast: {e}"))?;
                        Ok::<_, String>((made, meta, at.position))
                    }
                    .into_actor(act)
                })
                .map(move |res, act, ctx| act.made_or_not(res, now, ctx)),
        ))
    }
}

impl ForecastActor {
    /// Folds a new forecast (or records why there is none) and answers with the latest.
    fn made_or_not(
        &mut self,
        res: Result<(ForecastMade, Metadata, u64), String>,
        now: DateTime<Utc>,
        ctx: &mut Context<Self>,
    ) -> ForecastAnswer {
        let s = self.ctx.service.clone();
        let problem = match res {
            Ok((made, meta, position)) => {
                metrics::counter!("pscaler_forecasts_total", "service" => s.clone(), "model" => made.model.clone())
                    .increment(1);
                if let Some(p) = made.points.last() {
                    metrics::gauge!("pscaler_forecast_p50", "service" => s.clone()).set(p.p50);
                    metrics::gauge!("pscaler_forecast_p90", "service" => s.clone()).set(p.p90);
                }
                self.state.apply(&Event::ForecastMade(made), &meta, position);
                self.snapshots.folded(1);
                self.last_made_at = Some(now);
                self.save_snapshot(ctx);
                None
            }
            Err(e) => {
                tracing::warn!(service = %s, error = %e, "no forecast this cycle");
                Some(e)
            }
        };
        self.ctx.status.forecast_problem(&s, problem.clone());
        ForecastAnswer {
            latest: self.state.ready(),
            problem,
        }
    }

    fn save_snapshot(&mut self, ctx: &mut Context<Self>) {
        let Some((pos, doc)) = self.snapshots.due(&self.state, self.ctx.reconcile.snapshot_every) else {
            return;
        };
        let (store, key) = (self.ctx.store.clone(), snapshot_key("forecast", &self.ctx.service));
        ctx.spawn(
            async move {
                if let Err(e) = store.save_snapshot(&key, pos, doc).await {
                    tracing::warn!(%key, error = %e, "snapshot not saved (the next one will be)");
                }
            }
            .into_actor(self),
        );
    }
}

crate::supervision_handlers!(ForecastActor, "forecast");
