//! The relay: publishes the log to subscribers outside the process (Kafka),
//! in log order, keyed by stream, at least once, resuming from its checkpoint.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::envelope::EventJson;
use crate::error::StoreError;
use crate::projections::ReadModelStore;
use crate::store::{EventStore, subscribe};

/// Where relayed events go.
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Delivers one event; returns only once the destination acknowledged it.
    async fn publish(&self, event: &EventJson) -> Result<(), StoreError>;
}

/// A Kafka topic: key = stream (so one stream keeps its order in a partition),
/// value = the event as JSON, headers = event type and id.
pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
}

impl KafkaSink {
    /// An idempotent producer for `brokers` (comma-separated) writing to `topic`.
    pub fn new(brokers: &str, topic: &str) -> Result<Self, StoreError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            .create()
            .map_err(|e| StoreError::Sink(format!("kafka producer for {brokers}: {e}")))?;
        Ok(KafkaSink {
            producer,
            topic: topic.to_string(),
        })
    }
}

#[async_trait]
impl EventSink for KafkaSink {
    async fn publish(&self, event: &EventJson) -> Result<(), StoreError> {
        let body = serde_json::to_vec(event).map_err(|e| StoreError::Sink(e.to_string()))?;
        let id = event.metadata.event_id.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "event_type",
                value: Some(event.event_type.as_str()),
            })
            .insert(Header {
                key: "event_id",
                value: Some(id.as_str()),
            });
        let record = FutureRecord::to(&self.topic)
            .key(&event.stream)
            .payload(&body)
            .headers(headers);
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(e, _)| StoreError::Sink(format!("kafka topic {}: {e}", self.topic)))
    }
}

/// Publishes every event after the relay's checkpoint; returns the position reached.
/// The checkpoint moves only after the sink acknowledged, so a crash re-sends
/// (at least once) rather than loses.
pub async fn relay_once(
    store: &dyn EventStore,
    checkpoints: &dyn ReadModelStore,
    sink: &dyn EventSink,
    name: &str,
) -> Result<u64, StoreError> {
    let mut pos = checkpoints.checkpoint(name).await?;
    loop {
        let batch = store.read_all(pos, 500).await?;
        let Some(last) = batch.last().map(|e| e.position) else {
            return Ok(pos);
        };
        for e in &batch {
            sink.publish(&EventJson::from(e)).await?;
        }
        checkpoints.advance(name, last).await?;
        pos = last;
    }
}

/// Runs the relay in the background: catch up, then follow the log.
pub fn spawn_relay(
    store: Arc<dyn EventStore>,
    checkpoints: Arc<dyn ReadModelStore>,
    sink: Arc<dyn EventSink>,
    name: &'static str,
    poll: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let run = async {
                let start = relay_once(store.as_ref(), checkpoints.as_ref(), sink.as_ref(), name).await?;
                let mut events = std::pin::pin!(subscribe(store.clone(), start, poll));
                while let Some(e) = events.next().await {
                    let e = e?;
                    sink.publish(&EventJson::from(&e)).await?;
                    checkpoints.advance(name, e.position).await?;
                }
                Ok::<_, StoreError>(())
            };
            if let Err(e) = run.await {
                tracing::error!(error = %e, relay = name, "relay failed; retrying");
                tokio::time::sleep(poll.max(Duration::from_secs(1))).await;
            }
        }
    })
}
