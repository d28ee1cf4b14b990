//! `simulate`: replays a series as demand in virtual time and writes the replica schedule the scaler asks for.
//!
//! From the first whole minute of the test region to the last, once a
//! decision interval, the scaler sees only the observations up to that tick:
//! it forecasts from them (only when a new observation has arrived), feeds
//! the forecast, the observed load and the simulated cluster to
//! [`actors::decision::decide`], and applies the target under the protocol's
//! physics (a replica asked for serves after the warm-up; one let go stops at
//! once, pending ones first). A row is written whenever the target changes.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use actors::decision::{ClusterState, ForecastInput, ScalingPolicy, decide};
use actors::forecast::{self, Forecaster};
use actors::series::{self, Series};
use anyhow::{Context, bail};

/// Options of `predictive-scaler simulate`; the defaults are the protocol's physics.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The series CSV (`timestamp,value`), read as demand.
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write `timestamp,replicas`.
    #[arg(long)]
    pub output: PathBuf,
    /// Load one replica serves; default P99 of the training part / 20.
    #[arg(long)]
    pub capacity_per_replica: Option<f64>,
    /// Seconds from asking for a replica until it serves.
    #[arg(long, default_value_t = series::WARMUP_MIN * 60)]
    pub warmup_s: i64,
    /// Fewest replicas.
    #[arg(long, default_value_t = series::MIN_REPLICAS)]
    pub min_replicas: u32,
    /// Most replicas.
    #[arg(long, default_value_t = series::MAX_REPLICAS)]
    pub max_replicas: u32,
    /// Highest utilization planned for the forecast median (the provisioning quantile is planned at full capacity).
    #[arg(long, default_value_t = ScalingPolicy::default().target_utilization)]
    pub target_utilization: f64,
    /// Seconds between decisions (virtual time).
    #[arg(long, default_value_t = 60)]
    pub decision_interval_s: i64,
    /// No scale-down within this many seconds of the last change.
    #[arg(long, default_value_t = ScalingPolicy::default().scale_down_cooldown_s)]
    pub scale_down_cooldown_s: i64,
    /// Forecasting model (see `actors::forecast::model_names`).
    #[arg(long, default_value = forecast::DEFAULT_MODEL)]
    pub model: String,
    /// A fixed provisioning quantile instead of the newsvendor one.
    #[arg(long)]
    pub provisioning_quantile: Option<f64>,
    /// Cost of a violated minute (sets the newsvendor quantile against an idle replica-minute).
    #[arg(long, default_value_t = ScalingPolicy::default().violation_cost_per_minute)]
    pub violation_cost_per_minute: f64,
}

impl Args {
    /// The options for `input` with every default, writing to `output`.
    pub fn with_defaults(input: PathBuf, output: PathBuf) -> Args {
        let p = ScalingPolicy::default();
        Args {
            input,
            output,
            capacity_per_replica: None,
            warmup_s: series::WARMUP_MIN * 60,
            min_replicas: series::MIN_REPLICAS,
            max_replicas: series::MAX_REPLICAS,
            target_utilization: p.target_utilization,
            decision_interval_s: 60,
            scale_down_cooldown_s: p.scale_down_cooldown_s,
            model: forecast::DEFAULT_MODEL.to_string(),
            provisioning_quantile: None,
            violation_cost_per_minute: p.violation_cost_per_minute,
        }
    }
}

/// The simulated fleet: when each asked-for replica is (or will be) ready, oldest first.
struct Fleet {
    ready_at: Vec<i64>,
}

impl Fleet {
    fn resize(&mut self, want: u32, now: i64, ready_at: i64) {
        let want = want as usize;
        while self.ready_at.len() > want {
            // let a pending replica go first (the newest pending), else the newest ready one
            let idx = self
                .ready_at
                .iter()
                .rposition(|&r| r > now)
                .unwrap_or(self.ready_at.len() - 1);
            self.ready_at.remove(idx);
        }
        while self.ready_at.len() < want {
            self.ready_at.push(ready_at);
        }
    }

    fn ready(&self, now: i64) -> u32 {
        u32::try_from(self.ready_at.iter().filter(|&&r| r <= now).count()).unwrap_or(u32::MAX)
    }
}

/// The schedule `(timestamp, replicas)`, one row per change, for demand series `s`.
pub fn schedule(s: &Series, args: &Args, model: &dyn Forecaster) -> anyhow::Result<Vec<(i64, u32)>> {
    if args.decision_interval_s <= 0 {
        bail!("decision interval must be positive, got {}", args.decision_interval_s);
    }
    let cap = args.capacity_per_replica.unwrap_or_else(|| s.capacity_per_replica());
    if !(cap.is_finite() && cap > 0.0) {
        bail!("capacity per replica must be a positive number, got {cap}");
    }
    let lead_s = args.warmup_s.max(0) + args.decision_interval_s;
    let stale_s = ScalingPolicy::default().stale_forecast_s.max(2 * s.step_s);
    let policy = ScalingPolicy {
        min_replicas: args.min_replicas,
        max_replicas: args.max_replicas,
        capacity_per_replica: cap,
        target_utilization: args.target_utilization,
        warmup_s: args.warmup_s,
        decision_interval_s: args.decision_interval_s,
        scale_down_cooldown_s: args.scale_down_cooldown_s,
        stale_forecast_s: stale_s,
        provisioning_quantile: args.provisioning_quantile,
        violation_cost_per_minute: args.violation_cost_per_minute,
        // the protocol's replicas are one on-demand type: no spot, no other types
        spot_shares: vec![0.0],
        instance_types: Vec::new(),
        ..ScalingPolicy::default()
    };
    let horizon = usize::try_from((stale_s + lead_s + s.step_s - 1) / s.step_s)
        .unwrap_or(1)
        .max(1);
    let first = s.t[s.train_end()]
        .div_euclid(60)
        .saturating_add(i64::from(s.t[s.train_end()] % 60 != 0))
        * 60;
    let last = s.t[s.n() - 1].div_euclid(60) * 60;
    let ticks = usize::try_from((last - first) / args.decision_interval_s + 1).unwrap_or(0);
    eprintln!(
        "{}: {ticks} decisions every {} s from {}, capacity {cap:.6} per replica, forecasts of {horizon} steps with {}",
        s.name,
        args.decision_interval_s,
        series::format_time(first),
        model.name()
    );
    let started = Instant::now();
    let mut fleet = Fleet { ready_at: Vec::new() };
    let mut seen = 0usize; // observations with t <= now
    let mut cached: Option<(usize, ForecastInput)> = None;
    let mut rows: Vec<(i64, u32)> = Vec::new();
    let mut state = ClusterState {
        replicas: 0,
        ready_replicas: 0,
        last_scale_up_at: None,
        last_scale_down_at: None,
        observed_load: f64::NAN,
        observed_at: 0,
        instance_type: None,
        spot_share: 0.0,
    };
    let mut fallback_notes = 0usize;
    for tick in 0..ticks {
        let now = first + tick as i64 * args.decision_interval_s;
        while seen < s.n() && s.t[seen] <= now {
            seen += 1;
        }
        if seen == 0 {
            continue;
        }
        let last_obs = (0..seen).rev().find(|&i| s.y[i].is_finite()).unwrap_or(seen - 1);
        state.observed_load = s.y[last_obs];
        state.observed_at = s.t[last_obs];
        if cached.as_ref().is_none_or(|(n, _)| *n != seen) {
            let input = match model.forecast(&s.t[..seen], &s.y[..seen], s.step_s, horizon) {
                Ok(p) => Some(ForecastInput {
                    origin: s.t[seen - 1],
                    step_s: s.step_s,
                    p10: p.p10,
                    p50: p.p50,
                    p90: p.p90,
                }),
                Err(e) => {
                    if fallback_notes < 5 {
                        eprintln!("{}: no forecast at {}: {e}", s.name, series::format_time(now));
                    }
                    fallback_notes += 1;
                    None
                }
            };
            cached = input.map(|f| (seen, f));
        }
        if tick == 0 {
            // the fleet at the start is ready, sized for the observed load at the target utilization
            let start = (state.observed_load.max(0.0) / (cap * policy.target_utilization.clamp(0.01, 1.0))).ceil();
            let start = if start.is_finite() {
                start.min(f64::from(u32::MAX)) as u32
            } else {
                0
            };
            state.replicas = start.clamp(policy.min_replicas, policy.max_replicas.max(policy.min_replicas));
            state.ready_replicas = state.replicas;
        }
        let d = decide(&state, cached.as_ref().map(|(_, f)| f), &policy, now);
        let target = d.target_replicas;
        if tick == 0 {
            fleet.resize(target, now, now);
        } else {
            if target > state.replicas {
                state.last_scale_up_at = Some(now);
            } else if target < state.replicas {
                state.last_scale_down_at = Some(now);
            }
            fleet.resize(target, now, now + args.warmup_s.max(0));
        }
        state.replicas = target;
        if rows.last().is_none_or(|&(_, r)| r != target) {
            rows.push((now, target));
        }
        // the state the next decision sees
        state.ready_replicas = fleet.ready(now + args.decision_interval_s);
        if ticks >= 10 && (tick + 1) % (ticks / 10) == 0 {
            eprintln!(
                "{}: {}% ({:.1}s)",
                s.name,
                (tick + 1) * 100 / ticks,
                started.elapsed().as_secs_f64()
            );
        }
    }
    if rows.is_empty() {
        bail!("{}: the test region holds no whole minute to decide at", s.name);
    }
    Ok(rows)
}

/// Runs `predictive-scaler simulate`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let Some(model) = forecast::by_name(&args.model) else {
        bail!(
            "unknown model `{}` (known: {})",
            args.model,
            forecast::model_names().join(", ")
        );
    };
    let s = series::load_series(&args.input)?;
    let rows = schedule(&s, args, model.as_ref())?;
    let file = std::fs::File::create(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "timestamp,replicas")?;
    for (t, r) in &rows {
        writeln!(out, "{},{r}", series::format_time(*t))?;
    }
    out.flush()?;
    eprintln!(
        "{}: {} schedule rows written to {}",
        s.name,
        rows.len(),
        args.output.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four days at 5-minute steps of a daily cycle with a sharp evening peak.
    fn synthetic() -> Series {
        let mut state = 11u64;
        let pairs = (0..4 * 288)
            .map(|i: i64| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let noise = (state >> 40) as f64 / (1u64 << 24) as f64;
                let phase = (i % 288) as f64 / 288.0 * std::f64::consts::TAU;
                let peak = if (200..230).contains(&(i % 288)) { 60.0 } else { 0.0 };
                (1_400_000_000 + i * 300, 50.0 + 30.0 * phase.sin() + peak + 5.0 * noise)
            })
            .collect();
        Series::from_pairs("synthetic", pairs).unwrap()
    }

    fn args() -> Args {
        Args::with_defaults(PathBuf::from("in.csv"), PathBuf::from("out.csv"))
    }

    fn ensemble() -> Box<dyn Forecaster> {
        forecast::by_name(forecast::DEFAULT_MODEL).unwrap()
    }

    /// Violated minutes of a schedule against linearly interpolated demand, under the protocol's physics.
    fn violated_share(s: &Series, rows: &[(i64, u32)]) -> f64 {
        let cap = s.capacity_per_replica();
        let mut fleet = Fleet { ready_at: Vec::new() };
        let (mut bad, mut minutes) = (0, 0);
        let mut j = 0;
        let mut now = rows[0].0;
        while now <= s.t[s.n() - 1] {
            while j + 1 < rows.len() && rows[j + 1].0 <= now {
                j += 1;
            }
            fleet.resize(rows[j].1, now, if now == rows[0].0 { now } else { now + 180 });
            let i = s.t.partition_point(|&t| t <= now).clamp(1, s.n() - 1);
            let (t0, t1, y0, y1) = (s.t[i - 1], s.t[i], s.y[i - 1], s.y[i]);
            let demand = y0 + (y1 - y0) * (now - t0) as f64 / (t1 - t0) as f64;
            bad += usize::from(demand > f64::from(fleet.ready(now)) * cap + 1e-9);
            minutes += 1;
            now += 60;
        }
        bad as f64 / minutes as f64
    }

    #[test]
    fn schedule_starts_at_the_test_region_and_serves_the_demand() {
        let s = synthetic();
        let rows = schedule(&s, &args(), ensemble().as_ref()).unwrap();
        let start = s.t[s.train_end()];
        assert!(
            rows[0].0 <= start.div_euclid(60) * 60 + 60 && rows[0].0 >= start,
            "{rows:?}"
        );
        assert!(rows.iter().all(|&(_, r)| (1..=200).contains(&r)));
        assert!(rows.windows(2).all(|w| w[0].1 != w[1].1 && w[0].0 < w[1].0));
        let v = violated_share(&s, &rows);
        assert!(v < 0.05, "violated {v}");
    }

    #[test]
    fn tripling_the_future_changes_no_row_up_to_then() {
        let s = synthetic();
        let cut = s.t[s.train_end()] + 6 * 3600 + 30;
        let mut tripled = s.clone();
        for (t, y) in tripled.t.iter().zip(tripled.y.iter_mut()) {
            if *t > cut {
                *y *= 3.0;
            }
        }
        let a = schedule(&s, &args(), ensemble().as_ref()).unwrap();
        let b = schedule(&tripled, &args(), ensemble().as_ref()).unwrap();
        let early = |rows: &[(i64, u32)]| rows.iter().copied().filter(|r| r.0 <= cut).collect::<Vec<_>>();
        assert!(early(&a).len() > 3);
        assert_eq!(early(&a), early(&b));
        assert_ne!(a, b, "later rows must see the change");
    }

    #[test]
    fn bad_options_are_errors() {
        let s = synthetic();
        let mut a = args();
        a.capacity_per_replica = Some(0.0);
        assert!(schedule(&s, &a, ensemble().as_ref()).is_err());
        let mut a = args();
        a.decision_interval_s = 0;
        assert!(schedule(&s, &a, ensemble().as_ref()).is_err());
    }
}
