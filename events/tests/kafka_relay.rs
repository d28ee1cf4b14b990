//! The relay publishes the log to Kafka (librdkafka's in-process mock cluster,
//! the real protocol): every event once, in order per stream, resuming from its
//! checkpoint, and a rebuild of the read models does not re-publish.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use events::projections::memory::MemoryReadModels;
use events::projections::{ReadModelStore, rebuild};
use events::relay::{KafkaSink, relay_once};
use events::store::memory::MemoryStore;
use events::vocabulary::{AlertRaised, Event};
use events::{EventJson, EventStore, ExpectedVersion, Metadata, NewEvent};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use uuid::Uuid;

fn alert(n: u32) -> NewEvent {
    NewEvent::new(
        Event::AlertRaised(AlertRaised {
            alert_id: Uuid::from_u128(n as u128),
            service: Some("api".into()),
            alert_type: "test".into(),
            severity: "info".into(),
            message: format!("alert {n}"),
        }),
        Metadata::new("test", Utc::now()),
    )
}

async fn read(consumer: &StreamConsumer, n: usize) -> Vec<(String, EventJson, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("a message within 30 s")
            .expect("a message");
        let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
        let e: EventJson = serde_json::from_slice(m.payload().unwrap()).unwrap();
        let h = m.headers().unwrap().get(0);
        out.push((key, e, String::from_utf8(h.value.unwrap().to_vec()).unwrap()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_reaches_kafka_once_and_in_order() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("pscaler.events", 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let store = Arc::new(MemoryStore::new());
    let models = Arc::new(MemoryReadModels::default());
    for i in 0..5 {
        store
            .append(&format!("s{}", i % 2), ExpectedVersion::Any, vec![alert(i)])
            .await
            .unwrap();
    }
    let sink = KafkaSink::new(&brokers, "pscaler.events").unwrap();
    assert_eq!(
        relay_once(store.as_ref(), models.as_ref(), &sink, "relay:kafka")
            .await
            .unwrap(),
        5
    );

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "test")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["pscaler.events"]).unwrap();
    let got = read(&consumer, 5).await;
    assert_eq!(
        got.iter().map(|(_, e, _)| e.position).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(got[1].0, "s1", "keyed by stream");
    assert_eq!(got[1].2, "AlertRaised", "event type header");
    assert_eq!(got[3].1.payload["message"], "alert 3");

    // A rebuild of the read models keeps the relay's checkpoint: nothing is re-sent.
    rebuild(store.as_ref(), models.as_ref()).await.unwrap();
    assert_eq!(models.checkpoint("relay:kafka").await.unwrap(), 5);
    store.append("s0", ExpectedVersion::Any, vec![alert(9)]).await.unwrap();
    assert_eq!(
        relay_once(store.as_ref(), models.as_ref(), &sink, "relay:kafka")
            .await
            .unwrap(),
        6
    );
    let next = read(&consumer, 1).await;
    assert_eq!(next[0].1.position, 6, "only the new event follows");
    assert!(
        tokio::time::timeout(Duration::from_secs(2), consumer.recv())
            .await
            .is_err(),
        "nothing more was published"
    );
}

#[tokio::test]
async fn an_unreachable_broker_fails_and_keeps_the_checkpoint() {
    let store = Arc::new(MemoryStore::new());
    let models = Arc::new(MemoryReadModels::default());
    store.append("s", ExpectedVersion::Any, vec![alert(1)]).await.unwrap();
    let sink = KafkaSink::new("127.0.0.1:1", "t").unwrap();
    // librdkafka retries until message.timeout.ms; shorten by using a tiny timeout sink.
    let short = tokio::time::timeout(
        Duration::from_secs(3),
        relay_once(store.as_ref(), models.as_ref(), &sink, "relay:k"),
    );
    let _ = short.await;
    assert_eq!(
        models.checkpoint("relay:k").await.unwrap(),
        0,
        "nothing acknowledged, nothing checkpointed"
    );
}
