//! Killing the process (SIGKILL) and starting it again loses no acknowledged
//! sample or event: what the API acknowledged was committed first.

mod support;

use std::time::{Duration, Instant};

use support::{free_port, has_forecast_from, http, sample, serve, wait_until};

fn start(db: &str, port: u16) -> std::process::Child {
    serve(db, port, &[])
}

/// The log once `ok` holds of it (within 30 s).
fn wait_for(port: u16, what: &str, ok: impl Fn(&[serde_json::Value]) -> bool) -> Vec<serde_json::Value> {
    let mut events = Vec::new();
    wait_until(what, 30, || {
        events = support::log(port);
        ok(&events)
    });
    events
}

#[test]
fn sigkill_and_restart_lose_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let port = free_port();
    let mut child = start(&db, port);
    let t0 = chrono::Utc::now() - chrono::Duration::minutes(30);
    let mut acknowledged = 0;
    for i in 0..20 {
        let at = t0 + chrono::Duration::minutes(i);
        assert_eq!(sample(port, at, 10.0 + (i * 7 % 40) as f64), 202);
        acknowledged += 1;
    }
    let bad = http(
        port,
        "POST",
        "/api/v1/metrics",
        r#"{"service":"default","timestamp":"x","value":1}"#,
    )
    .unwrap();
    assert_eq!(bad.json["error"]["code"], "bad_request", "{}", bad.json);
    // the control loop's timer forecasts from what was acknowledged
    let before = wait_for(port, "a forecast before the kill", |log| {
        log.iter().any(|e| e["event_type"] == "ForecastMade")
    });

    child.kill().unwrap(); // SIGKILL: no shutdown hook runs
    child.wait().unwrap();

    let port = free_port();
    let mut child = start(&db, port);
    let after = support::log(port);
    assert!(after.len() >= before.len());
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "every acknowledged event survived, unchanged"
    );
    // The samples are all there too: the forecast actor reloads them and forecasts from the
    // next one, which the read models show as the current prediction.
    let new_origin = t0 + chrono::Duration::minutes(20);
    assert_eq!(sample(port, new_origin, 12.0), 202);
    wait_until(
        "a forecast from the sample sent after the restart, in the read models",
        30,
        || {
            let p = http(port, "GET", "/api/v1/predictions/current?service=default", "").unwrap();
            p.json["predictions"][0]["origin"]
                .as_str()
                .and_then(|o| chrono::DateTime::parse_from_rfc3339(o).ok())
                .is_some_and(|o| o.timestamp() == new_origin.timestamp())
        },
    );
    assert!(has_forecast_from(&support::log(port), new_origin), "and in the log");
    let ready = http(port, "GET", "/health/ready", "").unwrap().json;
    assert!(ready["log_head"].as_u64().unwrap() >= before.len() as u64, "{ready}");
    child.kill().unwrap();
    child.wait().unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let n: i64 = rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM metrics")
            .fetch_one(&pool)
            .await
            .unwrap()
    });
    assert_eq!(n, acknowledged + 1, "every acknowledged sample is stored");
}

/// `serve` with `kafka.brokers` set relays the log to Kafka (librdkafka's mock
/// cluster speaks the real protocol on loopback).
#[test]
fn serve_relays_the_log_to_kafka() {
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;

    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    cluster.create_topic("pscaler.events", 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("kafka.db").display());
    let port = free_port();
    let mut child = serve(&db, port, &[("PSCALER_KAFKA__BROKERS", brokers.as_str())]);
    let t0 = chrono::Utc::now() - chrono::Duration::minutes(10);
    for i in 0..5 {
        assert_eq!(
            sample(port, t0 + chrono::Duration::minutes(i), (20 + i * 10) as f64),
            202
        );
    }
    let log = wait_for(port, "a forecast", |log| {
        log.iter().any(|e| e["event_type"] == "ForecastMade")
    });
    let expected: Vec<u64> = log.iter().map(|e| e["position"].as_u64().unwrap()).collect();

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "kafka-serve-test")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["pscaler.events"]).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < expected.len() && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            let e: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            got.push(e["position"].as_u64().unwrap());
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(got, expected, "every event, in log order");
}
