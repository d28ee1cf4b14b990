//! `explain`: re-runs the pure decision function on a decision's recorded inputs.

use actors::decision::actor::DecisionInputs;
use anyhow::Context as _;
use events::vocabulary::Event;
use events::{EventStore, streams};
use uuid::Uuid;

/// What `explain` found: the recorded decision and the replayed one.
#[derive(Debug, serde::Serialize)]
pub struct Explanation {
    pub decision_id: Uuid,
    pub recorded_target: u32,
    pub recorded_strategy: String,
    pub recorded_reasoning: Vec<String>,
    pub replayed: actors::decision::Decision,
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
    let identical = replayed.target_replicas == proposed.target.replicas
        && strategy == proposed.strategy
        && replayed.reasoning == proposed.reasoning;
    Ok(Explanation {
        decision_id: id,
        recorded_target: proposed.target.replicas,
        recorded_strategy: proposed.strategy,
        recorded_reasoning: proposed.reasoning,
        replayed,
        identical,
    })
}
