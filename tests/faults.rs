//! Fault injection against real servers, with `serve` running as the real binary: the
//! tests' own PostgreSQL instance (initdb/pg_ctl on a free port, never the machine's shared
//! server) is stopped and started again, and the tests' own Redis is stopped. The service
//! degrades (readiness 503, writes refused with 503 so nothing is acknowledged that was not
//! stored), recovers on its own, and loses no acknowledged sample or event.

mod support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::{free_port, has_forecast_from, http, log, ready, sample, serve, wait_until};

/// A PostgreSQL instance of the test's own, run by the `postgres` user.
struct OwnPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

fn as_postgres(cmd: &Path, args: &[&str]) -> std::process::Output {
    let mut c = if nix_is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(cmd);
        c
    } else {
        Command::new(cmd)
    };
    c.args(args).output().expect("run a PostgreSQL tool")
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl OwnPostgres {
    fn bin() -> Option<PathBuf> {
        let root = Path::new("/usr/lib/postgresql");
        let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
            .ok()?
            .flatten()
            .map(|e| e.path().join("bin"))
            .collect();
        versions.sort();
        versions.into_iter().rev().find(|b| b.join("initdb").exists())
    }

    fn init() -> OwnPostgres {
        let bin = Self::bin().expect("PostgreSQL's initdb (scripts/test installs postgresql)");
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        if nix_is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let out = as_postgres(
            &bin.join("initdb"),
            &["-D", data.to_str().unwrap(), "-A", "trust", "-U", "postgres"],
        );
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let pg = OwnPostgres {
            bin,
            dir,
            port: free_port(),
        };
        pg.start();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("pg.log").display().to_string();
        let out = as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-o", &opts, "-l", &log, "-w", "start"],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn stop(&self) {
        let out = as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-m", "immediate", "stop"],
        );
    }
}

#[test]
fn postgresql_stopped_and_started_again_during_serve_loses_nothing_acknowledged() {
    let pg = OwnPostgres::init();
    let port = free_port();
    let mut child = serve(&pg.url(), port, &[]);
    let t0 = chrono::Utc::now() - chrono::Duration::minutes(40);
    let mut acknowledged = Vec::new();
    for i in 0..10 {
        let at = t0 + chrono::Duration::minutes(i);
        assert_eq!(sample(port, at, 10.0 + i as f64), 202);
        acknowledged.push(at);
    }
    wait_until("ready with a forecast", 30, || {
        ready(port) == 200 && log(port).iter().any(|e| e["event_type"] == "ForecastMade")
    });
    let before = log(port);

    pg.stop();
    wait_until("readiness 503 while the store is down", 30, || ready(port) == 503);
    for i in 10..13 {
        let status = sample(port, t0 + chrono::Duration::minutes(i), 20.0);
        assert_eq!(status, 503, "a sample that cannot be stored is not acknowledged");
    }
    let r = http(port, "GET", "/api/v1/scaling/decisions", "").unwrap();
    assert_eq!(r.status, 503, "{}", r.json);
    assert_eq!(r.json["error"]["code"], "unavailable");
    assert!(
        !r.json.to_string().contains("127.0.0.1"),
        "no internal detail in the body: {}",
        r.json
    );

    pg.start();
    wait_until("readiness 200 again, on its own", 60, || ready(port) == 200);
    for i in 13..16 {
        let at = t0 + chrono::Duration::minutes(i);
        assert_eq!(sample(port, at, 30.0), 202);
        acknowledged.push(at);
    }
    let last = *acknowledged.last().unwrap();
    wait_until("a forecast from a sample sent after the outage", 30, || {
        has_forecast_from(&log(port), last)
    });
    let after = log(port);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "every event from before the outage, unchanged"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let stored: Vec<i64> = rt.block_on(async {
        let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
        sqlx::query_scalar(
            "SELECT FLOOR(EXTRACT(EPOCH FROM ts))::BIGINT FROM metrics WHERE metric = 'load' ORDER BY ts",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    });
    let expected: Vec<i64> = acknowledged.iter().map(|t| t.timestamp()).collect();
    assert_eq!(stored, expected, "exactly the acknowledged samples are stored");
}

#[test]
fn redis_stopped_degrades_to_the_read_models_and_comes_back() {
    let Ok(server) = which("redis-server") else {
        panic!("redis-server is needed (scripts/test installs it)");
    };
    let rport = free_port();
    let dir = tempfile::tempdir().unwrap();
    let start_redis = || {
        Command::new(&server)
            .args([
                "--port",
                &rport.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut redis = start_redis();
    wait_until("redis up", 10, || TcpStream::connect(("127.0.0.1", rport)).is_ok());
    let db = format!("sqlite://{}", dir.path().join("r.db").display());
    let port = free_port();
    let url = format!("redis://127.0.0.1:{rport}");
    let mut child = serve(&db, port, &[("PSCALER_REDIS__URL", url.as_str())]);
    let t0 = chrono::Utc::now() - chrono::Duration::minutes(10);
    for i in 0..5 {
        assert_eq!(sample(port, t0 + chrono::Duration::minutes(i), 12.0), 202);
    }
    let current = || http(port, "GET", "/api/v1/predictions/current?service=default", "").unwrap();
    wait_until("a current prediction", 30, || {
        current().json["predictions"].as_array().is_some_and(|a| !a.is_empty())
    });
    wait_until("served from the cache", 10, || current().head.contains("x-cache: hit"));

    redis.kill().unwrap();
    redis.wait().unwrap();
    let r = current();
    assert_eq!(r.status, 200, "the read models answer without the cache: {}", r.json);
    assert!(r.head.contains("x-cache: miss"), "{}", r.head);
    assert_eq!(ready(port), 200, "a cache outage does not make the service unready");
    assert_eq!(
        sample(port, t0 + chrono::Duration::minutes(6), 12.0),
        202,
        "ingest goes on"
    );

    let mut redis = start_redis();
    wait_until("the cache serves again, on its own", 30, || {
        current().head.contains("x-cache: hit")
    });
    child.kill().unwrap();
    child.wait().unwrap();
    redis.kill().unwrap();
    redis.wait().unwrap();
}

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .ok_or(())
}
