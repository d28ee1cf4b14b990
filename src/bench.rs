//! `bench`: the time of one forecast cycle over many series (the speed
//! goal: 1,000 series in under 10 s on 2 cores). Each worker thread forecasts its share of the
//! series as one batch (`Forecaster::forecast_batch`: one inference for the transformer), so
//! `--model ensemble` against `--model ensemble-simple` is the cycle with and without the
//! transformer member. Prints figures; no test times anything.

use std::time::Instant;

use actors::forecast::{self, Forecaster};
use anyhow::Context as _;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// How many series one cycle forecasts.
    #[arg(long, default_value_t = 1000)]
    pub series: usize,
    /// History points per series.
    #[arg(long, default_value_t = 8 * 288)]
    pub points: usize,
    /// Interval of the series in seconds.
    #[arg(long, default_value_t = 300)]
    pub step_seconds: i64,
    /// Horizon of each forecast in minutes.
    #[arg(long, default_value_t = 60)]
    pub horizon_minutes: i64,
    /// The model (see `backtest --model`).
    #[arg(long, default_value = forecast::DEFAULT_MODEL)]
    pub model: String,
    /// Worker threads (default: the machine's cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// A deterministic load-like series: a daily and a weekly cycle, a level per
/// series, and noise from a seeded generator.
pub fn synthetic(seed: u64, points: usize, step_s: i64) -> (Vec<i64>, Vec<f64>) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let level = 100.0 + (seed % 97) as f64 * 10.0;
    let t0 = 1_700_000_000 - (1_700_000_000 % 86_400);
    let t: Vec<i64> = (0..points as i64).map(|i| t0 + i * step_s).collect();
    let y = t
        .iter()
        .map(|&ts| {
            let day = (ts % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU;
            let week = (ts % 604_800) as f64 / 604_800.0 * std::f64::consts::TAU;
            (level * (1.0 + 0.5 * day.sin() + 0.1 * week.cos()) + level * 0.05 * noise()).max(0.0)
        })
        .collect();
    (t, y)
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let model: Box<dyn Forecaster> =
        forecast::by_name(&args.model).with_context(|| format!("unknown model `{}`", args.model))?;
    anyhow::ensure!(
        args.series > 0 && args.points > 1,
        "--series and --points must be positive"
    );
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let horizon = ((args.horizon_minutes * 60) as f64 / args.step_seconds as f64)
        .ceil()
        .max(1.0) as usize;
    let data: Vec<(Vec<i64>, Vec<f64>)> = (0..args.series)
        .map(|i| synthetic(i as u64 + 1, args.points, args.step_seconds))
        .collect();
    let started = Instant::now();
    let chunk = args.series.div_ceil(threads);
    let (failures, missing): (usize, Option<String>) = std::thread::scope(|scope| {
        let handles: Vec<_> = data
            .chunks(chunk)
            .map(|part| {
                let model = &model;
                scope.spawn(move || {
                    let jobs: Vec<forecast::Job> = part
                        .iter()
                        .map(|(t, y)| forecast::Job {
                            t,
                            y,
                            step_s: args.step_seconds,
                            horizon,
                        })
                        .collect();
                    let results = model.forecast_batch(&jobs);
                    let failed = results.iter().filter(|r| r.is_err()).count();
                    // a transformer that could not run says so in every forecast's notes
                    let missing = forecast::transformer::unavailable_note(results.iter().flatten());
                    (failed, missing.map(str::to_string))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench worker panicked"))
            .fold((0, None), |(n, m), (f, r)| (n + f, m.or(r)))
    });
    let secs = started.elapsed().as_secs_f64();
    println!(
        "bench: model {} | {} series x {} points (step {} s), horizon {} steps | {} threads",
        model.name(),
        args.series,
        args.points,
        args.step_seconds,
        horizon,
        threads
    );
    println!(
        "bench: one forecast cycle took {secs:.2} s ({:.2} ms per series); {failures} failed; goal for 1,000 series: < 10 s",
        1000.0 * secs / args.series as f64
    );
    if let Some(note) = missing {
        println!("bench: the transformer did not run: {note}");
    }
    anyhow::ensure!(failures == 0, "{failures} series could not be forecast");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_series_are_deterministic_and_distinct() {
        let (t, a) = synthetic(1, 300, 300);
        let (_, b) = synthetic(1, 300, 300);
        let (_, c) = synthetic(2, 300, 300);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(t[1] - t[0], 300);
        assert!(a.iter().all(|v| v.is_finite() && *v >= 0.0));
    }

    #[test]
    fn a_small_cycle_runs() {
        let args = Args {
            series: 4,
            points: 600,
            step_seconds: 300,
            horizon_minutes: 30,
            model: "snaive".into(),
            threads: Some(2),
        };
        run(&args).unwrap();
        let bad = Args {
            model: "nope".into(),
            ..args
        };
        assert!(run(&bad).unwrap_err().to_string().contains("nope"));
    }
}
