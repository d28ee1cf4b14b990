//! Upcasting: old payload versions are rewritten into the current shape on read.
//!
//! Each upcaster takes a payload of version `n` and returns version `n + 1`;
//! they are chained until the current version is reached, so stored events are
//! never rewritten and never duplicated as new types.

use serde_json::{Value, json};

use crate::StoreError;
use crate::vocabulary::{Event, Malformed};

/// Decodes a stored event, or returns it as [`Event::Malformed`] when it cannot be
/// decoded (unknown type or version, a payload that does not match), so that one bad
/// row never fails a read.
pub fn decode_or_malformed(event_type: &str, stored_version: i32, payload: Value) -> Event {
    match decode(event_type, stored_version, payload.clone()) {
        Ok(event) => event,
        Err(e) => Event::Malformed(Malformed {
            event_type: event_type.to_string(),
            schema_version: stored_version,
            payload,
            error: e.to_string(),
        }),
    }
}

/// Decodes a stored payload of any known version into the current [`Event`].
pub fn decode(event_type: &str, stored_version: i32, payload: Value) -> Result<Event, StoreError> {
    let current =
        Event::current_version(event_type).ok_or_else(|| StoreError::UnknownEventType(event_type.to_string()))?;
    if stored_version > current || stored_version < 1 {
        return Err(StoreError::UnknownSchemaVersion {
            event_type: event_type.to_string(),
            version: stored_version,
        });
    }
    let mut payload = payload;
    for version in stored_version..current {
        payload = upcast_one(event_type, version, payload)?;
    }
    Event::decode_current(event_type, payload).map_err(|e| StoreError::Payload {
        event_type: event_type.to_string(),
        message: e.to_string(),
    })
}

fn upcast_one(event_type: &str, from: i32, payload: Value) -> Result<Value, StoreError> {
    match (event_type, from) {
        ("ForecastMade", 1) => forecast_made_v1_to_v2(payload),
        ("ForecastMade", 2) => forecast_made_v2_to_v3(payload),
        _ => Err(StoreError::UnknownSchemaVersion {
            event_type: event_type.to_string(),
            version: from,
        }),
    }
}

/// ForecastMade v1 stored three parallel arrays (`p10`, `p50`, `p90`) with a
/// `step_minutes` and no per-point times; v2 stores one point per step with its
/// time, a `step_seconds`, and `notes`.
fn forecast_made_v1_to_v2(mut v: Value) -> Result<Value, StoreError> {
    let bad = |m: &str| StoreError::Payload {
        event_type: "ForecastMade".into(),
        message: format!("v1 payload: {m}"),
    };
    let obj = v.as_object_mut().ok_or_else(|| bad("not an object"))?;
    let step_minutes = obj
        .remove("step_minutes")
        .and_then(|s| s.as_i64())
        .ok_or_else(|| bad("missing step_minutes"))?;
    let origin = obj
        .get("origin")
        .and_then(|o| o.as_str())
        .and_then(|o| chrono::DateTime::parse_from_rfc3339(o).ok())
        .ok_or_else(|| bad("missing or malformed origin"))?;
    let take = |obj: &mut serde_json::Map<String, Value>, k: &str| -> Result<Vec<f64>, StoreError> {
        obj.remove(k)
            .and_then(|a| serde_json::from_value::<Vec<f64>>(a).ok())
            .ok_or_else(|| bad(&format!("missing {k}")))
    };
    let (p10, p50, p90) = (take(obj, "p10")?, take(obj, "p50")?, take(obj, "p90")?);
    if p10.len() != p50.len() || p50.len() != p90.len() {
        return Err(bad("p10/p50/p90 lengths differ"));
    }
    let points: Vec<Value> = (0..p50.len())
        .map(|i| {
            let at = origin + chrono::Duration::minutes(step_minutes * (i as i64 + 1));
            json!({
                "at": at.with_timezone(&chrono::Utc),
                "p10": p10[i], "p50": p50[i], "p90": p90[i],
            })
        })
        .collect();
    obj.insert("step_seconds".into(), json!(step_minutes * 60));
    obj.insert("points".into(), Value::Array(points));
    obj.entry("notes").or_insert(json!([]));
    Ok(v)
}

/// ForecastMade v2 stored one object per point (`{"at", "p10", "p50", "p90"}`); v3 stores
/// columns. The upcast keeps every point's time (`at`), so irregular paths stay exact;
/// values are moved as they are, and a bad one (a `null` where a number belongs) is left
/// for decoding to report.
fn forecast_made_v2_to_v3(mut v: Value) -> Result<Value, StoreError> {
    let bad = |m: &str| StoreError::Payload {
        event_type: "ForecastMade".into(),
        message: format!("v2 payload: {m}"),
    };
    let obj = v.as_object_mut().ok_or_else(|| bad("not an object"))?;
    let points = match obj.remove("points") {
        Some(Value::Array(points)) => points,
        _ => return Err(bad("missing points")),
    };
    let mut columns: [Vec<Value>; 4] = Default::default();
    for (i, mut point) in points.into_iter().enumerate() {
        for (column, key) in columns.iter_mut().zip(["at", "p10", "p50", "p90"]) {
            let value = point.get_mut(key).map(Value::take);
            column.push(value.ok_or_else(|| bad(&format!("point {i} has no {key}")))?);
        }
    }
    for (column, key) in columns.into_iter().zip(["at", "p10", "p50", "p90"]) {
        obj.insert(key.into(), Value::Array(column));
    }
    obj.entry("notes").or_insert(json!([]));
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forecast_v1_is_upcast_to_points_with_times() {
        let v1 = json!({
            "forecast_id": "6f1c1b0e-7d3c-4d59-9a57-9e8d1bb0f5a1",
            "service": "checkout", "model": "snaive", "model_version": "1",
            "origin": "2024-01-01T00:00:00Z", "horizon_minutes": 10, "step_minutes": 5,
            "p10": [1.0, 2.0], "p50": [2.0, 3.0], "p90": [3.0, 4.0]
        });
        let Event::ForecastMade(f) = decode("ForecastMade", 1, v1).unwrap() else {
            panic!("wrong variant")
        };
        assert_eq!(f.step_seconds, 300);
        assert_eq!(f.points.len(), 2);
        assert_eq!(f.points[1].at.to_rfc3339(), "2024-01-01T00:10:00+00:00");
        assert_eq!(f.points[1].p90, 4.0);
        assert!(f.notes.is_empty());
    }

    #[test]
    fn forecast_v2_is_upcast_to_columns_with_the_same_points() {
        let v2 = json!({
            "forecast_id": "6f1c1b0e-7d3c-4d59-9a57-9e8d1bb0f5a1",
            "service": "checkout", "model": "snaive", "model_version": "1",
            "origin": "2024-01-01T00:00:00Z", "step_seconds": 300, "horizon_minutes": 15,
            "points": [
                {"at": "2024-01-01T00:05:00Z", "p10": 1.0, "p50": 2.0, "p90": 3.0},
                {"at": "2024-01-01T00:15:00Z", "p10": 4.0, "p50": 5.0, "p90": 6.0}
            ],
            "notes": ["n"]
        });
        let Event::ForecastMade(f) = decode("ForecastMade", 2, v2).unwrap() else {
            panic!("wrong variant")
        };
        assert_eq!(f.points.len(), 2);
        assert_eq!(f.points[1].at.to_rfc3339(), "2024-01-01T00:15:00+00:00");
        assert_eq!((f.points[1].p10, f.points[1].p50, f.points[1].p90), (4.0, 5.0, 6.0));
        assert_eq!(f.notes, vec!["n".to_string()]);
    }

    #[test]
    fn an_undecodable_payload_comes_back_malformed_with_the_reason() {
        let v2 = json!({
            "forecast_id": "6f1c1b0e-7d3c-4d59-9a57-9e8d1bb0f5a1",
            "service": "checkout", "model": "snaive", "model_version": "1",
            "origin": "2024-01-01T00:00:00Z", "step_seconds": 300, "horizon_minutes": 5,
            "points": [{"at": "2024-01-01T00:05:00Z", "p10": 1.0, "p50": null, "p90": 3.0}]
        });
        let Event::Malformed(m) = decode_or_malformed("ForecastMade", 2, v2.clone()) else {
            panic!("a null p50 must not decode")
        };
        assert_eq!((m.event_type.as_str(), m.schema_version), ("ForecastMade", 2));
        assert_eq!(m.payload, v2, "the stored payload is kept as it was");
        assert!(m.error.contains("null"), "{}", m.error);
        assert!(matches!(decode_or_malformed("Gone", 1, json!({})), Event::Malformed(_)));
    }

    #[test]
    fn unknown_versions_and_types_are_named_errors() {
        let e = decode("ForecastMade", 7, json!({})).unwrap_err();
        assert!(e.to_string().contains("ForecastMade") && e.to_string().contains('7'));
        let e = decode("NoSuchEvent", 1, json!({})).unwrap_err();
        assert!(e.to_string().contains("NoSuchEvent"));
    }

    #[test]
    fn a_v1_payload_with_unequal_paths_is_refused() {
        let v1 = json!({
            "forecast_id": "6f1c1b0e-7d3c-4d59-9a57-9e8d1bb0f5a1",
            "service": "s", "model": "m", "model_version": "1",
            "origin": "2024-01-01T00:00:00Z", "horizon_minutes": 10, "step_minutes": 5,
            "p10": [1.0], "p50": [2.0, 3.0], "p90": [3.0, 4.0]
        });
        assert!(decode("ForecastMade", 1, v1).is_err());
    }
}
