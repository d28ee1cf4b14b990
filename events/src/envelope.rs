//! The envelope around every stored event: position, stream, version and metadata.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::StoreError;
use crate::vocabulary::Event;

/// Who or what caused an event, and which earlier event or request led to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub event_id: Uuid,
    /// Shared by every event of one chain (a forecast, the decision from it, its execution).
    pub correlation_id: Uuid,
    /// The event or request that directly caused this one.
    pub causation_id: Option<Uuid>,
    /// `actor:<concern>/<service>`, `user:<name>` or `system`.
    pub caused_by: String,
    pub recorded_at: DateTime<Utc>,
}

impl Metadata {
    /// Metadata that starts a new chain of events.
    pub fn new(caused_by: impl Into<String>, recorded_at: DateTime<Utc>) -> Self {
        let event_id = Uuid::new_v4();
        Metadata {
            event_id,
            correlation_id: event_id,
            causation_id: None,
            caused_by: caused_by.into(),
            recorded_at,
        }
    }

    /// Metadata of an event caused by `cause`, in the same correlation chain.
    pub fn caused_by_event(cause: &Metadata, caused_by: impl Into<String>, recorded_at: DateTime<Utc>) -> Self {
        Metadata {
            event_id: Uuid::new_v4(),
            correlation_id: cause.correlation_id,
            causation_id: Some(cause.event_id),
            caused_by: caused_by.into(),
            recorded_at,
        }
    }
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event: Event,
    pub metadata: Metadata,
}

impl NewEvent {
    /// An event to append; the append checks it ([`NewEvent::check`]).
    pub fn new(event: Event, metadata: Metadata) -> Self {
        NewEvent { event, metadata }
    }

    /// An event to append, checked now: refuses a non-finite number (naming its field) and
    /// a [`Event::Malformed`] event, as every append would.
    pub fn try_new(event: Event, metadata: Metadata) -> Result<Self, StoreError> {
        let e = NewEvent { event, metadata };
        e.check()?;
        Ok(e)
    }

    /// What every append checks before it writes anything: the event belongs to the
    /// appendable vocabulary and holds finite numbers only.
    pub fn check(&self) -> Result<(), StoreError> {
        if let Event::Malformed(m) = &self.event {
            return Err(StoreError::Invalid(format!(
                "a malformed `{}` event read from the log cannot be appended",
                m.event_type
            )));
        }
        self.event.check_finite().map_err(StoreError::Invalid)
    }
}

/// An event as it stands in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Global position in the log, from 1, gap-free in commit order.
    pub position: u64,
    pub stream: String,
    /// Version within the stream, from 1.
    pub version: u64,
    /// The event, upcast to the current schema version.
    pub event: Event,
    /// The schema version the payload was stored in.
    pub stored_schema_version: i32,
    pub metadata: Metadata,
}

/// The JSON shape of a recorded event, for the audit API and Kafka.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventJson {
    pub position: u64,
    pub stream: String,
    pub version: u64,
    pub event_type: String,
    pub schema_version: i32,
    pub payload: serde_json::Value,
    pub metadata: Metadata,
}

impl From<&RecordedEvent> for EventJson {
    fn from(e: &RecordedEvent) -> Self {
        EventJson {
            position: e.position,
            stream: e.stream.clone(),
            version: e.version,
            event_type: e.event.type_name().to_string(),
            schema_version: e.event.schema_version(),
            payload: e.event.payload(),
            metadata: e.metadata.clone(),
        }
    }
}

/// The stream names used across the system.
pub mod streams {
    use uuid::Uuid;

    /// Forecasts and service-level facts of one service.
    pub fn service(service: &str) -> String {
        format!("service/{service}")
    }

    /// The life of one decision: proposed, approved, executed, verified, rolled back.
    pub fn decision(id: Uuid) -> String {
        format!("decision/{id}")
    }

    /// One business event (campaign, launch).
    pub fn business_event(id: Uuid) -> String {
        format!("business-event/{id}")
    }

    /// Configuration changes.
    pub const CONFIG: &str = "config";
    /// Alerts.
    pub const ALERTS: &str = "alerts";
}
