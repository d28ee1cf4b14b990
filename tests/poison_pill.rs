//! The poison pill, end to end with `serve` as the real binary: 300 ordinary samples a minute
//! apart, then one of 1e300. It is refused by name and nothing non-finite reaches the log;
//! the read models keep up, readiness stays 200, the audit route answers, forecasting goes on,
//! and `replay --rebuild` rebuilds the read models.

mod support;

use std::process::Command;

use support::{free_port, has_forecast_from, http, log, ready, sample, serve, wait_until};

#[test]
fn one_absurd_sample_wedges_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("p.db").display());
    let port = free_port();
    let mut child = serve(&db, port, &[]);
    let t0 = chrono::Utc::now() - chrono::Duration::minutes(310);
    for i in 0..300 {
        let v = 50.0 + 20.0 * (i as f64 / 30.0).sin();
        assert_eq!(sample(port, t0 + chrono::Duration::minutes(i), v), 202);
    }
    let r = http(
        port,
        "POST",
        "/api/v1/metrics",
        &format!(
            r#"{{"service":"default","timestamp":"{}","value":1e300}}"#,
            (t0 + chrono::Duration::minutes(300)).to_rfc3339()
        ),
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.json);
    assert!(
        r.json["error"]["message"].as_str().unwrap().contains("`value`"),
        "{}",
        r.json
    );

    // forecasting and the read models go on with the samples after it
    for i in 301..305 {
        assert_eq!(sample(port, t0 + chrono::Duration::minutes(i), 55.0), 202);
    }
    let last = t0 + chrono::Duration::minutes(304);
    wait_until("a forecast from the latest sample", 30, || {
        has_forecast_from(&log(port), last)
    });
    wait_until("the read models caught up", 30, || {
        http(port, "GET", "/health/ready", "").is_some_and(|r| r.status == 200 && r.json["projection_lag"] == 0)
    });
    assert_eq!(ready(port), 200);
    let audit = http(port, "GET", "/api/v1/audit/events?stream=service/default&limit=10", "").unwrap();
    assert_eq!(audit.status, 200);
    let current = http(port, "GET", "/api/v1/predictions/current?service=default", "").unwrap();
    let p50 = current.json["predictions"][0]["points"]
        .as_array()
        .map(|p| p.iter().filter_map(|x| x["p50"].as_f64()).fold(0.0, f64::max));
    assert!(p50.is_some_and(|p| p.is_finite() && p < 1000.0), "{}", current.json);
    child.kill().unwrap();
    child.wait().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dead: i64 = rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters")
            .fetch_one(&pool)
            .await
            .unwrap()
    });
    assert_eq!(dead, 0, "every event of the log projected");

    // the read models rebuild from the log
    let out = Command::new(env!("CARGO_BIN_EXE_predictive-scaler"))
        .args(["replay", "--rebuild"])
        .env("PSCALER_DATABASE__URL", &db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("rebuilt"), "{said}");
}
