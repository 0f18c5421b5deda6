#!/bin/bash
# Runs once, when the primary's data directory is initialised (docker-entrypoint-initdb.d):
# a replication role and the pg_hba.conf line that lets the read replicas stream WAL from it.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v pw="$OXY_REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'pw';
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
