//! The forecast over the lead time: one quantile band per decision tick that this decision must cover.

use super::policy::ForecastInput;
use super::quantile::Band;

/// The ticks a decision at `now` must cover: `now, now + I, …` while before `now + I + warm-up`,
/// when the next decision's replicas serve (`I` the decision interval). The protocol judges
/// the load at whole minutes and the engine decides every minute, so the load is judged at ticks.
pub fn ticks(now: i64, interval_s: i64, warmup_s: i64) -> Vec<i64> {
    let i = interval_s.max(1);
    let end = now.saturating_add(i).saturating_add(warmup_s.max(0));
    (0..)
        .map(|k: i64| now.saturating_add(k.saturating_mul(i)))
        .take_while(|&t| t < end)
        .collect()
}

/// The band at each tick, linearly interpolated between forecast steps (from `start`, the load
/// observed at the origin, before the first step: the origin's load is known), or why the
/// forecast cannot be used: absent steps, a bad step, an origin after `now`, older than
/// `stale_s`, too short, non-finite or with a negative median over the ticks.
pub fn bands(
    f: &ForecastInput,
    start: Option<f64>,
    now: i64,
    ticks: &[i64],
    stale_s: i64,
) -> Result<Vec<Band>, String> {
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
    let end = ticks.last().copied().unwrap_or(now);
    let covered = f.origin.saturating_add(f.step_s.saturating_mul(n as i64));
    if covered < end {
        return Err(format!(
            "forecast covers up to {covered}, the lead time needs up to {end}"
        ));
    }
    // the steps that the ticks read: from the one at or before `now` to the one at or after `end`
    let first = usize::try_from((now - f.origin) / f.step_s)
        .unwrap_or(0)
        .saturating_sub(1);
    let last = usize::try_from((end - f.origin + f.step_s - 1) / f.step_s)
        .unwrap_or(n)
        .min(n);
    let used = first..last.max(first + 1).min(n);
    let vals = || {
        f.p10[used.clone()]
            .iter()
            .chain(&f.p50[used.clone()])
            .chain(&f.p90[used.clone()])
    };
    if vals().any(|v| !v.is_finite()) || start.is_some_and(|s| !s.is_finite()) {
        return Err("forecast is not finite over the lead time".to_string());
    }
    if f.p50[used.clone()].iter().any(|v| *v < 0.0) {
        return Err("forecast median is negative over the lead time".to_string());
    }
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
    Ok(ticks
        .iter()
        .map(|&t| Band::new(at(&f.p10, t).max(0.0), at(&f.p50, t).max(0.0), at(&f.p90, t).max(0.0)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_until_the_next_decision_serves() {
        assert_eq!(ticks(0, 60, 180), vec![0, 60, 120, 180]);
        assert_eq!(ticks(0, 1800, 180), vec![0, 1800]);
        assert_eq!(ticks(0, 60, 0), vec![0]);
        assert_eq!(ticks(0, 0, 5), vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn bands_start_from_the_observed_load_and_interpolate() {
        let f = ForecastInput {
            origin: 0,
            step_s: 300,
            p10: vec![10.0, 10.0],
            p50: vec![20.0, 20.0],
            p90: vec![40.0, 40.0],
        };
        let b = bands(&f, Some(100.0), 150, &[150, 210], 900).unwrap();
        assert_eq!(b[0], Band::new(55.0, 60.0, 70.0));
        let b = bands(&f, None, 0, &[0], 900).unwrap();
        assert_eq!(b[0], Band::new(10.0, 20.0, 40.0));
        let mut neg = f.clone();
        neg.p50[0] = -1.0;
        assert!(bands(&neg, None, 0, &[0, 60], 900).unwrap_err().contains("negative"));
    }
}
