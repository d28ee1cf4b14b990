//! The decision actor: the service's controller. At every tick ([`Reconcile`], from its timer
//! in `serve` or from the driver in virtual time) it runs one [`reconcile`](super::controller::reconcile):
//! it always decides — on the latest forecast, or with none (the reactive fallback, saying
//! why) — and drives verification and rollback whether or not samples arrive. Its state is
//! folded from the log ([`DecisionState`]): from a snapshot and the service's events at
//! start, from what each handler appended afterwards. Until that rebuild succeeds it neither
//! decides nor executes, and says so on the status board.

use actix::prelude::*;
use events::vocabulary::*;
use events::{Event, ExpectedVersion, Metadata, NewEvent, streams};
use serde_json::json;
use uuid::Uuid;

use super::controller::{Peers, reconcile, revalidate};
use super::state::DecisionState;
use super::{ClusterState, Decision, ForecastInput, ScalingPolicy, Strategy, TargetConfig as Config, decide};
use crate::context::ServiceContext;
use crate::error::ActorError;
use crate::history::{Journal, Snapshots, fold, snapshot_key};
use crate::messages::{Appended, Approve, Execute, Observed, Outcome, Reconcile, Reject};

/// Every input of the pure decision function, as recorded in the event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DecisionInputs {
    pub state: ClusterState,
    pub forecast: Option<ForecastInput>,
    pub policy: ScalingPolicy,
    pub now: i64,
    /// Why there was no forecast to decide on, when there was none (the first reason given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl DecisionInputs {
    /// Runs the pure decision function on these inputs again.
    pub fn replay(&self) -> Decision {
        decide(&self.state, self.forecast.as_ref(), &self.policy, self.now)
    }
}

/// One per service.
pub struct DecisionActor {
    ctx: ServiceContext,
    peers: Peers,
    last_observed: Option<Observed>,
    state: DecisionState,
    snapshots: Snapshots,
    ready: bool,
    /// The loop's timer (in `serve`).
    timer: Option<SpawnHandle>,
    /// The service was stopped: no more evaluations.
    retired: bool,
    generation: u32,
}

impl DecisionActor {
    pub fn new(ctx: ServiceContext, peers: Peers) -> Self {
        DecisionActor {
            ctx,
            peers,
            last_observed: None,
            state: DecisionState::default(),
            snapshots: Snapshots::default(),
            ready: false,
            timer: None,
            retired: false,
            generation: 0,
        }
    }

    fn rebuild(&mut self, ctx: &mut Context<Self>, attempt: u32) {
        let c = self.ctx.clone();
        ctx.wait(
            async move {
                let key = snapshot_key("decision", &c.service);
                fold::<DecisionState>(c.store.as_ref(), &key, &c.service).await
            }
            .into_actor(self)
            .map(move |res, act, ctx| match res {
                Ok(state) => {
                    act.state = state;
                    act.ready = true;
                    act.ctx.status.set_ready(&act.ctx.service, "decision", Ok(()));
                }
                Err(e) => {
                    act.ready = false;
                    tracing::error!(error = %e, service = %act.ctx.service, attempt, "decision: rebuild failed; retrying");
                    act.ctx
                        .status
                        .set_ready(&act.ctx.service, "decision", Err(format!("rebuild failed: {e}")));
                    ctx.run_later(crate::supervisor::backoff(attempt), move |act, ctx| {
                        act.rebuild(ctx, attempt + 1)
                    });
                }
            }),
        );
    }

    /// Folds what a handler appended (also when it failed half-way); saves a snapshot when due.
    fn fold_journal(&mut self, appended: Vec<Appended>, ctx: &mut Context<Self>) {
        self.snapshots.folded(appended.len() as u64);
        for a in appended {
            self.state.apply(&a.event, &a.metadata, a.position);
        }
        if let Some((pos, doc)) = self.snapshots.due(&self.state, self.ctx.reconcile.snapshot_every) {
            let (store, key) = (self.ctx.store.clone(), snapshot_key("decision", &self.ctx.service));
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
        (!self.ready).then(|| ActorError::NotReady(format!("decisions of `{}` are rebuilding", self.ctx.service)))
    }

    /// In `serve`: one evaluation every `reconcile.interval_s`, the first after an offset
    /// derived from the service name, so that many services do not all tick at once.
    fn start_timer(&mut self, ctx: &mut Context<Self>) {
        if !self.ctx.reconcile.timer {
            return;
        }
        let every = std::time::Duration::from_secs(self.ctx.reconcile.interval_s.max(1));
        let offset = self
            .ctx
            .service
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
            % (every.as_millis() as u64).max(1);
        self.timer = Some(
            ctx.run_later(std::time::Duration::from_millis(offset), move |act, ctx| {
                act.timer = Some(ctx.run_interval(every, |act, ctx| {
                    let now = act.ctx.clock.now();
                    ctx.notify(Reconcile { now });
                }));
            }),
        );
    }
}

impl Actor for DecisionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.generation += 1;
        self.rebuild(ctx, 0);
        self.start_timer(ctx);
    }
}

impl Supervised for DecisionActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(service = %self.ctx.service, "decision actor restarting");
        self.ready = false;
    }
}

impl Handler<Observed> for DecisionActor {
    type Result = Result<(), ActorError>;

    fn handle(&mut self, msg: Observed, _: &mut Self::Context) -> Self::Result {
        if self.last_observed.is_none_or(|o| msg.ts >= o.ts) {
            self.last_observed = Some(msg);
        }
        Ok(())
    }
}

impl Handler<Reconcile> for DecisionActor {
    type Result = AtomicResponse<Self, Result<Outcome, ActorError>>;

    fn handle(&mut self, msg: Reconcile, _: &mut Self::Context) -> Self::Result {
        if self.retired {
            let outcome = Outcome::NotReady {
                reason: format!("service `{}` was stopped", self.ctx.service),
            };
            return AtomicResponse::new(Box::pin(fut::ready(Ok(outcome))));
        }
        if !self.ready {
            let reason = "the decision actor's state is not rebuilt yet".to_string();
            let outcome = Outcome::NotReady { reason };
            self.ctx
                .status
                .evaluated(&self.ctx.service, msg.now, outcome.clone(), None);
            return AtomicResponse::new(Box::pin(fut::ready(Ok(outcome))));
        }
        let (c, st, observed, peers) = (
            self.ctx.clone(),
            self.state.clone(),
            self.last_observed,
            self.peers.clone(),
        );
        let journal = Journal::default();
        let j = journal.clone();
        AtomicResponse::new(Box::pin(
            async move { reconcile(&c, &j, &st, observed, &peers, msg.now).await }
                .into_actor(self)
                .map(move |res, act, ctx| {
                    act.fold_journal(journal.take(), ctx);
                    if let Err(e) = &res {
                        tracing::warn!(service = %act.ctx.service, error = %e, "evaluation failed; the next tick retries");
                        act.ctx.status.evaluation_failed(&act.ctx.service);
                    }
                    res
                }),
        ))
    }
}

/// The forecast as the pure decision function takes it.
pub fn forecast_input(f: &ForecastMade) -> ForecastInput {
    ForecastInput {
        origin: f.origin.timestamp(),
        step_s: f.step_seconds,
        p10: f.points.iter().map(|p| p.p10).collect(),
        p50: f.points.iter().map(|p| p.p50).collect(),
        p90: f.points.iter().map(|p| p.p90).collect(),
    }
}

/// The snake_case name of a strategy (as recorded).
pub fn strategy_name(s: Strategy) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn event_config(c: &Config) -> TargetConfig {
    TargetConfig {
        replicas: c.replicas,
        instance_type: Some(c.instance_type.clone()),
        spot_share: c.spot_share,
    }
}

/// The `DecisionProposed` event for decision `d` made from `inputs`: the target configuration,
/// the reasoning (led by why there was no forecast, when there was none), the scores and
/// risks, the estimated cost, the rollback plan (the previous configuration), the
/// verification criteria and every input, so `explain` can replay it.
pub fn proposal(
    id: Uuid,
    service: &str,
    d: &Decision,
    inputs: &DecisionInputs,
    forecast_id: Option<Uuid>,
) -> DecisionProposed {
    DecisionProposed {
        decision_id: id,
        service: service.to_string(),
        strategy: strategy_name(d.strategy),
        current: event_config(&d.rollback),
        target: event_config(&d.target),
        reasoning: inputs.note.iter().chain(&d.reasoning).cloned().collect(),
        estimated_hourly_cost: d.estimated_hourly_cost.filter(|c| c.is_finite()),
        forecast_id,
        requires_approval: d.requires_approval,
        inputs: json!(inputs),
        scores: json!({
            "cost": d.scores.cost,
            "performance": d.scores.performance,
            "stability": d.scores.stability,
            "risk": d.scores.risk,
            "transition": d.scores.transition,
            "total": d.scores.total,
            "risks": d.risk,
            "provisioning_quantile": d.provisioning_quantile,
            "required_load": d.required_load,
            "required_p10": d.required_p10,
            "required_p50": d.required_p50,
            "required_p90": d.required_p90,
            "expected_utilization": d.verification.expected_utilization,
            "candidates": d.candidates,
        }),
        rollback_to: event_config(&d.rollback),
        verification: VerificationCriteria {
            ready_replicas: d.verification.ready_replicas,
            timeout_seconds: d.verification.timeout_s,
            max_utilization: Some(d.verification.max_utilization),
        },
    }
}

impl Handler<Approve> for DecisionActor {
    type Result = AtomicResponse<Self, Result<(), ActorError>>;

    fn handle(&mut self, msg: Approve, _: &mut Self::Context) -> Self::Result {
        if let Some(e) = self.not_ready() {
            return AtomicResponse::new(Box::pin(fut::ready(Err(e))));
        }
        let found = self.state.awaiting.get(&msg.decision_id).cloned();
        let (c, st, observed, peers) = (
            self.ctx.clone(),
            self.state.clone(),
            self.last_observed,
            self.peers.clone(),
        );
        let journal = Journal::default();
        let j = journal.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let a = found.ok_or_else(|| {
                    ActorError::Rejected(format!("decision {} is not waiting for approval", msg.decision_id))
                })?;
                let now = c.clock.now();
                revalidate(&c, &st, observed, &peers, &a, now).await?;
                let meta = Metadata::caused_by_event(&a.metadata, format!("user:{}", msg.by), now);
                let e = Event::DecisionApproved(DecisionApproved {
                    decision_id: a.proposal.decision_id,
                    approved_by: msg.by,
                    comment: msg.comment,
                });
                let stream = streams::decision(a.proposal.decision_id);
                j.append(
                    c.store.as_ref(),
                    &stream,
                    ExpectedVersion::Exact(1),
                    vec![NewEvent::new(e, meta.clone())],
                )
                .await?;
                let appended = peers
                    .execute
                    .send(Execute {
                        decision: a.proposal.clone(),
                        proposed: a.metadata.clone(),
                        proposed_at_position: a.position,
                        cause: meta,
                    })
                    .await??;
                j.extend(appended);
                Ok(())
            }
            .into_actor(self)
            .map(move |res, act, ctx| {
                act.fold_journal(journal.take(), ctx);
                res
            }),
        ))
    }
}

impl Handler<Reject> for DecisionActor {
    type Result = AtomicResponse<Self, Result<(), ActorError>>;

    fn handle(&mut self, msg: Reject, _: &mut Self::Context) -> Self::Result {
        if let Some(e) = self.not_ready() {
            return AtomicResponse::new(Box::pin(fut::ready(Err(e))));
        }
        let found = self.state.awaiting.get(&msg.decision_id).cloned();
        let c = self.ctx.clone();
        let journal = Journal::default();
        let j = journal.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let id = msg.decision_id;
                let a =
                    found.ok_or_else(|| ActorError::Rejected(format!("decision {id} is not waiting for approval")))?;
                let meta = Metadata::caused_by_event(&a.metadata, format!("user:{}", msg.by), c.clock.now());
                let e = Event::DecisionRejected(DecisionRejected {
                    decision_id: id,
                    rejected_by: msg.by,
                    reason: msg.reason,
                });
                j.append(
                    c.store.as_ref(),
                    &streams::decision(id),
                    ExpectedVersion::Exact(1),
                    vec![NewEvent::new(e, meta)],
                )
                .await?;
                Ok(())
            }
            .into_actor(self)
            .map(move |res, act, ctx| {
                act.fold_journal(journal.take(), ctx);
                res
            }),
        ))
    }
}

impl Handler<crate::supervisor::Retire> for DecisionActor {
    type Result = ();

    fn handle(&mut self, _: crate::supervisor::Retire, ctx: &mut Self::Context) {
        if let Some(t) = self.timer.take() {
            ctx.cancel_future(t);
        }
        self.retired = true;
        self.ctx.status.remove(&self.ctx.service);
    }
}

crate::supervision_handlers!(DecisionActor, "decision");
