//! The control loop in virtual time: it decides at every tick (reactively when there is no
//! forecast), drives verification and rollback without samples, refuses stale approvals,
//! expires waiting ones, records why it holds only when the reason changes, and keeps a slow
//! model of one service from holding up another.

use std::sync::Arc;
use std::sync::mpsc;

use actix::Actor;
use actors::decision::ScalingPolicy;
use actors::driver::VirtualDriver;
use actors::execution::{ScaleTarget, SimulatedCluster};
use actors::forecast::{ForecastError, Forecaster, QuantilePath};
use actors::messages::{Approve, Ingested, Outcome, Reconcile, Sample};
use actors::supervisor::{RootSupervisor, ServiceActors, StartService};
use actors::testing::{FlakyStore, context};
use actors::{ActorError, ForecastSettings, LOAD_METRIC, ManualClock, QUARANTINE_METRIC, ServiceContext};
use chrono::{DateTime, Duration, TimeZone, Utc};
use events::metrics::MetricStore;
use events::store::sqlite::SqliteStore;
use events::{Event, EventStore};

fn at(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap() + Duration::minutes(min)
}

struct Rig {
    _dir: tempfile::TempDir,
    db: Arc<SqliteStore>,
    flaky: Arc<FlakyStore>,
    clock: ManualClock,
    cluster: Arc<SimulatedCluster>,
    ctx: ServiceContext,
}

/// One service `api` on SQLite (through a store that can be told to fail), one-minute steps,
/// 100 load per replica, two replicas, evaluated every minute.
async fn rig(policy: ScalingPolicy) -> Rig {
    rig_with(policy, 2).await
}

async fn rig_with(policy: ScalingPolicy, replicas: u32) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        SqliteStore::connect(dir.path().join("r.db").to_str().unwrap())
            .await
            .unwrap(),
    );
    let flaky = Arc::new(FlakyStore::new(db.clone()));
    let clock = ManualClock::at(at(0));
    let cluster =
        Arc::new(SimulatedCluster::new(Arc::new(clock.clone()), Duration::minutes(3)).with_service("api", replicas));
    let mut ctx = context(
        "api",
        flaky.clone(),
        db.clone(),
        Arc::new(clock.clone()),
        cluster.clone(),
    );
    ctx.forecast = ForecastSettings {
        model: "snaive".into(),
        step_seconds: 60,
        horizon_minutes: 30,
        cadence_seconds: 60,
        history_seconds: 86_400,
        min_points: 3,
        ..ForecastSettings::default()
    };
    ctx.policy = ScalingPolicy {
        capacity_per_replica: 100.0,
        spot_shares: vec![0.0],
        ..policy
    };
    ctx.reconcile.interval_s = 60;
    Rig {
        _dir: dir,
        db,
        flaky,
        clock,
        cluster,
        ctx,
    }
}

impl Rig {
    async fn start(&self) -> (ServiceActors, VirtualDriver) {
        let a = RootSupervisor::default()
            .start()
            .send(StartService(self.ctx.clone()))
            .await
            .unwrap()
            .unwrap();
        let d = VirtualDriver::new(self.clock.clone(), a.clone(), 60, at(0));
        (a, d)
    }

    async fn events(&self) -> Vec<Event> {
        self.db
            .read_all(0, 1_000_000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect()
    }

    async fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events().await.iter().filter(|e| f(e)).count()
    }
}

async fn feed(d: &mut VirtualDriver, from: i64, to: i64, load: impl Fn(i64) -> f64) -> Vec<Outcome> {
    let mut out = Vec::new();
    for i in from..to {
        let (_, o) = d
            .feed(Sample {
                ts: at(i),
                value: load(i),
            })
            .await
            .unwrap();
        out.extend(o);
    }
    out
}

/// A model that always fails.
struct Broken;

impl Forecaster for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }
    fn forecast(&self, _: &[i64], _: &[f64], _: i64, _: usize) -> Result<QuantilePath, ForecastError> {
        Err(ForecastError::NonFinite)
    }
}

#[actix::test]
async fn a_failing_forecaster_still_gets_a_reactive_decision_that_says_why() {
    let r = rig(ScalingPolicy::default()).await;
    let mut ctx = r.ctx.clone();
    ctx.service = "api".into();
    let (sup, a) = actors::supervisor::ServiceSupervisor::start_with(ctx, Some(Arc::new(Broken))).unwrap();
    let _keep = sup;
    let mut d = VirtualDriver::new(r.clock.clone(), a, 60, at(0));
    // load rises well above the two replicas' capacity
    let outcomes = feed(&mut d, 0, 10, |i| 100.0 + 60.0 * i as f64).await;
    assert!(
        outcomes.iter().any(|o| matches!(o, Outcome::Proposed { .. })),
        "{outcomes:?}"
    );
    let proposals: Vec<_> = r
        .events()
        .await
        .into_iter()
        .filter_map(|e| match e {
            Event::DecisionProposed(p) => Some(p),
            _ => None,
        })
        .collect();
    assert!(!proposals.is_empty());
    assert!(proposals.iter().all(|p| p.forecast_id.is_none()));
    let first = &proposals[0];
    assert!(
        first.reasoning[0].starts_with("forecaster: model `broken`"),
        "{:?}",
        first.reasoning
    );
    assert_eq!(r.count(|e| matches!(e, Event::ForecastMade(_))).await, 0);
}

#[actix::test]
async fn without_samples_verification_times_out_and_rolls_back() {
    let r = rig(ScalingPolicy::default()).await;
    let (_, mut d) = r.start().await;
    feed(&mut d, 0, 5, |_| 150.0).await;
    r.cluster.stall_new_replicas(true);
    // a surge: the loop scales up; the new replicas never get ready
    feed(&mut d, 5, 7, |_| 900.0).await;
    assert!(r.count(|e| matches!(e, Event::ScalingSucceeded(_))).await >= 1);
    // then silence: no sample for an hour; only the timer ticks
    d.advance_to(at(67), true).await.unwrap();
    let ev = r.events().await;
    assert!(
        ev.iter().any(|e| matches!(e, Event::VerificationFailed(_))),
        "timed out"
    );
    assert!(
        ev.iter().any(|e| matches!(e, Event::RollbackCompleted(_))),
        "rolled back"
    );
}

/// Ten replicas and every change waiting for a person; a load just under what they serve
/// (no emergency: those never wait) makes the engine ask for more.
async fn waiting_rig(ttl_s: i64) -> (Rig, ServiceActors, VirtualDriver) {
    let mut r = rig_with(
        ScalingPolicy {
            approval_threshold: Some(1),
            ..ScalingPolicy::default()
        },
        10,
    )
    .await;
    r.ctx.reconcile.approval_ttl_s = ttl_s;
    let (a, d) = r.start().await;
    (r, a, d)
}

#[actix::test]
async fn an_approval_on_a_plan_that_moved_on_is_refused_and_runs_nothing() {
    let (r, a, mut d) = waiting_rig(900).await;
    feed(&mut d, 0, 5, |_| 850.0).await;
    let out = feed(&mut d, 5, 6, |_| 980.0).await;
    let Some(Outcome::Proposed {
        decision_id,
        awaiting_approval: true,
        replicas,
    }) = out.last().cloned()
    else {
        panic!("{out:?}")
    };
    assert!(replicas > 10);
    // the load falls away before anyone approves (and before the next evaluation)
    r.clock.set(at(6));
    a.ingest
        .send(Sample {
            ts: at(6),
            value: 150.0,
        })
        .await
        .unwrap()
        .unwrap();
    let e = a
        .decision
        .send(Approve {
            decision_id,
            by: "ops".into(),
            comment: None,
        })
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, ActorError::Conflict(_)), "{e}");
    assert!(e.to_string().contains("fresh evaluation"), "{e}");
    assert_eq!(r.count(|e| matches!(e, Event::DecisionApproved(_))).await, 0);
    assert_eq!(r.count(|e| matches!(e, Event::ScalingStarted(_))).await, 0);
    assert_eq!(r.cluster.state("api").await.unwrap().desired, 10);
}

#[actix::test]
async fn a_waiting_approval_expires_after_its_ttl() {
    let (r, _, mut d) = waiting_rig(600).await;
    feed(&mut d, 0, 5, |_| 850.0).await;
    let out = feed(&mut d, 5, 30, |_| 980.0).await;
    let codes: Vec<String> = out
        .iter()
        .filter_map(|o| match o {
            Outcome::Held { code, .. } => Some(code.clone()),
            _ => None,
        })
        .collect();
    assert!(codes.iter().all(|c| c == "awaiting_approval"), "{codes:?}");
    let ev = r.events().await;
    let proposed = ev.iter().filter(|e| matches!(e, Event::DecisionProposed(_))).count();
    let expired: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::DecisionExpired(x) => Some(x.waited_seconds),
            _ => None,
        })
        .collect();
    assert_eq!(expired, vec![660, 660], "expired at the first tick past the TTL");
    assert_eq!(
        proposed,
        expired.len() + 1,
        "each expired proposal was followed by a new one"
    );
    assert_eq!(r.count(|e| matches!(e, Event::DecisionSuperseded(_))).await, 0);
}

#[actix::test]
async fn holds_are_recorded_when_the_reason_changes_not_at_every_tick() {
    let r = rig(ScalingPolicy::default()).await;
    let (_, mut d) = r.start().await;
    let out = feed(&mut d, 0, 60, |_| 150.0).await;
    let held = out.iter().filter(|o| matches!(o, Outcome::Held { .. })).count();
    let recorded = r.count(|e| matches!(e, Event::DecisionHeld(_))).await;
    assert!(held > 50, "{held}");
    assert!((1..=4).contains(&recorded), "{recorded} DecisionHeld for {held} holds");
    let st = r.ctx.status.get("api").unwrap();
    assert_eq!(st.last_evaluated_at, Some(at(59)));
    assert!(st.ready(), "{st:?}");
}

#[actix::test]
async fn implausible_and_out_of_bounds_samples_never_stop_forecasting() {
    let r = rig(ScalingPolicy::default()).await;
    let (a, mut d) = r.start().await;
    feed(&mut d, 0, 30, |_| 150.0).await;
    let before = r.count(|e| matches!(e, Event::ForecastMade(_))).await;
    // 1e300 and a sample dated a year ahead are refused by name
    for (ts, v, field) in [(at(30), 1e300, "value"), (at(60 * 24 * 365), 150.0, "timestamp")] {
        match a.ingest.send(Sample { ts, value: v }).await.unwrap() {
            Err(ActorError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{other:?}"),
        }
    }
    // a lone spike within bounds is quarantined, stored apart
    let (got, _) = d.feed(Sample { ts: at(30), value: 5e6 }).await.unwrap();
    assert!(matches!(got, Ingested::Quarantined { .. }), "{got:?}");
    feed(&mut d, 31, 40, |_| 150.0).await;
    let after = r.count(|e| matches!(e, Event::ForecastMade(_))).await;
    assert!(after >= before + 9, "forecasting went on: {before} -> {after}");
    let big = r
        .count(|e| matches!(e, Event::DecisionProposed(p) if p.target.replicas > 10))
        .await;
    assert_eq!(big, 0, "no scale-up from the spike");
    let q = r.db.range("api", QUARANTINE_METRIC, at(0), at(100)).await.unwrap();
    assert_eq!(q.len(), 1);
    let load = r.db.range("api", LOAD_METRIC, at(0), at(100)).await.unwrap();
    assert_eq!(load.len(), 39);
}

#[actix::test]
async fn a_failed_atomic_append_leaves_no_dangling_proposal() {
    let (r, _, mut d) = waiting_rig(900).await;
    feed(&mut d, 0, 5, |_| 850.0).await;
    feed(&mut d, 5, 6, |_| 980.0).await;
    assert_eq!(r.count(|e| matches!(e, Event::DecisionProposed(_))).await, 1);
    // an emergency supersedes the waiting proposal; the store refuses that append
    r.flaky.fail_next_appends_to("decision/", 1);
    let e = d
        .feed(Sample {
            ts: at(6),
            value: 6000.0,
        })
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("injected"),
        "the evaluation failed on the append: {e}"
    );
    assert_eq!(
        r.count(|e| matches!(e, Event::DecisionProposed(_))).await,
        1,
        "no new proposal"
    );
    assert_eq!(
        r.count(|e| matches!(e, Event::DecisionSuperseded(_))).await,
        0,
        "and nothing superseded"
    );
    // the next tick, with the store back, supersedes and proposes together
    feed(&mut d, 7, 8, |_| 6000.0).await;
    assert_eq!(r.count(|e| matches!(e, Event::DecisionProposed(_))).await, 2);
    assert_eq!(r.count(|e| matches!(e, Event::DecisionSuperseded(_))).await, 1);
    assert!(r.cluster.state("api").await.unwrap().desired > 10, "the emergency ran");
}

/// A model that blocks until told to go on.
struct Stuck(std::sync::Mutex<mpsc::Receiver<()>>);

impl Forecaster for Stuck {
    fn name(&self) -> &'static str {
        "stuck"
    }
    fn forecast(&self, _: &[i64], y: &[f64], _: i64, h: usize) -> Result<QuantilePath, ForecastError> {
        let _ = self.0.lock().unwrap().recv();
        let v = *y.last().unwrap_or(&0.0);
        Ok(QuantilePath {
            p10: vec![v; h],
            p50: vec![v; h],
            p90: vec![v; h],
            notes: vec![],
        })
    }
}

#[actix::test]
async fn a_stuck_model_of_one_service_holds_up_no_other() {
    let r = rig(ScalingPolicy::default()).await;
    let (tx, rx) = mpsc::channel();
    let mut slow = r.ctx.clone();
    slow.service = "slow".into();
    slow.reconcile.fit_timeout_s = 1;
    let slow_cluster =
        Arc::new(SimulatedCluster::new(Arc::new(r.clock.clone()), Duration::minutes(3)).with_service("slow", 2));
    slow.target = slow_cluster;
    let (_s1, slow_actors) =
        actors::supervisor::ServiceSupervisor::start_with(slow, Some(Arc::new(Stuck(rx.into())))).unwrap();
    let (_, mut fast) = r.start().await;
    feed(&mut fast, 0, 5, |_| 150.0).await;
    for i in 0..5 {
        slow_actors
            .ingest
            .send(Sample {
                ts: at(i),
                value: 150.0,
            })
            .await
            .unwrap()
            .unwrap();
    }
    // the slow service's evaluation waits on its model (up to its 1 s limit) while the other goes on
    let pending = slow_actors.decision.send(Reconcile { now: at(4) });
    let other = feed(&mut fast, 5, 10, |_| 150.0).await;
    assert_eq!(other.len(), 5, "the other service evaluated at every tick");
    let slow_outcome = pending.await.unwrap().unwrap();
    assert!(
        matches!(slow_outcome, Outcome::Held { .. } | Outcome::Proposed { .. }),
        "{slow_outcome:?}"
    );
    let problem = r.ctx.status.get("slow").unwrap().forecast_problem;
    assert!(problem.is_some_and(|p| p.contains("limit")), "the slow model timed out");
    tx.send(()).unwrap();
}
