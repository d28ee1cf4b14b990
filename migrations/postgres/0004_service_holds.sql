-- Why each service's controller last held its replicas (projection of DecisionHeld).
CREATE TABLE service_holds (
    service   TEXT PRIMARY KEY,
    code      TEXT NOT NULL,
    replicas  INTEGER NOT NULL,
    since     TIMESTAMPTZ NOT NULL,
    doc       JSONB NOT NULL
);
