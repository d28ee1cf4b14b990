//! The decision actor: turns each new forecast into a decision with the pure
//! [`decide`](super::decide), appends it, and releases it to execution at once
//! or after a person approves it.

use std::collections::BTreeMap;

use actix::prelude::*;
use events::vocabulary::*;
use events::{Event, ExpectedVersion, Metadata, NewEvent, StoreError, streams};
use serde_json::json;
use uuid::Uuid;

use super::{ClusterState, Decision, ForecastInput, ScalingPolicy, Strategy, TargetConfig as Config, decide};
use crate::context::ServiceContext;
use crate::error::ActorError;
use crate::history::decision_history;
use crate::messages::{Approve, Execute, ForecastReady, Observed, Reject};

/// Namespace of the decision ids, derived from the forecast they answer, so a
/// replay of the same forecast proposes the same decision (and is refused).
const DECISION_NS: Uuid = Uuid::from_u128(0x6a1d_3c0e_5f4b_4e8e_9b2a_7d1c_0e3f_5a6b);

/// Every input of the pure decision function, as recorded in the event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DecisionInputs {
    pub state: ClusterState,
    pub forecast: Option<ForecastInput>,
    pub policy: ScalingPolicy,
    pub now: i64,
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
    execution: Recipient<Execute>,
    last_observed: Option<Observed>,
    last_scale_up_at: Option<i64>,
    last_scale_down_at: Option<i64>,
    /// Decisions waiting for a person, by id, with the metadata of their proposal.
    awaiting: BTreeMap<Uuid, (DecisionProposed, Metadata)>,
    /// Instance type and spot share of the last configuration scaled to.
    fleet: (Option<String>, f64),
    generation: u32,
}

/// What the log says about this service's decisions.
#[derive(Default)]
struct Rebuilt {
    last_scale_up_at: Option<i64>,
    last_scale_down_at: Option<i64>,
    awaiting: BTreeMap<Uuid, (DecisionProposed, Metadata)>,
    fleet: (Option<String>, f64),
}

fn rebuild(history: &[events::RecordedEvent]) -> Rebuilt {
    let mut r = Rebuilt::default();
    let mut proposed = std::collections::HashMap::new();
    for e in history {
        match &e.event {
            Event::DecisionProposed(d) => {
                proposed.insert(d.decision_id, d.clone());
                if d.requires_approval {
                    r.awaiting.insert(d.decision_id, (d.clone(), e.metadata.clone()));
                }
            }
            Event::DecisionApproved(DecisionApproved { decision_id, .. })
            | Event::DecisionRejected(DecisionRejected { decision_id, .. })
            | Event::DecisionSuperseded(DecisionSuperseded { decision_id, .. }) => {
                r.awaiting.remove(decision_id);
            }
            Event::ScalingSucceeded(s) => {
                if let Some(d) = proposed.get(&s.decision_id) {
                    r.fleet = (d.target.instance_type.clone(), d.target.spot_share);
                }
            }
            Event::ScalingStarted(s) => {
                let t = Some(e.metadata.recorded_at.timestamp());
                if s.to_replicas > s.from_replicas {
                    r.last_scale_up_at = t;
                } else if s.to_replicas < s.from_replicas {
                    r.last_scale_down_at = t;
                }
            }
            _ => {}
        }
    }
    r
}

impl DecisionActor {
    pub fn new(ctx: ServiceContext, execution: Recipient<Execute>) -> Self {
        DecisionActor {
            ctx,
            execution,
            last_observed: None,
            last_scale_up_at: None,
            last_scale_down_at: None,
            awaiting: BTreeMap::new(),
            fleet: (None, 0.0),
            generation: 0,
        }
    }
}

impl Actor for DecisionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.generation += 1;
        let store = self.ctx.store.clone();
        let service = self.ctx.service.clone();
        ctx.wait(
            async move { decision_history(store.as_ref(), &service).await }
                .into_actor(self)
                .map(|res, act, _| match res {
                    Ok(h) => {
                        let r = rebuild(&h);
                        act.last_scale_up_at = r.last_scale_up_at;
                        act.last_scale_down_at = r.last_scale_down_at;
                        act.awaiting = r.awaiting;
                        act.fleet = r.fleet;
                    }
                    Err(e) => tracing::error!(error = %e, service = %act.ctx.service, "decision: rebuild failed"),
                }),
        );
    }
}

impl Supervised for DecisionActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(service = %self.ctx.service, "decision actor restarting");
        self.awaiting.clear();
    }
}

impl Handler<Observed> for DecisionActor {
    type Result = Result<(), ActorError>;

    fn handle(&mut self, msg: Observed, _: &mut Self::Context) -> Self::Result {
        self.last_observed = Some(msg);
        Ok(())
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

fn strategy_name(s: Strategy) -> String {
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
/// the reasoning, the scores and risks, the estimated cost, the rollback plan (the previous
/// configuration), the verification criteria and every input, so `explain` can replay it.
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
        reasoning: d.reasoning.clone(),
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

impl Handler<ForecastReady> for DecisionActor {
    type Result = AtomicResponse<Self, Result<(), ActorError>>;

    fn handle(&mut self, msg: ForecastReady, _ctx: &mut Self::Context) -> Self::Result {
        let c = self.ctx.clone();
        let execution = self.execution.clone();
        let observed = self.last_observed;
        let (up, down) = (self.last_scale_up_at, self.last_scale_down_at);
        let fleet = self.fleet.clone();
        let superseded: Vec<Uuid> = self.awaiting.keys().copied().collect();
        let to_supersede = superseded.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let superseded = to_supersede;
                let now = c.clock.now();
                let t = c.target.state(&c.service).await?;
                let state = ClusterState {
                    replicas: t.desired,
                    ready_replicas: t.ready,
                    last_scale_up_at: up,
                    last_scale_down_at: down,
                    observed_load: observed.map_or(0.0, |o| o.value),
                    observed_at: observed.map_or(now.timestamp(), |o| o.ts.timestamp()),
                    instance_type: fleet.0,
                    spot_share: fleet.1,
                };
                let inputs = DecisionInputs {
                    state,
                    forecast: Some(forecast_input(&msg.forecast)),
                    policy: c.policy.clone(),
                    now: now.timestamp(),
                };
                let d = inputs.replay();
                if d.target_replicas == t.desired {
                    return Ok(None);
                }
                let id = Uuid::new_v5(&DECISION_NS, msg.forecast.forecast_id.as_bytes());
                let proposed = proposal(id, &c.service, &d, &inputs, Some(msg.forecast.forecast_id));
                let meta = Metadata::caused_by_event(&msg.metadata, c.actor_name("decision"), now);
                // A newer proposal replaces the ones still waiting for a person.
                for old in &superseded {
                    let e = Event::DecisionSuperseded(DecisionSuperseded {
                        decision_id: *old,
                        superseded_by: id,
                    });
                    let m = Metadata::caused_by_event(&meta, c.actor_name("decision"), now);
                    c.store
                        .append(
                            &streams::decision(*old),
                            ExpectedVersion::Exact(1),
                            vec![NewEvent::new(e, m)],
                        )
                        .await
                        .ok();
                }
                let appended = c
                    .store
                    .append(
                        &streams::decision(id),
                        ExpectedVersion::NoStream,
                        vec![NewEvent::new(Event::DecisionProposed(proposed.clone()), meta.clone())],
                    )
                    .await;
                match appended {
                    Ok(_) => {}
                    // Already proposed from this forecast before a restart: nothing new to do.
                    Err(StoreError::Conflict { .. }) => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
                tracing::info!(service = %c.service, decision = %id, strategy = %proposed.strategy,
                    from = t.desired, to = d.target_replicas, "decision proposed");
                if !proposed.requires_approval {
                    execution
                        .send(Execute {
                            decision: proposed.clone(),
                            cause: meta.clone(),
                        })
                        .await??;
                }
                Ok(Some((proposed, meta, now.timestamp())))
            }
            .into_actor(self)
            .map(
                move |res: Result<Option<(DecisionProposed, Metadata, i64)>, ActorError>, act, _| {
                    let Some((p, meta, now)) = res? else { return Ok(()) };
                    for old in &superseded {
                        act.awaiting.remove(old);
                    }
                    if p.requires_approval {
                        act.awaiting.insert(p.decision_id, (p, meta));
                    } else if p.target.replicas > p.current.replicas {
                        act.fleet = (p.target.instance_type.clone(), p.target.spot_share);
                        act.last_scale_up_at = Some(now);
                    } else {
                        act.fleet = (p.target.instance_type.clone(), p.target.spot_share);
                        act.last_scale_down_at = Some(now);
                    }
                    Ok(())
                },
            ),
        ))
    }
}

impl Handler<Approve> for DecisionActor {
    type Result = AtomicResponse<Self, Result<(), ActorError>>;

    fn handle(&mut self, msg: Approve, _: &mut Self::Context) -> Self::Result {
        let found = self.awaiting.get(&msg.decision_id).cloned();
        let c = self.ctx.clone();
        let execution = self.execution.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let (d, cause) = found.ok_or_else(|| {
                    ActorError::Rejected(format!("decision {} is not waiting for approval", msg.decision_id))
                })?;
                let meta = Metadata::caused_by_event(&cause, format!("user:{}", msg.by), c.clock.now());
                let e = Event::DecisionApproved(DecisionApproved {
                    decision_id: d.decision_id,
                    approved_by: msg.by,
                    comment: msg.comment,
                });
                c.store
                    .append(
                        &streams::decision(d.decision_id),
                        ExpectedVersion::Exact(1),
                        vec![NewEvent::new(e, meta.clone())],
                    )
                    .await?;
                execution
                    .send(Execute {
                        decision: d.clone(),
                        cause: meta,
                    })
                    .await??;
                Ok(d)
            }
            .into_actor(self)
            .map(|res: Result<DecisionProposed, ActorError>, act, _| {
                let d = res?;
                act.awaiting.remove(&d.decision_id);
                act.fleet = (d.target.instance_type.clone(), d.target.spot_share);
                let now = act.ctx.clock.now().timestamp();
                if d.target.replicas > d.current.replicas {
                    act.last_scale_up_at = Some(now);
                } else {
                    act.last_scale_down_at = Some(now);
                }
                Ok(())
            }),
        ))
    }
}

impl Handler<Reject> for DecisionActor {
    type Result = AtomicResponse<Self, Result<(), ActorError>>;

    fn handle(&mut self, msg: Reject, _: &mut Self::Context) -> Self::Result {
        let found = self.awaiting.get(&msg.decision_id).cloned();
        let c = self.ctx.clone();
        let id = msg.decision_id;
        AtomicResponse::new(Box::pin(
            async move {
                let (d, cause) =
                    found.ok_or_else(|| ActorError::Rejected(format!("decision {id} is not waiting for approval")))?;
                let meta = Metadata::caused_by_event(&cause, format!("user:{}", msg.by), c.clock.now());
                let e = Event::DecisionRejected(DecisionRejected {
                    decision_id: d.decision_id,
                    rejected_by: msg.by,
                    reason: msg.reason,
                });
                c.store
                    .append(
                        &streams::decision(d.decision_id),
                        ExpectedVersion::Exact(1),
                        vec![NewEvent::new(e, meta)],
                    )
                    .await?;
                Ok(())
            }
            .into_actor(self)
            .map(move |res: Result<(), ActorError>, act, _| {
                res?;
                act.awaiting.remove(&id);
                Ok(())
            }),
        ))
    }
}

crate::supervision_handlers!(DecisionActor, "decision");
