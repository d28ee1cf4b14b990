//! Holiday calendars for Prophet: named holidays given as dates or yearly rules, with optional
//! windows of days around them, turned into the UTC days that fall in a span.
//!
//! A holiday is a whole UTC day, `[00:00, 24:00)` in epoch seconds like every other time in
//! the project. Holidays of the same name share one Prophet component (one coefficient), so a
//! name seen in the fit span carries its learnt effect to its next occurrence. A window of
//! `days_before`/`days_after` gives every offset its own component (`"{name} -1d"`,
//! `"{name} +1d"`, …), as Prophet's `lower_window`/`upper_window` do.
//!
//! [`us_public_holidays`], the default calendar, pools six US federal holidays under one name,
//! [`PUBLIC_HOLIDAY`]: a fit sees at most four weeks (see [`super::prophet`]), in which no
//! holiday recurs, so only a pooled component can learn from Christmas what New Year's Day
//! does. Their dates are computed for every year: New Year's Day (January 1), Memorial Day (last
//! Monday of May), Independence Day (July 4), Labor Day (first Monday of September),
//! Thanksgiving (fourth Thursday of November) and Christmas Day (December 25); the actual dates,
//! not the weekday a holiday falling on a weekend is observed on, and no windows.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Duration, NaiveDate, Weekday};

/// Seconds in a day.
const DAY_S: i64 = 86_400;

/// The component name of the default calendar.
pub const PUBLIC_HOLIDAY: &str = "public_holiday";

/// How the days of a holiday are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HolidayRule {
    /// The UTC days holding these instants (epoch seconds; any time of the day).
    Dates(Vec<i64>),
    /// The same month and day every year (a February 29 only in leap years).
    Fixed { month: u32, day: u32 },
    /// The `n`-th (from 1) `weekday` of `month` every year; a year without one is skipped.
    NthWeekday { month: u32, weekday: Weekday, n: u8 },
    /// The last `weekday` of `month` every year.
    LastWeekday { month: u32, weekday: Weekday },
}

/// One named holiday of a calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolidaySpec {
    /// Prophet component name; specs of the same name share it.
    pub name: String,
    /// Its days.
    pub rule: HolidayRule,
    /// Days before each date with an effect of their own (Prophet's `lower_window`).
    pub days_before: u32,
    /// Days after each date with an effect of their own (Prophet's `upper_window`).
    pub days_after: u32,
}

impl HolidaySpec {
    /// A holiday on the UTC days of these instants (epoch seconds).
    pub fn dates(name: impl Into<String>, days: Vec<i64>) -> Self {
        Self::new(name, HolidayRule::Dates(days))
    }

    /// A holiday on `month`-`day` every year.
    pub fn fixed(name: impl Into<String>, month: u32, day: u32) -> Self {
        Self::new(name, HolidayRule::Fixed { month, day })
    }

    /// A holiday on the `n`-th `weekday` of `month` every year.
    pub fn nth_weekday(name: impl Into<String>, month: u32, weekday: Weekday, n: u8) -> Self {
        Self::new(name, HolidayRule::NthWeekday { month, weekday, n })
    }

    /// A holiday on the last `weekday` of `month` every year.
    pub fn last_weekday(name: impl Into<String>, month: u32, weekday: Weekday) -> Self {
        Self::new(name, HolidayRule::LastWeekday { month, weekday })
    }

    fn new(name: impl Into<String>, rule: HolidayRule) -> Self {
        HolidaySpec {
            name: name.into(),
            rule,
            days_before: 0,
            days_after: 0,
        }
    }

    /// The same holiday with a window of days around each date.
    pub fn with_window(mut self, days_before: u32, days_after: u32) -> Self {
        self.days_before = days_before;
        self.days_after = days_after;
        self
    }

    /// Epoch seconds of the start of each UTC day of the holiday itself in the years
    /// `first..=last` (explicit dates: all of them), sorted.
    fn days_in_years(&self, first: i32, last: i32) -> Vec<i64> {
        let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp());
        let mut out: Vec<i64> = match &self.rule {
            HolidayRule::Dates(ts) => ts.iter().map(|t| t.div_euclid(DAY_S) * DAY_S).collect(),
            HolidayRule::Fixed { month, day } => (first..=last)
                .filter_map(|y| NaiveDate::from_ymd_opt(y, *month, *day))
                .filter_map(midnight)
                .collect(),
            HolidayRule::NthWeekday { month, weekday, n } => (first..=last)
                .filter_map(|y| NaiveDate::from_weekday_of_month_opt(y, *month, *weekday, *n))
                .filter_map(midnight)
                .collect(),
            HolidayRule::LastWeekday { month, weekday } => (first..=last)
                .filter_map(|y| last_weekday(y, *month, *weekday))
                .filter_map(midnight)
                .collect(),
        };
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The last `weekday` of `month` in `year`.
fn last_weekday(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    let (ny, nm) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    let last = NaiveDate::from_ymd_opt(ny, nm, 1)? - Duration::days(1);
    let back = (7 + last.weekday().num_days_from_monday() - weekday.num_days_from_monday()) % 7;
    Some(last - Duration::days(i64::from(back)))
}

/// The default calendar: six US federal holidays, pooled as [`PUBLIC_HOLIDAY`].
pub fn us_public_holidays() -> Vec<HolidaySpec> {
    vec![
        HolidaySpec::fixed(PUBLIC_HOLIDAY, 1, 1),
        HolidaySpec::last_weekday(PUBLIC_HOLIDAY, 5, Weekday::Mon),
        HolidaySpec::fixed(PUBLIC_HOLIDAY, 7, 4),
        HolidaySpec::nth_weekday(PUBLIC_HOLIDAY, 9, Weekday::Mon, 1),
        HolidaySpec::nth_weekday(PUBLIC_HOLIDAY, 11, Weekday::Thu, 4),
        HolidaySpec::fixed(PUBLIC_HOLIDAY, 12, 25),
    ]
}

/// The component name of offset `k` days from a holiday called `name`.
pub fn component_name(name: &str, k: i64) -> String {
    if k == 0 {
        name.to_string()
    } else {
        format!("{name} {k:+}d")
    }
}

/// Every component with a day overlapping `[from, to]` (epoch seconds, inclusive): its name
/// and the start of each such UTC day, sorted; components without one are left out.
pub fn days_in_span(specs: &[HolidaySpec], from: i64, to: i64) -> BTreeMap<String, Vec<i64>> {
    let mut out: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    if to < from {
        return BTreeMap::new();
    }
    let year = |t: i64| chrono::DateTime::from_timestamp(t, 0).map(|d| d.year());
    for s in specs {
        let before = i64::from(s.days_before);
        let after = i64::from(s.days_after);
        // the years whose dates, shifted by the window, can reach the span
        let (Some(y0), Some(y1)) = (
            year(from.saturating_sub((after + 1) * DAY_S)),
            year(to.saturating_add((before + 1) * DAY_S)),
        ) else {
            continue;
        };
        for d in s.days_in_years(y0, y1) {
            for k in -before..=after {
                let day = d + k * DAY_S;
                if day <= to && day + DAY_S > from {
                    out.entry(component_name(&s.name, k)).or_default().insert(day);
                }
            }
        }
    }
    out.into_iter().map(|(k, v)| (k, v.into_iter().collect())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp()
    }

    #[test]
    fn default_calendar_computes_the_rule_based_dates() {
        let cal = us_public_holidays();
        let got = days_in_span(&cal, day(2024, 1, 1), day(2024, 12, 31) + DAY_S - 1);
        assert_eq!(got.len(), 1, "one pooled component: {got:?}");
        let days = &got[PUBLIC_HOLIDAY];
        assert_eq!(
            days,
            &vec![
                day(2024, 1, 1),
                day(2024, 5, 27), // last Monday of May
                day(2024, 7, 4),
                day(2024, 9, 2),   // first Monday of September
                day(2024, 11, 28), // fourth Thursday of November
                day(2024, 12, 25),
            ]
        );
        // another year: Memorial Day 2015-05-25, Labor Day 2015-09-07, Thanksgiving 2015-11-26
        let got = days_in_span(&cal, day(2015, 5, 1), day(2015, 12, 1));
        assert_eq!(
            got[PUBLIC_HOLIDAY],
            vec![day(2015, 5, 25), day(2015, 7, 4), day(2015, 9, 7), day(2015, 11, 26)]
        );
    }

    #[test]
    fn only_days_overlapping_the_span_are_returned() {
        let cal = us_public_holidays();
        // 2024-07-04 12:00 to 2024-07-05 00:00: the 4th overlaps, nothing else
        let got = days_in_span(&cal, day(2024, 7, 4) + 12 * 3600, day(2024, 7, 5));
        assert_eq!(got[PUBLIC_HOLIDAY], vec![day(2024, 7, 4)]);
        // the day after a holiday overlaps nothing
        assert!(days_in_span(&cal, day(2024, 7, 5), day(2024, 7, 6) - 1).is_empty());
        assert!(days_in_span(&cal, day(2024, 7, 6), day(2024, 7, 5)).is_empty());
    }

    #[test]
    fn windows_get_components_of_their_own_and_cross_years() {
        let cal = vec![HolidaySpec::fixed("new_year", 1, 1).with_window(1, 2)];
        let got = days_in_span(&cal, day(2023, 12, 30), day(2024, 1, 2) + 3600);
        assert_eq!(got["new_year -1d"], vec![day(2023, 12, 31)]);
        assert_eq!(got["new_year"], vec![day(2024, 1, 1)]);
        assert_eq!(got["new_year +1d"], vec![day(2024, 1, 2)]);
        // Jan 3 is outside the span
        assert!(!got.contains_key("new_year +2d"), "{got:?}");
        // the window of the year before reaches into the span
        let got = days_in_span(&cal, day(2024, 1, 3), day(2024, 1, 3));
        assert_eq!(got.keys().collect::<Vec<_>>(), vec!["new_year +2d"]);
    }

    #[test]
    fn explicit_dates_are_floored_to_their_utc_day_and_merged_by_name() {
        let cal = vec![
            HolidaySpec::dates("closure", vec![day(2024, 3, 5) + 7 * 3600, day(2024, 3, 9)]),
            HolidaySpec::dates("closure", vec![day(2024, 3, 5), day(2030, 1, 1)]),
            HolidaySpec::fixed("leap", 2, 29),
            HolidaySpec::nth_weekday("fifth_monday", 4, Weekday::Mon, 5),
        ];
        let got = days_in_span(&cal, day(2023, 1, 1), day(2024, 12, 31));
        assert_eq!(got["closure"], vec![day(2024, 3, 5), day(2024, 3, 9)]);
        assert_eq!(got["leap"], vec![day(2024, 2, 29)]);
        // April 2023 has no fifth Monday (3, 10, 17, 24), April 2024 does (1, 8, 15, 22, 29)
        assert_eq!(got["fifth_monday"], vec![day(2024, 4, 29)]);
        assert_eq!(
            last_weekday(2024, 12, Weekday::Tue),
            NaiveDate::from_ymd_opt(2024, 12, 31)
        );
        assert_eq!(
            last_weekday(2024, 2, Weekday::Thu),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
    }
}
