//! The control loop of one service, step by step: gather (latest forecast, cluster state),
//! evaluate (the pure [`decide`](super::decide)), then act — propose (superseding the
//! proposals that wait, in one append) and execute, or record why it holds when that reason
//! changes — and drive verifications and rollbacks. The decision actor runs one [`reconcile`]
//! per tick, and [`revalidate`] before it executes an approval.

use chrono::{DateTime, Utc};
use events::vocabulary::*;
use events::{Event, ExpectedVersion, Metadata, NewEvent, StoreError, StreamAppend, streams};
use uuid::Uuid;

use super::actor::{DecisionInputs, proposal};
use super::state::{Awaiting, DecisionState, Hold};
use super::{ClusterState, Decision};
use crate::context::ServiceContext;
use crate::error::ActorError;
use crate::execution::TargetState;
use crate::history::Journal;
use crate::messages::{Execute, ForecastReady, LatestForecast, Observed, Outcome, Tick};

/// Namespace of decision ids: one per (service, evaluation time, forecast), so re-running an
/// evaluation after a restart proposes the same id, which the store refuses as a conflict.
const DECISION_NS: Uuid = Uuid::from_u128(0x6a1d_3c0e_5f4b_4e8e_9b2a_7d1c_0e3f_5a6b);

/// What the other actors of the service are reached by.
#[derive(Clone)]
pub struct Peers {
    pub forecast: actix::Recipient<LatestForecast>,
    pub execute: actix::Recipient<Execute>,
    pub tick: actix::Recipient<Tick>,
}

/// The inputs of one evaluation.
pub struct Gathered {
    pub target: TargetState,
    pub forecast: Option<ForecastReady>,
    /// Why the forecast actor made no forecast when one was due.
    pub problem: Option<String>,
}

/// The latest forecast and the cluster state; fails only when the target does not answer.
pub async fn gather(c: &ServiceContext, peers: &Peers, now: DateTime<Utc>) -> Result<Gathered, ActorError> {
    let (forecast, problem) = match peers.forecast.send(LatestForecast { now }).await {
        Ok(a) => (a.latest, a.problem),
        Err(e) => (None, Some(format!("the forecast actor did not answer: {e}"))),
    };
    let target = c.target.state(&c.service).await?;
    metrics::gauge!("pscaler_desired_replicas", "service" => c.service.clone()).set(f64::from(target.desired));
    metrics::gauge!("pscaler_ready_replicas", "service" => c.service.clone()).set(f64::from(target.ready));
    Ok(Gathered {
        target,
        forecast,
        problem,
    })
}

/// Runs the pure decision on the gathered state.
pub fn evaluate(
    c: &ServiceContext,
    st: &DecisionState,
    observed: Option<Observed>,
    g: &Gathered,
    now: DateTime<Utc>,
) -> (DecisionInputs, Decision) {
    let state = ClusterState {
        replicas: g.target.desired,
        ready_replicas: g.target.ready,
        last_scale_up_at: st.last_scale_up_at,
        last_scale_down_at: st.last_scale_down_at,
        observed_load: observed.map_or(0.0, |o| o.value),
        observed_at: observed.map_or(now.timestamp(), |o| o.ts.timestamp()),
        instance_type: st.fleet.instance_type.clone(),
        spot_share: st.fleet.spot_share,
    };
    let note = match (&g.forecast, &g.problem) {
        (None, Some(p)) => Some(format!("forecaster: {p}")),
        (None, None) => Some("forecaster: no forecast yet".to_string()),
        (Some(_), _) => None,
    };
    let inputs = DecisionInputs {
        state,
        forecast: g.forecast.as_ref().map(|f| super::actor::forecast_input(&f.forecast)),
        policy: c.policy.clone(),
        now: now.timestamp(),
        note,
    };
    let d = inputs.replay();
    (inputs, d)
}

/// Whether `fresh` replicas are within the approval tolerance of `proposed` (at least one replica).
pub fn within_tolerance(proposed: u32, fresh: u32, tolerance: f64) -> bool {
    let slack = (f64::from(proposed) * tolerance.max(0.0)).ceil().max(1.0) as u32;
    proposed.abs_diff(fresh) <= slack
}

/// One evaluation of the loop. Events it appends are journaled (folded by the actor even if
/// a later step fails).
pub async fn reconcile(
    c: &ServiceContext,
    j: &Journal,
    st: &DecisionState,
    observed: Option<Observed>,
    peers: &Peers,
    now: DateTime<Utc>,
) -> Result<Outcome, ActorError> {
    let mut st = st.clone();
    expire(c, j, &mut st, now).await?;
    let outcome = match gather(c, peers, now).await {
        Ok(g) => {
            let age = g.forecast.as_ref().map(|f| (now - f.forecast.origin).num_seconds());
            let outcome = act(c, j, &st, observed, &g, peers, now).await?;
            c.status.evaluated(&c.service, now, outcome.clone(), age);
            outcome
        }
        Err(e) => {
            let reason = format!("the scale target did not answer: {e}");
            let replicas = st.hold.as_ref().map_or(0, |h| h.replicas);
            let outcome = hold(c, j, &st, "target_unavailable", &reason, replicas, now).await?;
            c.status.evaluated(&c.service, now, outcome.clone(), None);
            outcome
        }
    };
    drive_execution(c, j, peers, now).await;
    Ok(outcome)
}

/// Expires the proposals that waited longer than the approval TTL.
async fn expire(c: &ServiceContext, j: &Journal, st: &mut DecisionState, now: DateTime<Utc>) -> Result<(), ActorError> {
    for (id, waited) in st.expired(now.timestamp(), c.reconcile.approval_ttl_s) {
        let Some(a) = st.awaiting.get(&id) else { continue };
        let e = Event::DecisionExpired(DecisionExpired {
            decision_id: id,
            service: c.service.clone(),
            waited_seconds: waited,
        });
        let m = Metadata::caused_by_event(&a.metadata, c.actor_name("decision"), now);
        j.append(
            c.store.as_ref(),
            &streams::decision(id),
            ExpectedVersion::Any,
            vec![NewEvent::new(e.clone(), m.clone())],
        )
        .await?;
        tracing::info!(service = %c.service, decision = %id, waited, "approval expired");
        st.apply(&e, &m, 0);
    }
    Ok(())
}

/// Proposes the decision, or holds: when the replicas stay, or when a proposal that waits for
/// a person already asks for about the same.
async fn act(
    c: &ServiceContext,
    j: &Journal,
    st: &DecisionState,
    observed: Option<Observed>,
    g: &Gathered,
    peers: &Peers,
    now: DateTime<Utc>,
) -> Result<Outcome, ActorError> {
    let (inputs, d) = evaluate(c, st, observed, g, now);
    let strategy = super::actor::strategy_name(d.strategy);
    let reason = inputs
        .note
        .iter()
        .chain(&d.reasoning)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if d.target_replicas == g.target.desired {
        return hold(c, j, st, &strategy, &reason, g.target.desired, now).await;
    }
    let tol = c.reconcile.approval_tolerance;
    if let Some(a) = st
        .awaiting
        .values()
        .find(|a| within_tolerance(a.proposal.target.replicas, d.target_replicas, tol))
    {
        let why = format!(
            "decision {} for {} replicas waits for approval (the engine now asks for {})",
            a.proposal.decision_id, a.proposal.target.replicas, d.target_replicas
        );
        return hold(c, j, st, "awaiting_approval", &why, g.target.desired, now).await;
    }
    propose(c, j, st, &inputs, &d, g, peers, now).await
}

/// Appends `DecisionHeld` when the reason for holding differs from the last one recorded.
async fn hold(
    c: &ServiceContext,
    j: &Journal,
    st: &DecisionState,
    code: &str,
    reason: &str,
    replicas: u32,
    now: DateTime<Utc>,
) -> Result<Outcome, ActorError> {
    if st.hold.as_ref() != Some(&Hold::new(code, reason, replicas)) {
        let e = Event::DecisionHeld(DecisionHeld {
            service: c.service.clone(),
            code: code.to_string(),
            reason: reason.to_string(),
            replicas,
        });
        let m = Metadata::new(c.actor_name("decision"), now);
        j.append(
            c.store.as_ref(),
            &streams::service(&c.service),
            ExpectedVersion::Any,
            vec![NewEvent::new(e, m)],
        )
        .await?;
    }
    Ok(Outcome::Held {
        code: code.to_string(),
        reason: reason.to_string(),
    })
}

/// Appends the proposal together with the supersession of the proposals that wait (one
/// atomic append), then executes it unless it waits for a person.
#[allow(clippy::too_many_arguments)]
async fn propose(
    c: &ServiceContext,
    j: &Journal,
    st: &DecisionState,
    inputs: &DecisionInputs,
    d: &Decision,
    g: &Gathered,
    peers: &Peers,
    now: DateTime<Utc>,
) -> Result<Outcome, ActorError> {
    let forecast_id = g.forecast.as_ref().map(|f| f.forecast.forecast_id);
    let key = format!(
        "{}/{}/{}",
        c.service,
        now.timestamp_micros(),
        forecast_id.unwrap_or_default()
    );
    let id = Uuid::new_v5(&DECISION_NS, key.as_bytes());
    let p = proposal(id, &c.service, d, inputs, forecast_id);
    let meta = match &g.forecast {
        Some(f) => Metadata::caused_by_event(&f.metadata, c.actor_name("decision"), now),
        None => Metadata::new(c.actor_name("decision"), now),
    };
    let mut appends = supersessions(c, st, id, &meta, now);
    appends.push(StreamAppend {
        stream: streams::decision(id),
        expected: ExpectedVersion::NoStream,
        events: vec![NewEvent::new(Event::DecisionProposed(p.clone()), meta.clone())],
    });
    let position = match j.append_many(c.store.as_ref(), appends).await {
        Ok(pos) => pos,
        // already proposed by this very evaluation before a restart: nothing new to do
        Err(StoreError::Conflict { stream, .. }) if stream == streams::decision(id) => {
            return Ok(Outcome::Held {
                code: "already_proposed".into(),
                reason: format!("decision {id} was proposed before"),
            });
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(service = %c.service, decision = %id, strategy = %p.strategy,
        from = g.target.desired, to = d.target_replicas, "decision proposed");
    if !p.requires_approval {
        let appended = peers
            .execute
            .send(Execute {
                decision: p.clone(),
                proposed: meta.clone(),
                proposed_at_position: position,
                cause: meta,
            })
            .await??;
        j.extend(appended);
    }
    Ok(Outcome::Proposed {
        decision_id: id,
        replicas: d.target_replicas,
        awaiting_approval: p.requires_approval,
    })
}

/// `DecisionSuperseded` for every proposal that waits, replaced by `by`.
fn supersessions(
    c: &ServiceContext,
    st: &DecisionState,
    by: Uuid,
    meta: &Metadata,
    now: DateTime<Utc>,
) -> Vec<StreamAppend> {
    st.awaiting
        .keys()
        .map(|old| StreamAppend {
            stream: streams::decision(*old),
            expected: ExpectedVersion::Exact(1),
            events: vec![NewEvent::new(
                Event::DecisionSuperseded(DecisionSuperseded {
                    decision_id: *old,
                    superseded_by: by,
                }),
                Metadata::caused_by_event(meta, c.actor_name("decision"), now),
            )],
        })
        .collect()
}

/// Verifications and rollbacks run at every tick, whatever the evaluation did; a failure
/// there is logged and retried at the next tick (the execution actor lost nothing).
async fn drive_execution(c: &ServiceContext, j: &Journal, peers: &Peers, now: DateTime<Utc>) {
    match peers.tick.send(Tick { now }).await {
        Ok(Ok(appended)) => j.extend(appended),
        Ok(Err(e)) => tracing::warn!(service = %c.service, error = %e, "verification tick failed; retried next tick"),
        Err(e) => tracing::warn!(service = %c.service, error = %e, "execution actor unreachable; retried next tick"),
    }
}

/// Re-runs the evaluation for a proposal a person approves: it executes only if the fresh
/// plan is within the approval tolerance of the proposal.
pub async fn revalidate(
    c: &ServiceContext,
    st: &DecisionState,
    observed: Option<Observed>,
    peers: &Peers,
    a: &Awaiting,
    now: DateTime<Utc>,
) -> Result<(), ActorError> {
    let g = gather(c, peers, now)
        .await
        .map_err(|e| ActorError::NotReady(format!("cannot re-validate decision {}: {e}", a.proposal.decision_id)))?;
    let (_, d) = evaluate(c, st, observed, &g, now);
    let proposed = a.proposal.target.replicas;
    if within_tolerance(proposed, d.target_replicas, c.reconcile.approval_tolerance) {
        return Ok(());
    }
    Err(ActorError::Conflict(format!(
        "decision {} proposed {proposed} replicas {} s ago; a fresh evaluation now asks for {} ({}): \
         not executed — the next evaluation proposes anew",
        a.proposal.decision_id,
        now.timestamp() - a.proposed_at(),
        d.target_replicas,
        d.reasoning.first().cloned().unwrap_or_default()
    )))
}
