//! Dead letters: events the read models cannot take are recorded, alerted on and skipped.
//!
//! An event that does not decode (read back as [`Event::Malformed`]) projects to a
//! `dead_letters` row and a critical `alert_logs` row instead of its read-model rows; an
//! event whose rows the database refuses for good is turned into such a malformed event
//! by the projector ([`dead_lettered`]) and projected the same way. Either way the
//! projection goes on with the next event.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::ops::{OpKind, RowOp, Val};
use crate::envelope::RecordedEvent;
use crate::vocabulary::{Event, Malformed};

/// Counter of events the projections dead-lettered (label `projection`).
pub const DEAD_LETTERS_TOTAL: &str = "pscaler_projection_dead_letters_total";

/// `alert_type` of the alert raised for a dead letter.
pub const DEAD_LETTER_ALERT: &str = "projection_dead_letter";

/// Namespace of dead-letter alert ids (UUID v5 of the position).
const ALERT_NAMESPACE: Uuid = Uuid::from_u128(0x5c0d_e1e7_7e55_4a1a_9d4b_0dea_d1e7_7e55);

/// The id of the alert raised for the dead letter at `position`: the same on every replay.
pub fn dead_letter_alert_id(position: u64) -> Uuid {
    Uuid::new_v5(&ALERT_NAMESPACE, format!("dead-letter/{position}").as_bytes())
}

/// The event at the same place in the log, as a malformed event carrying `error`: what
/// the projector applies instead of an event whose rows the database refused.
pub fn dead_lettered(e: &RecordedEvent, error: &str) -> RecordedEvent {
    let malformed = match &e.event {
        Event::Malformed(m) => Malformed {
            error: format!("{}; {error}", m.error),
            ..m.clone()
        },
        other => Malformed {
            event_type: other.type_name().to_string(),
            schema_version: other.schema_version(),
            payload: other.payload(),
            error: error.to_string(),
        },
    };
    RecordedEvent {
        event: Event::Malformed(malformed),
        ..e.clone()
    }
}

/// The rows of one dead letter: the letter itself and its alert.
pub(super) fn project(e: &RecordedEvent, m: &Malformed, at: DateTime<Utc>) -> Vec<RowOp> {
    let text = |s: &str| Val::Text(s.to_string());
    let message = format!(
        "event at log position {} (`{}` v{}, stream `{}`) was not projected: {}",
        e.position, m.event_type, m.schema_version, e.stream, m.error
    );
    let service = m.payload.get("service").and_then(|s| s.as_str());
    let alert_id = dead_letter_alert_id(e.position);
    let mut alert_cols = vec![
        ("alert_type", text(DEAD_LETTER_ALERT)),
        ("severity", text("critical")),
        ("message", text(&message)),
        ("raised_at", Val::Time(at)),
    ];
    if let Some(s) = service {
        alert_cols.push(("service", text(s)));
    }
    vec![
        RowOp {
            kind: OpKind::Insert,
            table: "dead_letters",
            key: vec![("position", Val::Int(e.position as i64))],
            cols: vec![
                ("stream", text(&e.stream)),
                ("event_type", text(&m.event_type)),
                ("schema_version", Val::Int(m.schema_version as i64)),
                ("error", text(&m.error)),
                ("recorded_at", Val::Time(at)),
            ],
            doc: json!({
                "position": e.position, "stream": e.stream, "event_type": m.event_type,
                "schema_version": m.schema_version, "error": m.error, "payload": m.payload,
                "event_id": e.metadata.event_id, "recorded_at": at,
            }),
        },
        RowOp {
            kind: OpKind::Insert,
            table: "alert_logs",
            key: vec![("alert_id", Val::Uuid(alert_id))],
            cols: alert_cols,
            doc: json!({
                "alert_id": alert_id, "service": service, "alert_type": DEAD_LETTER_ALERT,
                "severity": "critical", "message": message, "raised_at": at,
            }),
        },
    ]
}
