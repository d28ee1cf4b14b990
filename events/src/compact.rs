//! The compact, columnar JSON of `ForecastMade` (schema v3).
//!
//! A forecast path of `n` points stored as objects repeats every key and time `n`
//! times; v3 stores the time of the first point (`start`) and one array per quantile,
//! the times following from `step_seconds`. Points that are not `step_seconds` apart
//! keep their times in an `at` array instead. The Rust struct is unchanged
//! ([`ForecastMade::points`]); this module is its serde form.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::vocabulary::{ForecastMade, ForecastPoint};

/// The stored shape of [`ForecastMade`] v3.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForecastMadeV3 {
    forecast_id: Uuid,
    service: String,
    model: String,
    model_version: String,
    origin: DateTime<Utc>,
    step_seconds: i64,
    horizon_minutes: i64,
    /// Time of the first point (absent when there is none, or when `at` is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start: Option<DateTime<Utc>>,
    /// Time of every point, only when they are not `step_seconds` apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<Vec<DateTime<Utc>>>,
    p10: Vec<f64>,
    p50: Vec<f64>,
    p90: Vec<f64>,
    #[serde(default)]
    notes: Vec<String>,
}

fn regular(points: &[ForecastPoint], step_seconds: i64) -> bool {
    points
        .windows(2)
        .all(|w| w[1].at - w[0].at == Duration::seconds(step_seconds))
}

impl From<ForecastMade> for ForecastMadeV3 {
    fn from(f: ForecastMade) -> Self {
        let column = |q: fn(&ForecastPoint) -> f64| f.points.iter().map(q).collect::<Vec<_>>();
        let (p10, p50, p90) = (column(|p| p.p10), column(|p| p.p50), column(|p| p.p90));
        let (start, at) = if regular(&f.points, f.step_seconds) {
            (f.points.first().map(|p| p.at), None)
        } else {
            (None, Some(f.points.iter().map(|p| p.at).collect()))
        };
        ForecastMadeV3 {
            forecast_id: f.forecast_id,
            service: f.service,
            model: f.model,
            model_version: f.model_version,
            origin: f.origin,
            step_seconds: f.step_seconds,
            horizon_minutes: f.horizon_minutes,
            start,
            at,
            p10,
            p50,
            p90,
            notes: f.notes,
        }
    }
}

impl TryFrom<ForecastMadeV3> for ForecastMade {
    type Error = String;

    fn try_from(v: ForecastMadeV3) -> Result<Self, String> {
        let n = v.p50.len();
        if v.p10.len() != n || v.p90.len() != n {
            return Err(format!(
                "p10, p50 and p90 have {}, {n} and {} values: they must be equal",
                v.p10.len(),
                v.p90.len()
            ));
        }
        let times: Vec<DateTime<Utc>> = match (v.at, v.start) {
            (Some(at), _) if at.len() == n => at,
            (Some(at), _) => return Err(format!("`at` has {} times for {n} points", at.len())),
            (None, _) if n == 0 => Vec::new(),
            (None, Some(start)) => (0..n as i64)
                .map(|i| start + Duration::seconds(v.step_seconds * i))
                .collect(),
            (None, None) => return Err(format!("{n} points but neither `start` nor `at`")),
        };
        let points = (0..n)
            .map(|i| ForecastPoint {
                at: times[i],
                p10: v.p10[i],
                p50: v.p50[i],
                p90: v.p90[i],
            })
            .collect();
        Ok(ForecastMade {
            forecast_id: v.forecast_id,
            service: v.service,
            model: v.model,
            model_version: v.model_version,
            origin: v.origin,
            step_seconds: v.step_seconds,
            horizon_minutes: v.horizon_minutes,
            points,
            notes: v.notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn forecast(times: &[i64]) -> ForecastMade {
        let t0 = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
        ForecastMade {
            forecast_id: Uuid::from_u128(7),
            service: "checkout".into(),
            model: "ensemble".into(),
            model_version: "1".into(),
            origin: t0,
            step_seconds: 300,
            horizon_minutes: 15,
            points: times
                .iter()
                .map(|m| ForecastPoint {
                    at: t0 + Duration::minutes(*m),
                    p10: 1.5,
                    p50: *m as f64,
                    p90: 30.25,
                })
                .collect(),
            notes: vec!["cold start".into()],
        }
    }

    #[test]
    fn regular_points_are_stored_as_a_start_and_columns() {
        let f = forecast(&[5, 10, 15]);
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["start"], json!("2024-03-01T00:05:00Z"));
        assert_eq!(v["p50"], json!([5.0, 10.0, 15.0]));
        assert!(v.get("at").is_none() && v.get("points").is_none(), "{v}");
        assert_eq!(serde_json::from_value::<ForecastMade>(v).unwrap(), f);
    }

    #[test]
    fn irregular_points_keep_their_times() {
        let f = forecast(&[5, 10, 20]);
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["at"].as_array().unwrap().len(), 3);
        assert!(v.get("start").is_none());
        assert_eq!(serde_json::from_value::<ForecastMade>(v).unwrap(), f);
        let empty = forecast(&[]);
        let v = serde_json::to_value(&empty).unwrap();
        assert_eq!(serde_json::from_value::<ForecastMade>(v).unwrap(), empty);
    }

    #[test]
    fn unequal_columns_are_refused_by_name() {
        let mut v = serde_json::to_value(forecast(&[5, 10])).unwrap();
        v["p90"] = json!([1.0]);
        let e = serde_json::from_value::<ForecastMade>(v).unwrap_err().to_string();
        assert!(e.contains("p10, p50 and p90"), "{e}");
    }
}
