//! `backtest`: rolling-origin forecasts of a series under the evaluation protocol, as CSV for the scorer.
//!
//! For every horizon class and every origin the protocol requires, the model
//! sees only the points at or before the origin and forecasts p10/p50/p90 for
//! each step of the horizon. Where two classes share an (origin, step), the
//! row comes from the class with the shorter horizon (written first), so the
//! file holds exactly one forecast per (origin, step).

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use actors::forecast::{self, Forecaster, QuantilePath};
use actors::series::{self, HorizonClass, Series};
use anyhow::{Context, bail};

/// A horizon class on the command line.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassArg {
    /// 15 minutes ahead, an origin every hour.
    Short,
    /// 24 hours ahead, an origin every 6 hours.
    Day,
    /// 7 days ahead, an origin every day (needs 21 days of training).
    Week,
}

impl From<ClassArg> for HorizonClass {
    fn from(c: ClassArg) -> Self {
        match c {
            ClassArg::Short => HorizonClass::Short,
            ClassArg::Day => HorizonClass::Day,
            ClassArg::Week => HorizonClass::Week,
        }
    }
}

/// Options of `predictive-scaler backtest`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The series CSV (`timestamp,value`).
    #[arg(long)]
    pub input: PathBuf,
    /// Horizon classes to forecast (repeatable); default: short, day and week where it applies.
    #[arg(long = "class", value_enum)]
    pub classes: Vec<ClassArg>,
    /// Where to write `origin,step,timestamp,p10,p50,p90`.
    #[arg(long)]
    pub output: PathBuf,
    /// Forecasting model (see `actors::forecast::model_names`).
    #[arg(long, default_value = forecast::DEFAULT_MODEL)]
    pub model: String,
}

/// One forecast of the plan: the origin's index and the horizon in steps.
struct Job {
    origin: usize,
    horizon: usize,
}

/// Forecasts every job from the history up to its origin, on all cores, each core's share as
/// one batch (one inference for a model that batches); results in job order.
fn run_jobs(model: &dyn Forecaster, s: &Series, jobs: &[Job]) -> anyhow::Result<Vec<QuantilePath>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 16);
    let chunk = jobs.len().div_ceil(threads).max(1);
    let results: Vec<anyhow::Result<Vec<QuantilePath>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let batch: Vec<forecast::Job> = part
                        .iter()
                        .map(|j| forecast::Job {
                            t: &s.t[..=j.origin],
                            y: &s.y[..=j.origin],
                            step_s: s.step_s,
                            horizon: j.horizon,
                        })
                        .collect();
                    model
                        .forecast_batch(&batch)
                        .into_iter()
                        .zip(part)
                        .map(|(r, j)| r.with_context(|| format!("forecast at {}", series::format_time(s.t[j.origin]))))
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("worker panicked"))))
            .collect()
    });
    let mut out = Vec::with_capacity(jobs.len());
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

/// Writes the forecasts of `classes` (all that apply when empty) for series `s` to `out`.
pub fn write_backtest(
    s: &Series,
    classes: &[HorizonClass],
    model: &dyn Forecaster,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    let mut classes: Vec<HorizonClass> = if classes.is_empty() {
        HorizonClass::ALL.to_vec()
    } else {
        classes.to_vec()
    };
    classes.sort();
    classes.dedup();
    writeln!(out, "origin,step,timestamp,p10,p50,p90")?;
    let mut seen: HashSet<(i64, usize)> = HashSet::new();
    let mut rows = 0;
    for class in classes {
        let Some((h, origins)) = series::horizon_plan(s, class) else {
            eprintln!("{}: class {} does not apply", s.name, class.name());
            continue;
        };
        let started = Instant::now();
        let jobs: Vec<Job> = origins.iter().map(|&o| Job { origin: o, horizon: h }).collect();
        let paths = run_jobs(model, s, &jobs)?;
        if let Some(note) = forecast::transformer::unavailable_note(&paths) {
            eprintln!("{}: {note}", s.name);
        }
        for (job, path) in jobs.iter().zip(&paths) {
            let o = s.t[job.origin];
            let origin = series::format_time(o);
            for k in 1..=h {
                if !seen.insert((o, k)) {
                    continue;
                }
                let ts = series::format_time(o + k as i64 * s.step_s);
                let (a, b, c) = (path.p10[k - 1], path.p50[k - 1], path.p90[k - 1]);
                writeln!(out, "{origin},{k},{ts},{a},{b},{c}")?;
                rows += 1;
            }
        }
        eprintln!(
            "{}: {} {} origins x {h} steps with {} in {:.2}s",
            s.name,
            jobs.len(),
            class.name(),
            model.name(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(rows)
}

/// Runs `predictive-scaler backtest`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let Some(model) = forecast::by_name(&args.model) else {
        bail!(
            "unknown model `{}` (known: {})",
            args.model,
            forecast::model_names().join(", ")
        );
    };
    let s = series::load_series(&args.input)?;
    eprintln!(
        "{}: {} points every {} s, test region from {}",
        s.name,
        s.n(),
        s.step_s,
        series::format_time(s.t[s.train_end()])
    );
    let classes: Vec<HorizonClass> = args.classes.iter().map(|&c| c.into()).collect();
    let file = std::fs::File::create(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let rows = write_backtest(&s, &classes, model.as_ref(), &mut out)?;
    out.flush()?;
    eprintln!("{}: {rows} rows written to {}", s.name, args.output.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five days at 5-minute steps of a noisy daily cycle.
    fn synthetic() -> Series {
        let mut state = 7u64;
        let pairs = (0..5 * 288)
            .map(|i: i64| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let noise = (state >> 40) as f64 / (1u64 << 24) as f64;
                let phase = (i % 288) as f64 / 288.0 * std::f64::consts::TAU;
                (1_400_000_000 + i * 300, 50.0 + 30.0 * phase.sin() + 10.0 * noise)
            })
            .collect();
        Series::from_pairs("synthetic", pairs).unwrap()
    }

    fn backtest(s: &Series, classes: &[HorizonClass]) -> String {
        let mut out = Vec::new();
        write_backtest(s, classes, forecast::by_name("ensemble").unwrap().as_ref(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn writes_every_required_origin_and_step_once() {
        let s = synthetic();
        let text = backtest(&s, &[]);
        let mut keys = HashSet::new();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 6);
            assert!(
                keys.insert((f[0].to_string(), f[1].parse::<usize>().unwrap())),
                "duplicate {line}"
            );
        }
        for class in [HorizonClass::Short, HorizonClass::Day] {
            let (h, origins) = series::horizon_plan(&s, class).unwrap();
            for o in origins {
                for k in 1..=h {
                    assert!(keys.contains(&(series::format_time(s.t[o]), k)), "{class:?} {o} {k}");
                }
            }
        }
        assert!(series::horizon_plan(&s, HorizonClass::Week).is_none());
    }

    #[test]
    fn week_class_applies_with_three_weeks_and_shares_rows_with_shorter_classes() {
        // 40 days at 30-minute steps: 32 days of training, 8 of test
        let pairs = (0..40 * 48)
            .map(|i: i64| {
                let phase = (i % 48) as f64 / 48.0 * std::f64::consts::TAU;
                let weekend = if (i / 48) % 7 >= 5 { 0.6 } else { 1.0 };
                (
                    1_400_000_000 + i * 1800,
                    weekend * (100.0 + 40.0 * phase.sin()) + (i % 7) as f64,
                )
            })
            .collect();
        let s = Series::from_pairs("weekly", pairs).unwrap();
        let (h, origins) = series::horizon_plan(&s, HorizonClass::Week).expect("week applies");
        assert_eq!(h, 336);
        let text = backtest(&s, &[]);
        let rows: Vec<(String, usize)> = text
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].to_string(), f[1].parse().unwrap())
            })
            .collect();
        let keys: HashSet<&(String, usize)> = rows.iter().collect();
        assert_eq!(keys.len(), rows.len(), "one row per (origin, step)");
        for o in origins {
            for k in 1..=h {
                assert!(keys.contains(&(series::format_time(s.t[o]), k)));
            }
        }
        // only the week class asked for: the same week rows, without the other classes' origins
        let week_only = backtest(&s, &[HorizonClass::Week]);
        assert!(week_only.lines().count() < text.lines().count());
    }

    #[test]
    fn tripling_the_future_changes_no_row_up_to_then() {
        let s = synthetic();
        let cut = s.t[s.train_end()] + 9 * 3600 + 120;
        let mut tripled = s.clone();
        for (t, y) in tripled.t.iter().zip(tripled.y.iter_mut()) {
            if *t > cut {
                *y *= 3.0;
            }
        }
        let a = backtest(&s, &[]);
        let b = backtest(&tripled, &[]);
        let early = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.starts_with('2') && series::parse_time(l.split(',').next().unwrap()).unwrap() <= cut)
                .map(str::to_string)
                .collect()
        };
        let (ea, eb) = (early(&a), early(&b));
        assert!(ea.len() > 100, "{}", ea.len());
        assert_eq!(ea, eb);
        assert_ne!(a, b, "later origins must see the change");
    }
}
