//! The decision rule itself (see the module doc of `decision`).

use super::policy::{ClusterState, Decision, ForecastInput, ScalingPolicy, Strategy};

/// Replicas needed to serve `load` at `per_replica` each, saturating in `u32`.
fn replicas_for(load: f64, per_replica: f64) -> u32 {
    let r = (load.max(0.0) / per_replica).ceil();
    if r.is_nan() {
        0
    } else if r >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        r as u32
    }
}

/// The highest (p50, p90) of the forecast over `[now, now + lead]`, linearly interpolated
/// between steps (from `start`, the value at the origin, before the first step), or why the
/// forecast cannot be used. `now` counts because a replica let go stops at once.
fn forecast_need(
    f: &ForecastInput,
    start: Option<f64>,
    now: i64,
    lead_s: i64,
    stale_s: i64,
) -> Result<(f64, f64), String> {
    let n = f.p50.len();
    if n == 0 || f.p90.len() != n || f.p10.len() != n {
        return Err(format!(
            "forecast has {} p10, {} p50, {} p90 values",
            f.p10.len(),
            n,
            f.p90.len()
        ));
    }
    if f.step_s <= 0 {
        return Err(format!("forecast step of {} s is not positive", f.step_s));
    }
    if f.origin > now {
        return Err(format!("forecast origin {} is after now {now}", f.origin));
    }
    let age = now - f.origin;
    if age > stale_s {
        return Err(format!("forecast is {age} s old, more than the {stale_s} s allowed"));
    }
    let end = now + lead_s;
    let covered = f.origin.saturating_add(f.step_s.saturating_mul(n as i64));
    if covered < end {
        return Err(format!(
            "forecast covers up to {covered}, the lead time needs up to {end}"
        ));
    }
    // value at time s: interpolate between the origin and the steps
    let at = |v: &[f64], s: i64| -> f64 {
        let pos = (s - f.origin) as f64 / f.step_s as f64; // >= 0
        if pos <= 1.0 {
            let first = start.unwrap_or(v[0]);
            return first + (v[0] - first) * pos;
        }
        let lo = (pos.floor() as usize).clamp(1, n);
        let hi = (lo + 1).min(n);
        let frac = pos - lo as f64;
        v[lo - 1] + (v[hi - 1] - v[lo - 1]) * frac
    };
    let mut best = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let mut take = |s: i64| {
        best.0 = best.0.max(at(&f.p50, s));
        best.1 = best.1.max(at(&f.p90, s));
    };
    take(now);
    take(end);
    for k in 1..=n {
        let s = f.origin + f.step_s * k as i64;
        if s > now && s <= end {
            take(s);
        }
    }
    let first = usize::try_from((now - f.origin) / f.step_s)
        .unwrap_or(0)
        .saturating_sub(1);
    let last = usize::try_from((end - f.origin + f.step_s - 1) / f.step_s)
        .unwrap_or(n)
        .min(n);
    if f.p50[first..last]
        .iter()
        .chain(&f.p90[first..last])
        .any(|v| !v.is_finite())
        || !best.1.is_finite()
    {
        return Err("forecast is not finite over the lead time".to_string());
    }
    Ok((best.0.max(0.0), best.1.max(0.0)))
}

/// Decides the replicas to ask for now (see the module doc for the rule).
pub fn decide(state: &ClusterState, forecast: Option<&ForecastInput>, policy: &ScalingPolicy, now: i64) -> Decision {
    let mut why = Vec::new();
    let min = policy.min_replicas;
    let max = policy.max_replicas.max(min);
    if policy.max_replicas < min {
        why.push(format!(
            "max_replicas {} is below min_replicas {min}: using {max}",
            policy.max_replicas
        ));
    }
    let current = state.replicas;
    let clamp = |r: u32| r.clamp(min, max);
    let hold = |why: Vec<String>, strategy| Decision {
        target_replicas: clamp(current),
        strategy,
        reasoning: why,
        requires_approval: false,
        required_p50: 0.0,
        required_p90: 0.0,
    };
    let cap = policy.capacity_per_replica;
    if !(cap.is_finite() && cap > 0.0) {
        why.push(format!(
            "capacity per replica {cap} is not a positive number: holding {current} replicas"
        ));
        return hold(why, Strategy::Hold);
    }
    let util = if policy.target_utilization.is_finite() && policy.target_utilization > 0.0 {
        policy.target_utilization.min(1.0)
    } else {
        why.push(format!(
            "target utilization {} is not usable: planning for 1.0",
            policy.target_utilization
        ));
        1.0
    };
    let per_replica = cap * util;
    let observed = state.observed_load;
    let observed_ok = observed.is_finite() && observed >= 0.0;
    let ready_capacity = f64::from(state.ready_replicas) * cap;

    // 1. emergency: the load already exceeds what serves now
    let lead_s = policy.warmup_s.max(0) + policy.decision_interval_s.max(0);
    let start = forecast.and_then(|f| (observed_ok && state.observed_at == f.origin).then_some(observed));
    let need = forecast.map(|f| forecast_need(f, start, now, lead_s, policy.stale_forecast_s));
    // an overload seen before the last scale-down was on a larger fleet: the forecast rules
    let seen_on_this_fleet = state.last_scale_down_at.is_none_or(|at| state.observed_at >= at);
    if observed_ok && observed > ready_capacity && seen_on_this_fleet {
        let observed_need = replicas_for(observed, per_replica);
        let (p50, p90, forecast_need) = match &need {
            Some(Ok((p50, p90))) => (*p50, *p90, replicas_for(*p90, per_replica)),
            _ => (observed, observed, 0),
        };
        let target = clamp(observed_need.max(forecast_need).max(current));
        why.push(format!(
            "observed load {observed:.4} exceeds the ready capacity {ready_capacity:.4} ({} ready x {cap:.4})",
            state.ready_replicas
        ));
        why.push(format!(
            "emergency: {observed_need} replicas for the observed load, {forecast_need} for the forecast p90 {p90:.4}, at utilization {util}: {target} at once"
        ));
        return Decision {
            target_replicas: target,
            strategy: Strategy::EmergencyScale,
            reasoning: why,
            requires_approval: false,
            required_p50: p50,
            required_p90: p90,
        };
    }

    // 2. without a usable forecast, follow the observed load
    let (p50, p90, fallback) = match need {
        Some(Ok((p50, p90))) => {
            why.push(format!(
                "forecast p90 peaks at {p90:.4} (p50 {p50:.4}) over the next {lead_s} s (warm-up {} s + interval {} s)",
                policy.warmup_s, policy.decision_interval_s
            ));
            (p50, p90, false)
        }
        other => {
            let reason = match other {
                Some(Err(e)) => e,
                _ => "no forecast".to_string(),
            };
            if !observed_ok {
                why.push(format!(
                    "{reason}, and the observed load {observed} is not usable: holding {current}"
                ));
                return hold(why, Strategy::ReactiveFallback);
            }
            why.push(format!(
                "{reason}: reactive fallback on the observed load {observed:.4}"
            ));
            (observed, observed, true)
        }
    };
    let desired = clamp(replicas_for(p90, per_replica));
    why.push(format!(
        "{desired} replicas serve {p90:.4} at {util} x {cap:.4} per replica (bounds [{min}, {max}]), {current} asked for now"
    ));

    // 3. move towards the desired replicas within the step limits and the cooldown
    let (target, mut strategy) = if desired > current {
        let burst = !fallback && f64::from(desired) >= policy.burst_factor * f64::from(current.max(1));
        if burst {
            why.push(format!(
                "a rise to {desired} is at least {}x the current {current}: burst at once",
                policy.burst_factor
            ));
            (desired, Strategy::PreemptiveBurst)
        } else {
            let step = current.saturating_add(policy.max_step_up.max(1));
            if step < desired {
                why.push(format!("ramp limited to +{} per decision", policy.max_step_up.max(1)));
            }
            (desired.min(step), Strategy::GradualRamp)
        }
    } else if desired < current {
        let last_change = state.last_scale_up_at.into_iter().chain(state.last_scale_down_at).max();
        match last_change {
            Some(at) if now - at < policy.scale_down_cooldown_s => {
                why.push(format!(
                    "scale-down to {desired} held: last change {} s ago, cooldown {} s",
                    now - at,
                    policy.scale_down_cooldown_s
                ));
                (current, Strategy::Hold)
            }
            _ => {
                let step = current.saturating_sub(policy.max_step_down.max(1));
                if step > desired {
                    why.push(format!(
                        "scale-down limited to -{} per decision",
                        policy.max_step_down.max(1)
                    ));
                }
                (desired.max(step), Strategy::ScaleDown)
            }
        }
    } else {
        (current, Strategy::Hold)
    };
    let target = clamp(target);
    if fallback {
        strategy = Strategy::ReactiveFallback;
    }
    let delta = target.abs_diff(current);
    let requires_approval = policy.approval_threshold.is_some_and(|th| delta >= th && delta > 0);
    if requires_approval {
        why.push(format!(
            "a change of {delta} replicas needs approval (threshold {:?})",
            policy.approval_threshold
        ));
    }
    Decision {
        target_replicas: target,
        strategy,
        reasoning: why,
        requires_approval,
        required_p50: p50,
        required_p90: p90,
    }
}
