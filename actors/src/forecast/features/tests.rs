//! Pipeline-level tests: names and counts, the feature-set hash, incremental == batch, and awkward input.

use std::collections::HashSet;
use std::f64::consts::TAU;

use proptest::prelude::*;

use super::*;

/// 2024-01-01T00:00:00Z, a Monday.
const T0: i64 = 1_704_067_200;

fn pipeline(g: u32) -> FeaturePipeline {
    FeaturePipeline::new(FeatureConfig::with_granularity(g)).unwrap()
}

fn col(p: &FeaturePipeline, name: &str) -> usize {
    p.feature_names()
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("no feature {name}"))
}

/// A daily cycle with a weekly swell and a little deterministic wiggle, at `g`-second steps,
/// with the points whose index satisfies `drop` removed.
fn daily_series(g: i64, n: usize, drop: impl Fn(usize) -> bool) -> (Vec<i64>, Vec<f64>) {
    let (mut t, mut y) = (Vec::new(), Vec::new());
    for i in 0..n {
        if drop(i) {
            continue;
        }
        let ti = T0 + i as i64 * g;
        let day = (ti % 86_400) as f64 / 86_400.0;
        let week = (ti % 604_800) as f64 / 604_800.0;
        t.push(ti);
        y.push(1000.0 + 400.0 * (TAU * day).sin() + 50.0 * (TAU * week).cos() + 7.0 * ((i * 37 % 11) as f64 - 5.0));
    }
    (t, y)
}

fn assert_rows_equal(a: &[f64], b: &[f64], names: &[String], at: usize) {
    assert_eq!(a.len(), b.len());
    for (j, (x, y)) in a.iter().zip(b).enumerate() {
        let same = (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-9 * x.abs().max(1.0);
        assert!(same, "row {at}, {}: incremental {x} vs batch {y}", names[j]);
    }
}

fn incremental_equals_batch(p: &FeaturePipeline, t: &[i64], y: &[f64]) -> Vec<Vec<f64>> {
    let batch = p.compute(t, y).unwrap();
    let mut state = p.state();
    let names = p.feature_names();
    for (i, row) in batch.iter().enumerate() {
        let inc = state.push(t[i], y[i]).unwrap();
        assert_rows_equal(&inc, row, &names, i);
    }
    assert_eq!(state.len(), t.len());
    batch
}

#[test]
fn default_feature_counts() {
    // 1 minute: 21 calendar + 10 Fourier + 10 lags×3 + 9 windows×11 + 3 spans×3 + 5 business.
    assert_eq!(pipeline(60).n_features(), 21 + 10 + 30 + 99 + 9 + 5);
    // 30 minutes: lags {30m,1h,2h,6h,12h,1d,1w}, rolling {1h,2h,6h,12h,1d} (the 30m one-step window
    // dropped), one velocity span (30m).
    assert_eq!(pipeline(1800).n_features(), 21 + 10 + 21 + 55 + 3 + 5);
    for g in [30, 60, 300, 1800, 3600, 7 * 60] {
        let p = pipeline(g);
        let names = p.feature_names();
        assert_eq!(names.len(), p.n_features());
        assert_eq!(
            names.iter().collect::<HashSet<_>>().len(),
            names.len(),
            "names unique at {g} s"
        );
        assert_eq!(names, p.feature_names(), "stable order");
    }
    let p = pipeline(1800);
    let names = p.feature_names();
    assert!(names.contains(&"lag_30m".to_string()) && !names.contains(&"lag_5m".to_string()));
    assert!(names.contains(&"lag_10080m".to_string()));
    assert!(names.contains(&"roll_mean_60m".to_string()) && !names.contains(&"roll_mean_30m".to_string()));
}

#[test]
fn groups_toggle_their_features() {
    let c = FeatureConfig {
        groups: FeatureGroups {
            time: false,
            lags: true,
            rolling: false,
            fourier: false,
            business: false,
            derivatives: false,
        },
        lag_windows_minutes: vec![5],
        ..Default::default()
    };
    let p = FeaturePipeline::new(c).unwrap();
    assert_eq!(
        p.feature_names(),
        [
            "lag_5m",
            "lag_diff_5m",
            "lag_ratio_5m",
            "lag_1440m",
            "lag_diff_1440m",
            "lag_ratio_1440m",
            "lag_10080m",
            "lag_diff_10080m",
            "lag_ratio_10080m"
        ]
    );
    assert_eq!(p.lookback_steps(), 10_080);
    assert_eq!(p.state().capacity(), 10_081);
}

#[test]
fn fnv1a64_known_vectors() {
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn feature_set_hash_is_stable_and_tracks_the_feature_set() {
    let base = pipeline(60).feature_set_hash();
    assert_eq!(base.len(), 16);
    assert!(base.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(base, pipeline(60).feature_set_hash(), "same config, same hash");
    let with_events = pipeline(60)
        .with_events(vec![BusinessEvent {
            start: 0,
            end: 10,
            kind: "launch".into(),
            impact: 2.0,
        }])
        .unwrap();
    assert_eq!(
        base,
        with_events.feature_set_hash(),
        "events are data, not the feature set"
    );
    let variants = [
        FeatureConfig::with_granularity(300),
        FeatureConfig {
            lag_windows_minutes: vec![5, 10, 15, 30, 60, 120, 360, 720, 1440, 2880],
            ..Default::default()
        },
        FeatureConfig {
            velocity_smoothing_points: 3,
            ..Default::default()
        },
        FeatureConfig {
            fourier: vec![FourierTerm::DAILY],
            ..Default::default()
        },
        FeatureConfig {
            groups: FeatureGroups {
                business: false,
                ..Default::default()
            },
            ..Default::default()
        },
    ];
    let mut seen = HashSet::from([base]);
    for c in variants {
        let h = FeaturePipeline::new(c.clone()).unwrap().feature_set_hash();
        assert!(seen.insert(h), "hash did not change for {c:?}");
    }
}

#[test]
fn config_round_trips_and_rejects_typos() {
    let c = FeatureConfig {
        granularity_seconds: 300,
        launch_kind: "release".into(),
        ..Default::default()
    };
    let back: FeatureConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
    assert_eq!(back, c);
    let partial: FeatureConfig = serde_json::from_str(r#"{"granularity_seconds": 3600}"#).unwrap();
    assert_eq!(partial, FeatureConfig::with_granularity(3600));
    assert!(serde_json::from_str::<FeatureConfig>(r#"{"granularity": 60}"#).is_err());
    for bad in [
        FeatureConfig::with_granularity(0),
        FeatureConfig {
            rolling_windows_minutes: vec![0],
            ..Default::default()
        },
        FeatureConfig {
            fourier: vec![FourierTerm {
                period_seconds: 0,
                harmonics: 1,
            }],
            ..Default::default()
        },
        FeatureConfig {
            fourier: vec![FourierTerm {
                period_seconds: 60,
                harmonics: 0,
            }],
            ..Default::default()
        },
        FeatureConfig {
            velocity_smoothing_points: 0,
            ..Default::default()
        },
    ] {
        assert!(matches!(FeaturePipeline::new(bad), Err(FeatureError::BadConfig(_))));
    }
}

#[test]
fn incremental_equals_batch_at_one_minute_with_gaps() {
    // Eight days at 1 minute (longer than the 10 081-step ring), with scattered gaps and a 3-hour outage.
    let (t, y) = daily_series(60, 8 * 1440 + 200, |i| i % 97 == 13 || (5000..5180).contains(&i));
    let p = pipeline(60);
    let rows = incremental_equals_batch(&p, &t, &y);
    // After a week of history the seasonal lags are real values: lag_1440m is y a day earlier.
    let last = rows.len() - 1;
    let (lag_day, lag_week) = (col(&p, "lag_1440m"), col(&p, "lag_10080m"));
    let day_ago = t.iter().position(|&x| x == t[last] - 86_400).unwrap();
    assert_eq!(rows[last][lag_day], y[day_ago]);
    assert!(rows[last][lag_week].is_finite());
    let finite = rows[last].iter().filter(|v| v.is_finite()).count();
    assert_eq!(
        finite,
        p.n_features() - 2,
        "only the business NaNs (no event) remain: {:?}",
        rows[last]
    );
}

#[test]
fn incremental_equals_batch_at_coarse_granularities() {
    for (g, days) in [(300_i64, 9), (1800, 10), (3600, 16)] {
        let n = (days * 86_400 / g) as usize;
        let (t, y) = daily_series(g, n, |i| i % 29 == 7);
        let p = pipeline(g as u32);
        let rows = incremental_equals_batch(&p, &t, &y);
        let last = rows.len() - 1;
        let day_ago = t.iter().position(|&x| x == t[last] - 86_400).unwrap();
        assert_eq!(rows[last][col(&p, "lag_1440m")], y[day_ago], "{g} s");
        let span = span_name(g);
        let v = rows[last][col(&p, &format!("velocity_{span}"))];
        let prev = t.iter().position(|&x| x == t[last] - g).unwrap();
        assert!(
            (v - (y[last] - y[prev]) / (g as f64 / 60.0)).abs() < 1e-9,
            "{g} s velocity"
        );
    }
}

#[test]
fn warm_up_gives_nan_never_a_panic() {
    let p = pipeline(60);
    let rows = p.compute(&[T0], &[5.0]).unwrap();
    let row = &rows[0];
    assert!(row[col(&p, "lag_5m")].is_nan());
    assert!(row[col(&p, "roll_mean_5m")].is_nan());
    assert!(row[col(&p, "velocity_1m")].is_nan());
    assert_eq!(row[col(&p, "is_monday")], 1.0);
    assert_eq!(row[col(&p, "event_active")], 0.0);
    assert!(p.compute(&[], &[]).unwrap().is_empty());
    // After 5 minutes the 5-minute window is complete, the 10-minute one is not.
    let (t, y) = daily_series(60, 5, |_| false);
    let rows = p.compute(&t, &y).unwrap();
    let mean5 = y.iter().sum::<f64>() / 5.0;
    assert!((rows[4][col(&p, "roll_mean_5m")] - mean5).abs() < 1e-9);
    assert!(rows[4][col(&p, "roll_mean_10m")].is_nan());
    assert!(
        rows[4][col(&p, "lag_5m")].is_nan(),
        "lag 5 reaches one minute before the first point"
    );
}

#[test]
fn a_lag_over_a_gap_is_nan() {
    // Minutes 0..=10 with minute 5 missing: at minute 10 the 5-minute lag targets minute 5.
    let t: Vec<i64> = (0..=10).filter(|&m| m != 5).map(|m| T0 + 60 * m).collect();
    let y: Vec<f64> = (0..t.len()).map(|i| i as f64 + 1.0).collect();
    let p = pipeline(60);
    let rows = p.compute(&t, &y).unwrap();
    let (lag5, diff5) = (col(&p, "lag_5m"), col(&p, "lag_diff_5m"));
    let last = rows.len() - 1;
    assert!(rows[last][lag5].is_nan() && rows[last][diff5].is_nan());
    // At minute 9 it targets minute 4, which is there (index 4, value 5), though only 4 indices back.
    assert_eq!(rows[last - 1][lag5], 5.0);
    assert_eq!(rows[last - 1][diff5], y[last - 1] - 5.0);
}

#[test]
fn off_grid_timestamps_fall_in_their_step() {
    // 60 s steps; points at +0, +75, +130 s are steps 0, 1, 2; the lag of one step finds them.
    let p = FeaturePipeline::new(FeatureConfig {
        lag_windows_minutes: vec![1],
        ..Default::default()
    })
    .unwrap();
    let rows = p.compute(&[T0, T0 + 75, T0 + 130], &[1.0, 2.0, 4.0]).unwrap();
    assert_eq!(rows[2][col(&p, "lag_1m")], 2.0);
    assert_eq!(rows[2][col(&p, "lag_ratio_1m")], 2.0);
}

#[test]
fn bad_points_are_refused_with_their_index() {
    let p = pipeline(60);
    let t: Vec<i64> = (0..6).map(|i| T0 + 60 * i).collect();
    let mut y = vec![1.0; 6];
    y[3] = f64::NAN;
    assert!(matches!(
        p.compute(&t, &y),
        Err(FeatureError::NonFinite { index: 3, .. })
    ));
    y[3] = f64::INFINITY;
    assert!(matches!(
        p.compute(&t, &y),
        Err(FeatureError::NonFinite { index: 3, .. })
    ));
    assert_eq!(p.compute(&t, &y[..5]), Err(FeatureError::LengthMismatch { t: 6, y: 5 }));
    let y = vec![1.0; 6];
    let mut dup = t.clone();
    dup[4] = dup[3];
    assert_eq!(
        p.compute(&dup, &y),
        Err(FeatureError::Duplicate {
            index: 4,
            t: dup[3],
            previous: dup[3]
        })
    );
    dup[4] = dup[3] + 30; // same 60 s step
    assert_eq!(
        p.compute(&dup, &y),
        Err(FeatureError::Duplicate {
            index: 4,
            t: dup[4],
            previous: dup[3]
        })
    );
    let mut back = t.clone();
    back[2] = T0 - 600;
    assert_eq!(
        p.compute(&back, &y),
        Err(FeatureError::OutOfOrder {
            index: 2,
            t: T0 - 600,
            previous: T0 + 60
        })
    );
    let far = [T0, i64::MAX];
    assert_eq!(
        p.compute(&far, &[1.0, 1.0]),
        Err(FeatureError::TimestampOutOfRange { index: 1, t: i64::MAX })
    );
}

#[test]
fn a_refused_push_leaves_the_state_unchanged() {
    let p = FeaturePipeline::new(FeatureConfig {
        lag_windows_minutes: vec![1, 2],
        ..Default::default()
    })
    .unwrap();
    let mut s = p.state();
    s.push(T0, 10.0).unwrap();
    s.push(T0 + 60, 20.0).unwrap();
    assert!(matches!(
        s.push(T0 + 120, f64::NAN),
        Err(FeatureError::NonFinite { index: 2, .. })
    ));
    assert!(matches!(
        s.push(T0 + 60, 1.0),
        Err(FeatureError::Duplicate { index: 2, .. })
    ));
    assert!(matches!(
        s.push(T0, 1.0),
        Err(FeatureError::OutOfOrder { index: 2, .. })
    ));
    assert_eq!(s.len(), 2);
    // Skipping the bad point makes minute 2 a gap: at minute 3, lag 1 (minute 2) is NaN, lag 2 is 20.
    let row = s.push(T0 + 180, 40.0).unwrap();
    assert!(row[col(&p, "lag_1m")].is_nan());
    assert_eq!(row[col(&p, "lag_2m")], 20.0);
    assert_eq!(row[col(&p, "lag_ratio_2m")], 2.0);
    assert_eq!(s.len(), 3);
}

#[test]
fn business_events_reach_the_rows() {
    let p = pipeline(3600)
        .with_events(vec![
            BusinessEvent {
                start: T0 + 86_400,
                end: T0 + 2 * 86_400,
                kind: "launch".into(),
                impact: 1.5,
            },
            BusinessEvent {
                start: T0 + 3600,
                end: T0 + 5 * 3600,
                kind: "campaign".into(),
                impact: 3.0,
            },
        ])
        .unwrap();
    assert_eq!(p.events()[0].kind, "campaign", "sorted by start");
    let t: Vec<i64> = (0..4).map(|h| T0 + 3600 * h).collect();
    let rows = p.compute(&t, &[1.0; 4]).unwrap();
    let (active, to_end, launch, impact) = (
        col(&p, "event_active"),
        col(&p, "event_hours_to_end"),
        col(&p, "event_days_to_next_launch"),
        col(&p, "event_impact"),
    );
    assert_eq!(rows[0][active], 0.0);
    assert_eq!(rows[2][active], 1.0);
    assert_eq!(rows[2][to_end], 3.0);
    assert_eq!(rows[2][impact], 1.0 + 2.0 * 0.75);
    assert_eq!(rows[0][launch], 1.0);
    assert!(
        p.clone()
            .with_events(vec![BusinessEvent {
                start: 5,
                end: 1,
                kind: "x".into(),
                impact: 1.0
            }])
            .is_err()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any gapped, off-grid series: the stream and the batch agree row for row.
    #[test]
    fn prop_incremental_equals_batch(
        steps in prop::collection::vec((1_i64..6, 0_i64..60, -50.0_f64..50.0), 1..120),
        g in prop::sample::select(vec![60_u32, 300]),
    ) {
        let config = FeatureConfig {
            granularity_seconds: g,
            lag_windows_minutes: vec![5, 10, 30],
            rolling_windows_minutes: vec![10, 20, 45],
            velocity_minutes: vec![5, 15],
            ..Default::default()
        };
        let p = FeaturePipeline::new(config).unwrap();
        let (mut t, mut y) = (Vec::new(), Vec::new());
        let mut step = 0_i64;
        for (i, &(jump, offset, v)) in steps.iter().enumerate() {
            step += if i == 0 { 0 } else { jump };
            t.push(T0 + step * i64::from(g) + offset * i64::from(g) / 60);
            y.push(v);
        }
        incremental_equals_batch(&p, &t, &y);
    }
}
