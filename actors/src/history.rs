//! Rebuilding an actor's state from the log after a (re)start.

use events::vocabulary::Event;
use events::{EventStore, RecordedEvent, StoreError};

/// The service a decision-chain or forecast event belongs to, if any.
pub fn service_of(e: &Event) -> Option<&str> {
    Some(match e {
        Event::ForecastMade(x) => &x.service,
        Event::DecisionProposed(x) => &x.service,
        Event::ScalingStarted(x) => &x.service,
        Event::ScalingSucceeded(x) => &x.service,
        Event::ScalingFailed(x) => &x.service,
        Event::VerificationPassed(x) => &x.service,
        Event::VerificationFailed(x) => &x.service,
        Event::RollbackStarted(x) => &x.service,
        Event::RollbackCompleted(x) => &x.service,
        _ => return None,
    })
}

/// Events of decision streams (`decision/…`) whose events concern `service`,
/// plus approvals and rejections of those decisions, oldest first.
pub async fn decision_history(store: &dyn EventStore, service: &str) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut out = Vec::new();
    let mut ours = std::collections::HashSet::new();
    let mut pos = 0;
    loop {
        let batch = store.read_all(pos, 1000).await?;
        let Some(last) = batch.last() else { return Ok(out) };
        pos = last.position;
        for e in batch {
            if !e.stream.starts_with("decision/") {
                continue;
            }
            if service_of(&e.event) == Some(service) {
                ours.insert(e.stream.clone());
            }
            if ours.contains(&e.stream) {
                out.push(e);
            }
        }
    }
}
