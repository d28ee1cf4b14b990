//! Supervision: a root supervisor with one service supervisor per service,
//! which starts one restartable actor per concern.
//!
//! Each concern actor runs under `actix::Supervisor`: when it stops (an
//! injected fault, a failed invariant) it is restarted in place with the same
//! mailbox, and rebuilds its state from the stores in `started`. The message
//! in flight when it stopped is lost; everything acknowledged was stored.

use std::collections::BTreeMap;

use actix::prelude::*;

use crate::context::ServiceContext;
use crate::decision::actor::DecisionActor;
use crate::decision::controller::Peers;
use crate::error::ActorError;
use crate::execution::ExecutionActor;
use crate::forecast::actor::ForecastActor;
use crate::forecast::registry::ModelRegistry;
use crate::ingest::IngestActor;

/// The addresses of one service's actors.
#[derive(Clone)]
pub struct ServiceActors {
    pub ingest: Addr<IngestActor>,
    pub forecast: Addr<ForecastActor>,
    pub decision: Addr<DecisionActor>,
    pub execution: Addr<ExecutionActor>,
}

/// Starts and owns the actors of one service.
pub struct ServiceSupervisor {
    service: String,
    actors: ServiceActors,
}

impl ServiceSupervisor {
    /// Starts the service's actors (execution first, ingest last) and their supervisor. The
    /// forecast actor follows the model registry in `ctx.forecast.model_dir`; the decision
    /// actor runs the control loop (on its own timer when `ctx.reconcile.timer`).
    pub fn start(ctx: ServiceContext) -> Result<(Addr<ServiceSupervisor>, ServiceActors), ActorError> {
        Self::start_with(ctx, None)
    }

    /// As [`Self::start`], with `model` instead of the configured one when given (a model
    /// that is not in the built-in table: tests, embedding).
    pub fn start_with(
        ctx: ServiceContext,
        model: Option<std::sync::Arc<dyn crate::forecast::Forecaster>>,
    ) -> Result<(Addr<ServiceSupervisor>, ServiceActors), ActorError> {
        let execution = Supervisor::start({
            let ctx = ctx.clone();
            move |_| ExecutionActor::new(ctx)
        });
        let mut forecast_actor =
            ForecastActor::new(ctx.clone())?.with_registry(ModelRegistry::new(&ctx.forecast.model_dir));
        if let Some(m) = model {
            forecast_actor = forecast_actor.with_model(m);
        }
        let forecast = Supervisor::start(move |_| forecast_actor);
        let decision = Supervisor::start({
            let peers = Peers {
                forecast: forecast.clone().recipient(),
                execute: execution.clone().recipient(),
                tick: execution.clone().recipient(),
            };
            let ctx = ctx.clone();
            move |_| DecisionActor::new(ctx, peers)
        });
        let ingest = Supervisor::start({
            let (f, d) = (forecast.clone().recipient(), decision.clone().recipient());
            let ctx = ctx.clone();
            move |_| IngestActor::new(ctx, f, d)
        });
        let actors = ServiceActors {
            ingest,
            forecast,
            decision,
            execution,
        };
        let sup = ServiceSupervisor {
            service: ctx.service.clone(),
            actors: actors.clone(),
        }
        .start();
        Ok((sup, actors))
    }
}

/// How long an actor waits before retrying a failed rebuild: 1 s doubling, at most a minute.
pub fn backoff(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_secs((1u64 << attempt.min(6)).min(60))
}

impl Actor for ServiceSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        tracing::info!(service = %self.service, "service supervisor started");
    }
}

/// Asks a service supervisor for its actors.
#[derive(Message)]
#[rtype(result = "ServiceActors")]
pub struct Children;

impl Handler<Children> for ServiceSupervisor {
    type Result = MessageResult<Children>;

    fn handle(&mut self, _: Children, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.actors.clone())
    }
}

/// The top of the tree: one service supervisor per service.
#[derive(Default)]
pub struct RootSupervisor {
    services: BTreeMap<String, (Addr<ServiceSupervisor>, ServiceActors)>,
}

impl Actor for RootSupervisor {
    type Context = Context<Self>;
}

/// Starts the actors of a service (or returns the running ones).
#[derive(Message)]
#[rtype(result = "Result<ServiceActors, ActorError>")]
pub struct StartService(pub ServiceContext);

impl Handler<StartService> for RootSupervisor {
    type Result = Result<ServiceActors, ActorError>;

    fn handle(&mut self, msg: StartService, _: &mut Self::Context) -> Self::Result {
        if let Some((_, a)) = self.services.get(&msg.0.service) {
            return Ok(a.clone());
        }
        let name = msg.0.service.clone();
        let (sup, actors) = ServiceSupervisor::start(msg.0)?;
        self.services.insert(name, (sup, actors.clone()));
        Ok(actors)
    }
}

/// Stops the actors of a service (answers whether it ran): the decision actor stops its
/// timer, the addresses are dropped, and the actors stop once nothing refers to them; the
/// log keeps everything they appended, and starting the service again folds it back.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct StopService(pub String);

impl Handler<StopService> for RootSupervisor {
    type Result = bool;

    fn handle(&mut self, msg: StopService, _: &mut Self::Context) -> bool {
        let Some((_, actors)) = self.services.remove(&msg.0) else {
            return false;
        };
        actors.decision.do_send(Retire);
        tracing::info!(service = %msg.0, "service stopped");
        true
    }
}

/// Tells a decision actor that its service is stopped: it stops its timer and decides no more.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Retire;

/// The actors of one service, if it runs.
#[derive(Message)]
#[rtype(result = "Option<ServiceActors>")]
pub struct Lookup(pub String);

impl Handler<Lookup> for RootSupervisor {
    type Result = Option<ServiceActors>;

    fn handle(&mut self, msg: Lookup, _: &mut Self::Context) -> Self::Result {
        self.services.get(&msg.0).map(|(_, a)| a.clone())
    }
}

/// The names of the running services.
#[derive(Message)]
#[rtype(result = "Vec<String>")]
pub struct Services;

impl Handler<Services> for RootSupervisor {
    type Result = MessageResult<Services>;

    fn handle(&mut self, _: Services, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.services.keys().cloned().collect())
    }
}
