//! Feature engineering for the load models: calendar, Fourier, lag, rolling, derivative and business features, in batch and incrementally.
//!
//! A [`FeaturePipeline`] is built from a [`FeatureConfig`] (and optionally a
//! list of [`BusinessEvent`]s). It names its features in a stable order
//! ([`FeaturePipeline::feature_names`]), versions the feature set with a hash
//! ([`FeaturePipeline::feature_set_hash`]), computes a whole series at once
//! for training ([`FeaturePipeline::compute`]) and hands out a
//! [`FeatureState`] that ingests one point at a time
//! ([`FeatureState::push`]), holding only a ring buffer as long as the longest
//! lag or window. Both paths read the history through the same extractors and
//! give the same numbers.
//!
//! Output order: calendar ([`calendar`]), Fourier ([`fourier`]), lags
//! ([`lags`]), rolling statistics ([`rolling`]), derivatives
//! ([`derivatives`]), business events ([`business`]); groups switched off in
//! [`FeatureGroups`] are left out.
//!
//! Rules for awkward input:
//! - **Time is bucketed**: a point at `t` belongs to step
//!   `t.div_euclid(granularity_seconds)`. Lags, windows and derivatives look
//!   back by step (by time), not by index: a lag whose step holds no point
//!   (a gap, or before the first point) is NaN, and windows use the points
//!   present (see each module for when too few are present).
//! - **Warm-up**: features needing history before the first point are NaN,
//!   never an error; calendar, Fourier and business features never need
//!   history.
//! - **NaN / ±inf values** are refused with [`FeatureError::NonFinite`]
//!   naming the index; so are timestamps chrono cannot place
//!   ([`FeatureError::TimestampOutOfRange`]).
//! - **Duplicated timestamps** (two points in the same step) are refused
//!   with [`FeatureError::Duplicate`], and **backwards** timestamps with
//!   [`FeatureError::OutOfOrder`]: deduplicate upstream if last-wins is
//!   wanted. A point refused by [`FeatureState::push`] leaves the state as it
//!   was, so a caller may skip it and go on (it then counts as a gap).
//! - Spans in minutes become steps as `max(1, round(minutes·60/granularity))`,
//!   half to even; spans landing on the same step are emitted once, named by
//!   the span they really cover (see [`lags`]).

pub mod business;
pub mod calendar;
pub mod derivatives;
pub mod fourier;
mod history;
pub mod lags;
pub mod rolling;

#[cfg(test)]
mod tests;

use chrono::DateTime;
use serde::{Deserialize, Serialize};

pub use business::BusinessEvent;
pub use fourier::FourierTerm;

use history::{History, Ring, SliceHistory};

/// Bumped when a feature's definition changes without its name changing; part of the hash.
pub const FEATURE_SET_VERSION: u32 = 1;
/// Minutes in a day (same time yesterday).
pub const DAY_MINUTES: u32 = 1440;
/// Minutes in a week (same time last week).
pub const WEEK_MINUTES: u32 = 10_080;

/// Which feature groups a pipeline emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureGroups {
    /// Calendar features ([`calendar`]).
    pub time: bool,
    /// Lags, their differences and ratios ([`lags`]).
    pub lags: bool,
    /// Rolling statistics ([`rolling`]).
    pub rolling: bool,
    /// Fourier terms ([`fourier`]).
    pub fourier: bool,
    /// Business-event features ([`business`]).
    pub business: bool,
    /// Velocity and acceleration ([`derivatives`]).
    pub derivatives: bool,
}

impl Default for FeatureGroups {
    fn default() -> Self {
        Self {
            time: true,
            lags: true,
            rolling: true,
            fourier: true,
            business: true,
            derivatives: true,
        }
    }
}

/// What features to compute and at what granularity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureConfig {
    /// Seconds between points of the series (60 by default; any positive value).
    pub granularity_seconds: u32,
    /// Lag spans in minutes (same time yesterday and last week are always added).
    pub lag_windows_minutes: Vec<u32>,
    /// Rolling-window spans in minutes.
    pub rolling_windows_minutes: Vec<u32>,
    /// Seasonal periods and their harmonics.
    pub fourier: Vec<FourierTerm>,
    /// Velocity / acceleration spans in minutes.
    pub velocity_minutes: Vec<u32>,
    /// Points averaged by the smoothed velocity (at least 1).
    pub velocity_smoothing_points: u32,
    /// The business-event kind counted as a launch.
    pub launch_kind: String,
    /// Group toggles.
    pub groups: FeatureGroups,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        let windows = vec![5, 10, 15, 30, 60, 120, 360, 720, 1440];
        Self {
            granularity_seconds: 60,
            lag_windows_minutes: windows.clone(),
            rolling_windows_minutes: windows,
            fourier: vec![FourierTerm::DAILY, FourierTerm::WEEKLY],
            velocity_minutes: vec![1, 5, 15],
            velocity_smoothing_points: 5,
            launch_kind: "launch".into(),
            groups: FeatureGroups::default(),
        }
    }
}

impl FeatureConfig {
    /// The default configuration for a series of `seconds` granularity.
    pub fn with_granularity(seconds: u32) -> Self {
        Self {
            granularity_seconds: seconds,
            ..Self::default()
        }
    }
}

/// Why features could not be computed.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum FeatureError {
    /// The configuration is unusable.
    #[error("bad feature configuration: {0}")]
    BadConfig(String),
    /// `t` and `y` differ in length.
    #[error("{t} timestamps but {y} values")]
    LengthMismatch {
        /// Timestamps given.
        t: usize,
        /// Values given.
        y: usize,
    },
    /// A value is NaN or infinite.
    #[error("index {index}: value {value} is not finite")]
    NonFinite {
        /// Index of the point (for a stream: points accepted before it).
        index: usize,
        /// The value.
        value: f64,
    },
    /// A timestamp chrono cannot place in the calendar.
    #[error("index {index}: timestamp {t} is out of the calendar's range")]
    TimestampOutOfRange {
        /// Index of the point.
        index: usize,
        /// The timestamp.
        t: i64,
    },
    /// Two points fall in the same step.
    #[error("index {index}: timestamp {t} falls in the same step as the previous point at {previous}")]
    Duplicate {
        /// Index of the later point.
        index: usize,
        /// Its timestamp.
        t: i64,
        /// The previous point's timestamp.
        previous: i64,
    },
    /// A timestamp is earlier than the one before.
    #[error("index {index}: timestamp {t} is earlier than the previous point at {previous}")]
    OutOfOrder {
        /// Index of the point.
        index: usize,
        /// Its timestamp.
        t: i64,
        /// The previous point's timestamp.
        previous: i64,
    },
    /// A business event is malformed.
    #[error("business event {index}: {reason}")]
    BadEvent {
        /// Index in the list given.
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Steps of a `granularity_seconds` series in `minutes`: `max(1, round(minutes·60/granularity))`, half to even.
pub fn steps_for_minutes(minutes: u32, granularity_seconds: u32) -> usize {
    crate::series::steps(f64::from(minutes), i64::from(granularity_seconds))
}

/// A span for a feature name: `{n}m` when it is whole minutes, else `{n}s`.
pub fn span_name(seconds: i64) -> String {
    if seconds % 60 == 0 {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

/// FNV-1a, 64 bits.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The configuration resolved into steps.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    granularity: i64,
    lag_steps: Vec<usize>,
    rolling_steps: Vec<usize>,
    velocity_steps: Vec<usize>,
    smoothing: usize,
}

fn to_steps(minutes: &[u32], g: u32) -> Vec<usize> {
    let mut v: Vec<usize> = minutes.iter().map(|&m| steps_for_minutes(m, g)).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Computes the configured features, for a whole series or (through [`FeatureState`]) point by point.
#[derive(Debug, Clone, PartialEq)]
pub struct FeaturePipeline {
    config: FeatureConfig,
    events: Vec<BusinessEvent>,
    plan: Plan,
    names: Vec<String>,
}

impl FeaturePipeline {
    /// Checks `config` and resolves it: granularity, spans, periods, harmonics and smoothing must be positive.
    pub fn new(config: FeatureConfig) -> Result<Self, FeatureError> {
        let bad = |m: String| Err(FeatureError::BadConfig(m));
        let g = config.granularity_seconds;
        if g == 0 {
            return bad("granularity_seconds must be positive".into());
        }
        for (what, spans) in [
            ("lag_windows_minutes", &config.lag_windows_minutes),
            ("rolling_windows_minutes", &config.rolling_windows_minutes),
            ("velocity_minutes", &config.velocity_minutes),
        ] {
            if spans.contains(&0) {
                return bad(format!("{what} must all be positive"));
            }
        }
        for f in &config.fourier {
            if f.period_seconds == 0 || f.period_seconds > i64::MAX as u64 || f.harmonics == 0 {
                return bad(format!("Fourier term {f:?}: period and harmonics must be positive"));
            }
        }
        if config.velocity_smoothing_points == 0 {
            return bad("velocity_smoothing_points must be positive".into());
        }
        let mut lag_minutes = config.lag_windows_minutes.clone();
        lag_minutes.extend([DAY_MINUTES, WEEK_MINUTES]);
        let mut rolling_steps = to_steps(&config.rolling_windows_minutes, g);
        rolling_steps.retain(|&k| k >= 2);
        let plan = Plan {
            granularity: i64::from(g),
            lag_steps: to_steps(&lag_minutes, g),
            rolling_steps,
            velocity_steps: to_steps(&config.velocity_minutes, g),
            smoothing: config.velocity_smoothing_points as usize,
        };
        let gr = config.groups;
        let gi = plan.granularity;
        let mut names = Vec::new();
        if gr.time {
            names.extend(calendar::names());
        }
        if gr.fourier {
            names.extend(fourier::names(&config.fourier));
        }
        if gr.lags {
            names.extend(lags::names(&plan.lag_steps, gi));
        }
        if gr.rolling {
            names.extend(rolling::names(&plan.rolling_steps, gi));
        }
        if gr.derivatives {
            names.extend(derivatives::names(&plan.velocity_steps, gi));
        }
        if gr.business {
            names.extend(business::NAMES.iter().map(|s| s.to_string()));
        }
        Ok(Self {
            config,
            events: Vec::new(),
            plan,
            names,
        })
    }

    /// The same pipeline with these business events (checked, then sorted by start).
    pub fn with_events(mut self, mut events: Vec<BusinessEvent>) -> Result<Self, FeatureError> {
        business::validate(&events)?;
        events.sort_by_key(|e| (e.start, e.end));
        self.events = events;
        Ok(self)
    }

    /// The configuration.
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// The business events, sorted by start.
    pub fn events(&self) -> &[BusinessEvent] {
        &self.events
    }

    /// Feature names, in the order of every row.
    pub fn feature_names(&self) -> Vec<String> {
        self.names.clone()
    }

    /// Number of features per row.
    pub fn n_features(&self) -> usize {
        self.names.len()
    }

    /// Steps of history, behind the current point, that some feature reads.
    pub fn lookback_steps(&self) -> usize {
        let (gr, p) = (self.config.groups, &self.plan);
        let lag = if gr.lags {
            p.lag_steps.last().copied().unwrap_or(0)
        } else {
            0
        };
        let roll = if gr.rolling {
            p.rolling_steps.last().map_or(0, |k| k - 1)
        } else {
            0
        };
        let der = if gr.derivatives {
            derivatives::lookback(&p.velocity_steps, p.smoothing)
        } else {
            0
        };
        lag.max(roll).max(der)
    }

    /// The feature-set hash: FNV-1a 64 (16 hex digits) of [`FEATURE_SET_VERSION`], the configuration
    /// as JSON and the feature names. It changes whenever the features would (and also when the
    /// configuration is merely reordered); business events are data, not part of it.
    pub fn feature_set_hash(&self) -> String {
        let config = serde_json::to_string(&self.config).unwrap_or_default();
        let text = format!(
            "pscaler-features/v{FEATURE_SET_VERSION}\n{config}\n{}",
            self.names.join("\n")
        );
        format!("{:016x}", fnv1a64(text.as_bytes()))
    }

    /// Features of every point of a series (`t` epoch seconds, strictly increasing steps; `y`
    /// finite), one row per point in [`Self::feature_names`] order, each using only the points
    /// up to it. Errors name the first offending index.
    pub fn compute(&self, t: &[i64], y: &[f64]) -> Result<Vec<Vec<f64>>, FeatureError> {
        if t.len() != y.len() {
            return Err(FeatureError::LengthMismatch { t: t.len(), y: y.len() });
        }
        let mut buckets = Vec::with_capacity(t.len());
        let mut prev = None;
        for (i, (&ti, &yi)) in t.iter().zip(y).enumerate() {
            let b = self.check(i, ti, yi, prev)?;
            buckets.push(b);
            prev = Some((ti, b));
        }
        let mut scratch = rolling::Scratch::default();
        Ok((0..t.len())
            .map(|at| {
                let h = SliceHistory {
                    buckets: &buckets,
                    y,
                    at,
                };
                self.row(&h, t[at], y[at], &mut scratch)
            })
            .collect())
    }

    /// A fresh incremental state for this pipeline.
    pub fn state(&self) -> FeatureState {
        FeatureState::new(self.clone())
    }

    /// Validates point `index` against the previous (timestamp, step); returns its step.
    fn check(&self, index: usize, t: i64, y: f64, prev: Option<(i64, i64)>) -> Result<i64, FeatureError> {
        if !y.is_finite() {
            return Err(FeatureError::NonFinite { index, value: y });
        }
        if DateTime::from_timestamp(t, 0).is_none() {
            return Err(FeatureError::TimestampOutOfRange { index, t });
        }
        let b = t.div_euclid(self.plan.granularity);
        match prev {
            Some((pt, pb)) if b == pb => Err(FeatureError::Duplicate { index, t, previous: pt }),
            Some((pt, pb)) if b < pb => Err(FeatureError::OutOfOrder { index, t, previous: pt }),
            _ => Ok(b),
        }
    }

    fn row<H: History>(&self, h: &H, t: i64, y: f64, scratch: &mut rolling::Scratch) -> Vec<f64> {
        let (gr, p) = (self.config.groups, &self.plan);
        let mut out = Vec::with_capacity(self.names.len());
        if gr.time {
            calendar::extract(t, &mut out);
        }
        if gr.fourier {
            fourier::extract(&self.config.fourier, t, &mut out);
        }
        if gr.lags {
            lags::extract(h, y, &p.lag_steps, &mut out);
        }
        if gr.rolling {
            rolling::extract(h, y, &p.rolling_steps, p.granularity, scratch, &mut out);
        }
        if gr.derivatives {
            derivatives::extract(h, y, &p.velocity_steps, p.granularity, p.smoothing, &mut out);
        }
        if gr.business {
            business::extract(&self.events, &self.config.launch_kind, t, &mut out);
        }
        debug_assert_eq!(out.len(), self.names.len());
        out
    }
}

/// Incremental feature computation: one point in, its feature row out.
///
/// Holds a ring buffer of `lookback_steps + 1` values (e.g. 10 081 at the
/// default 1-minute configuration, for the week lag), so memory is bounded and
/// a point costs O(longest window) work, whatever the length of the stream.
#[derive(Debug, Clone)]
pub struct FeatureState {
    pipeline: FeaturePipeline,
    ring: Ring,
    last: Option<(i64, i64)>,
    accepted: usize,
    scratch: rolling::Scratch,
}

impl FeatureState {
    /// An empty state.
    pub fn new(pipeline: FeaturePipeline) -> Self {
        let ring = Ring::new(pipeline.lookback_steps() + 1);
        Self {
            pipeline,
            ring,
            last: None,
            accepted: 0,
            scratch: rolling::Scratch::default(),
        }
    }

    /// The pipeline it computes.
    pub fn pipeline(&self) -> &FeaturePipeline {
        &self.pipeline
    }

    /// Points accepted so far.
    pub fn len(&self) -> usize {
        self.accepted
    }

    /// Whether no point was accepted yet.
    pub fn is_empty(&self) -> bool {
        self.accepted == 0
    }

    /// Steps of history the ring buffer holds (the current one included).
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Ingests the point (`t` epoch seconds, `y`) and returns its features, equal to the row
    /// [`FeaturePipeline::compute`] gives it in the whole series. A refused point (error index =
    /// points accepted before it) leaves the state unchanged.
    pub fn push(&mut self, t: i64, y: f64) -> Result<Vec<f64>, FeatureError> {
        let b = self.pipeline.check(self.accepted, t, y, self.last)?;
        self.ring.push(b, y);
        self.last = Some((t, b));
        self.accepted += 1;
        Ok(self.pipeline.row(&self.ring, t, y, &mut self.scratch))
    }
}
