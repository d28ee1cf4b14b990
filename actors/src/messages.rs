//! The typed messages the actors exchange, one struct each.

use actix::Message;
use chrono::{DateTime, Utc};
use events::Metadata;
use events::vocabulary::{DecisionProposed, ForecastMade};
use uuid::Uuid;

use crate::error::ActorError;

/// A load sample for one service, as ingested (to the ingest actor).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ActorError>")]
pub struct Sample {
    pub ts: DateTime<Utc>,
    pub value: f64,
}

/// A sample that has been persisted (ingest → forecast, ingest → decision).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<(), ActorError>")]
pub struct Observed {
    pub ts: DateTime<Utc>,
    pub value: f64,
}

/// A forecast that has been appended (forecast → decision).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ActorError>")]
pub struct ForecastReady {
    pub forecast: ForecastMade,
    pub metadata: Metadata,
}

/// An approved decision to carry out (decision → execution).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ActorError>")]
pub struct Execute {
    pub decision: DecisionProposed,
    /// Metadata of the event that released the decision (proposal or approval).
    pub cause: Metadata,
}

/// Time has passed: run due verifications (ingest → execution).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<(), ActorError>")]
pub struct Tick {
    pub now: DateTime<Utc>,
}

/// A person approves a decision that waits for approval (API → decision).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ActorError>")]
pub struct Approve {
    pub decision_id: Uuid,
    pub by: String,
    pub comment: Option<String>,
}

/// A person rejects a decision that waits for approval (API → decision).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ActorError>")]
pub struct Reject {
    pub decision_id: Uuid,
    pub by: String,
    pub reason: Option<String>,
}

/// Makes the receiving actor fail and stop, so its supervisor restarts it.
/// For supervision tests and chaos drills.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct InjectFault;

/// How many times an actor has been started (1 = never restarted).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "u32")]
pub struct Generation;

/// Implements [`InjectFault`] (stop, so the supervisor restarts the actor) and
/// [`Generation`] for an actor with `ctx: ServiceContext` and `generation: u32` fields.
#[macro_export]
macro_rules! supervision_handlers {
    ($actor:ty, $concern:literal) => {
        impl ::actix::Handler<$crate::messages::InjectFault> for $actor {
            type Result = ();

            fn handle(&mut self, _: $crate::messages::InjectFault, ctx: &mut Self::Context) {
                ::tracing::warn!(service = %self.ctx.service, concern = $concern, "injected fault: stopping");
                ::actix::ActorContext::stop(ctx);
            }
        }

        impl ::actix::Handler<$crate::messages::Generation> for $actor {
            type Result = u32;

            fn handle(&mut self, _: $crate::messages::Generation, _: &mut Self::Context) -> u32 {
                self.generation
            }
        }
    };
}
