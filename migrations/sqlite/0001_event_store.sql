-- The append-only event log, the projection checkpoints and the read models.
-- Times are RFC 3339 text in UTC with a fixed width, so they sort as text.

CREATE TABLE events (
    position        INTEGER PRIMARY KEY,
    stream          TEXT NOT NULL,
    version         INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    schema_version  INTEGER NOT NULL,
    payload         TEXT NOT NULL,
    event_id        TEXT NOT NULL UNIQUE,
    correlation_id  TEXT NOT NULL,
    causation_id    TEXT,
    caused_by       TEXT NOT NULL,
    recorded_at     TEXT NOT NULL,
    UNIQUE (stream, version)
);
CREATE INDEX events_type_idx ON events (event_type);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only (UPDATE refused)'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only (DELETE refused)'); END;

CREATE TABLE projection_checkpoints (
    name      TEXT PRIMARY KEY,
    position  INTEGER NOT NULL
);

CREATE TABLE predictions (
    forecast_id      TEXT PRIMARY KEY,
    service          TEXT NOT NULL,
    model            TEXT NOT NULL,
    model_version    TEXT NOT NULL,
    origin           TEXT NOT NULL,
    horizon_minutes  INTEGER NOT NULL,
    step_seconds     INTEGER NOT NULL,
    p10              REAL,
    p50              REAL,
    p90              REAL,
    recorded_at      TEXT NOT NULL,
    doc              TEXT NOT NULL
);
CREATE INDEX predictions_service_origin_idx ON predictions (service, origin DESC);

CREATE TABLE prediction_points (
    forecast_id  TEXT NOT NULL,
    step         INTEGER NOT NULL,
    service      TEXT NOT NULL,
    model        TEXT NOT NULL,
    origin       TEXT NOT NULL,
    at           TEXT NOT NULL,
    p10          REAL NOT NULL,
    p50          REAL NOT NULL,
    p90          REAL NOT NULL,
    doc          TEXT NOT NULL,
    PRIMARY KEY (forecast_id, step)
);
CREATE INDEX prediction_points_service_at_idx ON prediction_points (service, at);

CREATE TABLE current_predictions (
    service      TEXT PRIMARY KEY,
    forecast_id  TEXT NOT NULL,
    origin       TEXT NOT NULL,
    doc          TEXT NOT NULL
);

CREATE TABLE scaling_decisions (
    decision_id            TEXT PRIMARY KEY,
    service                TEXT NOT NULL,
    strategy               TEXT NOT NULL,
    status                 TEXT NOT NULL,
    current_replicas       INTEGER NOT NULL,
    target_replicas        INTEGER NOT NULL,
    estimated_hourly_cost  REAL,
    requires_approval      INTEGER NOT NULL,
    proposed_at            TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    doc                    TEXT NOT NULL
);
CREATE INDEX scaling_decisions_service_idx ON scaling_decisions (service, proposed_at DESC);

CREATE TABLE service_state (
    service      TEXT PRIMARY KEY,
    replicas     INTEGER NOT NULL,
    updated_at   TEXT NOT NULL,
    doc          TEXT NOT NULL
);

CREATE TABLE business_events (
    event_id         TEXT PRIMARY KEY,
    service          TEXT NOT NULL,
    kind             TEXT NOT NULL,
    name             TEXT NOT NULL,
    starts_at        TEXT NOT NULL,
    ends_at          TEXT NOT NULL,
    expected_impact  REAL NOT NULL,
    actual_impact    REAL,
    status           TEXT NOT NULL,
    source           TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    doc              TEXT NOT NULL
);

CREATE TABLE model_performance (
    id               TEXT PRIMARY KEY,
    service          TEXT NOT NULL,
    model            TEXT NOT NULL,
    model_version    TEXT NOT NULL,
    horizon_minutes  INTEGER NOT NULL,
    window_start     TEXT NOT NULL,
    window_end       TEXT NOT NULL,
    mae              REAL NOT NULL,
    mape             REAL NOT NULL,
    rmse             REAL NOT NULL,
    coverage         REAL NOT NULL,
    points           INTEGER NOT NULL,
    doc              TEXT NOT NULL
);

CREATE TABLE cost_tracking (
    id             TEXT PRIMARY KEY,
    service        TEXT NOT NULL,
    period_start   TEXT NOT NULL,
    period_end     TEXT NOT NULL,
    replica_hours  REAL NOT NULL,
    actual_cost    REAL NOT NULL,
    reactive_cost  REAL NOT NULL,
    savings        REAL NOT NULL,
    doc            TEXT NOT NULL
);

CREATE TABLE alert_logs (
    alert_id         TEXT PRIMARY KEY,
    service          TEXT,
    alert_type       TEXT NOT NULL,
    severity         TEXT NOT NULL,
    message          TEXT NOT NULL,
    raised_at        TEXT NOT NULL,
    acknowledged_by  TEXT,
    acknowledged_at  TEXT,
    doc              TEXT NOT NULL
);
