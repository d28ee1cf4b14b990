//! Tests of the augurs and LightGBM models on known series, and their handling of bad input.

use super::combiner::Combiner;
use super::holidays::HolidaySpec;
use super::lgbm::{self, Lgbm};
use super::mstl::{Ets, Mstl};
use super::prophet::Prophet;
use super::*;
use crate::forecast::{Forecaster, by_name};

const T0: i64 = 1_400_000_000 - 1_400_000_000 % 86_400;

/// `days` of a daily sine (amplitude 30 around 100) at `step_s`, plus deterministic noise of `noise`.
fn sine(days: usize, step_s: i64, noise: f64) -> (Vec<i64>, Vec<f64>) {
    let n = days * 86_400 / step_s as usize;
    let mut state = 11u64;
    (0..n)
        .map(|i| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (state >> 40) as f64 / (1u64 << 24) as f64 - 0.5;
            let t = T0 + i as i64 * step_s;
            let phase = (t % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU;
            (t, 100.0 + 30.0 * phase.sin() + noise * u)
        })
        .unzip()
}

fn truth(t: i64) -> f64 {
    100.0 + 30.0 * ((t % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU).sin()
}

fn mae_vs_truth(path: &QuantilePath, t_last: i64, step_s: i64) -> f64 {
    path.p50
        .iter()
        .enumerate()
        .map(|(k, v)| (v - truth(t_last + (k as i64 + 1) * step_s)).abs())
        .sum::<f64>()
        / path.len() as f64
}

fn ordered(p: &QuantilePath) -> bool {
    (0..p.len()).all(|k| p.p10[k] <= p.p50[k] && p.p50[k] <= p.p90[k]) && all_finite(p)
}

#[test]
fn mstl_follows_a_clean_daily_sine() {
    let (t, y) = sine(6, 300, 0.0);
    let path = Mstl.forecast(&t, &y, 300, 288).unwrap();
    let err = mae_vs_truth(&path, *t.last().unwrap(), 300);
    assert!(err < 1.5, "MSTL MAE vs truth {err} ({:?})", path.notes);
    assert!(ordered(&path));
    assert!(path.notes.iter().any(|n| n.contains("[288]")), "{:?}", path.notes);
    assert!(
        path.notes.iter().any(|n| n.contains("no weekly season")),
        "{:?}",
        path.notes
    );
}

#[test]
fn mstl_uses_the_weekly_season_with_two_weeks_and_not_at_one_minute() {
    let (t, y) = sine(15, 1800, 1.0);
    let path = Mstl.forecast(&t, &y, 1800, 48).unwrap();
    assert!(path.notes.iter().any(|n| n.contains("[48, 336]")), "{:?}", path.notes);
    let (t, y) = sine(3, 60, 1.0);
    let path = Mstl.forecast(&t, &y, 60, 15).unwrap();
    assert!(path.notes.iter().any(|n| n.contains("[1440]")), "{:?}", path.notes);
}

#[test]
fn ets_forecasts_a_level_with_an_interval() {
    let (t, y) = sine(1, 300, 4.0);
    let path = Ets.forecast(&t, &y, 300, 6).unwrap();
    assert_eq!(path.len(), 6);
    assert!(ordered(&path));
    assert!(path.p90[0] > path.p10[0], "an interval, not a point");
}

#[test]
fn short_history_still_forecasts_and_says_so() {
    let (t, y) = sine(1, 300, 2.0); // one day: less than two daily seasons
    for name in ["mstl", "prophet", "lgbm", "ensemble-ml"] {
        let m = by_name(name).unwrap();
        let path = m.forecast(&t[..200], &y[..200], 300, 12).unwrap();
        assert_eq!(path.len(), 12, "{name}");
        assert!(ordered(&path), "{name}: {path:?}");
        let said = path.notes.iter().any(|n| {
            n.contains("shorter than two days")
                || n.contains("too little")
                || n.contains("not usable")
                || n.contains("fitted on")
        });
        assert!(said, "{name}: {:?}", path.notes);
    }
    // a single point
    for name in ["mstl", "ets", "prophet", "lgbm", "ensemble-ml"] {
        let path = by_name(name).unwrap().forecast(&[T0], &[5.0], 300, 3).unwrap();
        assert_eq!(path.p50, vec![5.0; 3], "{name}");
    }
}

#[test]
fn bad_input_never_panics() {
    let (t, mut y) = sine(3, 300, 3.0);
    let models: Vec<Box<dyn Forecaster>> = vec![
        Box::new(Mstl),
        Box::new(Ets),
        Box::new(Prophet::default()),
        Box::new(Lgbm::default()),
    ];
    // NaN and inf
    y[100] = f64::NAN;
    y[101] = f64::INFINITY;
    // negative values
    for v in &mut y[300..310] {
        *v = -50.0;
    }
    // a long gap (12 hours)
    let (tg, yg): (Vec<i64>, Vec<f64>) = t
        .iter()
        .zip(&y)
        .enumerate()
        .filter(|(i, _)| !(400..544).contains(i))
        .map(|(_, (a, b))| (*a, *b))
        .collect();
    let constant = vec![7.0; t.len()];
    let all_nan = vec![f64::NAN; 10];
    for m in &models {
        for (tt, yy) in [(&t, &y), (&tg, &yg), (&t, &constant)] {
            let path = m.forecast(tt, yy, 300, 12).unwrap();
            assert!(ordered(&path), "{}: {path:?}", m.name());
        }
        let flat = m.forecast(&t, &constant, 300, 4).unwrap();
        assert!(
            flat.p50.iter().all(|v| (v - 7.0).abs() < 1e-6),
            "{}: {:?}",
            m.name(),
            flat.p50
        );
        assert!(m.forecast(&t[..10], &all_nan, 300, 4).is_err());
        assert!(m.forecast(&t, &y, 300, 0).is_err());
        assert!(m.forecast(&[300, 0], &[1.0, 2.0], 300, 1).is_err());
    }
}

#[test]
fn negative_history_is_not_clamped_and_nonnegative_is() {
    let (t, y) = sine(3, 300, 1.0);
    let shifted: Vec<f64> = y.iter().map(|v| v - 200.0).collect();
    let path = Mstl.forecast(&t, &shifted, 300, 12).unwrap();
    assert!(path.p50.iter().all(|v| *v < 0.0));
    let zeroish: Vec<f64> = y.iter().map(|v| (v - 125.0).max(0.0)).collect();
    let path = Mstl.forecast(&t, &zeroish, 300, 288).unwrap();
    assert!(path.p10.iter().all(|v| *v >= 0.0));
}

#[test]
fn lgbm_learns_a_seasonal_lag_relation() {
    // at 15-minute steps: 12 days of a daily sine with noise; at a 6-hour lead the last
    // value is far off, the same phase yesterday is close
    let step = 900;
    let (t, y) = sine(12, step, 6.0);
    let h = 24;
    let path = Lgbm::default().forecast(&t, &y, step, h).unwrap();
    let o = *t.last().unwrap();
    let err = mae_vs_truth(&path, o, step);
    let last = y[y.len() - 1];
    let naive: f64 = (1..=h).map(|k| (last - truth(o + k as i64 * step)).abs()).sum::<f64>() / h as f64;
    assert!(
        err < 0.35 * naive && err < 4.0,
        "lgbm {err} vs last value {naive}: {:?}",
        path.notes
    );
    assert!(ordered(&path));
    assert!(path.notes.iter().any(|n| n.contains("top gain")), "{:?}", path.notes);
}

#[test]
fn lgbm_training_is_deterministic_and_records_importance() {
    let step = 900;
    let (t, y) = sine(8, step, 6.0);
    let p = prepare(&t, &y, step, 8, usize::MAX).unwrap();
    let a = lgbm::train(&p, p.origin(), 8).unwrap();
    let b = lgbm::train(&p, p.origin(), 8).unwrap();
    assert_eq!(a, b, "same data, same seeds: same models");
    assert_eq!(a.cv_mae.len(), lgbm::CANDIDATES.len());
    assert!(!a.importance.is_empty());
    assert_eq!(a.feature_set_hash, lgbm::pipeline(step).feature_set_hash());
    assert!(a.buckets.iter().all(|b| b.models.len() == 3));
    // the artifact survives a JSON round trip (what the registry stores) and predicts the same
    let json = serde_json::to_string(&a).unwrap();
    let back: lgbm::LgbmArtifact = serde_json::from_str(&json).unwrap();
    assert_eq!(back.predict(&p, 8).unwrap(), a.predict(&p, 8).unwrap());
}

#[test]
fn lgbm_buckets_cover_the_day() {
    let b = lgbm::buckets(300);
    assert_eq!(b[0], (1, 3));
    assert_eq!(b.last().unwrap().1, 288);
    assert!(b.windows(2).all(|w| w[1].0 == w[0].1 + 1));
    // 30-minute steps: 15 minutes and one hour are one and two steps
    assert_eq!(lgbm::buckets(1800)[..2], [(1, 1), (2, 2)]);
}

#[test]
fn prophet_follows_a_daily_sine_and_is_deterministic() {
    let (t, y) = sine(5, 600, 2.0);
    let a = Prophet::default().forecast(&t, &y, 600, 36).unwrap();
    let b = Prophet::default().forecast(&t, &y, 600, 36).unwrap();
    assert_eq!(a, b);
    let err = mae_vs_truth(&a, *t.last().unwrap(), 600);
    assert!(err < 4.0, "prophet MAE vs truth {err}: {:?}", a.notes);
    assert!(ordered(&a));
}

#[test]
fn prophet_takes_one_regressor_per_event_kind() {
    let (t, mut y) = sine(6, 1800, 1.0);
    let events = vec![
        crate::forecast::features::BusinessEvent {
            start: T0 + 2 * 86_400,
            end: T0 + 2 * 86_400 + 6 * 3600,
            kind: "campaign".into(),
            impact: 2.0,
        },
        crate::forecast::features::BusinessEvent {
            start: T0 + 6 * 86_400 + 3600,
            end: T0 + 6 * 86_400 + 5 * 3600,
            kind: "campaign".into(),
            impact: 2.0,
        },
    ];
    for (ti, yi) in t.iter().zip(y.iter_mut()) {
        if events[0].is_active(*ti) {
            *yi += 60.0;
        }
    }
    let path = Prophet::with_events(events).forecast(&t, &y, 1800, 8).unwrap();
    assert!(ordered(&path));
    // the second campaign starts two steps after the origin: the forecast rises with it
    assert!(path.p50[4] > path.p50[0] + 10.0, "{:?} {:?}", path.p50, path.notes);
}

/// Mean absolute error of `p50` at leads `leads` (1-based) against `truth(t)`.
fn mae_at(
    path: &QuantilePath,
    t_last: i64,
    step_s: i64,
    leads: impl Iterator<Item = usize>,
    truth: impl Fn(i64) -> f64,
) -> f64 {
    let errs: Vec<f64> = leads
        .map(|k| (path.p50[k - 1] - truth(t_last + k as i64 * step_s)).abs())
        .collect();
    errs.iter().sum::<f64>() / errs.len() as f64
}

#[test]
fn prophet_holidays_learn_their_effects_and_apply_them_to_the_next_ones() {
    // 22 days at 1 h of a daily sine; the load is 60 lower all day on the days of "closure"
    // and 50 higher on those of "promo". One forecast covers day 20 (a closure, no promo ahead),
    // another day 21 (a promo, no closure ahead): augurs drops the column of a holiday without
    // days in the span predicted, which would give the other the wrong coefficient in one of
    // the two cases whatever order augurs puts them in
    let step = 3600;
    let days = |ds: &[i64]| -> Vec<i64> { ds.iter().map(|d| T0 + d * 86_400).collect() };
    let closures = days(&[4, 9, 13, 17, 20]);
    let promos = days(&[3, 8, 12, 16, 21]);
    let effect = |t: i64| {
        let day = t.div_euclid(86_400) * 86_400;
        if closures.contains(&day) {
            -60.0
        } else if promos.contains(&day) {
            50.0
        } else {
            0.0
        }
    };
    let (t, mut y) = sine(22, step, 2.0);
    for (ti, yi) in t.iter().zip(y.iter_mut()) {
        *yi += effect(*ti);
    }
    let real = |t: i64| truth(t) + effect(t);
    let calendar = vec![
        HolidaySpec::dates("closure", closures.clone()),
        HolidaySpec::dates("promo", promos.clone()),
        // one without an effect, with a window
        HolidaySpec::dates("audit", days(&[6, 15])).with_window(0, 1),
    ];
    for (end_day, name, date) in [(20, "closure", "2014-06-02"), (21, "promo", "2014-06-03")] {
        let n = end_day * 24;
        let o = t[n - 1];
        let with = Prophet::default()
            .with_holidays(calendar.clone())
            .forecast(&t[..n], &y[..n], step, 24)
            .unwrap();
        let without = Prophet::default()
            .with_holidays(Vec::new())
            .forecast(&t[..n], &y[..n], step, 24)
            .unwrap();
        let e_with = mae_at(&with, o, step, 1..=24, real);
        let e_without = mae_at(&without, o, step, 1..=24, real);
        assert!(
            e_without > 25.0,
            "{name}: without holidays the effect is missed: {e_without}"
        );
        assert!(
            e_with < 0.2 * e_without && e_with < 8.0,
            "{name}: with holidays {e_with} vs without {e_without}: {:?}",
            with.notes
        );
        assert!(ordered(&with));
        if end_day == 20 {
            let fit = "holidays in the fit span: audit (2 days), audit +1d (2 days), closure (4 days), promo (4 days)";
            assert!(with.notes.iter().any(|n| n == fit), "{:?}", with.notes);
        }
        let ahead = format!("holiday {name} ahead on {date}");
        assert!(with.notes.iter().any(|n| n == &ahead), "{:?}", with.notes);
        assert!(
            !without.notes.iter().any(|n| n.contains("holiday")),
            "{:?}",
            without.notes
        );
    }
}

#[test]
fn prophet_default_calendar_knows_memorial_day() {
    // T0 is 2014-05-13: twelve days end on May 24, a two-day horizon reaches Memorial Day
    // (May 26), which the fit span does not hold, so it has no effect and the notes say so
    let (t, y) = sine(12, 3600, 2.0);
    let path = Prophet::default().forecast(&t, &y, 3600, 60).unwrap();
    assert!(
        path.notes
            .iter()
            .any(|n| n.contains("holiday public_holiday ahead on 2014-05-26 has no effect")),
        "{:?}",
        path.notes
    );
    // fifteen days hold it
    let (t, y) = sine(15, 3600, 2.0);
    let path = Prophet::default().forecast(&t, &y, 3600, 6).unwrap();
    assert!(
        path.notes
            .iter()
            .any(|n| n.contains("holidays in the fit span: public_holiday (1 day)")),
        "{:?}",
        path.notes
    );
}

/// 24 days at 1 h of a daily sine with a 12-hour sale from 08:00 every other day whose effect
/// ramps up, +5 per hour into it: the event regressor (the impact decaying over the event) has
/// the opposite shape. The last sale (day 23) is after the origin.
fn ramped_sales() -> (
    Vec<i64>,
    Vec<f64>,
    Vec<crate::forecast::features::BusinessEvent>,
    impl Fn(i64) -> f64,
) {
    let events: Vec<crate::forecast::features::BusinessEvent> = (0..12)
        .map(|i| {
            let start = T0 + (2 * i + 1) * 86_400 + 8 * 3600;
            crate::forecast::features::BusinessEvent {
                start,
                end: start + 12 * 3600,
                kind: "sale".into(),
                impact: 2.0,
            }
        })
        .collect();
    let evs = events.clone();
    let effect = move |t: i64| {
        evs.iter()
            .find(|e| e.is_active(t))
            .map_or(0.0, |e| 5.0 * ((t - e.start) / 3600) as f64)
    };
    let (t, mut y) = sine(23, 3600, 2.0);
    for (ti, yi) in t.iter().zip(y.iter_mut()) {
        *yi += effect(*ti);
    }
    (t, y, events, move |t: i64| truth(t) + effect(t))
}

#[test]
fn prophet_event_residual_model_learns_an_effect_the_regressor_cannot() {
    let (t, y, events, real) = ramped_sales();
    let o = *t.last().unwrap();
    let with = Prophet::with_events(events.clone())
        .with_holidays(Vec::new())
        .forecast(&t, &y, 3600, 24)
        .unwrap();
    let without = Prophet::with_events(events)
        .with_holidays(Vec::new())
        .with_event_residuals(false)
        .forecast(&t, &y, 3600, 24)
        .unwrap();
    // the sale runs from 08:00 to 20:00 of day 23: leads 9 to 20
    let e_with = mae_at(&with, o, 3600, 9..=20, &real);
    let e_without = mae_at(&without, o, 3600, 9..=20, &real);
    assert!(e_without > 8.0, "the regressor alone misses the ramp: {e_without}");
    assert!(
        e_with < 0.5 * e_without,
        "with the residual model {e_with} vs without {e_without}: {:?}",
        with.notes
    );
    assert!(ordered(&with));
    // p10/p90 move with p50: the same offsets during the sale (lead 15) as before it (lead 3)
    let offsets = |k: usize| (with.p90[k] - with.p50[k], with.p50[k] - with.p10[k]);
    let (a, b) = (offsets(14), offsets(2));
    assert!((a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9, "{a:?} {b:?}");
    assert!(
        with.notes
            .iter()
            .any(|n| n.contains("event residual model on 132 event points") && n.contains("12 leads during events")),
        "{:?}",
        with.notes
    );
    assert!(
        !without.notes.iter().any(|n| n.contains("event residual")),
        "{:?}",
        without.notes
    );
}

#[test]
fn prophet_with_holidays_and_events_is_deterministic() {
    let (t, y, events, _) = ramped_sales();
    let calendar = vec![
        HolidaySpec::dates("closure", vec![T0 + 4 * 86_400, T0 + 10 * 86_400]).with_window(1, 1),
        HolidaySpec::dates("audit", vec![T0 + 6 * 86_400, T0 + 23 * 86_400]),
    ];
    let run = || {
        Prophet::with_events(events.clone())
            .with_holidays(calendar.clone())
            .forecast(&t, &y, 3600, 30)
            .unwrap()
    };
    let a = run();
    let b = run();
    assert_eq!(a, b);
    assert!(
        a.notes.iter().any(|n| n.contains("event residual model on")),
        "{:?}",
        a.notes
    );
    assert!(
        a.notes.iter().any(|n| n.contains("closure +1d (2 days)")),
        "{:?}",
        a.notes
    );
}

#[test]
fn prophet_says_when_the_event_residual_model_is_skipped() {
    // two 6-hour campaigns at 30-minute steps: 12 event points in the fit, fewer than 50
    let (t, mut y) = sine(6, 1800, 1.0);
    let event = crate::forecast::features::BusinessEvent {
        start: T0 + 2 * 86_400,
        end: T0 + 2 * 86_400 + 6 * 3600,
        kind: "campaign".into(),
        impact: 2.0,
    };
    for (ti, yi) in t.iter().zip(y.iter_mut()) {
        if event.is_active(*ti) {
            *yi += 60.0;
        }
    }
    let path = Prophet::with_events(vec![event]).forecast(&t, &y, 1800, 8).unwrap();
    assert!(
        path.notes
            .iter()
            .any(|n| n == "event residual model skipped: 12 event points in the fit, fewer than 50"),
        "{:?}",
        path.notes
    );
}

#[test]
fn combiner_weights_members_and_calibrates() {
    let (t, y) = sine(5, 900, 4.0);
    let c = Combiner::default();
    assert_eq!(c.member_names(), vec!["ensemble", "mstl", "lgbm", "snaive"]);
    let path = c.forecast(&t, &y, 900, 8).unwrap();
    assert!(ordered(&path));
    assert!(
        path.notes.iter().any(|n| n.contains("weights at lead 1")),
        "{:?}",
        path.notes
    );
    let err = mae_vs_truth(&path, *t.last().unwrap(), 900);
    assert!(err < 4.0, "{err}");
    // deterministic and causal: the same prefix gives the same forecast whatever follows
    let again = Combiner::default().forecast(&t, &y, 900, 8).unwrap();
    assert_eq!(path, again);
}

#[test]
fn day_cutoff_is_the_start_of_the_origins_day() {
    let (t, y) = sine(3, 3600, 0.0);
    let p = prepare(&t[..60], &y[..60], 3600, 1, usize::MAX).unwrap();
    // origin at hour 59 = day 2, 11:00; the cutoff is day 2, 00:00 = index 48
    assert_eq!(day_cutoff(&p, 24), Some(48));
    assert_eq!(day_cutoff(&p, 50), None);
}

#[test]
fn fit_cache_is_bounded_and_keyed() {
    let c: FitCache<u32> = FitCache::new(2);
    c.insert(1, 10);
    c.insert(2, 20);
    c.insert(3, 30);
    assert!(c.get(1).is_none());
    assert_eq!(*c.get(3).unwrap(), 30);
    assert_eq!(*c.get_or_fit::<()>(4, || Ok(40)).unwrap(), 40);
    assert_ne!(fit_key("a", 0, 60, &[1.0], &[]), fit_key("a", 0, 60, &[1.5], &[]));
}
