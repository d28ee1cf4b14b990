//! Load-trace series as the evaluation protocol reads them, and the protocol's constants and plans.
//!
//! Mirrors `shared/eval/protocol.py` exactly: the same accepted headers and
//! time formats, the same sort, the same interval (median spacing), the same
//! train/test split, origins, horizons and scaling physics, so that what the
//! `backtest` and `simulate` commands produce is scored on the work the
//! scorers expect.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Names accepted for the time column (case-insensitive, trimmed).
pub const TIME_COLUMNS: [&str; 4] = ["timestamp", "ds", "time", "date"];
/// Names accepted for the value column (case-insensitive, trimmed).
pub const VALUE_COLUMNS: [&str; 2] = ["value", "y"];
/// The last 20 % of the points are the test region.
pub const TEST_FRACTION: f64 = 0.2;
/// The week class needs three weeks of training history.
pub const WEEK_MIN_TRAIN_DAYS: f64 = 21.0;
/// Capacity of one replica = P99(training demand) / this.
pub const REPLICAS_AT_P99: f64 = 20.0;
/// Fewest replicas the scaling physics allows.
pub const MIN_REPLICAS: u32 = 1;
/// Most replicas the scaling physics allows.
pub const MAX_REPLICAS: u32 = 200;
/// A replica asked for at `t` serves from `t + WARMUP_MIN` minutes.
pub const WARMUP_MIN: i64 = 3;
/// Target utilization of the reference reactive HPA.
pub const HPA_TARGET: f64 = 0.7;

/// What went wrong reading a series file.
#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    /// The file could not be read at all.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file has no header line.
    #[error("{path}: empty file, expected a header `timestamp,value`")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The header lacks a time or value column.
    #[error("{path}: line 1: no {what} column (expected one of {expected}), header is `{header}`")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// "time" or "value".
        what: &'static str,
        /// The accepted names.
        expected: String,
        /// The header as read.
        header: String,
    },
    /// A data row is shorter than the header's time or value column.
    #[error("{path}: line {line}: {found} fields, the {what} column is field {needed}")]
    ShortRow {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Fields found on the line.
        found: usize,
        /// 1-based position of the missing column.
        needed: usize,
        /// "time" or "value".
        what: &'static str,
    },
    /// A time that is neither ISO-8601 nor epoch seconds.
    #[error("{path}: line {line}: bad time `{text}` (expected ISO-8601 or epoch seconds)")]
    BadTime {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The text as read.
        text: String,
    },
    /// A value that is not a number.
    #[error("{path}: line {line}: bad value `{text}` (expected a number)")]
    BadValue {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The text as read.
        text: String,
    },
    /// Fewer than two rows: no interval can be measured.
    #[error("{path}: {rows} data rows, at least 2 are needed to measure the interval")]
    TooShort {
        /// The file.
        path: PathBuf,
        /// Data rows found.
        rows: usize,
    },
    /// The median spacing is not positive (duplicate timestamps).
    #[error("{path}: median spacing of the timestamps is {step_s} s, it must be positive")]
    BadInterval {
        /// The file.
        path: PathBuf,
        /// The median spacing found.
        step_s: i64,
    },
}

/// A series sorted by time, as `protocol.load_series` gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Name (the file stem).
    pub name: String,
    /// Epoch seconds, sorted ascending.
    pub t: Vec<i64>,
    /// Values, aligned with `t`.
    pub y: Vec<f64>,
    /// The interval: median spacing of `t`, truncated to whole seconds.
    pub step_s: i64,
}

impl Series {
    /// Builds a series from pairs, sorting them as the protocol does (by time, then value).
    pub fn from_pairs(name: &str, mut pairs: Vec<(i64, f64)>) -> Option<Series> {
        if pairs.len() < 2 {
            return None;
        }
        pairs.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let t: Vec<i64> = pairs.iter().map(|p| p.0).collect();
        let y: Vec<f64> = pairs.iter().map(|p| p.1).collect();
        let step_s = median_spacing(&t);
        Some(Series {
            name: name.to_string(),
            t,
            y,
            step_s,
        })
    }

    /// Number of points.
    pub fn n(&self) -> usize {
        self.t.len()
    }

    /// Index of the last training point (the first origin): `n - floor(0.2 n) - 1`.
    pub fn train_end(&self) -> usize {
        let n = self.n();
        let test = (TEST_FRACTION * n as f64).floor() as usize;
        n.saturating_sub(test).saturating_sub(1)
    }

    /// Capacity of one replica: numpy's linear P99 of the training values / 20.
    pub fn capacity_per_replica(&self) -> f64 {
        percentile_linear(&self.y[..=self.train_end()], 99.0) / REPLICAS_AT_P99
    }
}

/// Median of the spacings, as `int(np.median(np.diff(t)))`.
fn median_spacing(t: &[i64]) -> i64 {
    let mut d: Vec<i64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    if d.is_empty() {
        return 0;
    }
    d.sort_unstable();
    let n = d.len();
    if n % 2 == 1 {
        d[n / 2]
    } else {
        let m = (d[n / 2 - 1] as f64 + d[n / 2] as f64) / 2.0;
        m.trunc() as i64
    }
}

/// numpy's default (linear) percentile of `values`, `q` in [0, 100]; NaN if empty.
pub fn percentile_linear(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    quantile_sorted(&v, q / 100.0)
}

/// Linear-interpolation quantile (numpy's default) of already sorted values, `p` in [0, 1].
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = p.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// Seconds since the epoch from ISO-8601 text (naive = UTC, `Z` or an offset) or epoch seconds.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(v) = text.parse::<f64>() {
        return if v.is_finite() { Some(v.trunc() as i64) } else { None };
    }
    let iso = if let Some(stripped) = text.strip_suffix('Z').or_else(|| text.strip_suffix('z')) {
        format!("{stripped}+00:00")
    } else {
        text.to_string()
    };
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%d %H:%M%:z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(&iso, fmt) {
            return Some(t.timestamp());
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(&iso, fmt) {
            return Some(t.and_utc().timestamp());
        }
    }
    NaiveDate::parse_from_str(&iso, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
}

/// `%Y-%m-%dT%H:%M:%SZ` in UTC, as `protocol.format_time`.
pub fn format_time(seconds: i64) -> String {
    match DateTime::<Utc>::from_timestamp(seconds, 0) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => seconds.to_string(),
    }
}

/// Splits one CSV line into fields, honouring double quotes (`""` is a quote inside quotes).
fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// Reads a series from CSV text; `path` only names the source in errors.
pub fn parse_series(path: &Path, name: &str, text: &str) -> Result<Series, SeriesError> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header_line)) = lines.next() else {
        return Err(SeriesError::Empty {
            path: path.to_path_buf(),
        });
    };
    let header: Vec<String> = split_csv_line(header_line.trim_start_matches('\u{feff}'))
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    let find = |names: &[&str], what: &'static str| {
        header
            .iter()
            .position(|h| names.contains(&h.as_str()))
            .ok_or_else(|| SeriesError::MissingColumn {
                path: path.to_path_buf(),
                what,
                expected: names.join("|"),
                header: header_line.trim().to_string(),
            })
    };
    let ti = find(&TIME_COLUMNS, "time")?;
    let vi = find(&VALUE_COLUMNS, "value")?;
    let mut pairs = Vec::new();
    for (idx, line) in lines {
        let lineno = idx + 1;
        let fields = split_csv_line(line);
        for (col, what) in [(ti, "time"), (vi, "value")] {
            if fields.len() <= col {
                return Err(SeriesError::ShortRow {
                    path: path.to_path_buf(),
                    line: lineno,
                    found: fields.len(),
                    needed: col + 1,
                    what,
                });
            }
        }
        let t = parse_time(&fields[ti]).ok_or_else(|| SeriesError::BadTime {
            path: path.to_path_buf(),
            line: lineno,
            text: fields[ti].clone(),
        })?;
        let y: f64 = fields[vi].trim().parse().map_err(|_| SeriesError::BadValue {
            path: path.to_path_buf(),
            line: lineno,
            text: fields[vi].clone(),
        })?;
        pairs.push((t, y));
    }
    let rows = pairs.len();
    let series = Series::from_pairs(name, pairs).ok_or_else(|| SeriesError::TooShort {
        path: path.to_path_buf(),
        rows,
    })?;
    if series.step_s <= 0 {
        return Err(SeriesError::BadInterval {
            path: path.to_path_buf(),
            step_s: series.step_s,
        });
    }
    Ok(series)
}

/// Reads a series CSV file; the series is named after the file stem.
pub fn load_series(path: &Path) -> Result<Series, SeriesError> {
    let text = std::fs::read_to_string(path).map_err(|source| SeriesError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse_series(path, &name, &text)
}

/// A horizon class of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HorizonClass {
    /// 15 minutes ahead, an origin every hour.
    Short,
    /// 24 hours ahead, an origin every 6 hours.
    Day,
    /// 7 days ahead, an origin every day; needs 21 days of training.
    Week,
}

impl HorizonClass {
    /// Every class, shortest first.
    pub const ALL: [HorizonClass; 3] = [HorizonClass::Short, HorizonClass::Day, HorizonClass::Week];

    /// (horizon, origin stride), both in minutes.
    pub fn minutes(self) -> (f64, f64) {
        match self {
            HorizonClass::Short => (15.0, 60.0),
            HorizonClass::Day => (24.0 * 60.0, 6.0 * 60.0),
            HorizonClass::Week => (7.0 * 24.0 * 60.0, 24.0 * 60.0),
        }
    }

    /// The protocol's name of the class.
    pub fn name(self) -> &'static str {
        match self {
            HorizonClass::Short => "short",
            HorizonClass::Day => "day",
            HorizonClass::Week => "week",
        }
    }

    /// The class of a protocol name.
    pub fn from_name(name: &str) -> Option<HorizonClass> {
        HorizonClass::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// Steps of `step_s` seconds in `minutes`, at least one: `max(1, round(minutes*60/step_s))`
/// with Python's round-half-to-even.
pub fn steps(minutes: f64, step_s: i64) -> usize {
    let s = (minutes * 60.0 / step_s.max(1) as f64).round_ties_even();
    if s.is_finite() && s >= 1.0 { s as usize } else { 1 }
}

/// (horizon in steps, origin indices) of a class, or `None` where it does not apply.
pub fn horizon_plan(s: &Series, class: HorizonClass) -> Option<(usize, Vec<usize>)> {
    let (horizon_min, stride_min) = class.minutes();
    let te = s.train_end();
    if class == HorizonClass::Week {
        let train_days = (s.t[te] - s.t[0]) as f64 / 86400.0;
        if train_days < WEEK_MIN_TRAIN_DAYS {
            return None;
        }
    }
    let h = steps(horizon_min, s.step_s);
    let stride = steps(stride_min, s.step_s);
    let end = s.n().checked_sub(h)?;
    let origins: Vec<usize> = (te..end).step_by(stride).collect();
    if origins.is_empty() { None } else { Some((h, origins)) }
}

/// One day in steps, or 1 if the training part is not longer than two days.
pub fn season_steps(s: &Series) -> usize {
    let m = steps(24.0 * 60.0, s.step_s);
    if s.train_end() > 2 * m { m } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Series, SeriesError> {
        parse_series(Path::new("x.csv"), "x", text)
    }

    #[test]
    fn reads_iso_and_epoch_times_sorted() {
        let s = parse("Timestamp , Value\n1970-01-01T00:10:00Z,3\n300,2\n1970-01-01 00:00:00,1\n").unwrap();
        assert_eq!(s.t, vec![0, 300, 600]);
        assert_eq!(s.y, vec![1.0, 2.0, 3.0]);
        assert_eq!(s.step_s, 300);
    }

    #[test]
    fn accepts_offsets_and_alternative_columns() {
        let s = parse("y,ds\n5,2020-01-01T01:00:00+01:00\n6,\"2020-01-01T00:05:00\"\n").unwrap();
        assert_eq!(s.t[0], parse_time("2020-01-01T00:00:00Z").unwrap());
        assert_eq!(s.y, vec![5.0, 6.0]);
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let e = parse("timestamp,value\n2020-01-01T00:00:00Z,1\nnot-a-time,2\n").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("x.csv") && msg.contains("line 3") && msg.contains("not-a-time"),
            "{msg}"
        );
        let e = parse("timestamp,value\n2020-01-01T00:00:00Z,abc\n").unwrap_err();
        assert!(matches!(e, SeriesError::BadValue { line: 2, .. }), "{e}");
        let e = parse("when,value\n1,2\n").unwrap_err();
        assert!(matches!(e, SeriesError::MissingColumn { what: "time", .. }), "{e}");
        let e = parse("timestamp,value\n1\n").unwrap_err();
        assert!(matches!(e, SeriesError::ShortRow { line: 2, .. }), "{e}");
        assert!(matches!(parse(""), Err(SeriesError::Empty { .. })));
        assert!(matches!(
            parse("timestamp,value\n1,2\n"),
            Err(SeriesError::TooShort { rows: 1, .. })
        ));
        assert!(matches!(
            parse("timestamp,value\n1,2\n1,3\n"),
            Err(SeriesError::BadInterval { .. })
        ));
    }

    #[test]
    fn interval_is_truncated_median_spacing() {
        let s = Series::from_pairs("s", vec![(0, 0.0), (60, 0.0), (181, 0.0)]).unwrap();
        assert_eq!(s.step_s, 90); // median of [60, 121] = 90.5 -> 90
    }

    #[test]
    fn split_and_steps_follow_protocol() {
        let pairs: Vec<(i64, f64)> = (0..100).map(|i| (i * 300, i as f64)).collect();
        let s = Series::from_pairs("s", pairs).unwrap();
        assert_eq!(s.train_end(), 79);
        assert_eq!(steps(15.0, 300), 3);
        assert_eq!(steps(15.0, 1800), 1); // round(0.5) = 0 -> at least 1
        assert_eq!(steps(7.5, 60), 8); // round-half-even of 7.5
        assert_eq!(steps(4.5, 60), 4); // round-half-even of 4.5
        let (h, origins) = horizon_plan(&s, HorizonClass::Short).unwrap();
        assert_eq!(h, 3);
        assert_eq!(origins, vec![79, 91]);
        assert!(horizon_plan(&s, HorizonClass::Day).is_none());
        assert!(horizon_plan(&s, HorizonClass::Week).is_none());
        assert_eq!(season_steps(&s), 1);
    }

    #[test]
    fn capacity_uses_numpy_linear_percentile() {
        assert_eq!(percentile_linear(&[1.0, 2.0, 3.0, 4.0], 50.0), 2.5);
        assert!((percentile_linear(&(0..=100).map(f64::from).collect::<Vec<_>>(), 99.0) - 99.0).abs() < 1e-12);
        let pairs: Vec<(i64, f64)> = (0..10).map(|i| (i * 60, f64::from(i as u8))).collect();
        let s = Series::from_pairs("s", pairs).unwrap();
        // train = 0..=7, P99 = 7 - 0.07 = 6.93
        assert!((s.capacity_per_replica() - 6.93 / 20.0).abs() < 1e-12);
    }

    #[test]
    fn formats_iso_utc() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_time(parse_time("2014-04-21T14:05:00Z").unwrap()),
            "2014-04-21T14:05:00Z"
        );
        assert_eq!(parse_time("1400000000.9"), Some(1_400_000_000));
        assert_eq!(parse_time("2014-04-21"), parse_time("2014-04-21T00:00:00"));
    }
}
