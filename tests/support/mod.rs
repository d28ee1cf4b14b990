//! What the tests that run `serve` as the real binary share: a free port, a minimal HTTP
//! client, starting `serve` with test settings, and waiting for a condition.
#![allow(dead_code)] // each test binary uses a part

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A response: status, JSON body (null when not JSON), and the head (status line and headers).
pub struct Reply {
    pub status: u16,
    pub json: serde_json::Value,
    pub head: String,
}

pub fn http(port: u16, method: &str, path: &str, body: &str) -> Option<Reply> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    Some(Reply {
        status,
        json: serde_json::from_str(body).unwrap_or_default(),
        head: head.to_string(),
    })
}

/// Polls `ok` every 200 ms for at most `secs` seconds.
pub fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "waited {secs} s in vain for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `serve` on `db` and `port` with test settings (the snaive model, ten load per replica, one
/// evaluation and at most one forecast a second) and `env` on top; returns once it is live.
pub fn serve(db: &str, port: u16, env: &[(&str, &str)]) -> Child {
    serve_args(db, port, env, &[])
}

/// As [`serve`], with `args` (e.g. `--config FILE`) before the subcommand.
pub fn serve_args(db: &str, port: u16, env: &[(&str, &str)], args: &[&str]) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_predictive-scaler"))
        .args(args)
        .arg("serve")
        .env("PSCALER_DATABASE__URL", db)
        .env("PSCALER_HTTP__BIND", format!("127.0.0.1:{port}"))
        .env("PSCALER_MODELS__MODEL", "snaive")
        .env("PSCALER_SCALING__CAPACITY_PER_REPLICA", "10")
        .env("PSCALER_RECONCILE__INTERVAL_S", "1")
        .env("PSCALER_MODELS__CADENCE_SECONDS", "1")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start predictive-scaler serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    while http(port, "GET", "/health/live", "").is_none_or(|r| r.status != 200) {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not come up on port {port}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// Posts one load sample of service `default`; returns the status (0: no answer).
pub fn sample(port: u16, at: chrono::DateTime<chrono::Utc>, value: f64) -> u16 {
    let body = format!(
        r#"{{"service":"default","timestamp":"{}","value":{value}}}"#,
        at.to_rfc3339()
    );
    http(port, "POST", "/api/v1/metrics", &body).map_or(0, |r| r.status)
}

/// The log as the audit route serves it (empty when it does not answer 200).
pub fn log(port: u16) -> Vec<serde_json::Value> {
    http(port, "GET", "/api/v1/audit/events?limit=5000", "")
        .filter(|r| r.status == 200)
        .and_then(|r| r.json["events"].as_array().cloned())
        .unwrap_or_default()
}

/// The readiness status (0: no answer).
pub fn ready(port: u16) -> u16 {
    http(port, "GET", "/health/ready", "").map_or(0, |r| r.status)
}

/// Whether the log holds a forecast whose origin is `at` (to the second).
pub fn has_forecast_from(log: &[serde_json::Value], at: chrono::DateTime<chrono::Utc>) -> bool {
    log.iter().any(|e| {
        e["event_type"] == "ForecastMade"
            && e["payload"]["origin"]
                .as_str()
                .and_then(|o| chrono::DateTime::parse_from_rfc3339(o).ok())
                .is_some_and(|o| o.timestamp() == at.timestamp())
    })
}
