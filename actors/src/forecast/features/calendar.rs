//! Calendar features of a timestamp in UTC: cyclical hour/weekday/day/month/week, day-type flags, time-of-day bands, month edges, quarter.
//!
//! Cyclical encodings put a position `p` in `[0, 1)` of its cycle on the
//! circle as `sin(2πp)`, `cos(2πp)`: hour `h/24`, weekday (Monday = 0) `d/7`,
//! day of month `(day-1)/days_in_that_month` (so the last day sits next to
//! the 1st), month `(m-1)/12`, ISO week `(w-1)/weeks_in_that_ISO_year` (52
//! or 53). Flags are 0/1: business hours are 09:00 ≤ time < 17:00 on
//! Monday–Friday; bands are morning [06, 12), afternoon [12, 18), evening
//! [18, 22), night [22, 06). The quarter is 1–4.

use std::f64::consts::TAU;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Weekday};

/// Feature names, in output order.
pub const NAMES: [&str; 21] = [
    "hour_sin",
    "hour_cos",
    "weekday_sin",
    "weekday_cos",
    "day_of_month_sin",
    "day_of_month_cos",
    "month_sin",
    "month_cos",
    "week_of_year_sin",
    "week_of_year_cos",
    "is_weekend",
    "is_monday",
    "is_friday",
    "is_business_hours",
    "is_morning",
    "is_afternoon",
    "is_evening",
    "is_night",
    "is_month_start",
    "is_month_end",
    "quarter",
];

/// Feature names as owned strings.
pub fn names() -> Vec<String> {
    NAMES.iter().map(|s| s.to_string()).collect()
}

/// Days in `month` (1–12) of the proleptic Gregorian `year`.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn circle(p: f64) -> (f64, f64) {
    (TAU * p).sin_cos()
}

/// The calendar features of `t` (epoch seconds, UTC), in [`NAMES`] order; `None` if `t` is outside chrono's range.
pub fn calendar(t: i64) -> Option<[f64; 21]> {
    let dt = DateTime::from_timestamp(t, 0)?;
    let hour = dt.hour();
    let wd = dt.weekday();
    let wdn = wd.num_days_from_monday();
    let day = dt.day();
    let month = dt.month();
    let dim = days_in_month(dt.year(), month);
    let iso = dt.iso_week();
    let weeks = NaiveDate::from_ymd_opt(iso.year(), 12, 28).map_or(52, |d| d.iso_week().week());
    let (hs, hc) = circle(f64::from(hour) / 24.0);
    let (ws, wc) = circle(f64::from(wdn) / 7.0);
    let (ds, dc) = circle(f64::from(day - 1) / f64::from(dim));
    let (ms, mc) = circle(f64::from(month - 1) / 12.0);
    let (ks, kc) = circle(f64::from(iso.week() - 1) / f64::from(weeks));
    let weekend = matches!(wd, Weekday::Sat | Weekday::Sun);
    Some([
        hs,
        hc,
        ws,
        wc,
        ds,
        dc,
        ms,
        mc,
        ks,
        kc,
        flag(weekend),
        flag(wd == Weekday::Mon),
        flag(wd == Weekday::Fri),
        flag(!weekend && (9..17).contains(&hour)),
        flag((6..12).contains(&hour)),
        flag((12..18).contains(&hour)),
        flag((18..22).contains(&hour)),
        flag(!(6..22).contains(&hour)),
        flag(day == 1),
        flag(day == dim),
        f64::from((month - 1) / 3 + 1),
    ])
}

/// Appends the calendar features of `t` to `out` (NaN for all if `t` is outside chrono's range;
/// the pipeline refuses such timestamps before it gets here).
pub(crate) fn extract(t: i64, out: &mut Vec<f64>) {
    match calendar(t) {
        Some(f) => out.extend_from_slice(&f),
        None => out.extend(std::iter::repeat_n(f64::NAN, NAMES.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    fn get(f: &[f64; 21], name: &str) -> f64 {
        f[NAMES.iter().position(|n| *n == name).unwrap()]
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn friday_afternoon_in_march() {
        // 2024-03-15 is a Friday; 14:30 UTC; ISO week 11 of a 52-week ISO year.
        let f = calendar(at("2024-03-15T14:30:00Z")).unwrap();
        close(get(&f, "hour_sin"), (TAU * 14.0 / 24.0).sin());
        close(get(&f, "hour_cos"), (TAU * 14.0 / 24.0).cos());
        close(get(&f, "weekday_sin"), (TAU * 4.0 / 7.0).sin());
        close(get(&f, "day_of_month_cos"), (TAU * 14.0 / 31.0).cos());
        close(get(&f, "month_sin"), (TAU * 2.0 / 12.0).sin());
        close(get(&f, "week_of_year_sin"), (TAU * 10.0 / 52.0).sin());
        assert_eq!(get(&f, "is_friday"), 1.0);
        assert_eq!(get(&f, "is_monday"), 0.0);
        assert_eq!(get(&f, "is_weekend"), 0.0);
        assert_eq!(get(&f, "is_business_hours"), 1.0);
        assert_eq!(get(&f, "is_afternoon"), 1.0);
        assert_eq!(get(&f, "is_morning") + get(&f, "is_evening") + get(&f, "is_night"), 0.0);
        assert_eq!(get(&f, "is_month_start") + get(&f, "is_month_end"), 0.0);
        assert_eq!(get(&f, "quarter"), 1.0);
    }

    #[test]
    fn saturday_midnight_month_start() {
        // 2024-06-01 is a Saturday.
        let f = calendar(at("2024-06-01T00:00:00Z")).unwrap();
        close(get(&f, "hour_sin"), 0.0);
        close(get(&f, "hour_cos"), 1.0);
        close(get(&f, "day_of_month_cos"), 1.0);
        assert_eq!(get(&f, "is_weekend"), 1.0);
        assert_eq!(get(&f, "is_business_hours"), 0.0);
        assert_eq!(get(&f, "is_night"), 1.0);
        assert_eq!(get(&f, "is_month_start"), 1.0);
        assert_eq!(get(&f, "quarter"), 2.0);
    }

    #[test]
    fn year_end_belongs_to_the_next_iso_week_one() {
        // 2024-12-31 is a Tuesday in ISO week 1 of 2025; last day of the month; 23:00 is night.
        let f = calendar(at("2024-12-31T23:00:00Z")).unwrap();
        close(get(&f, "week_of_year_sin"), 0.0);
        close(get(&f, "week_of_year_cos"), 1.0);
        close(get(&f, "day_of_month_sin"), (TAU * 30.0 / 31.0).sin());
        assert_eq!(get(&f, "is_month_end"), 1.0);
        assert_eq!(get(&f, "is_night"), 1.0);
        assert_eq!(get(&f, "quarter"), 4.0);
        // 2020 is a 53-week ISO year: week 53 (2020-12-31) encodes as 52/53 of the cycle.
        let g = calendar(at("2020-12-31T12:00:00Z")).unwrap();
        close(get(&g, "week_of_year_sin"), (TAU * 52.0 / 53.0).sin());
    }

    #[test]
    fn band_and_business_hour_edges() {
        // Monday 2024-03-18.
        let cases = [
            ("05:59", [0.0, 0.0, 0.0, 1.0], 0.0),
            ("06:00", [1.0, 0.0, 0.0, 0.0], 0.0),
            ("09:00", [1.0, 0.0, 0.0, 0.0], 1.0),
            ("12:00", [0.0, 1.0, 0.0, 0.0], 1.0),
            ("16:59", [0.0, 1.0, 0.0, 0.0], 1.0),
            ("17:00", [0.0, 1.0, 0.0, 0.0], 0.0),
            ("18:00", [0.0, 0.0, 1.0, 0.0], 0.0),
            ("22:00", [0.0, 0.0, 0.0, 1.0], 0.0),
        ];
        for (hm, bands, business) in cases {
            let f = calendar(at(&format!("2024-03-18T{hm}:00Z"))).unwrap();
            let got = [
                get(&f, "is_morning"),
                get(&f, "is_afternoon"),
                get(&f, "is_evening"),
                get(&f, "is_night"),
            ];
            assert_eq!(got, bands, "{hm}");
            assert_eq!(get(&f, "is_business_hours"), business, "{hm}");
            assert_eq!(get(&f, "is_monday"), 1.0);
        }
    }

    #[test]
    fn february_lengths_and_out_of_range() {
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
        let f = calendar(at("2024-02-29T10:00:00Z")).unwrap();
        assert_eq!(get(&f, "is_month_end"), 1.0);
        assert!(calendar(i64::MAX).is_none());
        let mut out = Vec::new();
        extract(i64::MAX, &mut out);
        assert_eq!(out.len(), NAMES.len());
        assert!(out.iter().all(|v| v.is_nan()));
    }
}
