-- Every event belongs to a service or to none (indexed for bounded startup reads),
-- snapshots of folded state, dead letters of the projections, and slimmer prediction points.

ALTER TABLE events ADD COLUMN service TEXT;

-- Backfill, the one edit the log ever gets: the payload's service, else the service of
-- the stream's first event (a decision stream belongs to the decision's service).
DROP TRIGGER events_no_update;
UPDATE events SET service = json_extract(payload, '$.service')
 WHERE json_valid(payload) AND json_type(payload, '$.service') = 'text';
UPDATE events SET service = (SELECT f.service FROM events f WHERE f.stream = events.stream AND f.version = 1)
 WHERE service IS NULL;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only (UPDATE refused)'); END;

CREATE INDEX events_service_position_idx ON events (service, position);

-- Folded state of an aggregate up to a log position; not a read model (a rebuild keeps it).
CREATE TABLE snapshots (
    key       TEXT PRIMARY KEY,
    position  INTEGER NOT NULL,
    state     TEXT NOT NULL
);

-- Events the read models could not take (undecodable, or refused by the database).
CREATE TABLE dead_letters (
    position        INTEGER PRIMARY KEY,
    stream          TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    schema_version  INTEGER NOT NULL,
    error           TEXT NOT NULL,
    recorded_at     TEXT NOT NULL,
    doc             TEXT NOT NULL
);

-- One row per forecast point, columns only: keyed the way it is read (the latest
-- forecast of each time), without a document that repeated the columns.
CREATE TABLE prediction_points_v3 (
    service  TEXT NOT NULL,
    model    TEXT NOT NULL,
    at       TEXT NOT NULL,
    origin   TEXT NOT NULL,
    p10      REAL NOT NULL,
    p50      REAL NOT NULL,
    p90      REAL NOT NULL,
    PRIMARY KEY (service, model, at, origin)
) WITHOUT ROWID;
INSERT OR IGNORE INTO prediction_points_v3 (service, model, at, origin, p10, p50, p90)
    SELECT service, model, at, origin, p10, p50, p90 FROM prediction_points;
DROP TABLE prediction_points;
ALTER TABLE prediction_points_v3 RENAME TO prediction_points;

-- Documents no longer repeat what other rows hold: a forecast's points live in
-- prediction_points, a decision's inputs in the log.
UPDATE predictions SET doc = json_remove(doc, '$.points');
UPDATE scaling_decisions SET doc = json_remove(doc, '$.inputs');
