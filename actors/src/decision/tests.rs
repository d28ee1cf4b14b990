//! Given a cluster, a forecast and a policy, when deciding, then the strategy, target and output follow the rule.

use proptest::prelude::*;

use super::actor::DecisionInputs;
use super::{ClusterState, Decision, ForecastInput, ScalingPolicy, ScoreWeights, Strategy, decide};

const NOW: i64 = 1_000_000;

fn policy() -> ScalingPolicy {
    ScalingPolicy {
        capacity_per_replica: 10.0,
        target_utilization: 1.0,
        spot_shares: vec![0.0],
        violation_cost_per_minute: 0.0144, // with 0.0016 an idle minute: the p90
        ..ScalingPolicy::default()
    }
}

fn state(replicas: u32, load: f64) -> ClusterState {
    ClusterState {
        replicas,
        ready_replicas: replicas,
        last_scale_up_at: None,
        last_scale_down_at: None,
        observed_load: load,
        observed_at: NOW,
        instance_type: None,
        spot_share: 0.0,
    }
}

/// A forecast from `NOW` at one-minute steps with constant p50 and p90.
fn flat(p50: f64, p90: f64) -> ForecastInput {
    ForecastInput {
        origin: NOW,
        step_s: 60,
        p10: vec![p50 * 0.5; 10],
        p50: vec![p50; 10],
        p90: vec![p90; 10],
    }
}

fn says(d: &Decision, word: &str) -> bool {
    d.reasoning.iter().any(|r| r.contains(word))
}

#[test]
fn given_forecast_matching_capacity_when_deciding_then_hold() {
    let d = decide(&state(5, 40.0), Some(&flat(40.0, 50.0)), &policy(), NOW);
    assert_eq!((d.target_replicas, d.strategy), (5, Strategy::Hold));
    assert_eq!(d.required_p90, 50.0);
    assert_eq!(d.provisioning_quantile, 0.9, "newsvendor of 0.0144 against 0.0016");
    assert!(says(&d, "p90 50"), "{:?}", d.reasoning);
    assert_eq!(d.target, d.rollback, "a hold keeps the configuration");
}

#[test]
fn given_moderate_rise_when_deciding_then_gradual_ramp_within_step_limit() {
    let p = ScalingPolicy {
        max_step_up: 2,
        ..policy()
    };
    let d = decide(&state(10, 90.0), Some(&flat(100.0, 140.0)), &p, NOW);
    assert_eq!((d.target_replicas, d.strategy), (12, Strategy::GradualRamp));
    assert!(says(&d, "+2"), "{:?}", d.reasoning);
    assert_eq!(d.rollback.replicas, 10);
    assert_eq!(d.verification.ready_replicas, 12);
}

#[test]
fn given_burst_inside_lead_time_when_deciding_then_preemptive_burst_at_once() {
    let mut f = flat(10.0, 20.0);
    f.p90[2] = 300.0; // minute 3: the last tick before the next decision's replicas serve
    let d = decide(&state(2, 10.0), Some(&f), &policy(), NOW);
    assert_eq!((d.target_replicas, d.strategy), (30, Strategy::PreemptiveBurst));
    assert!(says(&d, "preemptive burst"), "{:?}", d.reasoning);
    // a burst beyond the lead time does not count yet
    let mut f = flat(10.0, 20.0);
    f.p90[4] = 300.0;
    let d = decide(&state(2, 10.0), Some(&f), &policy(), NOW);
    assert_eq!((d.target_replicas, d.strategy), (2, Strategy::Hold));
}

#[test]
fn given_load_above_ready_capacity_when_deciding_then_emergency_without_step_limit() {
    let mut s = state(10, 150.0);
    s.ready_replicas = 5; // 50 ready capacity
    let p = ScalingPolicy {
        max_step_up: 1,
        approval_threshold: Some(1),
        ..policy()
    };
    let d = decide(&s, Some(&flat(100.0, 120.0)), &p, NOW);
    assert_eq!((d.target_replicas, d.strategy), (15, Strategy::EmergencyScale));
    assert!(!d.requires_approval, "emergencies never wait");
    assert!(says(&d, "150"), "{:?}", d.reasoning);
}

#[test]
fn given_overload_seen_before_the_last_scale_down_when_deciding_then_the_forecast_rules() {
    let mut s = state(5, 100.0);
    s.observed_at = NOW - 200;
    s.last_scale_down_at = Some(NOW - 100); // the overload was on the larger fleet
    let f = ForecastInput {
        origin: NOW - 200,
        ..flat(30.0, 40.0)
    };
    let d = decide(&s, Some(&f), &policy(), NOW);
    assert_ne!(d.strategy, Strategy::EmergencyScale, "{d:?}");
    s.last_scale_down_at = Some(NOW - 300);
    let d = decide(&s, Some(&f), &policy(), NOW);
    assert_eq!((d.target_replicas, d.strategy), (10, Strategy::EmergencyScale));
}

#[test]
fn given_observed_load_at_the_origin_when_deciding_then_now_counts_and_the_path_starts_there() {
    // load 95 observed now, forecast says 20 from the next step: the replicas still serve 95 now
    let d = decide(&state(10, 95.0), Some(&flat(20.0, 20.0)), &policy(), NOW);
    assert_eq!((d.target_replicas, d.strategy), (10, Strategy::Hold), "{d:?}");
    assert_eq!(d.required_p90, 95.0);
    // halfway to a 5-minute step, the need is interpolated from the observed value
    let f = ForecastInput {
        step_s: 300,
        ..flat(20.0, 20.0)
    };
    let d = decide(&state(10, 90.0), Some(&f), &policy(), NOW + 150);
    assert!((d.required_p90 - 55.0).abs() < 1e-9, "{d:?}");
}

#[test]
fn given_falling_forecast_when_deciding_then_scale_down_within_limits_and_cooldown() {
    let p = ScalingPolicy {
        max_step_down: 3,
        ..policy()
    };
    let d = decide(&state(10, 20.0), Some(&flat(10.0, 15.0)), &p, NOW);
    assert_eq!((d.target_replicas, d.strategy), (7, Strategy::ScaleDown));
    let mut s = state(10, 20.0);
    s.last_scale_up_at = Some(NOW - 100);
    let d = decide(&s, Some(&flat(10.0, 15.0)), &p, NOW);
    assert_eq!((d.target_replicas, d.strategy), (10, Strategy::Hold));
    assert!(says(&d, "cooldown"), "{:?}", d.reasoning);
}

#[test]
fn given_low_provisioning_quantile_when_scaling_down_then_never_below_the_p90_of_the_window() {
    let p = ScalingPolicy {
        provisioning_quantile: Some(0.5),
        ..policy()
    };
    let f = ForecastInput {
        p10: vec![5.0; 10],
        ..flat(10.0, 60.0)
    };
    let mut s = state(10, 10.0);
    s.observed_at = NOW - 60; // not the origin: the window is the forecast's alone
    let d = decide(&s, Some(&f), &p, NOW);
    assert_eq!(d.provisioning_quantile, 0.5);
    assert_eq!((d.target_replicas, d.strategy), (6, Strategy::ScaleDown), "{d:?}");
    assert!(says(&d, "the p90 needs 6"), "{:?}", d.reasoning);
    // from below, a rise goes to the quantile's need only
    let d = decide(&state(0, 0.0), Some(&f), &p, NOW);
    assert_eq!(d.target_replicas, 1, "{d:?}");
}

#[test]
fn given_costlier_violations_when_deciding_then_a_higher_quantile_and_more_replicas() {
    let f = ForecastInput {
        p10: vec![80.0; 10],
        ..flat(100.0, 130.0)
    };
    let mut s = state(10, 100.0);
    s.observed_at = NOW - 60;
    let cheap = ScalingPolicy {
        violation_cost_per_minute: 0.0016, // as much as an idle replica-minute: the median
        ..policy()
    };
    let dear = ScalingPolicy {
        violation_cost_per_minute: 0.3,
        ..policy()
    };
    let a = decide(&s, Some(&f), &cheap, NOW);
    let b = decide(&s, Some(&f), &dear, NOW);
    assert_eq!(a.provisioning_quantile, 0.5);
    assert!(b.provisioning_quantile > 0.99, "{}", b.provisioning_quantile);
    assert_eq!(a.target_replicas, 10);
    assert!(b.target_replicas > 13, "{b:?}");
    assert!(says(&b, "newsvendor"), "{:?}", b.reasoning);
}

#[test]
fn given_no_usable_forecast_when_deciding_then_reactive_fallback_says_why() {
    let s = state(20, 95.0); // needs 10: a reactive scale-down
    let stale = ForecastInput {
        origin: NOW - 10_000,
        ..flat(10.0, 10.0)
    };
    let short = ForecastInput {
        p10: vec![1.0],
        p50: vec![1.0],
        p90: vec![1.0],
        ..flat(1.0, 1.0)
    };
    let mut nan = flat(10.0, 10.0);
    nan.p90[1] = f64::NAN;
    let empty = ForecastInput {
        p10: vec![],
        p50: vec![],
        p90: vec![],
        ..flat(1.0, 1.0)
    };
    let future = ForecastInput {
        origin: NOW + 60,
        ..flat(1.0, 1.0)
    };
    let negative = flat(-5.0, -1.0);
    for (f, word) in [
        (None, "no forecast"),
        (Some(&stale), "old"),
        (Some(&short), "covers"),
        (Some(&nan), "finite"),
        (Some(&empty), "0 p50"),
        (Some(&future), "after now"),
        (Some(&negative), "negative"),
    ] {
        let d = decide(&s, f, &policy(), NOW);
        assert_eq!(
            (d.target_replicas, d.strategy),
            (10, Strategy::ReactiveFallback),
            "{word}"
        );
        assert!(says(&d, word), "{word}: {:?}", d.reasoning);
        assert!(says(&d, "reactive fallback"), "{word}: {:?}", d.reasoning);
    }
    // nothing usable at all: hold
    let d = decide(&state(4, f64::NAN), None, &policy(), NOW);
    assert_eq!((d.target_replicas, d.strategy), (4, Strategy::ReactiveFallback));
}

#[test]
fn given_stale_state_when_deciding_then_reactive_and_never_down() {
    let mut s = state(20, 95.0);
    s.observed_at = NOW - 5_000;
    let f = ForecastInput {
        origin: NOW - 100,
        ..flat(10.0, 10.0)
    };
    let d = decide(&s, Some(&f), &policy(), NOW);
    assert_eq!((d.target_replicas, d.strategy), (20, Strategy::ReactiveFallback));
    assert!(says(&d, "state is stale"), "{:?}", d.reasoning);
    s.observed_load = 300.0;
    s.replicas = 10;
    s.ready_replicas = 40; // no emergency on stale state: the reactive rule scales up
    let d = decide(&s, Some(&f), &policy(), NOW);
    assert_eq!((d.target_replicas, d.strategy), (30, Strategy::ReactiveFallback));
}

#[test]
fn given_big_change_and_threshold_when_deciding_then_approval_required() {
    let p = ScalingPolicy {
        approval_threshold: Some(5),
        ..policy()
    };
    let d = decide(&state(10, 90.0), Some(&flat(100.0, 200.0)), &p, NOW);
    assert_eq!(d.target_replicas, 20);
    assert!(d.requires_approval && says(&d, "approval"));
    let d = decide(&state(10, 90.0), Some(&flat(100.0, 110.0)), &p, NOW);
    assert!(!d.requires_approval);
}

#[test]
fn given_instance_types_and_spot_when_deciding_then_candidates_are_scored_and_priced() {
    let p = ScalingPolicy {
        instance_types: vec!["m5.xlarge".into(), "c5.large".into()],
        spot_shares: vec![0.0, 0.3, 0.5, 0.7],
        ..policy()
    };
    let d = decide(&state(10, 90.0), Some(&flat(100.0, 140.0)), &p, NOW);
    assert_eq!(d.strategy, Strategy::GradualRamp);
    assert!(d.candidates >= 8, "{d:?}");
    // the cheapest weighted choice keeps the type and takes the most spot
    assert_eq!(d.target.instance_type, "m5.large");
    assert_eq!(d.target.spot_share, 0.7);
    let cost = d.estimated_hourly_cost.unwrap();
    assert!(cost > 0.0 && cost < 14.0 * 0.096, "{cost}");
    assert!((0.0..=1.0).contains(&d.risk.overall) && d.risk.spot_interruption > 0.0);
    assert!(says(&d, "70 % spot"), "{:?}", d.reasoning);
    assert_eq!(d.rollback.replicas, 10);
    // risk-averse weights keep it on demand
    let careful = ScalingPolicy {
        weights: ScoreWeights {
            cost: 0.01,
            stability: 1.0,
            ..ScoreWeights::default()
        },
        ..p.clone()
    };
    let d = decide(&state(10, 90.0), Some(&flat(100.0, 140.0)), &careful, NOW);
    assert_eq!(
        (d.target.spot_share, d.target.instance_type.as_str()),
        (0.0, "m5.large")
    );
    // an emergency keeps the fleet's type and share: a new fleet would need a whole warm-up
    let mut s = state(10, 300.0);
    s.spot_share = 0.3;
    let d = decide(&s, Some(&flat(100.0, 140.0)), &p, NOW);
    assert_eq!(d.strategy, Strategy::EmergencyScale);
    assert_eq!((d.target.spot_share, d.candidates), (0.3, 1));
}

#[test]
fn a_refreshed_price_table_in_the_policy_changes_the_cost() {
    let mut p = policy();
    p.prices = vec![super::InstancePrice {
        cloud: super::Cloud::Aws,
        region: "us-east-1".into(),
        instance_type: "m5.large".into(),
        vcpus: 2.0,
        memory_gib: 8.0,
        on_demand_hourly: 1.0,
        spot_hourly: None,
        interruption_monthly: None,
    }];
    let d = decide(&state(5, 40.0), Some(&flat(40.0, 50.0)), &p, NOW);
    assert_eq!(d.estimated_hourly_cost, Some(5.0));
    // a NaN price: no cost estimate, the decision still stands
    p.prices[0].on_demand_hourly = f64::NAN;
    let d = decide(&state(5, 40.0), Some(&flat(40.0, 50.0)), &p, NOW);
    assert_eq!((d.target_replicas, d.estimated_hourly_cost), (5, None));
    assert_eq!(d.provisioning_quantile, 0.9, "no idle cost: the fallback quantile");
}

#[test]
fn negative_loads_fall_back_and_bounds_hold() {
    let p = ScalingPolicy {
        min_replicas: 3,
        max_replicas: 8,
        ..policy()
    };
    let d = decide(&state(5, 0.0), Some(&flat(-50.0, -10.0)), &p, NOW);
    assert_eq!((d.target_replicas, d.strategy), (3, Strategy::ReactiveFallback));
    assert_eq!(d.required_p90, 0.0);
    let d = decide(&state(5, 1e9), Some(&flat(1e9, 1e12)), &p, NOW);
    assert_eq!(d.target_replicas, 8);
}

#[test]
fn decision_round_trips_through_json() {
    let d = decide(&state(5, 40.0), Some(&flat(40.0, 50.0)), &policy(), NOW);
    let text = serde_json::to_string(&d).unwrap();
    assert!(text.contains("\"hold\""));
    assert_eq!(serde_json::from_str::<Decision>(&text).unwrap(), d);
}

#[test]
fn recorded_inputs_replay_to_the_identical_decision() {
    let mut s = state(7, 63.0);
    s.last_scale_up_at = Some(NOW - 400);
    let p = ScalingPolicy {
        instance_types: vec!["m5.xlarge".into()],
        spot_shares: vec![0.0, 0.5],
        approval_threshold: Some(3),
        ..ScalingPolicy::default()
    };
    let inputs = DecisionInputs {
        state: s,
        forecast: Some(ForecastInput {
            p10: vec![50.0, 120.0, 300.0, 310.0, 290.0],
            p50: vec![70.0, 160.0, 400.0, 420.0, 380.0],
            p90: vec![90.0, 210.0, 520.0, 560.0, 500.0],
            ..flat(0.0, 0.0)
        }),
        policy: ScalingPolicy {
            capacity_per_replica: 12.5,
            ..p
        },
        now: NOW + 30,
        note: None,
    };
    let first = inputs.replay();
    let text = serde_json::to_string(&inputs).unwrap();
    let back: DecisionInputs = serde_json::from_str(&text).unwrap();
    assert_eq!(back, inputs);
    assert_eq!(back.replay(), first);
    assert!(first.requires_approval, "{first:?}");
    // inputs recorded before the richer fields existed still replay
    let mut old: serde_json::Value = serde_json::from_str(&text).unwrap();
    old["state"].as_object_mut().unwrap().remove("instance_type");
    old["state"].as_object_mut().unwrap().remove("spot_share");
    for k in [
        "provider",
        "instance_types",
        "spot_shares",
        "weights",
        "prices",
        "violation_cost_per_minute",
    ] {
        old["policy"].as_object_mut().unwrap().remove(k);
    }
    let old: DecisionInputs = serde_json::from_value(old).unwrap();
    // the missing fields read as their defaults, and the decision is the one made on those
    let d = ScalingPolicy::default();
    let expected = DecisionInputs {
        state: ClusterState {
            instance_type: None,
            spot_share: 0.0,
            ..inputs.state.clone()
        },
        policy: ScalingPolicy {
            provider: d.provider,
            instance_types: d.instance_types.clone(),
            spot_shares: d.spot_shares.clone(),
            weights: d.weights.clone(),
            prices: d.prices.clone(),
            violation_cost_per_minute: d.violation_cost_per_minute,
            ..inputs.policy.clone()
        },
        ..inputs.clone()
    };
    assert_eq!(old, expected);
    assert_eq!(old.replay(), expected.replay());
    assert_ne!(
        old.policy.spot_shares, inputs.policy.spot_shares,
        "the test removed a non-default field"
    );
}

fn any_f64() -> impl proptest::strategy::Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-1.0),
        Just(0.0),
        -1e6..1e9f64,
    ]
}

/// A forecast that must never drive a forecast-based decision.
fn poisoned(kind: u8, n: usize, v: f64) -> ForecastInput {
    let (p10, p50, p90) = match kind {
        0 => (vec![], vec![], vec![]),
        1 => (vec![f64::NAN; n], vec![f64::NAN; n], vec![f64::NAN; n]),
        2 => (vec![-2.0 * v; n], vec![-v; n], vec![-v / 2.0; n]),
        _ => (vec![v; n], vec![f64::INFINITY; n], vec![f64::INFINITY; n]),
    };
    ForecastInput {
        origin: NOW,
        step_s: 60,
        p10,
        p50,
        p90,
    }
}

proptest! {
    #[test]
    fn target_never_leaves_bounds_nor_breaks_budgets_or_cooldown(
        replicas in 0u32..500, ready in 0u32..500, load in any_f64(),
        min in 0u32..50, span in 0u32..300, cap in any_f64(), util in any_f64(),
        p10 in prop::collection::vec(any_f64(), 0..12),
        p50 in prop::collection::vec(any_f64(), 0..12), p90 in prop::collection::vec(any_f64(), 0..12),
        origin_back in -100i64..2000, step in -60i64..600, up in 0u32..50, down in 0u32..50,
        last_up in prop::option::of(0i64..2000), last_down in prop::option::of(0i64..2000),
        with_forecast in any::<bool>(), q in prop::option::of(any_f64()), cost in any_f64(),
        spot in prop::collection::vec(any_f64(), 0..4), types in any::<bool>(),
    ) {
        let p = ScalingPolicy {
            min_replicas: min, max_replicas: min + span, capacity_per_replica: cap, target_utilization: util,
            max_step_up: up, max_step_down: down, provisioning_quantile: q, violation_cost_per_minute: cost,
            spot_shares: spot,
            instance_types: if types { vec!["m5.xlarge".into(), "c5.large".into()] } else { vec![] },
            ..ScalingPolicy::default()
        };
        let s = ClusterState {
            replicas, ready_replicas: ready, last_scale_up_at: last_up.map(|b| NOW - b),
            last_scale_down_at: last_down.map(|b| NOW - b), observed_load: load, observed_at: NOW,
            instance_type: None, spot_share: 0.0,
        };
        let n = p10.len().min(p50.len()).min(p90.len());
        let f = ForecastInput {
            origin: NOW - origin_back, step_s: step,
            p10: p10[..n].to_vec(), p50: p50[..n].to_vec(), p90: p90[..n].to_vec(),
        };
        let d = decide(&s, with_forecast.then_some(&f), &p, NOW);
        let (lo, hi) = (min, min + span);
        prop_assert!(d.target_replicas >= lo && d.target_replicas <= hi, "{d:?}");
        prop_assert_eq!(d.target_replicas, d.target.replicas);
        prop_assert!((0.0..=1.0).contains(&d.risk.overall) && (0.0..=1.0).contains(&d.scores.total), "{:?}", d);
        prop_assert!(d.estimated_hourly_cost.is_none_or(f64::is_finite));
        if (lo..=hi).contains(&replicas) {
            let t = d.target_replicas;
            if t > replicas && !matches!(d.strategy, Strategy::PreemptiveBurst | Strategy::EmergencyScale) {
                prop_assert!(t - replicas <= up.max(1), "step budget up: {d:?}");
            }
            if t < replicas {
                prop_assert!(replicas - t <= down.max(1), "step budget down: {d:?}");
                prop_assert!(
                    s.last_scale_up_at.is_none_or(|at| NOW - at >= p.scale_down_cooldown_s),
                    "cooldown: {d:?}"
                );
            }
            if d.strategy == Strategy::Hold {
                prop_assert_eq!(t, replicas);
            }
        }
        // a fallback without a usable observed load holds
        if d.strategy == Strategy::ReactiveFallback && !(load.is_finite() && load >= 0.0) {
            prop_assert_eq!(d.target_replicas, replicas.clamp(lo, hi));
        }
    }

    #[test]
    fn nan_negative_or_empty_forecasts_never_drive_a_decision(
        replicas in 1u32..100, load in 0.0..1e4f64, kind in 0u8..4, n in 1usize..12, v in 0.1..1e4f64,
        cap in 0.1..100.0f64,
    ) {
        let p = ScalingPolicy { capacity_per_replica: cap, ..ScalingPolicy::default() };
        let f = poisoned(kind, n, v);
        let d = decide(&state(replicas, load), Some(&f), &p, NOW);
        prop_assert!(
            matches!(d.strategy, Strategy::ReactiveFallback | Strategy::EmergencyScale),
            "{:?} from {:?}", d, f
        );
    }
}
