//! Golden scenarios: a load shape run in virtual time through `decide` and a simulated
//! cluster (the protocol's physics), checked against expected bounds on violations and cost.
//!
//! Each `scenarios/*.json` holds the load as pieces (`constant`, `ramp`, `sine`, `spike`),
//! how the forecast is made (`shape`: the true future with a relative band, `last_value`:
//! the current load with a band, `none`), a partial policy, and `expect`: the most violated
//! minutes (%), the most replica-minutes above the perfect-foresight oracle (%), and the
//! strategies that must (and must not) appear.

use std::path::Path;

use actors::decision::{ClusterState, ForecastInput, ScalingPolicy, Strategy, decide};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Piece {
    Constant {
        from: usize,
        to: usize,
        value: f64,
    },
    Ramp {
        from: usize,
        to: usize,
        start: f64,
        end: f64,
    },
    Sine {
        from: usize,
        to: usize,
        mean: f64,
        amplitude: f64,
        period: f64,
    },
    Spike {
        from: usize,
        to: usize,
        add: f64,
    },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Forecast {
    Shape { band: f64 },
    LastValue { band: f64 },
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    max_violation_pct: f64,
    max_excess_over_oracle_pct: f64,
    #[serde(default)]
    strategies: Vec<Strategy>,
    #[serde(default)]
    never: Vec<Strategy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    description: String,
    minutes: usize,
    load: Vec<Piece>,
    forecast: Forecast,
    #[serde(default)]
    policy: serde_json::Value,
    expect: Expect,
}

const T0: i64 = 1_700_000_000;

fn load(s: &Scenario) -> Vec<f64> {
    let mut y = vec![0.0; s.minutes + 30];
    for p in &s.load {
        match *p {
            Piece::Constant { from, to, value } => (from..to.min(y.len())).for_each(|i| y[i] = value),
            Piece::Ramp { from, to, start, end } => (from..to.min(y.len()))
                .for_each(|i| y[i] = start + (end - start) * (i - from) as f64 / (to - from).max(1) as f64),
            Piece::Sine {
                from,
                to,
                mean,
                amplitude,
                period,
            } => (from..to.min(y.len()))
                .for_each(|i| y[i] = mean + amplitude * (i as f64 / period * std::f64::consts::TAU).sin()),
            Piece::Spike { from, to, add } => (from..to.min(y.len())).for_each(|i| y[i] += add),
        }
    }
    y
}

struct Outcome {
    violation_pct: f64,
    excess_pct: f64,
    strategies: Vec<Strategy>,
}

fn run(s: &Scenario) -> Outcome {
    let y = load(s);
    let mut policy: ScalingPolicy = serde_json::from_value(s.policy.clone()).expect("policy");
    policy.decision_interval_s = 60;
    let cap = policy.capacity_per_replica;
    let warmup = (policy.warmup_s / 60) as usize;
    let mut ready_at: Vec<usize> = Vec::new();
    let mut state = ClusterState {
        replicas: 0,
        ready_replicas: 0,
        last_scale_up_at: None,
        last_scale_down_at: None,
        observed_load: y[0],
        observed_at: T0,
        instance_type: None,
        spot_share: 0.0,
    };
    // the fleet at the start is ready, sized for the load at the target utilization
    let start =
        ((y[0] / (cap * policy.target_utilization)).ceil() as u32).clamp(policy.min_replicas, policy.max_replicas);
    ready_at.resize(start as usize, 0);
    state.replicas = start;
    let (mut violated, mut cost, mut strategies) = (0usize, 0u64, Vec::new());
    for i in 0..s.minutes {
        let now = T0 + 60 * i as i64;
        state.observed_load = y[i];
        state.observed_at = now;
        state.ready_replicas = ready_at.iter().filter(|&&r| r <= i).count() as u32;
        let f = match s.forecast {
            Forecast::Shape { band } => Some((1..=15).map(|k| y[i + k]).collect::<Vec<_>>()).map(|v| (v, band)),
            Forecast::LastValue { band } => Some((vec![y[i]; 15], band)),
            Forecast::None => None,
        }
        .map(|(v, band)| ForecastInput {
            origin: now,
            step_s: 60,
            p10: v.iter().map(|x| x * (1.0 - band)).collect(),
            p50: v.clone(),
            p90: v.iter().map(|x| x * (1.0 + band)).collect(),
        });
        let d = decide(&state, f.as_ref(), &policy, now);
        assert!((policy.min_replicas..=policy.max_replicas).contains(&d.target_replicas));
        let want = d.target_replicas as usize;
        if want > ready_at.len() {
            state.last_scale_up_at = Some(now);
            ready_at.resize(want, i + warmup);
        } else if want < ready_at.len() {
            state.last_scale_down_at = Some(now);
            while ready_at.len() > want {
                // a pending replica goes first, else the newest ready one
                let idx = ready_at.iter().rposition(|&r| r > i).unwrap_or(ready_at.len() - 1);
                ready_at.remove(idx);
            }
        }
        state.replicas = d.target_replicas;
        if !strategies.contains(&d.strategy) {
            strategies.push(d.strategy);
        }
        let ready = ready_at.iter().filter(|&&r| r <= i).count() as f64;
        if y[i] > ready * cap + 1e-9 && std::env::var("SCENARIO_DEBUG").is_ok() {
            eprintln!(
                "minute {i}: load {:.1} ready {ready} asked {} {:?} {:?}",
                y[i],
                ready_at.len(),
                d.strategy,
                d.reasoning
            );
        }
        violated += usize::from(y[i] > ready * cap + 1e-9);
        cost += ready_at.len() as u64;
    }
    let oracle: u64 = (0..s.minutes)
        .map(|i| {
            (i..=i + warmup)
                .map(|j| ((y[j] / cap).ceil() as u32).clamp(policy.min_replicas, policy.max_replicas))
                .max()
                .unwrap_or(0) as u64
        })
        .sum();
    Outcome {
        violation_pct: 100.0 * violated as f64 / s.minutes as f64,
        excess_pct: 100.0 * (cost as f64 / oracle as f64 - 1.0),
        strategies,
    }
}

#[test]
fn golden_scenarios_stay_within_their_bounds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    let mut failures = Vec::new();
    for f in &files {
        let s: Scenario = serde_json::from_str(&std::fs::read_to_string(f).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let o = run(&s);
        let name = f.file_stem().unwrap().to_string_lossy().to_string();
        eprintln!(
            "{name}: violated {:.2} % (max {}), excess over oracle {:.1} % (max {}), strategies {:?} — {}",
            o.violation_pct,
            s.expect.max_violation_pct,
            o.excess_pct,
            s.expect.max_excess_over_oracle_pct,
            o.strategies,
            s.description
        );
        if o.violation_pct > s.expect.max_violation_pct {
            failures.push(format!("{name}: violated {:.2} %", o.violation_pct));
        }
        if o.excess_pct > s.expect.max_excess_over_oracle_pct {
            failures.push(format!("{name}: excess {:.1} %", o.excess_pct));
        }
        for st in &s.expect.strategies {
            if !o.strategies.contains(st) {
                failures.push(format!("{name}: no {st:?} in {:?}", o.strategies));
            }
        }
        for st in &s.expect.never {
            if o.strategies.contains(st) {
                failures.push(format!("{name}: unexpected {st:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
