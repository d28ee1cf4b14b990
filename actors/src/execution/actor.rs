//! The execution actor: applies decisions to the scale target, verifies them
//! once the warm-up has passed, and rolls back those that fail verification.

use actix::prelude::*;
use chrono::{DateTime, Utc};
use events::vocabulary::*;
use events::{Event, ExpectedVersion, Metadata, NewEvent, streams};

use crate::context::ServiceContext;
use crate::error::ActorError;
use crate::history::decision_history;
use crate::messages::{Execute, Tick};

/// An executed decision waiting for its verification.
#[derive(Debug, Clone)]
struct Pending {
    decision: DecisionProposed,
    started_at: DateTime<Utc>,
    cause: Metadata,
}

/// One per service; restarted by its supervisor, it reloads the executed but
/// not yet verified decisions from the log.
pub struct ExecutionActor {
    ctx: ServiceContext,
    pending: Vec<Pending>,
    generation: u32,
}

impl ExecutionActor {
    pub fn new(ctx: ServiceContext) -> Self {
        ExecutionActor {
            ctx,
            pending: Vec::new(),
            generation: 0,
        }
    }

    fn meta(&self, cause: &Metadata) -> Metadata {
        Metadata::caused_by_event(cause, self.ctx.actor_name("execution"), self.ctx.clock.now())
    }
}

/// Decisions executed but neither verified nor rolled back, from the log.
fn unverified(history: &[events::RecordedEvent]) -> Vec<Pending> {
    let mut proposed = std::collections::HashMap::new();
    let mut pending: Vec<Pending> = Vec::new();
    for e in history {
        match &e.event {
            Event::DecisionProposed(d) => {
                proposed.insert(d.decision_id, d.clone());
            }
            Event::ScalingSucceeded(s) => {
                if let Some(d) = proposed.get(&s.decision_id) {
                    pending.push(Pending {
                        decision: d.clone(),
                        started_at: e.metadata.recorded_at,
                        cause: e.metadata.clone(),
                    });
                }
            }
            Event::VerificationPassed(VerificationPassed { decision_id, .. })
            | Event::VerificationFailed(VerificationFailed { decision_id, .. })
            | Event::DecisionSuperseded(DecisionSuperseded { decision_id, .. }) => {
                pending.retain(|p| p.decision.decision_id != *decision_id)
            }
            _ => {}
        }
    }
    pending
}

impl Actor for ExecutionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.generation += 1;
        let store = self.ctx.store.clone();
        let service = self.ctx.service.clone();
        ctx.wait(
            async move { decision_history(store.as_ref(), &service).await }
                .into_actor(self)
                .map(|res, act, _| match res {
                    Ok(h) => act.pending = unverified(&h),
                    Err(e) => tracing::error!(error = %e, service = %act.ctx.service, "execution: rebuild failed"),
                }),
        );
    }
}

impl Supervised for ExecutionActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(service = %self.ctx.service, "execution actor restarting");
        self.pending.clear();
    }
}

impl Handler<Execute> for ExecutionActor {
    type Result = AtomicResponse<Self, Result<(), ActorError>>;

    fn handle(&mut self, msg: Execute, _ctx: &mut Self::Context) -> Self::Result {
        let c = self.ctx.clone();
        let started_meta = self.meta(&msg.cause);
        let d = msg.decision;
        // A newer decision replaces any still waiting for verification: verifying
        // (or rolling back) an older target after the cluster moved on would be wrong.
        let replaced = std::mem::take(&mut self.pending);
        AtomicResponse::new(Box::pin(
            async move {
                let stream = streams::decision(d.decision_id);
                let now = c.clock.now();
                for old in replaced {
                    let e = Event::DecisionSuperseded(DecisionSuperseded {
                        decision_id: old.decision.decision_id,
                        superseded_by: d.decision_id,
                    });
                    let m = Metadata::caused_by_event(&started_meta, c.actor_name("execution"), now);
                    c.store
                        .append(
                            &streams::decision(old.decision.decision_id),
                            ExpectedVersion::Any,
                            vec![NewEvent::new(e, m)],
                        )
                        .await?;
                }
                let from = c
                    .target
                    .state(&c.service)
                    .await
                    .map(|s| s.desired)
                    .unwrap_or(d.current.replicas);
                let started = Event::ScalingStarted(ScalingStarted {
                    decision_id: d.decision_id,
                    service: c.service.clone(),
                    from_replicas: from,
                    to_replicas: d.target.replicas,
                    executor: c.target.name().to_string(),
                });
                c.store
                    .append(
                        &stream,
                        ExpectedVersion::Any,
                        vec![NewEvent::new(started, started_meta.clone())],
                    )
                    .await?;
                let meta = Metadata::caused_by_event(&started_meta, c.actor_name("execution"), now);
                let outcome = c.target.scale(&c.service, d.target.replicas).await;
                let (event, ok) = match &outcome {
                    Ok(()) => (
                        Event::ScalingSucceeded(ScalingSucceeded {
                            decision_id: d.decision_id,
                            service: c.service.clone(),
                            replicas: d.target.replicas,
                        }),
                        true,
                    ),
                    Err(e) => (
                        Event::ScalingFailed(ScalingFailed {
                            decision_id: d.decision_id,
                            service: c.service.clone(),
                            error: e.to_string(),
                        }),
                        false,
                    ),
                };
                metrics::counter!("pscaler_scaling_actions_total", "service" => c.service.clone(),
                    "strategy" => d.strategy.clone(), "outcome" => if ok { "succeeded" } else { "failed" })
                .increment(1);
                c.store
                    .append(&stream, ExpectedVersion::Any, vec![NewEvent::new(event, meta.clone())])
                    .await?;
                Ok(ok.then_some(Pending {
                    decision: d,
                    started_at: now,
                    cause: meta,
                }))
            }
            .into_actor(self)
            .map(|res: Result<Option<Pending>, ActorError>, act, _| {
                if let Some(p) = res? {
                    act.pending.push(p);
                }
                Ok(())
            }),
        ))
    }
}

impl Handler<Tick> for ExecutionActor {
    type Result = AtomicResponse<Self, Result<(), ActorError>>;

    fn handle(&mut self, msg: Tick, _ctx: &mut Self::Context) -> Self::Result {
        let due = std::mem::take(&mut self.pending);
        let c = self.ctx.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let mut still = Vec::new();
                for p in due {
                    let state = c.target.state(&c.service).await?;
                    let v = &p.decision.verification;
                    let stream = streams::decision(p.decision.decision_id);
                    let meta = Metadata::caused_by_event(&p.cause, c.actor_name("verification"), msg.now);
                    if state.ready >= v.ready_replicas {
                        let e = Event::VerificationPassed(VerificationPassed {
                            decision_id: p.decision.decision_id,
                            service: c.service.clone(),
                            ready_replicas: state.ready,
                        });
                        c.store
                            .append(&stream, ExpectedVersion::Any, vec![NewEvent::new(e, meta)])
                            .await?;
                    } else if msg.now >= p.started_at + chrono::Duration::seconds(v.timeout_seconds) {
                        rollback(&c, &p, state, meta).await?;
                    } else {
                        still.push(p);
                    }
                }
                Ok(still)
            }
            .into_actor(self)
            .map(|res: Result<Vec<Pending>, ActorError>, act, _| {
                act.pending.extend(res?);
                Ok(())
            }),
        ))
    }
}

/// Verification failed: record it, return to the previous state, record that.
async fn rollback(
    c: &ServiceContext,
    p: &Pending,
    state: crate::execution::TargetState,
    meta: Metadata,
) -> Result<(), ActorError> {
    let id = p.decision.decision_id;
    let stream = streams::decision(id);
    let reason = format!(
        "{} of {} replicas ready after {} s",
        state.ready, p.decision.verification.ready_replicas, p.decision.verification.timeout_seconds
    );
    let failed = Event::VerificationFailed(VerificationFailed {
        decision_id: id,
        service: c.service.clone(),
        ready_replicas: state.ready,
        reason: reason.clone(),
    });
    let started = Event::RollbackStarted(RollbackStarted {
        decision_id: id,
        service: c.service.clone(),
        to: p.decision.rollback_to.clone(),
        reason,
    });
    let m2 = Metadata::caused_by_event(&meta, c.actor_name("execution"), meta.recorded_at);
    c.store
        .append(
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::new(failed, meta.clone()), NewEvent::new(started, m2.clone())],
        )
        .await?;
    c.target.scale(&c.service, p.decision.rollback_to.replicas).await?;
    let done = Event::RollbackCompleted(RollbackCompleted {
        decision_id: id,
        service: c.service.clone(),
        replicas: p.decision.rollback_to.replicas,
    });
    let m3 = Metadata::caused_by_event(&m2, c.actor_name("execution"), c.clock.now());
    c.store
        .append(&stream, ExpectedVersion::Any, vec![NewEvent::new(done, m3)])
        .await?;
    Ok(())
}

crate::supervision_handlers!(ExecutionActor, "execution");
