//! Given a cluster, a forecast and a policy, when deciding, then the strategy and target follow the rule.

use proptest::prelude::*;

use super::{ClusterState, Decision, ForecastInput, ScalingPolicy, Strategy, decide};

const NOW: i64 = 1_000_000;

fn policy() -> ScalingPolicy {
    ScalingPolicy {
        capacity_per_replica: 10.0,
        target_utilization: 1.0,
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

#[test]
fn given_forecast_matching_capacity_when_deciding_then_hold() {
    let d = decide(&state(5, 40.0), Some(&flat(40.0, 50.0)), &policy(), NOW);
    assert_eq!((d.target_replicas, d.strategy), (5, Strategy::Hold));
    assert_eq!(d.required_p90, 50.0);
    assert!(d.reasoning.iter().any(|r| r.contains("50")), "{:?}", d.reasoning);
}

#[test]
fn given_moderate_rise_when_deciding_then_gradual_ramp_within_step_limit() {
    let p = ScalingPolicy {
        max_step_up: 2,
        ..policy()
    };
    let d = decide(&state(10, 90.0), Some(&flat(100.0, 140.0)), &p, NOW);
    assert_eq!((d.target_replicas, d.strategy), (12, Strategy::GradualRamp));
    assert!(d.reasoning.iter().any(|r| r.contains("+2")), "{:?}", d.reasoning);
}

#[test]
fn given_burst_inside_lead_time_when_deciding_then_preemptive_burst_at_once() {
    let mut f = flat(10.0, 20.0);
    f.p90[2] = 300.0; // minute 3: inside warm-up + interval
    let d = decide(&state(2, 10.0), Some(&f), &policy(), NOW);
    assert_eq!((d.target_replicas, d.strategy), (30, Strategy::PreemptiveBurst));
    // a burst beyond the lead time does not count yet
    let mut f = flat(10.0, 20.0);
    f.p90[8] = 300.0;
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
    assert!(!d.requires_approval);
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
    let mut s = state(10, 95.0);
    s.ready_replicas = 10;
    let d = decide(&s, Some(&flat(20.0, 20.0)), &policy(), NOW);
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
    assert!(d.reasoning.iter().any(|r| r.contains("cooldown")), "{:?}", d.reasoning);
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
    for (f, word) in [
        (None, "no forecast"),
        (Some(&stale), "old"),
        (Some(&short), "covers"),
        (Some(&nan), "finite"),
        (Some(&empty), "0 p50"),
        (Some(&future), "after now"),
    ] {
        let d = decide(&s, f, &policy(), NOW);
        assert_eq!(
            (d.target_replicas, d.strategy),
            (10, Strategy::ReactiveFallback),
            "{word}"
        );
        assert!(
            d.reasoning.iter().any(|r| r.contains(word)),
            "{word}: {:?}",
            d.reasoning
        );
    }
    // nothing usable at all: hold
    let d = decide(&state(4, f64::NAN), None, &policy(), NOW);
    assert_eq!((d.target_replicas, d.strategy), (4, Strategy::ReactiveFallback));
}

#[test]
fn given_big_change_and_threshold_when_deciding_then_approval_required() {
    let p = ScalingPolicy {
        approval_threshold: Some(5),
        ..policy()
    };
    let d = decide(&state(10, 90.0), Some(&flat(100.0, 200.0)), &p, NOW);
    assert_eq!(d.target_replicas, 20);
    assert!(d.requires_approval);
    let d = decide(&state(10, 90.0), Some(&flat(100.0, 110.0)), &p, NOW);
    assert!(!d.requires_approval);
}

#[test]
fn negative_forecasts_count_as_zero_and_bounds_hold() {
    let p = ScalingPolicy {
        min_replicas: 3,
        max_replicas: 8,
        ..policy()
    };
    let d = decide(&state(5, 0.0), Some(&flat(-50.0, -10.0)), &p, NOW);
    assert_eq!(d.target_replicas, 3);
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

proptest! {
    #[test]
    fn target_never_leaves_bounds(
        replicas in 0u32..500, ready in 0u32..500, load in any_f64(),
        min in 0u32..50, span in 0u32..300, cap in any_f64(), util in any_f64(),
        p50 in prop::collection::vec(any_f64(), 0..12), p90 in prop::collection::vec(any_f64(), 0..12),
        origin_back in -100i64..2000, step in -60i64..600, up in 0u32..50, down in 0u32..50,
        last_up in prop::option::of(0i64..2000), with_forecast in any::<bool>(),
    ) {
        let p = ScalingPolicy {
            min_replicas: min, max_replicas: min + span, capacity_per_replica: cap, target_utilization: util,
            max_step_up: up, max_step_down: down, ..ScalingPolicy::default()
        };
        let s = ClusterState {
            replicas, ready_replicas: ready, last_scale_up_at: last_up.map(|b| NOW - b), last_scale_down_at: None,
            observed_load: load, observed_at: NOW,
        };
        let n = p50.len().min(p90.len());
        let f = ForecastInput { origin: NOW - origin_back, step_s: step, p10: p50[..n].to_vec(), p50: p50[..n].to_vec(), p90: p90[..n].to_vec() };
        let d = decide(&s, with_forecast.then_some(&f), &p, NOW);
        prop_assert!(d.target_replicas >= min && d.target_replicas <= min + span, "{d:?}");
        // a non-finite forecast never drives a forecast-based strategy
        let finite = f.p50.iter().chain(&f.p90).all(|v| v.is_finite());
        if !finite && matches!(d.strategy, Strategy::GradualRamp | Strategy::PreemptiveBurst | Strategy::ScaleDown) {
            // only allowed if the non-finite values lie outside the lead time; check they do
            let lead_end = NOW + p.warmup_s + p.decision_interval_s;
            let used = (1..=n).filter(|k| {
                let t = f.origin + f.step_s * *k as i64;
                t > NOW - f.step_s && t < lead_end + f.step_s
            });
            for k in used {
                prop_assert!(f.p90[k - 1].is_finite() && f.p50[k - 1].is_finite(), "{d:?}");
            }
        }
        // a fallback or emergency decision never exceeds what the observed load needs (or the current replicas)
        if d.strategy == Strategy::ReactiveFallback && !(load.is_finite() && load >= 0.0) {
            prop_assert_eq!(d.target_replicas, replicas.clamp(min, min + span));
        }
    }
}
