#!/bin/bash
# Runs once, when the database volume is first initialised (docker-entrypoint-initdb.d).
# Creates `grafana_reader`, a read-only role for the Grafana datasource: it can
# SELECT every table that `predictive-scaler migrate` (running as $POSTGRES_USER)
# creates later, and cannot write the event log or the read models.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v reader_password="${GRAFANA_DB_PASSWORD:-grafana}" \
     -v owner="$POSTGRES_USER" -v dbname="$POSTGRES_DB" <<'EOSQL'
CREATE ROLE grafana_reader LOGIN PASSWORD :'reader_password';
GRANT CONNECT ON DATABASE :"dbname" TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO grafana_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO grafana_reader;
EOSQL
