-- Telemetry readings. A reading is identified by (sensor, time); every write is idempotent on it.
-- Values are in the canonical unit of the sensor's quantity (oxy.contract.CANONICAL_UNIT).
-- depends: 0001_registry

CREATE TABLE platform_meta (
    key     text PRIMARY KEY,
    value   text NOT NULL
);

CREATE TABLE readings (
    sensor_id   bigint NOT NULL,
    ts          timestamptz NOT NULL,
    value       double precision,
    quality     smallint NOT NULL DEFAULT 0,  -- 0 good, 1 stale, 2 out_of_range, 3 comm_error
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sensor_id, ts)
);

-- TimescaleDB when the extension is installed and preloaded; plain PostgreSQL (BRIN on time)
-- when it is not installed. The same queries work on both: they use date_bin(), which both provide.
-- Installed but not preloaded is refused before CREATE EXTENSION: TimescaleDB then fails with a
-- FATAL error that closes the session (no exception block can catch it), so the migration would
-- die with "the connection is closed" instead of saying what to do.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
       AND NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
       AND NOT EXISTS (
           SELECT 1
           FROM unnest(string_to_array(current_setting('shared_preload_libraries'), ',')) AS lib
           -- entries may be quoted, padded or given as a path ($libdir/timescaledb)
           WHERE regexp_replace(btrim(lib, ' "'), '^.*/', '') = 'timescaledb') THEN
        RAISE EXCEPTION 'TimescaleDB is installed on this PostgreSQL server but not preloaded: '
                        'add shared_preload_libraries = ''timescaledb'' to postgresql.conf, '
                        'restart PostgreSQL and run the migration again'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    BEGIN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'timescaledb not loadable (%), using plain PostgreSQL', SQLERRM;
    END;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('readings', 'ts', chunk_time_interval => INTERVAL '1 day',
                                  if_not_exists => TRUE, migrate_data => TRUE);
        ALTER TABLE readings SET (timescaledb.compress,
                                  timescaledb.compress_segmentby = 'sensor_id',
                                  timescaledb.compress_orderby = 'ts DESC');
        PERFORM add_compression_policy('readings', INTERVAL '7 days', if_not_exists => TRUE);
        INSERT INTO platform_meta VALUES ('storage', 'timescaledb')
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
    ELSE
        CREATE INDEX IF NOT EXISTS readings_ts_brin ON readings USING brin (ts);
        INSERT INTO platform_meta VALUES ('storage', 'postgresql')
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
    END IF;
END
$$;
