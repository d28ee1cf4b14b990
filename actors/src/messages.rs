//! The typed messages the actors exchange, one struct each.

use actix::Message;
use chrono::{DateTime, Utc};
use events::Metadata;
use events::vocabulary::{DecisionProposed, ForecastMade};
use uuid::Uuid;

use crate::error::ActorError;

/// A load sample for one service, as ingested (to the ingest actor).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Ingested, ActorError>")]
pub struct Sample {
    pub ts: DateTime<Utc>,
    pub value: f64,
}

/// What became of an accepted sample.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Ingested {
    /// Stored as load and handed to the forecaster.
    Stored,
    /// Stored apart (metric `load_quarantined`) and kept out of the forecasts: implausible
    /// against the service's recent history until confirmed by the samples that follow.
    Quarantined { reason: String },
    /// This sample confirmed a level shift: it and the quarantined samples before it were
    /// stored as load.
    Released { samples: usize },
}

/// A sample that has been persisted (ingest → forecast, ingest → decision).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<(), ActorError>")]
pub struct Observed {
    pub ts: DateTime<Utc>,
    pub value: f64,
}

/// An appended forecast with its metadata.
#[derive(Debug, Clone)]
pub struct ForecastReady {
    pub forecast: ForecastMade,
    pub metadata: Metadata,
}

/// The forecast to decide on at `now` (decision → forecast): the forecast actor makes one
/// when its cadence has come and the history allows, off the actor threads and within its
/// time limit, and answers with the latest it has.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "ForecastAnswer")]
pub struct LatestForecast {
    pub now: DateTime<Utc>,
}

/// The answer to [`LatestForecast`].
#[derive(Debug, Clone, Default)]
pub struct ForecastAnswer {
    /// The latest forecast appended, if any (its age is for `decide` to judge).
    pub latest: Option<ForecastReady>,
    /// Why this cycle made no new forecast when one was due (too little history, the
    /// model failed or ran past its time limit, the store refused it).
    pub problem: Option<String>,
}

/// An event one actor appended, for the others of its service to fold.
#[derive(Debug, Clone)]
pub struct Appended {
    pub event: events::Event,
    pub metadata: Metadata,
    pub position: u64,
}

/// A decision to carry out now (decision → execution); answers with the events appended.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Vec<Appended>, ActorError>")]
pub struct Execute {
    pub decision: DecisionProposed,
    /// The proposal's own metadata and position (folded by the execution actor if new to it).
    pub proposed: Metadata,
    pub proposed_at_position: u64,
    /// Metadata of the event that released the decision (proposal or approval).
    pub cause: Metadata,
}

/// Time has passed: run due verifications and rollback attempts (decision → execution at
/// each reconcile); answers with the events appended.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<Vec<Appended>, ActorError>")]
pub struct Tick {
    pub now: DateTime<Utc>,
}

/// One evaluation of the service's control loop (timer → decision actor): expire stale
/// approvals, take the latest forecast (none: the reactive fallback), decide, propose or
/// hold, and drive verifications and rollbacks.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<Outcome, ActorError>")]
pub struct Reconcile {
    pub now: DateTime<Utc>,
}

/// What one reconcile did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A decision was proposed (and executed unless it waits for a person).
    Proposed {
        decision_id: Uuid,
        replicas: u32,
        awaiting_approval: bool,
    },
    /// Nothing changed; `code` says why (see `DecisionHeld`).
    Held { code: String, reason: String },
    /// The actor's state could not be rebuilt from the log: it does not decide.
    NotReady { reason: String },
}

/// A person approves a decision that waits for approval (API → decision). The decision is
/// re-validated on fresh state first: a plan that changed materially is refused.
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
