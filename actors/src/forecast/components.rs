//! The simple point forecasters the ensemble combines, each computed causally from any origin on a grid.

/// Hours of history an hourly profile takes the median over.
pub(crate) const PROFILE_HOURS: usize = 6;
/// Days of history a daily profile takes the median over.
pub(crate) const PROFILE_DAYS: usize = 7;
/// Weeks of history a weekly profile takes the median over.
pub(crate) const PROFILE_WEEKS: usize = 3;

/// One simple point forecaster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Component {
    /// The last observed value.
    Last,
    /// The mean of the last `level_steps` values.
    Level,
    /// The median of the last `2 * level_steps` values (robust to spikes).
    LevelMedian,
    /// The value one day before (seasonal naive).
    SnaiveDay,
    /// The value one week before.
    SnaiveWeek,
    /// Median of the same phase over the last hours (hourly jobs), unsmoothed.
    ProfileHour,
    /// Median of the same daily phase over the last days, smoothed over neighbouring steps.
    ProfileDay,
    /// `ProfileDay` shifted by the last value minus the profile at the origin.
    ProfileDayDelta,
    /// `ProfileDay` shifted by the recent level minus the profile's recent level.
    ProfileDayShift,
    /// Median of the same weekly phase over the last weeks, smoothed.
    ProfileWeek,
    /// `ProfileWeek` shifted by the recent level minus the profile's recent level.
    ProfileWeekShift,
}

impl Component {
    /// Every component.
    pub(crate) const ALL: [Component; 11] = [
        Component::Last,
        Component::Level,
        Component::LevelMedian,
        Component::SnaiveDay,
        Component::SnaiveWeek,
        Component::ProfileHour,
        Component::ProfileDay,
        Component::ProfileDayDelta,
        Component::ProfileDayShift,
        Component::ProfileWeek,
        Component::ProfileWeekShift,
    ];

    /// The season (in steps) this component needs a full copy of, if any.
    pub(crate) fn season(self, ctx: &Ctx) -> Option<usize> {
        match self {
            Component::Last | Component::Level | Component::LevelMedian => None,
            Component::SnaiveDay | Component::ProfileDay | Component::ProfileDayDelta | Component::ProfileDayShift => {
                Some(ctx.day)
            }
            Component::ProfileHour => Some(ctx.hour),
            Component::SnaiveWeek | Component::ProfileWeek | Component::ProfileWeekShift => Some(ctx.week),
        }
    }
}

/// Shapes the components share.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    /// The regular history (NaN = missing).
    pub x: &'a [f64],
    /// One hour in steps.
    pub hour: usize,
    /// One day in steps.
    pub day: usize,
    /// One week in steps.
    pub week: usize,
    /// Half-width (in steps) of the smoothing window of the profiles.
    pub smooth: usize,
    /// Running sums of the finite values of `x` (`sums[i]` covers `x[..i]`).
    pub sums: &'a [f64],
    /// Running counts of the finite values of `x`.
    pub counts: &'a [usize],
    /// Steps averaged for the recent level.
    pub level_steps: usize,
}

/// Running sums and counts of the finite values of `x`, for window means in constant time.
pub(crate) fn running_sums(x: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut sums = Vec::with_capacity(x.len() + 1);
    let mut counts = Vec::with_capacity(x.len() + 1);
    let (mut s, mut n) = (0.0, 0usize);
    sums.push(s);
    counts.push(n);
    for v in x {
        if v.is_finite() {
            s += v;
            n += 1;
        }
        sums.push(s);
        counts.push(n);
    }
    (sums, counts)
}

/// Last finite value at or before `o` (NaN if none).
pub(crate) fn last_finite(x: &[f64], o: usize) -> f64 {
    x[..=o]
        .iter()
        .rev()
        .copied()
        .find(|v| v.is_finite())
        .unwrap_or(f64::NAN)
}

/// Mean of the finite values in `x[a..=b]`.
fn mean_finite(x: &[f64]) -> f64 {
    let (s, n) = x
        .iter()
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { f64::NAN } else { s / n as f64 }
}

/// Median of the finite values in `buf` (reorders it).
fn median(buf: &mut [f64]) -> f64 {
    let mut n = 0;
    for i in 0..buf.len() {
        if buf[i].is_finite() {
            buf[n] = buf[i];
            n += 1;
        }
    }
    let v = &mut buf[..n];
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable_by(f64::total_cmp);
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The latest index <= `o` with the same phase (mod `period`) as `o + k`.
fn same_phase(o: usize, k: usize, period: usize) -> Option<usize> {
    let back = period * k.div_ceil(period);
    (o + k).checked_sub(back)
}

/// Value of the last season at the phase of `o + k`, going back further seasons past missing values.
fn snaive(x: &[f64], o: usize, k: usize, period: usize) -> f64 {
    let mut idx = same_phase(o, k, period);
    for _ in 0..4 {
        match idx {
            Some(i) if x[i].is_finite() => return x[i],
            Some(i) => idx = i.checked_sub(period),
            None => break,
        }
    }
    f64::NAN
}

/// Median over the last `count` seasons of the (causally) smoothed value at the phase of `p`.
fn profile_at(ctx: &Ctx, o: usize, p: usize, period: usize, count: usize, buf: &mut Vec<f64>) -> f64 {
    let smooth = if period == ctx.hour { 0 } else { ctx.smooth };
    buf.clear();
    let mut idx = Some(p);
    for _ in 0..count {
        let Some(i) = idx else { break };
        let lo = i.saturating_sub(smooth);
        let hi = (i + smooth).min(o);
        let n = ctx.counts[hi + 1] - ctx.counts[lo];
        buf.push(if lo == hi || n == 0 {
            ctx.x[i]
        } else {
            (ctx.sums[hi + 1] - ctx.sums[lo]) / n as f64
        });
        idx = i.checked_sub(period);
    }
    median(buf)
}

/// Forecasts leads `1..=out.len()` from origin `o` (using `x[..=o]` only) into `out`.
/// Values may be NaN where the history has nothing to offer; the caller falls back.
pub(crate) fn forecast(c: Component, ctx: &Ctx, o: usize, out: &mut [f64], buf: &mut Vec<f64>) {
    let x = ctx.x;
    match c {
        Component::Last => out.fill(last_finite(x, o)),
        Component::Level => {
            let lo = (o + 1).saturating_sub(ctx.level_steps);
            out.fill(mean_finite(&x[lo..=o]));
        }
        Component::LevelMedian => {
            let lo = (o + 1).saturating_sub(2 * ctx.level_steps);
            buf.clear();
            buf.extend_from_slice(&x[lo..=o]);
            out.fill(median(buf));
        }
        Component::SnaiveDay | Component::SnaiveWeek => {
            let period = c.season(ctx).unwrap_or(1);
            for (i, v) in out.iter_mut().enumerate() {
                *v = snaive(x, o, i + 1, period);
            }
        }
        Component::ProfileHour => profile_path(ctx, o, ctx.hour, PROFILE_HOURS, out, buf),
        Component::ProfileDay | Component::ProfileDayDelta | Component::ProfileDayShift => {
            profile_path(ctx, o, ctx.day, PROFILE_DAYS, out, buf);
            let shift = match c {
                Component::ProfileDayDelta => level_gap(ctx, o, ctx.day, PROFILE_DAYS, 1, buf),
                Component::ProfileDayShift => level_gap(ctx, o, ctx.day, PROFILE_DAYS, ctx.level_steps, buf),
                _ => 0.0,
            };
            out.iter_mut().for_each(|v| *v += shift);
        }
        Component::ProfileWeek | Component::ProfileWeekShift => {
            profile_path(ctx, o, ctx.week, PROFILE_WEEKS, out, buf);
            if c == Component::ProfileWeekShift {
                let shift = level_gap(ctx, o, ctx.week, PROFILE_WEEKS, ctx.level_steps, buf);
                out.iter_mut().for_each(|v| *v += shift);
            }
        }
    }
}

/// The seasonal profile for leads `1..=out.len()`; it repeats with the period, so only one period is computed.
fn profile_path(ctx: &Ctx, o: usize, period: usize, count: usize, out: &mut [f64], buf: &mut Vec<f64>) {
    let n = out.len().min(period);
    for k in 1..=n {
        out[k - 1] = match same_phase(o, k, period) {
            Some(p) => profile_at(ctx, o, p, period, count, buf),
            None => f64::NAN,
        };
    }
    for k in n + 1..=out.len() {
        out[k - 1] = out[k - 1 - period];
    }
}

/// Mean of the last `r` values minus the mean of the profile (from earlier seasons) at the same points.
fn level_gap(ctx: &Ctx, o: usize, period: usize, count: usize, r: usize, buf: &mut Vec<f64>) -> f64 {
    let lo = (o + 1).saturating_sub(r.max(1));
    let (mut sum, mut n) = (0.0, 0usize);
    for j in lo..=o {
        let v = ctx.x[j];
        if !v.is_finite() {
            continue;
        }
        let Some(p) = j.checked_sub(period) else { continue };
        let prof = profile_at(ctx, o, p, period, count, buf);
        if prof.is_finite() {
            sum += v - prof;
            n += 1;
        }
    }
    if n == 0 { 0.0 } else { sum / n as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_smoothed(c: Component, x: &[f64], day: usize, h: usize, smooth: usize) -> Vec<f64> {
        let (sums, counts) = running_sums(x);
        let ctx = Ctx {
            x,
            hour: 2,
            day,
            week: day * 7,
            smooth,
            sums: &sums,
            counts: &counts,
            level_steps: 2,
        };
        let mut out = vec![0.0; h];
        forecast(c, &ctx, x.len() - 1, &mut out, &mut Vec::new());
        out
    }

    fn run(c: Component, x: &[f64], day: usize, h: usize) -> Vec<f64> {
        run_smoothed(c, x, day, h, 0)
    }

    #[test]
    fn smoothing_averages_neighbours_causally() {
        // days of [0, 3, 6, 9] with a missing value: the smoothed profile at phase 1 is the mean
        // of phases 0..=2 of earlier days; at the origin's own day it cannot look past the origin
        let x = [0.0, 3.0, 6.0, 9.0, 0.0, 3.0, f64::NAN, 9.0, 0.0, 3.0, 6.0, 9.0];
        let p = run_smoothed(Component::ProfileDay, &x, 4, 4, 1);
        // phase 0 (lead 1): windows [9,0,3] -> 4, [9,0,3] -> 4, [0,3] -> 1.5: median 4
        assert_eq!(p[0], 4.0);
        // phase 1 (lead 2): [0,3,6] -> 3, [0,3,NaN] -> 1.5, [0,3,6] -> 3: median 3
        assert_eq!(p[1], 3.0);
    }

    #[test]
    fn seasonal_naive_repeats_the_last_day() {
        let x: Vec<f64> = (0..12).map(|i| f64::from(i % 4) + f64::from(i / 4) * 10.0).collect();
        // last day: [20, 21, 22, 23]
        assert_eq!(
            run(Component::SnaiveDay, &x, 4, 6),
            vec![20.0, 21.0, 22.0, 23.0, 20.0, 21.0]
        );
    }

    #[test]
    fn seasonal_naive_skips_missing_values() {
        let mut x: Vec<f64> = (0..12).map(|i| f64::from(i % 4)).collect();
        x[8] = f64::NAN;
        assert_eq!(run(Component::SnaiveDay, &x, 4, 1), vec![0.0]);
    }

    #[test]
    fn profile_is_the_median_and_shift_follows_the_level() {
        // three days of [0, 10, 0, 10] with an outlier, then the level jumps by +5 in the last two points
        let mut x = vec![0.0, 10.0, 0.0, 10.0, 0.0, 10.0, 0.0, 10.0, 0.0, 1000.0, 0.0, 10.0];
        assert_eq!(run(Component::ProfileDay, &x, 4, 2), vec![0.0, 10.0]);
        x[10] += 5.0;
        x[11] += 5.0;
        assert_eq!(run(Component::ProfileDayShift, &x, 4, 2), vec![5.0, 15.0]);
        assert_eq!(run(Component::ProfileDayDelta, &x, 4, 2), vec![5.0, 15.0]);
    }

    #[test]
    fn level_components() {
        let x = [1.0, 2.0, 3.0, f64::NAN];
        assert_eq!(run(Component::Last, &x, 4, 2), vec![3.0, 3.0]);
        assert_eq!(run(Component::Level, &x, 4, 1), vec![3.0]);
    }
}
