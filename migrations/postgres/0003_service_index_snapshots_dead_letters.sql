-- Every event belongs to a service or to none (indexed for bounded startup reads),
-- snapshots of folded state, dead letters of the projections, and slimmer prediction points.

ALTER TABLE events ADD COLUMN service TEXT;

-- Backfill, the one edit the log ever gets: the payload's service, else the service of
-- the stream's first event (a decision stream belongs to the decision's service).
ALTER TABLE events DISABLE TRIGGER events_no_update_delete;
UPDATE events SET service = payload->>'service' WHERE jsonb_typeof(payload->'service') = 'string';
UPDATE events e SET service = f.service
  FROM events f
 WHERE e.service IS NULL AND f.stream = e.stream AND f.version = 1 AND f.service IS NOT NULL;
ALTER TABLE events ENABLE TRIGGER events_no_update_delete;

CREATE INDEX events_service_position_idx ON events (service, position);

-- Folded state of an aggregate up to a log position; not a read model (a rebuild keeps it).
CREATE TABLE snapshots (
    key       TEXT PRIMARY KEY,
    position  BIGINT NOT NULL,
    state     JSONB NOT NULL,
    saved_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Events the read models could not take (undecodable, or refused by the database).
CREATE TABLE dead_letters (
    position        BIGINT PRIMARY KEY,
    stream          TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    schema_version  INTEGER NOT NULL,
    error           TEXT NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    doc             JSONB NOT NULL
);

-- One row per forecast point, columns only: keyed the way it is read (the latest
-- forecast of each time), without a document that repeated the columns.
ALTER TABLE prediction_points RENAME TO prediction_points_v2;
ALTER TABLE prediction_points_v2 RENAME CONSTRAINT prediction_points_pkey TO prediction_points_v2_pkey;
CREATE TABLE prediction_points (
    service  TEXT NOT NULL,
    model    TEXT NOT NULL,
    at       TIMESTAMPTZ NOT NULL,
    origin   TIMESTAMPTZ NOT NULL,
    p10      DOUBLE PRECISION NOT NULL,
    p50      DOUBLE PRECISION NOT NULL,
    p90      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (service, model, at, origin)
);
INSERT INTO prediction_points (service, model, at, origin, p10, p50, p90)
    SELECT service, model, at, origin, p10, p50, p90 FROM prediction_points_v2
    ON CONFLICT DO NOTHING;
DROP TABLE prediction_points_v2;

-- Documents no longer repeat what other rows hold: a forecast's points live in
-- prediction_points, a decision's inputs in the log.
UPDATE predictions SET doc = doc - 'points';
UPDATE scaling_decisions SET doc = doc - 'inputs';
