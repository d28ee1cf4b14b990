//! Row operations: the pure mapping from events to read-model rows.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::envelope::RecordedEvent;
use crate::vocabulary::{Event, ForecastMade};

/// A typed column value, bound natively by each adapter.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Time(DateTime<Utc>),
    Uuid(Uuid),
}

/// How a row operation meets an existing row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Create the row; do nothing if the key exists.
    Insert,
    /// Create the row or overwrite every given column and the document.
    Replace,
    /// Set the given columns and merge the document's top-level keys into an existing row.
    Patch,
}

/// One change to one read-model row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowOp {
    pub kind: OpKind,
    pub table: &'static str,
    pub key: Vec<(&'static str, Val)>,
    pub cols: Vec<(&'static str, Val)>,
    /// The row's document (whole for Insert/Replace, the keys to merge for Patch);
    /// `null` for a table without documents ([`super::DOCLESS`]).
    pub doc: Value,
}

/// A read of one read model's documents.
#[derive(Debug, Clone, PartialEq)]
pub struct DocQuery {
    pub table: &'static str,
    pub filters: Vec<(&'static str, Val)>,
    pub order_by: &'static str,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
}

impl DocQuery {
    pub fn new(table: &'static str, order_by: &'static str) -> Self {
        DocQuery {
            table,
            filters: Vec::new(),
            order_by,
            descending: true,
            limit: 100,
            offset: 0,
        }
    }

    pub fn filter(mut self, col: &'static str, v: Val) -> Self {
        self.filters.push((col, v));
        self
    }

    pub fn limit(mut self, limit: i64) -> Self {
        self.limit = limit;
        self
    }

    pub fn offset(mut self, offset: i64) -> Self {
        self.offset = offset;
        self
    }

    pub fn ascending(mut self) -> Self {
        self.descending = false;
        self
    }
}

fn text(s: &str) -> Val {
    Val::Text(s.to_string())
}

fn status_patch(table: &'static str, id: Uuid, status: &str, at: DateTime<Utc>, mut extra: Value) -> RowOp {
    extra["status"] = json!(status);
    extra["updated_at"] = json!(at);
    RowOp {
        kind: OpKind::Patch,
        table,
        key: vec![("decision_id", Val::Uuid(id))],
        cols: vec![("status", text(status)), ("updated_at", Val::Time(at))],
        doc: extra,
    }
}

fn service_state(service: &str, replicas: u32, at: DateTime<Utc>, decision: Uuid) -> RowOp {
    RowOp {
        kind: OpKind::Replace,
        table: "service_state",
        key: vec![("service", text(service))],
        cols: vec![("replicas", Val::Int(replicas as i64)), ("updated_at", Val::Time(at))],
        doc: json!({"service": service, "replicas": replicas, "updated_at": at, "last_decision_id": decision}),
    }
}

/// The accuracy figures of one `model_performance` row.
struct Performance<'a> {
    service: &'a str,
    model: &'a str,
    model_version: &'a str,
    horizon_minutes: i64,
    window: (DateTime<Utc>, DateTime<Utc>),
    /// MAE, MAPE, RMSE, p10-p90 coverage.
    errors: [f64; 4],
    points: u64,
}

/// A `model_performance` row, for evaluations and trained versions alike.
fn performance_row(id: Uuid, p: Performance<'_>, doc: Value) -> RowOp {
    let [mae, mape, rmse, coverage] = p.errors;
    RowOp {
        kind: OpKind::Insert,
        table: "model_performance",
        key: vec![("id", Val::Uuid(id))],
        cols: vec![
            ("service", text(p.service)),
            ("model", text(p.model)),
            ("model_version", text(p.model_version)),
            ("horizon_minutes", Val::Int(p.horizon_minutes)),
            ("window_start", Val::Time(p.window.0)),
            ("window_end", Val::Time(p.window.1)),
            ("mae", Val::Float(mae)),
            ("mape", Val::Float(mape)),
            ("rmse", Val::Float(rmse)),
            ("coverage", Val::Float(coverage)),
            ("points", Val::Int(p.points as i64)),
        ],
        doc,
    }
}

/// A forecast's rows: its summary in `predictions` (the points left out), the whole
/// forecast in `current_predictions` (what the API serves), one `prediction_points` row
/// per point (columns only, no document).
fn forecast_rows(f: &ForecastMade, at: DateTime<Utc>) -> Vec<RowOp> {
    let mut summary = json!({
        "forecast_id": f.forecast_id, "service": f.service, "model": f.model,
        "model_version": f.model_version, "origin": f.origin, "step_seconds": f.step_seconds,
        "horizon_minutes": f.horizon_minutes, "steps": f.points.len(), "notes": f.notes,
        "recorded_at": at,
    });
    // The API's shape: one object per point (the log's v3 columns are for storage).
    let mut doc = summary.clone();
    doc["points"] = json!(f.points);
    let mut cols = vec![
        ("service", text(&f.service)),
        ("model", text(&f.model)),
        ("model_version", text(&f.model_version)),
        ("origin", Val::Time(f.origin)),
        ("horizon_minutes", Val::Int(f.horizon_minutes)),
        ("step_seconds", Val::Int(f.step_seconds)),
        ("recorded_at", Val::Time(at)),
    ];
    if let Some(p) = f.points.last() {
        cols.extend([
            ("p10", Val::Float(p.p10)),
            ("p50", Val::Float(p.p50)),
            ("p90", Val::Float(p.p90)),
        ]);
        summary["last"] = json!({"at": p.at, "p10": p.p10, "p50": p.p50, "p90": p.p90});
    }
    let mut ops = vec![
        RowOp {
            kind: OpKind::Insert,
            table: "predictions",
            key: vec![("forecast_id", Val::Uuid(f.forecast_id))],
            cols,
            doc: summary,
        },
        RowOp {
            kind: OpKind::Replace,
            table: "current_predictions",
            key: vec![("service", text(&f.service))],
            cols: vec![
                ("forecast_id", Val::Uuid(f.forecast_id)),
                ("origin", Val::Time(f.origin)),
            ],
            doc,
        },
    ];
    ops.extend(f.points.iter().map(|p| RowOp {
        kind: OpKind::Insert,
        table: "prediction_points",
        key: vec![
            ("service", text(&f.service)),
            ("model", text(&f.model)),
            ("at", Val::Time(p.at)),
            ("origin", Val::Time(f.origin)),
        ],
        cols: vec![
            ("p10", Val::Float(p.p10)),
            ("p50", Val::Float(p.p50)),
            ("p90", Val::Float(p.p90)),
        ],
        doc: Value::Null,
    }));
    ops
}

/// The row operations one event implies for the read models.
pub fn project(e: &RecordedEvent) -> Vec<RowOp> {
    let at = e.metadata.recorded_at;
    match &e.event {
        Event::ForecastMade(f) => forecast_rows(f, at),
        Event::DecisionProposed(d) => {
            let status = if d.requires_approval { "proposed" } else { "approved" };
            let mut doc = serde_json::to_value(d).expect("serializable");
            // The decision's inputs are for `explain`, which reads them from the log.
            doc.as_object_mut().map(|o| o.remove("inputs"));
            doc["status"] = json!(status);
            doc["proposed_at"] = json!(at);
            doc["updated_at"] = json!(at);
            doc["correlation_id"] = json!(e.metadata.correlation_id);
            let mut cols = vec![
                ("service", text(&d.service)),
                ("strategy", text(&d.strategy)),
                ("status", text(status)),
                ("current_replicas", Val::Int(d.current.replicas as i64)),
                ("target_replicas", Val::Int(d.target.replicas as i64)),
                ("requires_approval", Val::Bool(d.requires_approval)),
                ("proposed_at", Val::Time(at)),
                ("updated_at", Val::Time(at)),
            ];
            if let Some(c) = d.estimated_hourly_cost {
                cols.push(("estimated_hourly_cost", Val::Float(c)));
            }
            vec![RowOp {
                kind: OpKind::Insert,
                table: "scaling_decisions",
                key: vec![("decision_id", Val::Uuid(d.decision_id))],
                cols,
                doc,
            }]
        }
        Event::DecisionApproved(d) => vec![status_patch(
            "scaling_decisions",
            d.decision_id,
            "approved",
            at,
            json!({"approved_by": d.approved_by, "approval_comment": d.comment}),
        )],
        Event::DecisionRejected(d) => vec![status_patch(
            "scaling_decisions",
            d.decision_id,
            "rejected",
            at,
            json!({"rejected_by": d.rejected_by, "rejection_reason": d.reason}),
        )],
        Event::DecisionSuperseded(d) => vec![status_patch(
            "scaling_decisions",
            d.decision_id,
            "superseded",
            at,
            json!({"superseded_by": d.superseded_by}),
        )],
        Event::ScalingStarted(s) => vec![status_patch(
            "scaling_decisions",
            s.decision_id,
            "executing",
            at,
            json!({"executor": s.executor, "execution_started_at": at}),
        )],
        Event::ScalingSucceeded(s) => vec![
            status_patch(
                "scaling_decisions",
                s.decision_id,
                "executed",
                at,
                json!({"executed_at": at, "executed_replicas": s.replicas}),
            ),
            service_state(&s.service, s.replicas, at, s.decision_id),
        ],
        Event::ScalingFailed(s) => vec![status_patch(
            "scaling_decisions",
            s.decision_id,
            "failed",
            at,
            json!({"error": s.error}),
        )],
        Event::VerificationPassed(v) => vec![status_patch(
            "scaling_decisions",
            v.decision_id,
            "verified",
            at,
            json!({"verified_at": at, "verified_ready_replicas": v.ready_replicas}),
        )],
        Event::VerificationFailed(v) => vec![status_patch(
            "scaling_decisions",
            v.decision_id,
            "verification_failed",
            at,
            json!({"verification_failed_at": at, "verification_error": v.reason,
                   "verified_ready_replicas": v.ready_replicas}),
        )],
        Event::RollbackStarted(r) => vec![status_patch(
            "scaling_decisions",
            r.decision_id,
            "rolling_back",
            at,
            json!({"rollback_reason": r.reason, "rollback_to": r.to}),
        )],
        Event::RollbackCompleted(r) => vec![
            status_patch(
                "scaling_decisions",
                r.decision_id,
                "rolled_back",
                at,
                json!({"rolled_back_at": at}),
            ),
            service_state(&r.service, r.replicas, at, r.decision_id),
        ],
        Event::RollbackFailed(r) => vec![status_patch(
            "scaling_decisions",
            r.decision_id,
            "rolling_back",
            at,
            json!({"rollback_attempts_failed": r.attempt, "rollback_error": r.error,
                   "rollback_next_attempt_at": r.next_attempt_at}),
        )],
        Event::DecisionExpired(d) => vec![status_patch(
            "scaling_decisions",
            d.decision_id,
            "expired",
            at,
            json!({"expired_at": at, "waited_seconds": d.waited_seconds}),
        )],
        Event::DecisionHeld(h) => vec![RowOp {
            kind: OpKind::Replace,
            table: "service_holds",
            key: vec![("service", text(&h.service))],
            cols: vec![
                ("code", text(&h.code)),
                ("replicas", Val::Int(h.replicas as i64)),
                ("since", Val::Time(at)),
            ],
            doc: json!({"service": h.service, "code": h.code, "reason": h.reason,
                        "replicas": h.replicas, "since": at}),
        }],
        Event::BusinessEventScheduled(b) => {
            let mut doc = serde_json::to_value(b).expect("serializable");
            doc["status"] = json!("scheduled");
            doc["updated_at"] = json!(at);
            vec![RowOp {
                kind: OpKind::Insert,
                table: "business_events",
                key: vec![("event_id", Val::Uuid(b.event_id))],
                cols: vec![
                    ("service", text(&b.service)),
                    ("kind", text(&b.kind)),
                    ("name", text(&b.name)),
                    ("starts_at", Val::Time(b.starts_at)),
                    ("ends_at", Val::Time(b.ends_at)),
                    ("expected_impact", Val::Float(b.expected_impact)),
                    ("status", text("scheduled")),
                    ("source", text(&b.source)),
                    ("updated_at", Val::Time(at)),
                ],
                doc,
            }]
        }
        Event::BusinessEventUpdated(b) => {
            let mut cols = vec![("updated_at", Val::Time(at))];
            let mut doc = json!({"updated_at": at});
            if let Some(v) = b.starts_at {
                cols.push(("starts_at", Val::Time(v)));
                doc["starts_at"] = json!(v);
            }
            if let Some(v) = b.ends_at {
                cols.push(("ends_at", Val::Time(v)));
                doc["ends_at"] = json!(v);
            }
            if let Some(v) = b.expected_impact {
                cols.push(("expected_impact", Val::Float(v)));
                doc["expected_impact"] = json!(v);
            }
            if let Some(v) = b.actual_impact {
                cols.push(("actual_impact", Val::Float(v)));
                doc["actual_impact"] = json!(v);
            }
            vec![RowOp {
                kind: OpKind::Patch,
                table: "business_events",
                key: vec![("event_id", Val::Uuid(b.event_id))],
                cols,
                doc,
            }]
        }
        Event::BusinessEventCancelled(b) => vec![RowOp {
            kind: OpKind::Patch,
            table: "business_events",
            key: vec![("event_id", Val::Uuid(b.event_id))],
            cols: vec![("status", text("cancelled")), ("updated_at", Val::Time(at))],
            doc: json!({"status": "cancelled", "updated_at": at, "cancel_reason": b.reason}),
        }],
        Event::ConfigurationChanged(_) => Vec::new(),
        Event::ModelEvaluated(m) => vec![performance_row(
            e.metadata.event_id,
            Performance {
                service: &m.service,
                model: &m.model,
                model_version: &m.model_version,
                horizon_minutes: m.horizon_minutes,
                window: (m.window_start, m.window_end),
                errors: [m.mae, m.mape, m.rmse, m.coverage_p10_p90],
                points: m.points,
            },
            serde_json::to_value(m).expect("serializable"),
        )],
        // a trained version's holdout score is a model_performance row like an evaluation
        Event::ModelTrained(m) => vec![performance_row(
            e.metadata.event_id,
            Performance {
                service: &m.service,
                model: &m.model,
                model_version: &m.model_version,
                horizon_minutes: m.horizon_minutes,
                window: (m.holdout_start, m.holdout_end),
                errors: [m.mae, m.mape, m.rmse, m.coverage_p10_p90],
                points: m.points,
            },
            serde_json::to_value(m).expect("serializable"),
        )],
        Event::CostRecorded(c) => {
            let mut doc = serde_json::to_value(c).expect("serializable");
            doc["savings"] = json!(c.reactive_cost - c.actual_cost);
            vec![RowOp {
                kind: OpKind::Insert,
                table: "cost_tracking",
                key: vec![("id", Val::Uuid(e.metadata.event_id))],
                cols: vec![
                    ("service", text(&c.service)),
                    ("period_start", Val::Time(c.period_start)),
                    ("period_end", Val::Time(c.period_end)),
                    ("replica_hours", Val::Float(c.replica_hours)),
                    ("actual_cost", Val::Float(c.actual_cost)),
                    ("reactive_cost", Val::Float(c.reactive_cost)),
                    ("savings", Val::Float(c.reactive_cost - c.actual_cost)),
                ],
                doc,
            }]
        }
        Event::AlertRaised(a) => {
            let mut doc = serde_json::to_value(a).expect("serializable");
            doc["raised_at"] = json!(at);
            let mut cols = vec![
                ("alert_type", text(&a.alert_type)),
                ("severity", text(&a.severity)),
                ("message", text(&a.message)),
                ("raised_at", Val::Time(at)),
            ];
            if let Some(s) = &a.service {
                cols.push(("service", text(s)));
            }
            vec![RowOp {
                kind: OpKind::Insert,
                table: "alert_logs",
                key: vec![("alert_id", Val::Uuid(a.alert_id))],
                cols,
                doc,
            }]
        }
        Event::Malformed(m) => super::dead_letter::project(e, m, at),
        Event::AlertAcknowledged(a) => vec![RowOp {
            kind: OpKind::Patch,
            table: "alert_logs",
            key: vec![("alert_id", Val::Uuid(a.alert_id))],
            cols: vec![
                ("acknowledged_by", text(&a.acknowledged_by)),
                ("acknowledged_at", Val::Time(at)),
            ],
            doc: json!({"acknowledged_by": a.acknowledged_by, "acknowledged_at": at}),
        }],
    }
}
