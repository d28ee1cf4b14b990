//! The decision engine itself (see the module doc of `decision`).

use std::borrow::Cow;
use std::sync::OnceLock;

use super::capacity::CapacityModel;
use super::cost::{CostModel, PriceTable};
use super::policy::{
    ClusterState, Decision, ForecastInput, ScalingPolicy, ScoreWeights, Scores, Strategy, TargetConfig, Verification,
};
use super::quantile::{Band, QUANTILE_RANGE, newsvendor};
use super::risk::{RiskAssessment, spot_risk, stability_risk, under_provisioning_risk};
use super::window;

/// Quantile used when neither a fixed one nor the costs give one.
const FALLBACK_QUANTILE: f64 = 0.9;

fn bundled() -> &'static PriceTable {
    static TABLE: OnceLock<PriceTable> = OnceLock::new();
    TABLE.get_or_init(PriceTable::bundled)
}

/// The movement from `current` towards `desired` within the step budgets and the cooldown.
struct Move {
    target: u32,
    strategy: Strategy,
}

/// Everything the steps of `decide` share.
struct Ctx<'a> {
    policy: &'a ScalingPolicy,
    state: &'a ClusterState,
    now: i64,
    min: u32,
    max: u32,
    current: u32,
}

impl Ctx<'_> {
    fn clamp(&self, r: u32) -> u32 {
        r.clamp(self.min, self.max)
    }

    fn last_change(&self) -> Option<i64> {
        self.state
            .last_scale_up_at
            .into_iter()
            .chain(self.state.last_scale_down_at)
            .max()
    }

    /// Ramp up (or burst), scale down (slowly, not within the cooldown, not below `floor`) or hold.
    fn step(&self, desired: u32, floor: u32, burst_allowed: bool, up_only: bool, why: &mut Vec<String>) -> Move {
        let p = self.policy;
        let current = self.current;
        if desired > current {
            let burst = burst_allowed && f64::from(desired) >= p.burst_factor * f64::from(current.max(1));
            if burst {
                why.push(format!(
                    "a rise to {desired} is at least {}x the current {current}: preemptive burst at once",
                    p.burst_factor
                ));
                return Move {
                    target: desired,
                    strategy: Strategy::PreemptiveBurst,
                };
            }
            let step = current.saturating_add(p.max_step_up.max(1));
            if step < desired {
                why.push(format!(
                    "gradual ramp limited to +{} per decision",
                    p.max_step_up.max(1)
                ));
            }
            return Move {
                target: desired.min(step),
                strategy: Strategy::GradualRamp,
            };
        }
        let desired = desired.max(floor.min(current));
        if desired < current {
            if up_only {
                why.push(format!("no scale-down to {desired} on stale state"));
                return Move {
                    target: current,
                    strategy: Strategy::Hold,
                };
            }
            if let Some(at) = self
                .state
                .last_scale_up_at
                .filter(|at| self.now - at < p.scale_down_cooldown_s)
            {
                why.push(format!(
                    "scale-down to {desired} held: last scale-up {} s ago, cooldown {} s",
                    self.now - at,
                    p.scale_down_cooldown_s
                ));
                return Move {
                    target: current,
                    strategy: Strategy::Hold,
                };
            }
            let step = current.saturating_sub(p.max_step_down.max(1));
            if step > desired {
                why.push(format!(
                    "scale-down limited to -{} per decision",
                    p.max_step_down.max(1)
                ));
            }
            return Move {
                target: desired.max(step),
                strategy: Strategy::ScaleDown,
            };
        }
        Move {
            target: current,
            strategy: Strategy::Hold,
        }
    }
}

/// One configuration the engine may ask for.
struct Candidate {
    config: TargetConfig,
    hourly: Option<f64>,
    capacity: f64,
    type_change: bool,
}

fn finite_weight(w: f64) -> f64 {
    if w.is_finite() && w > 0.0 { w } else { 0.0 }
}

fn weighted(w: &ScoreWeights, s: &Scores) -> f64 {
    let parts = [
        (w.cost, s.cost),
        (w.performance, s.performance),
        (w.stability, s.stability),
        (w.risk, s.risk),
        (w.transition, s.transition),
    ];
    let total: f64 = parts.iter().map(|(w, _)| finite_weight(*w)).sum();
    if total > 0.0 {
        parts.iter().map(|(w, s)| finite_weight(*w) * s).sum::<f64>() / total
    } else {
        parts.iter().map(|(_, s)| s).sum::<f64>() / parts.len() as f64
    }
}

/// Decides the configuration to ask for now (see the module doc for the rule).
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
    let cx = Ctx {
        policy,
        state,
        now,
        min,
        max,
        current,
    };
    let table: Cow<'_, PriceTable> = if policy.prices.is_empty() {
        Cow::Borrowed(bundled())
    } else {
        Cow::Owned(bundled().refreshed(&policy.prices))
    };
    let prices = table.cloud(policy.provider);
    let current_type = state
        .instance_type
        .clone()
        .unwrap_or_else(|| policy.instance_type.clone());
    let current_spot = if state.spot_share.is_finite() {
        state.spot_share.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let previous = TargetConfig {
        replicas: current,
        instance_type: current_type.clone(),
        spot_share: current_spot,
    };
    let warmup = policy.warmup_s.max(0) as f64;
    let hold = |why: Vec<String>, strategy| {
        let target = TargetConfig {
            replicas: cx.clamp(current),
            ..previous.clone()
        };
        Decision {
            target_replicas: target.replicas,
            strategy,
            reasoning: why,
            requires_approval: false,
            required_p50: 0.0,
            required_p90: 0.0,
            required_p10: 0.0,
            provisioning_quantile: 0.0,
            required_load: 0.0,
            estimated_hourly_cost: prices.hourly_cost(&target, warmup),
            verification: Verification {
                ready_replicas: target.replicas,
                max_utilization: 1.0,
                expected_utilization: 0.0,
                timeout_s: policy.warmup_s.max(0) * 3 + policy.decision_interval_s.max(0),
            },
            target,
            rollback: previous.clone(),
            scores: Scores::default(),
            risk: RiskAssessment::default(),
            candidates: 1,
        }
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
    let model = CapacityModel {
        per_replica: cap,
        reference_vcpus: prices
            .price(&policy.instance_type)
            .map(|p| p.vcpus)
            .filter(|v| v.is_finite() && *v > 0.0)
            .unwrap_or(1.0),
        warmup_s: policy.warmup_s,
        knee_utilization: policy.knee_utilization,
    };
    let per_current = model.per_replica_of(&prices, &current_type);
    let plan_per_replica = per_current * util;
    let observed = state.observed_load;
    let observed_ok = observed.is_finite() && observed >= 0.0;
    let ready_capacity = f64::from(state.ready_replicas) * per_current;

    // the provisioning quantile: newsvendor of a violated minute against an idle replica-minute
    let idle_per_minute = prices
        .price(&policy.instance_type)
        .map(|p| p.on_demand_hourly / 60.0)
        .unwrap_or(f64::NAN);
    let (q, q_why) = match policy.provisioning_quantile.filter(|q| q.is_finite()) {
        Some(q) => {
            let q = q.clamp(QUANTILE_RANGE.0, QUANTILE_RANGE.1);
            (q, format!("provisioning quantile {q:.3} (fixed by the policy)"))
        }
        None => match newsvendor(policy.violation_cost_per_minute, idle_per_minute) {
            Some(q) => (
                q,
                format!(
                    "provisioning quantile {q:.3} (newsvendor: a violated minute costs {:.4}, an idle {} minute {:.5})",
                    policy.violation_cost_per_minute, policy.instance_type, idle_per_minute
                ),
            ),
            None => (
                FALLBACK_QUANTILE,
                format!("provisioning quantile {FALLBACK_QUANTILE} (no usable violation or idle cost)"),
            ),
        },
    };

    // the ticks this decision covers, and the forecast over them
    let ticks = window::ticks(now, policy.decision_interval_s, policy.warmup_s);
    let lead_s = ticks.last().map_or(0, |t| t - now);
    let start = forecast.and_then(|f| (observed_ok && state.observed_at == f.origin).then_some(observed));
    let bands = forecast.map(|f| window::bands(f, start, now, &ticks, policy.stale_forecast_s));
    let stale_state_s = policy.stale_state_s.unwrap_or(policy.stale_forecast_s);
    let state_age = now - state.observed_at;
    let stale_state = state_age > stale_state_s || state_age < 0;

    // 1. emergency: the load already exceeds what serves now
    let seen_on_this_fleet = state.last_scale_down_at.is_none_or(|at| state.observed_at >= at);
    let peak = |bands: &[Band], f: &dyn Fn(&Band) -> f64| bands.iter().map(f).fold(0.0, f64::max);
    if observed_ok && !stale_state && observed > ready_capacity && seen_on_this_fleet {
        let observed_need = CapacityModel::replicas_for(observed, plan_per_replica);
        let (p10, p50, p90, need, forecast_need) = match &bands {
            Some(Ok(b)) => {
                let need = peak(b, &|x| x.at(q));
                (
                    peak(b, &|x| x.p10),
                    peak(b, &|x| x.p50),
                    peak(b, &|x| x.p90),
                    need,
                    CapacityModel::replicas_for(need, plan_per_replica),
                )
            }
            _ => (observed, observed, observed, observed, 0),
        };
        let target = cx.clamp(observed_need.max(forecast_need).max(current));
        why.push(format!(
            "observed load {observed:.4} exceeds the ready capacity {ready_capacity:.4} ({} ready x {per_current:.4})",
            state.ready_replicas
        ));
        why.push(format!(
            "emergency scale: {observed_need} replicas for the observed load, {forecast_need} for the forecast q{q:.2} {need:.4}, at utilization {util}: {target} at once"
        ));
        let mv = Move {
            target,
            strategy: Strategy::EmergencyScale,
        };
        return finish(
            &cx,
            &model,
            &prices,
            mv,
            Plan {
                p10,
                p50,
                p90,
                q,
                need,
                bands: bands.and_then(Result::ok).unwrap_or_default(),
                same_type_only: true,
            },
            previous,
            why,
        );
    }

    // 2. without a usable forecast or with stale state, follow the observed load
    let usable = match (&bands, stale_state) {
        (_, true) => Err(format!(
            "state is stale: the observed load is {state_age} s old (allowed {stale_state_s} s)"
        )),
        (Some(Ok(b)), false) => Ok(b.clone()),
        (Some(Err(e)), false) => Err(e.clone()),
        (None, false) => Err("no forecast".to_string()),
    };
    let b = match usable {
        Ok(b) => b,
        Err(reason) => {
            if !observed_ok {
                why.push(format!(
                    "{reason}, and the observed load {observed} is not usable: holding {current}"
                ));
                return hold(why, Strategy::ReactiveFallback);
            }
            why.push(format!(
                "{reason}: reactive fallback on the observed load {observed:.4}"
            ));
            let desired = cx.clamp(CapacityModel::replicas_for(observed, plan_per_replica));
            why.push(format!(
                "{desired} replicas serve {observed:.4} at {util} x {per_current:.4} per replica (bounds [{min}, {max}]), {current} asked for now"
            ));
            let mut mv = cx.step(desired, 0, false, stale_state, &mut why);
            mv.strategy = Strategy::ReactiveFallback;
            let plan = Plan {
                p10: observed,
                p50: observed,
                p90: observed,
                q,
                need: observed,
                bands: vec![Band::point(observed)],
                same_type_only: true,
            };
            return finish(&cx, &model, &prices, mv, plan, previous, why);
        }
    };

    // 3. plan for the provisioning quantile over the lead time
    let (p10, p50, p90) = (peak(&b, &|x| x.p10), peak(&b, &|x| x.p50), peak(&b, &|x| x.p90));
    let at_q = peak(&b, &|x| x.at(q));
    let median_room = p50 / util;
    let need = peak(&b, &|x| x.at(q).max(x.p50 / util));
    why.push(format!(
        "forecast over the next {lead_s} s (warm-up {} s, decisions every {} s) peaks at p10 {p10:.4}, p50 {p50:.4}, p90 {p90:.4}",
        policy.warmup_s, policy.decision_interval_s
    ));
    why.push(format!(
        "{q_why}: {at_q:.4} at full capacity; the median at utilization {util} needs {median_room:.4}: plan for {need:.4}"
    ));
    let desired = cx.clamp(CapacityModel::replicas_for(need, per_current));
    let floor = cx.clamp(CapacityModel::replicas_for(p90, per_current));
    why.push(format!(
        "{desired} replicas of {current_type} at {per_current:.4} each serve {need:.4} (bounds [{min}, {max}]); the p90 needs {floor}; {current} asked for now"
    ));
    let mv = cx.step(desired, floor, true, false, &mut why);
    let plan = Plan {
        p10,
        p50,
        p90,
        q,
        need,
        bands: b,
        same_type_only: false,
    };
    finish(&cx, &model, &prices, mv, plan, previous, why)
}

/// The load the decision planned for.
struct Plan {
    p10: f64,
    p50: f64,
    p90: f64,
    q: f64,
    need: f64,
    bands: Vec<Band>,
    /// Emergencies and fallbacks keep the instance type (a new fleet would need a whole warm-up).
    same_type_only: bool,
}

/// Generates the candidates that give the moved-to capacity (instance types x spot shares),
/// scores them, and builds the decision from the best.
fn finish(
    cx: &Ctx<'_>,
    model: &CapacityModel,
    prices: &dyn CostModel,
    mv: Move,
    plan: Plan,
    previous: TargetConfig,
    mut why: Vec<String>,
) -> Decision {
    let p = cx.policy;
    let warmup = p.warmup_s.max(0) as f64;
    let target = cx.clamp(mv.target);
    let per_current = model.per_replica_of(prices, &previous.instance_type);
    let wanted_capacity = f64::from(target) * per_current;

    // candidates: the current type first, then the reference, then the alternatives
    let mut types = vec![previous.instance_type.clone()];
    if !plan.same_type_only && mv.strategy != Strategy::Hold {
        for t in std::iter::once(&p.instance_type).chain(&p.instance_types) {
            if !types.contains(t) {
                types.push(t.clone());
            }
        }
    }
    let mut shares: Vec<f64> = p
        .spot_shares
        .iter()
        .copied()
        .filter(|s| s.is_finite() && (0.0..=1.0).contains(s))
        .collect();
    if plan.same_type_only || shares.is_empty() {
        shares = vec![previous.spot_share];
    }
    let mut candidates = Vec::new();
    for (i, ty) in types.iter().enumerate() {
        let per = model.per_replica_of(prices, ty);
        let count = if i == 0 {
            target
        } else {
            // a whole new fleet of the same capacity, at once: keep within bounds and budgets
            let n = CapacityModel::replicas_for(wanted_capacity, per);
            let cooling = cx
                .state
                .last_scale_up_at
                .is_some_and(|at| cx.now - at < p.scale_down_cooldown_s);
            let lowest = if cooling {
                cx.current
            } else {
                cx.current.saturating_sub(p.max_step_down.max(1))
            };
            let highest = if mv.strategy == Strategy::PreemptiveBurst {
                u32::MAX
            } else {
                cx.current.saturating_add(p.max_step_up.max(1))
            };
            if n < cx.min || n > cx.max || n < lowest || n > highest {
                continue;
            }
            n
        };
        for &share in &shares {
            let config = TargetConfig {
                replicas: count,
                instance_type: ty.clone(),
                spot_share: share,
            };
            let hourly = prices.hourly_cost(&config, warmup);
            // an unknown price only passes for the fleet as it is (a custom type, no table)
            if hourly.is_none() && (i > 0 || share != previous.spot_share) {
                continue;
            }
            candidates.push(Candidate {
                config,
                hourly,
                capacity: f64::from(count) * per,
                type_change: i > 0,
            });
        }
    }
    // the fleet as moved to, on-demand, is always a candidate
    if candidates.is_empty() {
        let config = TargetConfig {
            replicas: target,
            ..previous.clone()
        };
        candidates.push(Candidate {
            hourly: prices.hourly_cost(&config, warmup),
            capacity: f64::from(target) * per_current,
            config,
            type_change: false,
        });
    }
    let cheapest = candidates
        .iter()
        .filter_map(|c| c.hourly)
        .filter(|h| h.is_finite() && *h > 0.0)
        .fold(f64::INFINITY, f64::min);
    let since_change = cx.last_change().map(|at| cx.now - at);
    let current_capacity = f64::from(cx.current) * per_current;
    let short_before_ready = |bands: &[Band]| {
        // ticks before the new replicas serve whose planned load the current fleet cannot carry
        let n = bands.len().saturating_sub(1).max(1);
        bands[..bands.len().saturating_sub(1)]
            .iter()
            .filter(|b| b.at(plan.q) > current_capacity)
            .count() as f64
            / n as f64
    };
    let scored: Vec<(Scores, RiskAssessment)> = candidates
        .iter()
        .map(|c| {
            let per_day = prices
                .price(&c.config.instance_type)
                .map_or(0.0, |pr| pr.interruption_within(86_400.0));
            let under = under_provisioning_risk(c.capacity, &plan.bands);
            let stab = stability_risk(cx.current, c.config.replicas, since_change, p.scale_down_cooldown_s);
            let risk = RiskAssessment::new(spot_risk(c.config.spot_share, per_day), under, stab);
            let expected_u = if c.capacity > 0.0 {
                plan.p50 / c.capacity
            } else {
                f64::INFINITY
            };
            let slow = model.degradation(expected_u);
            let cost = match c.hourly {
                Some(h) if h > 0.0 && cheapest.is_finite() => (cheapest / h).min(1.0),
                _ => 1.0,
            };
            let type_penalty = if c.type_change { 0.5 } else { 0.0 };
            let spot_change = (c.config.spot_share - previous.spot_share).abs() * 0.25;
            let rising = c.config.replicas > cx.current || c.type_change;
            let transition = if rising {
                (1.0 - short_before_ready(&plan.bands)) * if c.type_change { 0.5 } else { 1.0 }
            } else {
                1.0
            };
            let mut s = Scores {
                cost,
                performance: ((1.0 - under) / slow).clamp(0.0, 1.0),
                stability: (1.0 - stab - type_penalty - spot_change).clamp(0.0, 1.0),
                risk: 1.0 - risk.overall,
                transition: transition.clamp(0.0, 1.0),
                total: 0.0,
            };
            s.total = weighted(&p.weights, &s);
            (s, risk)
        })
        .collect();
    let best = (0..candidates.len())
        .max_by(|&a, &b| scored[a].0.total.total_cmp(&scored[b].0.total).then(b.cmp(&a)))
        .unwrap_or(0);
    let chosen = &candidates[best];
    let (scores, risk) = scored[best];
    let mut config = chosen.config.clone();
    config.replicas = cx.clamp(config.replicas);
    let cost_text = chosen
        .hourly
        .map_or("unknown cost".to_string(), |h| format!("{h:.4}/h"));
    why.push(format!(
        "{}: {} x {} with {:.0} % spot, {cost_text} (best of {} candidates; scores cost {:.2}, performance {:.2}, stability {:.2}, risk {:.2}, transition {:.2}, total {:.3}; under-provisioning risk {:.3})",
        strategy_word(mv.strategy),
        config.replicas,
        config.instance_type,
        config.spot_share * 100.0,
        candidates.len(),
        scores.cost,
        scores.performance,
        scores.stability,
        scores.risk,
        scores.transition,
        scores.total,
        risk.under_provisioning
    ));
    let delta = config.replicas.abs_diff(cx.current);
    let changes =
        delta > 0 || config.instance_type != previous.instance_type || config.spot_share != previous.spot_share;
    let requires_approval =
        mv.strategy != Strategy::EmergencyScale && changes && p.approval_threshold.is_some_and(|th| delta >= th);
    if requires_approval {
        why.push(format!(
            "a change of {delta} replicas needs approval (threshold {:?})",
            p.approval_threshold
        ));
    }
    let capacity = chosen.capacity.max(f64::MIN_POSITIVE);
    Decision {
        target_replicas: config.replicas,
        strategy: mv.strategy,
        reasoning: why,
        requires_approval,
        required_p50: plan.p50,
        required_p90: plan.p90,
        required_p10: plan.p10,
        provisioning_quantile: plan.q,
        required_load: plan.need,
        verification: Verification {
            ready_replicas: config.replicas,
            max_utilization: 1.0,
            expected_utilization: (plan.p50 / capacity).min(1e9),
            timeout_s: p.warmup_s.max(0) * 3 + p.decision_interval_s.max(0),
        },
        estimated_hourly_cost: chosen.hourly,
        target: config,
        rollback: previous,
        scores,
        risk,
        candidates: candidates.len(),
    }
}

fn strategy_word(s: Strategy) -> &'static str {
    match s {
        Strategy::Hold => "hold",
        Strategy::GradualRamp => "gradual ramp",
        Strategy::PreemptiveBurst => "preemptive burst",
        Strategy::EmergencyScale => "emergency scale",
        Strategy::ScaleDown => "scale down",
        Strategy::ReactiveFallback => "reactive fallback",
    }
}
