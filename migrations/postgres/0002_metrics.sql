-- Metrics are time series, not events. A TimescaleDB hypertable where the
-- extension is available; otherwise a table range-partitioned by month on
-- plain PostgreSQL (partitions are created by the application before it
-- inserts into a new month; the default partition catches the rest).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        CREATE TABLE metrics (
            ts       TIMESTAMPTZ NOT NULL,
            service  TEXT NOT NULL,
            metric   TEXT NOT NULL,
            value    DOUBLE PRECISION NOT NULL,
            labels   JSONB NOT NULL DEFAULT '{}'
        );
        PERFORM create_hypertable('metrics', 'ts', chunk_time_interval => INTERVAL '1 day');
    ELSE
        CREATE TABLE metrics (
            ts       TIMESTAMPTZ NOT NULL,
            service  TEXT NOT NULL,
            metric   TEXT NOT NULL,
            value    DOUBLE PRECISION NOT NULL,
            labels   JSONB NOT NULL DEFAULT '{}'
        ) PARTITION BY RANGE (ts);
        CREATE TABLE metrics_default PARTITION OF metrics DEFAULT;
    END IF;
END $$;
CREATE INDEX metrics_series_idx ON metrics (service, metric, ts DESC);
