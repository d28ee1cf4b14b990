//! The ingest actor: a sample is acknowledged only once it is stored, then it
//! is handed to the forecast and decision actors and time moves for execution.

use actix::prelude::*;
use events::metrics::MetricSample;

use crate::context::{LOAD_METRIC, ServiceContext};
use crate::error::ActorError;
use crate::messages::{Observed, Sample, Tick};

/// One per service.
pub struct IngestActor {
    ctx: ServiceContext,
    forecast: Recipient<Observed>,
    decision: Recipient<Observed>,
    execution: Recipient<Tick>,
    generation: u32,
}

impl IngestActor {
    pub fn new(
        ctx: ServiceContext,
        forecast: Recipient<Observed>,
        decision: Recipient<Observed>,
        execution: Recipient<Tick>,
    ) -> Self {
        IngestActor {
            ctx,
            forecast,
            decision,
            execution,
            generation: 0,
        }
    }
}

impl Actor for IngestActor {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        self.generation += 1;
    }
}

impl Supervised for IngestActor {}

/// Refuses samples no load can have, naming the problem.
pub fn validate(s: &Sample) -> Result<(), ActorError> {
    if !s.value.is_finite() {
        return Err(ActorError::Rejected(format!(
            "sample at {}: value {} is not a finite number",
            s.ts, s.value
        )));
    }
    if s.value < 0.0 {
        return Err(ActorError::Rejected(format!(
            "sample at {}: load {} is negative",
            s.ts, s.value
        )));
    }
    Ok(())
}

impl Handler<Sample> for IngestActor {
    type Result = AtomicResponse<Self, Result<(), ActorError>>;

    fn handle(&mut self, msg: Sample, _: &mut Self::Context) -> Self::Result {
        let c = self.ctx.clone();
        let (forecast, decision, execution) = (self.forecast.clone(), self.decision.clone(), self.execution.clone());
        AtomicResponse::new(Box::pin(
            async move {
                validate(&msg)?;
                let sample = MetricSample {
                    ts: msg.ts,
                    service: c.service.clone(),
                    metric: LOAD_METRIC.to_string(),
                    value: msg.value,
                    labels: serde_json::json!({}),
                };
                c.metrics.insert_batch(&[sample]).await?;
                metrics::gauge!("pscaler_observed_load", "service" => c.service.clone()).set(msg.value);
                let observed = Observed {
                    ts: msg.ts,
                    value: msg.value,
                };
                decision.send(observed).await??;
                forecast.send(observed).await??;
                execution.send(Tick { now: c.clock.now() }).await??;
                if let Ok(s) = c.target.state(&c.service).await {
                    metrics::gauge!("pscaler_desired_replicas", "service" => c.service.clone()).set(s.desired as f64);
                    metrics::gauge!("pscaler_ready_replicas", "service" => c.service.clone()).set(s.ready as f64);
                }
                Ok(())
            }
            .into_actor(self),
        ))
    }
}

crate::supervision_handlers!(IngestActor, "ingest");
