//! The execution actor: applies decisions to the scale target, verifies them once the
//! warm-up has passed, rolls back those that fail verification, and retries a rollback that
//! fails with backoff (raising an alert when it keeps failing). Its state is folded from the
//! events it appends ([`ExecutionState`]), so an error half-way through a handler loses
//! nothing: what was appended is folded, what was not is tried again at the next tick.

use actix::prelude::*;
use chrono::{DateTime, Utc};
use events::vocabulary::*;
use events::{Event, ExpectedVersion, Metadata, NewEvent, StreamAppend, streams};
use uuid::Uuid;

use super::state::{ExecutionState, Pending, Rollback, rollback_backoff_s};
use super::target::TargetState;
use crate::context::ServiceContext;
use crate::error::ActorError;
use crate::history::{Journal, Snapshots, fold, snapshot_key};
use crate::messages::{Appended, Execute, Tick};

/// Failed rollback attempts after which an alert is raised (the attempts go on).
pub const ROLLBACK_ALERT_AFTER: u32 = 3;

/// Namespace of the ids of alerts about a decision (one alert per decision and kind).
const ALERT_NS: Uuid = Uuid::from_u128(0x9d41_77c2_03ab_4f0e_8c55_2b6e_1a9f_c3d8);

/// One per service.
pub struct ExecutionActor {
    ctx: ServiceContext,
    state: ExecutionState,
    snapshots: Snapshots,
    ready: bool,
    generation: u32,
}

impl ExecutionActor {
    pub fn new(ctx: ServiceContext) -> Self {
        ExecutionActor {
            ctx,
            state: ExecutionState::default(),
            snapshots: Snapshots::default(),
            ready: false,
            generation: 0,
        }
    }

    fn rebuild(&mut self, ctx: &mut Context<Self>, attempt: u32) {
        let c = self.ctx.clone();
        ctx.wait(
            async move {
                let key = snapshot_key("execution", &c.service);
                fold::<ExecutionState>(c.store.as_ref(), &key, &c.service).await
            }
            .into_actor(self)
            .map(move |res, act, ctx| match res {
                Ok(state) => {
                    act.state = state;
                    act.ready = true;
                    act.ctx.status.set_ready(&act.ctx.service, "execution", Ok(()));
                }
                Err(e) => {
                    act.ready = false;
                    tracing::error!(error = %e, service = %act.ctx.service, attempt, "execution: rebuild failed; retrying");
                    act.ctx
                        .status
                        .set_ready(&act.ctx.service, "execution", Err(format!("rebuild failed: {e}")));
                    ctx.run_later(crate::supervisor::backoff(attempt), move |act, ctx| {
                        act.rebuild(ctx, attempt + 1)
                    });
                }
            }),
        );
    }

    /// Folds what a handler appended (also when it failed half-way) and saves a snapshot when due.
    fn fold_journal(&mut self, appended: &[Appended], ctx: &mut Context<Self>) {
        for a in appended {
            self.state.apply(&a.event, &a.metadata, a.position);
        }
        self.snapshots.folded(appended.len() as u64);
        if let Some((pos, doc)) = self.snapshots.due(&self.state, self.ctx.reconcile.snapshot_every) {
            let (store, key) = (self.ctx.store.clone(), snapshot_key("execution", &self.ctx.service));
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

    fn not_ready(&self) -> Option<ActorError> {
        (!self.ready).then(|| ActorError::NotReady(format!("execution of `{}` is rebuilding", self.ctx.service)))
    }
}

impl Actor for ExecutionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.generation += 1;
        self.rebuild(ctx, 0);
    }
}

impl Supervised for ExecutionActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(service = %self.ctx.service, "execution actor restarting");
        self.ready = false;
    }
}

/// Metadata of an event the execution actor appends because of `cause`.
fn meta(c: &ServiceContext, cause: &Metadata, concern: &str, at: DateTime<Utc>) -> Metadata {
    Metadata::caused_by_event(cause, c.actor_name(concern), at)
}

impl Handler<Execute> for ExecutionActor {
    type Result = AtomicResponse<Self, Result<Vec<Appended>, ActorError>>;

    fn handle(&mut self, msg: Execute, _ctx: &mut Self::Context) -> Self::Result {
        if let Some(e) = self.not_ready() {
            return AtomicResponse::new(Box::pin(fut::ready(Err(e))));
        }
        if self.state.plan(msg.decision.decision_id).is_none() {
            let e = Event::DecisionProposed(msg.decision.clone());
            self.state.apply(&e, &msg.proposed, msg.proposed_at_position);
        }
        // a newer execution replaces any still waiting for verification: verifying (or
        // rolling back) an older target after the cluster moved on would be wrong
        let replaced: Vec<Uuid> = self.state.pending.keys().copied().collect();
        let (c, journal) = (self.ctx.clone(), Journal::default());
        let j = journal.clone();
        AtomicResponse::new(Box::pin(
            async move { execute(&c, &j, msg, replaced).await }
                .into_actor(self)
                .map(move |res, act, ctx| {
                    let appended = journal.take();
                    act.fold_journal(&appended, ctx);
                    res.map(|()| appended)
                }),
        ))
    }
}

/// Supersedes the pending verifications and records the start in one append, scales, and
/// records the outcome.
async fn execute(c: &ServiceContext, j: &Journal, msg: Execute, replaced: Vec<Uuid>) -> Result<(), ActorError> {
    let d = msg.decision;
    let now = c.clock.now();
    let started_meta = meta(c, &msg.cause, "execution", now);
    let from = c
        .target
        .state(&c.service)
        .await
        .map(|s| s.desired)
        .unwrap_or(d.current.replicas);
    let mut appends: Vec<StreamAppend> = replaced
        .into_iter()
        .map(|old| StreamAppend {
            stream: streams::decision(old),
            expected: ExpectedVersion::Any,
            events: vec![NewEvent::new(
                Event::DecisionSuperseded(DecisionSuperseded {
                    decision_id: old,
                    superseded_by: d.decision_id,
                }),
                meta(c, &started_meta, "execution", now),
            )],
        })
        .collect();
    let stream = streams::decision(d.decision_id);
    appends.push(StreamAppend {
        stream: stream.clone(),
        expected: ExpectedVersion::Any,
        events: vec![NewEvent::new(
            Event::ScalingStarted(ScalingStarted {
                decision_id: d.decision_id,
                service: c.service.clone(),
                from_replicas: from,
                to_replicas: d.target.replicas,
                executor: c.target.name().to_string(),
            }),
            started_meta.clone(),
        )],
    });
    j.append_many(c.store.as_ref(), appends).await?;
    let outcome = c.target.scale(&c.service, d.target.replicas).await;
    let event = match &outcome {
        Ok(()) => Event::ScalingSucceeded(ScalingSucceeded {
            decision_id: d.decision_id,
            service: c.service.clone(),
            replicas: d.target.replicas,
        }),
        Err(e) => Event::ScalingFailed(ScalingFailed {
            decision_id: d.decision_id,
            service: c.service.clone(),
            error: e.to_string(),
        }),
    };
    metrics::counter!("pscaler_scaling_actions_total", "service" => c.service.clone(),
        "strategy" => d.strategy.clone(), "outcome" => if outcome.is_ok() { "succeeded" } else { "failed" })
    .increment(1);
    let m = meta(c, &started_meta, "execution", c.clock.now());
    j.append(
        c.store.as_ref(),
        &stream,
        ExpectedVersion::Any,
        vec![NewEvent::new(event, m)],
    )
    .await?;
    Ok(())
}

impl Handler<Tick> for ExecutionActor {
    type Result = AtomicResponse<Self, Result<Vec<Appended>, ActorError>>;

    fn handle(&mut self, msg: Tick, _ctx: &mut Self::Context) -> Self::Result {
        if let Some(e) = self.not_ready() {
            return AtomicResponse::new(Box::pin(fut::ready(Err(e))));
        }
        let pending: Vec<Pending> = self.state.pending().cloned().collect();
        let rollbacks = self.state.rollbacks_due(msg.now);
        let (c, journal) = (self.ctx.clone(), Journal::default());
        let j = journal.clone();
        AtomicResponse::new(Box::pin(
            async move {
                if pending.is_empty() && rollbacks.is_empty() {
                    return Ok(());
                }
                let state = c.target.state(&c.service).await?;
                for p in pending {
                    verify(&c, &j, &p, state, msg.now).await?;
                }
                for r in rollbacks {
                    roll_back(&c, &j, &r, msg.now).await?;
                }
                Ok(())
            }
            .into_actor(self)
            .map(move |res, act, ctx| {
                let appended = journal.take();
                act.fold_journal(&appended, ctx);
                res.map(|()| appended)
            }),
        ))
    }
}

/// Checks one executed decision: passed, still warming up, or failed past its timeout (then
/// the failure and the start of the rollback are one append, and the rollback is tried at once).
async fn verify(
    c: &ServiceContext,
    j: &Journal,
    p: &Pending,
    state: TargetState,
    now: DateTime<Utc>,
) -> Result<(), ActorError> {
    let v = &p.plan.verification;
    let id = p.plan.decision_id;
    let stream = streams::decision(id);
    let m = meta(c, &p.cause, "verification", now);
    if state.ready >= v.ready_replicas {
        let e = Event::VerificationPassed(VerificationPassed {
            decision_id: id,
            service: c.service.clone(),
            ready_replicas: state.ready,
        });
        j.append(
            c.store.as_ref(),
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::new(e, m)],
        )
        .await?;
        return Ok(());
    }
    if now < p.executed_at + chrono::Duration::seconds(v.timeout_seconds) {
        return Ok(());
    }
    let reason = format!(
        "{} of {} replicas ready after {} s",
        state.ready, v.ready_replicas, v.timeout_seconds
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
        to: p.plan.rollback_to.clone(),
        reason,
    });
    let m2 = meta(c, &m, "execution", now);
    j.append(
        c.store.as_ref(),
        &stream,
        ExpectedVersion::Any,
        vec![NewEvent::new(failed, m), NewEvent::new(started, m2.clone())],
    )
    .await?;
    let rb = Rollback {
        decision_id: id,
        to: p.plan.rollback_to.clone(),
        failed_attempts: 0,
        next_attempt_at: now,
        cause: m2,
    };
    roll_back(c, j, &rb, now).await
}

/// One attempt at a rollback: completed, or failed with the time of the next attempt (and an
/// alert once it has failed [`ROLLBACK_ALERT_AFTER`] times).
async fn roll_back(c: &ServiceContext, j: &Journal, r: &Rollback, now: DateTime<Utc>) -> Result<(), ActorError> {
    let stream = streams::decision(r.decision_id);
    let m = meta(c, &r.cause, "execution", now);
    match c.target.scale(&c.service, r.to.replicas).await {
        Ok(()) => {
            let done = Event::RollbackCompleted(RollbackCompleted {
                decision_id: r.decision_id,
                service: c.service.clone(),
                replicas: r.to.replicas,
            });
            j.append(
                c.store.as_ref(),
                &stream,
                ExpectedVersion::Any,
                vec![NewEvent::new(done, m)],
            )
            .await?;
        }
        Err(e) => {
            let attempt = r.failed_attempts + 1;
            let next = now + chrono::Duration::seconds(rollback_backoff_s(attempt));
            tracing::warn!(service = %c.service, decision = %r.decision_id, attempt, error = %e, "rollback failed; retrying");
            let failed = Event::RollbackFailed(RollbackFailed {
                decision_id: r.decision_id,
                service: c.service.clone(),
                attempt,
                error: e.to_string(),
                next_attempt_at: next,
            });
            let mut appends = vec![StreamAppend {
                stream,
                expected: ExpectedVersion::Any,
                events: vec![NewEvent::new(failed, m.clone())],
            }];
            if attempt == ROLLBACK_ALERT_AFTER {
                appends.push(rollback_alert(c, r, attempt, &e.to_string(), &m, now));
            }
            j.append_many(c.store.as_ref(), appends).await?;
        }
    }
    Ok(())
}

/// The alert that a rollback keeps failing.
fn rollback_alert(
    c: &ServiceContext,
    r: &Rollback,
    attempts: u32,
    error: &str,
    cause: &Metadata,
    now: DateTime<Utc>,
) -> StreamAppend {
    let alert = Event::AlertRaised(AlertRaised {
        alert_id: Uuid::new_v5(&ALERT_NS, format!("rollback-failing/{}", r.decision_id).as_bytes()),
        service: Some(c.service.clone()),
        alert_type: "rollback_failing".into(),
        severity: "critical".into(),
        message: format!(
            "rollback of decision {} to {} replicas failed {attempts} times (last: {error}); still retrying",
            r.decision_id, r.to.replicas
        ),
    });
    StreamAppend {
        stream: streams::ALERTS.to_string(),
        expected: ExpectedVersion::Any,
        events: vec![NewEvent::new(alert, meta(c, cause, "execution", now))],
    }
}

crate::supervision_handlers!(ExecutionActor, "execution");
