-- The append-only event log, the projection checkpoints and the read models.

CREATE TABLE events (
    position        BIGINT PRIMARY KEY,
    stream          TEXT NOT NULL,
    version         BIGINT NOT NULL,
    event_type      TEXT NOT NULL,
    schema_version  INTEGER NOT NULL,
    payload         JSONB NOT NULL,
    event_id        UUID NOT NULL UNIQUE,
    correlation_id  UUID NOT NULL,
    causation_id    UUID,
    caused_by       TEXT NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT events_stream_version UNIQUE (stream, version)
);
CREATE INDEX events_type_idx ON events (event_type);
CREATE INDEX events_correlation_idx ON events (correlation_id);
CREATE INDEX events_recorded_at_idx ON events (recorded_at);

-- The log is append-only: history is never edited.
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();

CREATE TABLE projection_checkpoints (
    name      TEXT PRIMARY KEY,
    position  BIGINT NOT NULL
);

-- Read models: typed columns for queries and dashboards, `doc` for the API.
CREATE TABLE predictions (
    forecast_id      UUID PRIMARY KEY,
    service          TEXT NOT NULL,
    model            TEXT NOT NULL,
    model_version    TEXT NOT NULL,
    origin           TIMESTAMPTZ NOT NULL,
    horizon_minutes  BIGINT NOT NULL,
    step_seconds     BIGINT NOT NULL,
    p10              DOUBLE PRECISION,
    p50              DOUBLE PRECISION,
    p90              DOUBLE PRECISION,
    recorded_at      TIMESTAMPTZ NOT NULL,
    doc              JSONB NOT NULL
);
CREATE INDEX predictions_service_origin_idx ON predictions (service, origin DESC);

CREATE TABLE prediction_points (
    forecast_id  UUID NOT NULL,
    step         BIGINT NOT NULL,
    service      TEXT NOT NULL,
    model        TEXT NOT NULL,
    origin       TIMESTAMPTZ NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    p10          DOUBLE PRECISION NOT NULL,
    p50          DOUBLE PRECISION NOT NULL,
    p90          DOUBLE PRECISION NOT NULL,
    doc          JSONB NOT NULL,
    PRIMARY KEY (forecast_id, step)
);
CREATE INDEX prediction_points_service_at_idx ON prediction_points (service, at);

CREATE TABLE current_predictions (
    service      TEXT PRIMARY KEY,
    forecast_id  UUID NOT NULL,
    origin       TIMESTAMPTZ NOT NULL,
    doc          JSONB NOT NULL
);

CREATE TABLE scaling_decisions (
    decision_id            UUID PRIMARY KEY,
    service                TEXT NOT NULL,
    strategy               TEXT NOT NULL,
    status                 TEXT NOT NULL,
    current_replicas       BIGINT NOT NULL,
    target_replicas        BIGINT NOT NULL,
    estimated_hourly_cost  DOUBLE PRECISION,
    requires_approval      BOOLEAN NOT NULL,
    proposed_at            TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL,
    doc                    JSONB NOT NULL
);
CREATE INDEX scaling_decisions_service_idx ON scaling_decisions (service, proposed_at DESC);
CREATE INDEX scaling_decisions_status_idx ON scaling_decisions (status);

CREATE TABLE service_state (
    service      TEXT PRIMARY KEY,
    replicas     BIGINT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    doc          JSONB NOT NULL
);

CREATE TABLE business_events (
    event_id         UUID PRIMARY KEY,
    service          TEXT NOT NULL,
    kind             TEXT NOT NULL,
    name             TEXT NOT NULL,
    starts_at        TIMESTAMPTZ NOT NULL,
    ends_at          TIMESTAMPTZ NOT NULL,
    expected_impact  DOUBLE PRECISION NOT NULL,
    actual_impact    DOUBLE PRECISION,
    status           TEXT NOT NULL,
    source           TEXT NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    doc              JSONB NOT NULL
);
CREATE INDEX business_events_service_idx ON business_events (service, starts_at);

CREATE TABLE model_performance (
    id               UUID PRIMARY KEY,
    service          TEXT NOT NULL,
    model            TEXT NOT NULL,
    model_version    TEXT NOT NULL,
    horizon_minutes  BIGINT NOT NULL,
    window_start     TIMESTAMPTZ NOT NULL,
    window_end       TIMESTAMPTZ NOT NULL,
    mae              DOUBLE PRECISION NOT NULL,
    mape             DOUBLE PRECISION NOT NULL,
    rmse             DOUBLE PRECISION NOT NULL,
    coverage         DOUBLE PRECISION NOT NULL,
    points           BIGINT NOT NULL,
    doc              JSONB NOT NULL
);
CREATE INDEX model_performance_idx ON model_performance (service, model, window_end DESC);

CREATE TABLE cost_tracking (
    id             UUID PRIMARY KEY,
    service        TEXT NOT NULL,
    period_start   TIMESTAMPTZ NOT NULL,
    period_end     TIMESTAMPTZ NOT NULL,
    replica_hours  DOUBLE PRECISION NOT NULL,
    actual_cost    DOUBLE PRECISION NOT NULL,
    reactive_cost  DOUBLE PRECISION NOT NULL,
    savings        DOUBLE PRECISION NOT NULL,
    doc            JSONB NOT NULL
);
CREATE INDEX cost_tracking_idx ON cost_tracking (service, period_start);

CREATE TABLE alert_logs (
    alert_id         UUID PRIMARY KEY,
    service          TEXT,
    alert_type       TEXT NOT NULL,
    severity         TEXT NOT NULL,
    message          TEXT NOT NULL,
    raised_at        TIMESTAMPTZ NOT NULL,
    acknowledged_by  TEXT,
    acknowledged_at  TIMESTAMPTZ,
    doc              JSONB NOT NULL
);
CREATE INDEX alert_logs_raised_idx ON alert_logs (raised_at DESC);
