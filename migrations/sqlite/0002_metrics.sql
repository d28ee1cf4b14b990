-- Metrics are time series, not events. `ts` is epoch milliseconds (UTC).
CREATE TABLE metrics (
    ts       INTEGER NOT NULL,
    service  TEXT NOT NULL,
    metric   TEXT NOT NULL,
    value    REAL NOT NULL,
    labels   TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX metrics_series_idx ON metrics (service, metric, ts);
