//! The ingest actor: a sample is acknowledged only once it is stored; accepted ones are then
//! handed to the forecast and decision actors without waiting for them (a slow forecast never
//! holds up ingest).

use actix::prelude::*;
use chrono::{DateTime, Utc};
use events::metrics::MetricSample;

use super::plausibility::{Plausibility, Verdict, check_bounds};
use crate::context::{LOAD_METRIC, QUARANTINE_METRIC, ServiceContext};
use crate::error::ActorError;
use crate::messages::{Ingested, Observed, Sample};

/// One per service.
pub struct IngestActor {
    ctx: ServiceContext,
    forecast: Recipient<Observed>,
    decision: Recipient<Observed>,
    plausibility: Plausibility,
    generation: u32,
}

impl IngestActor {
    pub fn new(ctx: ServiceContext, forecast: Recipient<Observed>, decision: Recipient<Observed>) -> Self {
        IngestActor {
            ctx,
            forecast,
            decision,
            plausibility: Plausibility::default(),
            generation: 0,
        }
    }

    fn row(&self, ts: DateTime<Utc>, value: f64, metric: &str) -> MetricSample {
        MetricSample {
            ts,
            service: self.ctx.service.clone(),
            metric: metric.to_string(),
            value,
            labels: serde_json::json!({}),
        }
    }
}

impl Actor for IngestActor {
    type Context = Context<Self>;

    /// Reloads the recent history that samples are judged against.
    fn started(&mut self, ctx: &mut Self::Context) {
        self.generation += 1;
        let c = self.ctx.clone();
        ctx.wait(
            async move {
                let now = c.clock.now();
                let from = now - chrono::Duration::seconds(c.ingest.recent_s);
                c.metrics
                    .range(&c.service, LOAD_METRIC, from, now + chrono::Duration::seconds(1))
                    .await
            }
            .into_actor(self)
            .map(|res, act, _| match res {
                Ok(samples) => {
                    act.plausibility = Plausibility::default();
                    for s in samples {
                        act.plausibility.accepted(s.ts, s.value, &act.ctx.ingest);
                    }
                }
                // judged against an empty history (one replica's capacity) until the next start
                Err(e) => tracing::warn!(error = %e, service = %act.ctx.service, "ingest: recent history not loaded"),
            }),
        );
    }
}

impl Supervised for IngestActor {}

impl Handler<Sample> for IngestActor {
    type Result = AtomicResponse<Self, Result<Ingested, ActorError>>;

    fn handle(&mut self, msg: Sample, _: &mut Self::Context) -> Self::Result {
        if let Err(e) = check_bounds(&msg, &self.ctx.ingest, self.ctx.clock.now()) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(e))));
        }
        let mut next = self.plausibility.clone();
        let verdict = next.judge(
            msg.ts,
            msg.value,
            &self.ctx.ingest,
            self.ctx.policy.capacity_per_replica,
        );
        let (rows, outcome, observed) = match verdict {
            Verdict::Accept => (
                vec![self.row(msg.ts, msg.value, LOAD_METRIC)],
                Ingested::Stored,
                vec![(msg.ts, msg.value)],
            ),
            Verdict::Quarantine(reason) => (
                vec![self.row(msg.ts, msg.value, QUARANTINE_METRIC)],
                Ingested::Quarantined { reason },
                vec![],
            ),
            Verdict::Release(all) => (
                all.iter().map(|(t, v)| self.row(*t, *v, LOAD_METRIC)).collect(),
                Ingested::Released { samples: all.len() },
                all,
            ),
        };
        let c = self.ctx.clone();
        AtomicResponse::new(Box::pin(
            async move { c.metrics.insert_batch(&rows).await.map_err(ActorError::from) }
                .into_actor(self)
                .map(move |res, act, _| {
                    res?;
                    act.plausibility = next;
                    let s = &act.ctx.service;
                    if let Ingested::Quarantined { reason } = &outcome {
                        tracing::warn!(service = %s, ts = %msg.ts, value = msg.value, %reason, "sample quarantined");
                        act.ctx.status.quarantined(s);
                        metrics::counter!("pscaler_samples_quarantined_total", "service" => s.clone()).increment(1);
                    }
                    for (ts, value) in observed {
                        metrics::gauge!("pscaler_observed_load", "service" => s.clone()).set(value);
                        act.forecast.do_send(Observed { ts, value });
                        act.decision.do_send(Observed { ts, value });
                    }
                    Ok(outcome)
                }),
        ))
    }
}

crate::supervision_handlers!(IngestActor, "ingest");
