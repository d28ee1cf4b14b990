//! Per-service configuration with `serve` as the real binary: each configured service runs
//! with its own settings, and a reload (SIGHUP) starts the services added to the file, stops
//! those removed and restarts those whose settings changed.

mod support;

use std::process::Command;

use support::{free_port, http, sample, wait_until};

fn post(port: u16, service: &str) -> u16 {
    let at = chrono::Utc::now() - chrono::Duration::seconds(30);
    let body = format!(
        r#"{{"service":"{service}","timestamp":"{}","value":5}}"#,
        at.to_rfc3339()
    );
    http(port, "POST", "/api/v1/metrics", &body).map_or(0, |r| r.status)
}

fn live(port: u16) -> Vec<String> {
    http(port, "GET", "/api/v1/scaling/status", "")
        .map(|r| r.json["services"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default()
        .iter()
        .filter(|s| s.get("live").is_some())
        .filter_map(|s| s["service"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn services_run_with_their_own_settings_and_follow_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let file = dir.path().join("services.toml");
    std::fs::write(
        &file,
        "[services.checkout]\ninitial_replicas = 3\n[services.checkout.scaling]\nmax_replicas = 12\n\
         [services.search]\n",
    )
    .unwrap();
    let port = free_port();
    let cfg = file.display().to_string();
    let mut child = serve_with_config(&db, port, &cfg);
    assert_eq!(post(port, "checkout"), 202);
    assert_eq!(post(port, "search"), 202);
    assert_eq!(
        post(port, "default"),
        404,
        "the file's services replace the default list"
    );
    wait_until("both services evaluated", 30, || live(port) == ["checkout", "search"]);

    // search removed, payments added, checkout's bound changed
    std::fs::write(
        &file,
        "[services.checkout]\ninitial_replicas = 3\n[services.checkout.scaling]\nmax_replicas = 20\n\
         [services.payments]\n",
    )
    .unwrap();
    let ok = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    wait_until("payments started, search stopped", 30, || {
        post(port, "payments") == 202 && post(port, "search") == 404
    });
    wait_until("the live status follows", 30, || live(port) == ["checkout", "payments"]);
    assert_eq!(
        sample(port, chrono::Utc::now(), 1.0),
        404,
        "`default` still does not run"
    );

    // a file that does not load changes nothing
    std::fs::write(&file, "[services.checkout.scaling]\nmax_replicaz = 1\n").unwrap();
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(post(port, "payments"), 202, "the running services are unchanged");
    child.kill().unwrap();
    child.wait().unwrap();
}

fn serve_with_config(db: &str, port: u16, file: &str) -> std::process::Child {
    support::serve_args(db, port, &[], &["--config", file])
}
