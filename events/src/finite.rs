//! Numbers the log accepts: finite only, and rounded where precision is noise.
//!
//! `serde_json` writes NaN and ±∞ as `null` without a word, and the payload no longer
//! decodes; so every payload is walked, before it is appended, in a value model
//! (`serde-value`) that keeps non-finite floats, and the first one is named by its path.

use serde::Serialize;
use serde_value::Value;

/// Checks a payload for non-finite numbers; the error names `event_type` and the field
/// path, e.g. `ForecastMade.p50[3] is NaN`.
pub(crate) fn check<T: Serialize>(event_type: &str, payload: &T) -> Result<(), String> {
    let value = serde_value::to_value(payload).map_err(|e| format!("{event_type} does not serialize: {e}"))?;
    let mut path = event_type.to_string();
    match first_non_finite(&value, &mut path) {
        Some(what) => Err(format!("{path} is {what}")),
        None => Ok(()),
    }
}

/// Depth-first search for a non-finite float; `path` is left pointing at it.
fn first_non_finite(v: &Value, path: &mut String) -> Option<&'static str> {
    let describe = |x: f64| {
        if x.is_nan() {
            Some("NaN")
        } else if x.is_infinite() {
            Some(if x > 0.0 { "infinite" } else { "-infinite" })
        } else {
            None
        }
    };
    match v {
        Value::F64(x) => describe(*x),
        Value::F32(x) => describe(*x as f64),
        Value::Option(Some(inner)) | Value::Newtype(inner) => first_non_finite(inner, path),
        Value::Seq(items) => descend(path, items.iter().enumerate().map(|(i, x)| (format!("[{i}]"), x))),
        Value::Map(entries) => descend(
            path,
            entries.iter().map(|(k, x)| {
                let key = match k {
                    Value::String(s) => s.clone(),
                    other => format!("{other:?}"),
                };
                (format!(".{key}"), x)
            }),
        ),
        _ => None,
    }
}

fn descend<'a>(path: &mut String, children: impl Iterator<Item = (String, &'a Value)>) -> Option<&'static str> {
    for (segment, child) in children {
        let len = path.len();
        path.push_str(&segment);
        if let Some(found) = first_non_finite(child, path) {
            return Some(found);
        }
        path.truncate(len);
    }
    None
}

/// `x` rounded to `digits` significant digits (at least one); the result is the double
/// nearest that decimal, so it serializes as at most `digits` digits. Zero and
/// non-finite numbers are returned as they are.
pub fn round_sig(x: f64, digits: u32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = digits.clamp(1, 17) as usize;
    format!("{x:.*e}", digits - 1).parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::{Event, ForecastMade, ForecastPoint};

    fn forecast(p50: f64) -> Event {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        Event::ForecastMade(ForecastMade {
            forecast_id: uuid::Uuid::nil(),
            service: "s".into(),
            model: "m".into(),
            model_version: "1".into(),
            origin: t,
            step_seconds: 60,
            horizon_minutes: 4,
            points: (0..4)
                .map(|i| ForecastPoint {
                    at: t + chrono::Duration::minutes(i + 1),
                    p10: 1.0,
                    p50: if i == 3 { p50 } else { 2.0 },
                    p90: 3.0,
                })
                .collect(),
            notes: vec![],
        })
    }

    #[test]
    fn a_non_finite_number_is_named_by_type_and_path() {
        assert_eq!(forecast(2.5).check_finite(), Ok(()));
        assert_eq!(
            forecast(f64::NAN).check_finite().unwrap_err(),
            "ForecastMade.p50[3] is NaN"
        );
        assert_eq!(
            forecast(f64::NEG_INFINITY).check_finite().unwrap_err(),
            "ForecastMade.p50[3] is -infinite"
        );
    }

    #[test]
    fn optional_and_nested_numbers_are_checked() {
        let e = Event::BusinessEventUpdated(crate::vocabulary::BusinessEventUpdated {
            event_id: uuid::Uuid::nil(),
            starts_at: None,
            ends_at: None,
            expected_impact: Some(f64::INFINITY),
            actual_impact: None,
        });
        assert_eq!(
            e.check_finite().unwrap_err(),
            "BusinessEventUpdated.expected_impact is infinite"
        );
    }

    #[test]
    fn rounding_keeps_significant_digits() {
        assert_eq!(round_sig(523.41749, 6), 523.417);
        assert_eq!(round_sig(-0.000123456789, 6), -0.000123457);
        assert_eq!(round_sig(12_345_678.0, 6), 12_345_700.0);
        assert_eq!(round_sig(1e300, 6), 1e300);
        assert_eq!(round_sig(0.0, 6), 0.0);
        assert!(round_sig(f64::NAN, 6).is_nan());
        assert_eq!(round_sig(987.65, 0), 1000.0);
        assert_eq!(serde_json::to_string(&round_sig(2.0 / 3.0, 6)).unwrap(), "0.666667");
    }
}
