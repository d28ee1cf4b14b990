//! Killing the process (SIGKILL) and starting it again loses no acknowledged
//! sample or event: what the API acknowledged was committed first.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, serde_json::Value)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let json = out
        .split("\r\n\r\n")
        .nth(1)
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or_default();
    Some((status, json))
}

fn start(db: &str, port: u16) -> Child {
    start_with(db, port, &[])
}

fn start_with(db: &str, port: u16, env: &[(&str, &str)]) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_predictive-scaler"))
        .arg("serve")
        .envs(env.iter().copied())
        .env("PSCALER_DATABASE__URL", db)
        .env("PSCALER_HTTP__BIND", format!("127.0.0.1:{port}"))
        .env("PSCALER_MODELS__MODEL", "snaive")
        .env("PSCALER_SCALING__CAPACITY_PER_REPLICA", "10")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start predictive-scaler serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if http(port, "GET", "/health/live", "").is_some_and(|(s, _)| s == 200) {
            return child;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not come up on port {port}");
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
        let ts = (t0 + chrono::Duration::minutes(i)).to_rfc3339();
        let body = format!(
            r#"{{"service":"default","timestamp":"{ts}","value":{}}}"#,
            10.0 + (i * 7 % 40) as f64
        );
        let (status, reply) = http(port, "POST", "/api/v1/metrics", &body).expect("ingest");
        assert_eq!(status, 202, "{reply}");
        acknowledged += 1;
    }
    let (_, bad) = http(
        port,
        "POST",
        "/api/v1/metrics",
        r#"{"service":"default","timestamp":"x","value":1}"#,
    )
    .unwrap();
    assert_eq!(bad["error"]["code"], "bad_request", "{bad}");
    let (_, before) = http(port, "GET", "/api/v1/audit/events?limit=5000", "").unwrap();
    let before = before["events"].as_array().unwrap().clone();
    assert!(
        before.iter().any(|e| e["event_type"] == "ForecastMade"),
        "forecasts were made"
    );

    child.kill().unwrap(); // SIGKILL: no shutdown hook runs
    child.wait().unwrap();

    let port = free_port();
    let mut child = start(&db, port);
    let (_, after) = http(port, "GET", "/api/v1/audit/events?limit=5000", "").unwrap();
    let after = after["events"].as_array().unwrap();
    assert!(after.len() >= before.len());
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "every acknowledged event survived, unchanged"
    );
    // The samples are all there too: the forecast actor reloads them and forecasts at once.
    let ts = (t0 + chrono::Duration::minutes(20)).to_rfc3339();
    let body = format!(r#"{{"service":"default","timestamp":"{ts}","value":12}}"#);
    assert_eq!(http(port, "POST", "/api/v1/metrics", &body).unwrap().0, 202);
    // The projector of `serve` keeps the read models caught up.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, p) = http(port, "GET", "/api/v1/predictions/current?service=default", "").unwrap();
        if p["predictions"].as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "no current prediction in the read models");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, ready) = http(port, "GET", "/health/ready", "").unwrap();
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
    let mut child = start_with(&db, port, &[("PSCALER_KAFKA__BROKERS", brokers.as_str())]);
    let t0 = chrono::Utc::now() - chrono::Duration::minutes(10);
    for i in 0..5 {
        let ts = (t0 + chrono::Duration::minutes(i)).to_rfc3339();
        let body = format!(r#"{{"service":"default","timestamp":"{ts}","value":{}}}"#, 20 + i * 10);
        assert_eq!(http(port, "POST", "/api/v1/metrics", &body).unwrap().0, 202);
    }
    let (_, log) = http(port, "GET", "/api/v1/audit/events?limit=5000", "").unwrap();
    let expected: Vec<u64> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert!(!expected.is_empty());

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
