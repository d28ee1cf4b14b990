//! Behaviour of every model on awkward histories, and the ensemble's accuracy on synthetic seasonal load.

use super::*;

const STEP: i64 = 300;
const DAY: usize = 288;

/// A deterministic pseudo-random stream in [0, 1).
fn noise(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Daily sine around 100 with uniform noise of +-`amp`.
fn seasonal(n: usize, amp: f64, seed: u64) -> (Vec<i64>, Vec<f64>) {
    let mut r = noise(seed);
    let t: Vec<i64> = (0..n).map(|i| i as i64 * STEP).collect();
    let y = (0..n)
        .map(|i| {
            let phase = (i % DAY) as f64 / DAY as f64 * std::f64::consts::TAU;
            100.0 + 50.0 * phase.sin() + amp * (2.0 * r() - 1.0)
        })
        .collect();
    (t, y)
}

fn all_models() -> Vec<Box<dyn Forecaster>> {
    model_names()
        .iter()
        .map(|n| by_name(n).expect("listed model exists"))
        .collect()
}

fn assert_sane(p: &QuantilePath, h: usize) {
    assert_eq!((p.p10.len(), p.p50.len(), p.p90.len()), (h, h, h));
    for i in 0..h {
        assert!(
            p.p10[i].is_finite() && p.p50[i].is_finite() && p.p90[i].is_finite(),
            "{p:?}"
        );
        assert!(p.p10[i] <= p.p50[i] && p.p50[i] <= p.p90[i], "lead {}: {p:?}", i + 1);
    }
}

#[test]
fn registry_knows_its_models() {
    assert_eq!(model_names()[0], DEFAULT_MODEL);
    for name in model_names() {
        assert_eq!(by_name(name).unwrap().name(), *name);
    }
    assert!(by_name("crystal-ball").is_none());
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    for m in all_models() {
        assert_eq!(m.forecast(&[], &[], STEP, 3).unwrap_err(), ForecastError::EmptyHistory);
        assert_eq!(
            m.forecast(&[0], &[1.0], STEP, 0).unwrap_err(),
            ForecastError::BadHorizon(0)
        );
        assert_eq!(m.forecast(&[0], &[1.0], -5, 1).unwrap_err(), ForecastError::BadStep(-5));
        assert_eq!(
            m.forecast(&[0, 300], &[f64::NAN, f64::INFINITY], STEP, 1).unwrap_err(),
            ForecastError::NonFinite
        );
        assert!(matches!(
            m.forecast(&[300, 0], &[1.0, 2.0], STEP, 1),
            Err(ForecastError::Unsorted { .. })
        ));
    }
}

#[test]
fn single_point_and_short_history_still_forecast_and_say_so() {
    for m in all_models() {
        let p = m.forecast(&[0], &[7.0], STEP, 4).unwrap();
        assert_sane(&p, 4);
        assert_eq!(p.p50, vec![7.0; 4]);
        let (t, y) = seasonal(DAY, 5.0, 1); // one day: less than two seasons
        let p = m.forecast(&t, &y, STEP, 12).unwrap();
        assert_sane(&p, 12);
        // the transformer reads one day and no seasons: it notes a history shorter than that
        let (short, y_short) = seasonal(DAY / 2, 5.0, 1);
        let (p, want) = if m.name() == "transformer" {
            (m.forecast(&short, &y_short, STEP, 12).unwrap(), "context")
        } else {
            (p, "two days")
        };
        assert!(p.notes.iter().any(|n| n.contains(want)), "{}: {:?}", m.name(), p.notes);
    }
}

#[test]
fn constant_series_gives_the_constant_with_a_zero_width_interval() {
    let t: Vec<i64> = (0..3 * DAY as i64).map(|i| i * STEP).collect();
    let y = vec![42.0; t.len()];
    for m in all_models() {
        let p = m.forecast(&t, &y, STEP, DAY).unwrap();
        assert_sane(&p, DAY);
        assert!(
            p.p10
                .iter()
                .chain(&p.p50)
                .chain(&p.p90)
                .all(|v| (v - 42.0).abs() < 1e-9),
            "{}",
            m.name()
        );
    }
}

#[test]
fn nan_inf_gaps_and_negatives_are_survived() {
    let (mut t, mut y) = seasonal(10 * DAY, 5.0, 2);
    for i in (0..y.len()).step_by(37) {
        y[i] = f64::NAN;
    }
    y[100] = f64::INFINITY;
    y[101] = f64::NEG_INFINITY;
    // a two-day outage
    t.drain(5 * DAY..7 * DAY);
    y.drain(5 * DAY..7 * DAY);
    for m in all_models() {
        for h in [1, 3, DAY, 7 * DAY] {
            let p = m.forecast(&t, &y, STEP, h).unwrap();
            assert_sane(&p, h);
            assert!(
                p.notes.iter().any(|n| n.contains("missing")),
                "{}: {:?}",
                m.name(),
                p.notes
            );
        }
        // the last value itself missing
        let mut y2 = y.clone();
        *y2.last_mut().unwrap() = f64::NAN;
        assert_sane(&m.forecast(&t, &y2, STEP, 5).unwrap(), 5);
    }
    // a series that goes negative is not clamped at zero
    let (t, y) = seasonal(5 * DAY, 1.0, 3);
    let y: Vec<f64> = y.iter().map(|v| v - 120.0).collect();
    let p = Ensemble::default().forecast(&t, &y, STEP, DAY).unwrap();
    assert!(p.p50.iter().any(|v| *v < -50.0));
    // a non-negative one is
    let y: Vec<f64> = (0..t.len())
        .map(|i| if i % DAY < DAY / 2 { 0.0 } else { 100.0 })
        .collect();
    let p = Ensemble::default().forecast(&t, &y, STEP, DAY).unwrap();
    assert!(p.p10.iter().all(|v| *v >= 0.0));
}

#[test]
fn duplicated_timestamps_keep_the_later_value_and_say_so() {
    let (t, y) = seasonal(10 * DAY, 5.0, 5);
    // the last hour arrives twice: first with wrong values, then corrected
    let k = t.len() - 60;
    let mut td: Vec<i64> = Vec::new();
    let mut yd: Vec<f64> = Vec::new();
    for i in 0..t.len() {
        if i >= k {
            td.push(t[i]);
            yd.push(y[i] * 10.0);
        }
        td.push(t[i]);
        yd.push(y[i]);
    }
    for m in all_models() {
        let clean = m.forecast(&t, &y, STEP, 30).unwrap();
        let dup = m.forecast(&td, &yd, STEP, 30).unwrap();
        assert_eq!(
            (&dup.p10, &dup.p50, &dup.p90),
            (&clean.p10, &clean.p50, &clean.p90),
            "{}",
            m.name()
        );
        assert!(
            dup.notes
                .iter()
                .any(|n| n.contains("60 observations shared a grid point")),
            "{}: {:?}",
            m.name(),
            dup.notes
        );
        assert!(
            !clean.notes.iter().any(|n| n.contains("shared a grid point")),
            "{}",
            m.name()
        );
    }
}

#[test]
fn forecasts_are_deterministic() {
    let (t, y) = seasonal(20 * DAY, 10.0, 4);
    for m in all_models() {
        assert_eq!(
            m.forecast(&t, &y, STEP, DAY).unwrap(),
            m.forecast(&t, &y, STEP, DAY).unwrap()
        );
    }
}

#[test]
fn the_seasonal_naive_repeats_yesterday_with_difference_quantiles() {
    let (t, y) = seasonal(4 * DAY, 10.0, 5);
    let p = SeasonalNaive.forecast(&t, &y, STEP, 2 * DAY).unwrap();
    let n = y.len();
    for k in 1..=2 * DAY {
        assert_eq!(p.p50[k - 1], y[n - 1 + k - DAY * k.div_ceil(DAY)]);
    }
    let width = p.p90[0] - p.p10[0];
    assert!(width > 10.0 && width < 40.0, "{width}"); // differences of two U(-10, 10): 80 % within about +-11
}

/// Rolling-origin MAE and coverage of a model over the last `days` days of a series.
fn score(m: &dyn Forecaster, t: &[i64], y: &[f64], h: usize, days: usize) -> (f64, f64) {
    let (mut err, mut inside, mut n) = (0.0, 0usize, 0usize);
    let start = y.len() - days * DAY;
    for o in (start..y.len() - h).step_by(DAY / 4) {
        let p = m.forecast(&t[..=o], &y[..=o], STEP, h).unwrap();
        for k in 1..=h {
            let a = y[o + k];
            err += (a - p.p50[k - 1]).abs();
            inside += usize::from(a >= p.p10[k - 1] && a <= p.p90[k - 1]);
            n += 1;
        }
    }
    (err / n as f64, inside as f64 / n as f64)
}

#[test]
fn ensemble_beats_seasonal_naive_on_noisy_seasonal_load_with_calibrated_intervals() {
    let (t, y) = seasonal(30 * DAY, 20.0, 6);
    for h in [3, DAY] {
        let (mae_e, cov_e) = score(&Ensemble::default(), &t, &y, h, 5);
        let (mae_s, _) = score(&SeasonalNaive, &t, &y, h, 5);
        assert!(mae_e < 0.8 * mae_s, "h={h}: ensemble {mae_e} vs snaive {mae_s}");
        assert!((0.7..=0.9).contains(&cov_e), "h={h}: coverage {cov_e}");
    }
}

#[test]
fn ensemble_follows_a_level_shift_at_short_leads() {
    let (t, mut y) = seasonal(15 * DAY, 2.0, 7);
    let n = y.len();
    for v in &mut y[n - 24..] {
        *v += 200.0; // the last two hours jumped
    }
    let p = Ensemble::default().forecast(&t, &y, STEP, 3).unwrap();
    let s = SeasonalNaive.forecast(&t, &y, STEP, 3).unwrap();
    let truth = 100.0 + 50.0 * ((n % DAY) as f64 / DAY as f64 * std::f64::consts::TAU).sin() + 200.0;
    assert!(
        (p.p50[0] - truth).abs() < 20.0,
        "{} vs {truth}: {:?}",
        p.p50[0],
        p.notes
    );
    assert!((s.p50[0] - truth).abs() > 150.0);
}

#[test]
fn ensemble_interval_narrows_when_the_load_calms_down() {
    // 20 days of noise +-40, then two calm days of noise +-2
    let (t, y_wild) = seasonal(22 * DAY, 40.0, 8);
    let (_, y_calm) = seasonal(22 * DAY, 2.0, 9);
    let y: Vec<f64> = (0..t.len())
        .map(|i| if i < 20 * DAY { y_wild[i] } else { y_calm[i] })
        .collect();
    // a day ahead: the replay reaches back into the wild days
    let p = Ensemble::default().forecast(&t, &y, STEP, DAY).unwrap();
    let width = p.p90[DAY / 2] - p.p10[DAY / 2];
    assert!(width < 20.0, "width {width}: {:?}", p.notes);
}

#[test]
fn ensemble_forecasts_a_week_ahead_with_a_weekly_pattern() {
    // weekends at half the load: the weekly profile must carry that a week ahead
    let (t, y) = seasonal(35 * DAY, 5.0, 10);
    let weekly = |i: usize| if (i / DAY) % 7 >= 5 { 0.5 } else { 1.0 };
    let y: Vec<f64> = y.iter().enumerate().map(|(i, v)| v * weekly(i)).collect();
    let n = 28 * DAY;
    let h = 7 * DAY;
    let p = Ensemble::default().forecast(&t[..n], &y[..n], STEP, h).unwrap();
    assert_sane(&p, h);
    let mae: f64 = (0..h).map(|k| (y[n + k] - p.p50[k]).abs()).sum::<f64>() / h as f64;
    let s = SeasonalNaive.forecast(&t[..n], &y[..n], STEP, h).unwrap();
    let mae_s: f64 = (0..h).map(|k| (y[n + k] - s.p50[k]).abs()).sum::<f64>() / h as f64;
    assert!(mae < 0.5 * mae_s, "ensemble {mae} vs seasonal naive {mae_s}");
}
