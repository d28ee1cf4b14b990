//! `explain`: re-runs the pure decision function on a decision's recorded inputs.

use actors::decision::actor::DecisionInputs;
use anyhow::Context as _;
use events::vocabulary::{Event, TargetConfig};
use events::{EventStore, streams};
use uuid::Uuid;

/// What `explain` found: the recorded decision and the replayed one.
#[derive(Debug, serde::Serialize)]
pub struct Explanation {
    pub decision_id: Uuid,
    pub recorded_target: u32,
    pub recorded_strategy: String,
    pub recorded_reasoning: Vec<String>,
    /// The recorded target configuration (replicas, instance type, spot share).
    pub recorded_config: TargetConfig,
    pub recorded_hourly_cost: Option<f64>,
    pub replayed: actors::decision::Decision,
    /// Target, configuration, strategy, reasoning, cost and scores all match.
    pub identical: bool,
}

pub async fn explain(store: &dyn EventStore, id: Uuid) -> anyhow::Result<Explanation> {
    let events = store.read_stream(&streams::decision(id), 0).await?;
    let proposed = events
        .iter()
        .find_map(|e| match &e.event {
            Event::DecisionProposed(d) => Some(d.clone()),
            _ => None,
        })
        .with_context(|| format!("no decision {id} in the log"))?;
    let inputs: DecisionInputs = serde_json::from_value(proposed.inputs.clone())
        .with_context(|| format!("decision {id} has no replayable inputs"))?;
    let replayed = inputs.replay();
    let strategy = serde_json::to_value(replayed.strategy)?
        .as_str()
        .unwrap_or_default()
        .to_string();
    // what the actor would record for the replayed decision, compared field by field
    let again = actors::decision::actor::proposal(id, &proposed.service, &replayed, &inputs, proposed.forecast_id);
    let identical = replayed.target_replicas == proposed.target.replicas
        && strategy == proposed.strategy
        && again.target == proposed.target
        && again.reasoning == proposed.reasoning
        && match (again.estimated_hourly_cost, proposed.estimated_hourly_cost) {
            (Some(a), Some(b)) => close(a, b),
            (a, b) => a == b,
        }
        && same_json(&again.scores, &proposed.scores)
        && again.rollback_to == proposed.rollback_to
        && again.verification == proposed.verification;
    Ok(Explanation {
        decision_id: id,
        recorded_target: proposed.target.replicas,
        recorded_strategy: proposed.strategy,
        recorded_reasoning: proposed.reasoning,
        recorded_config: proposed.target,
        recorded_hourly_cost: proposed.estimated_hourly_cost,
        replayed,
        identical,
    })
}

/// Equal up to the last bits that a JSON round trip may change (serde_json's fast float parsing).
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

/// JSON equality that compares numbers by value (a store may give back `1` for `1.0`).
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::{Array, Number, Object};
    match (a, b) {
        (Number(x), Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => close(x, y),
            (x, y) => x == y,
        },
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y)),
        (Object(x), Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}
