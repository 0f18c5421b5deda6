-- Rollups per sensor and bucket (1 minute, 1 hour, 1 day; UTC buckets): first/last/min/max/count
-- of the good readings (quality 0, value not NULL), in the sensor's canonical unit.
--
-- One name per rollup on both storage paths: the API and Grafana query the views
--   readings_1m / readings_1h / readings_1d (sensor_id, bucket, first_value, last_value,
--                                             min_value, max_value, n)
-- over `rollup_1m` / `rollup_1h` / `rollup_1d`, which are
--   * TimescaleDB: continuous aggregates with real-time aggregation (materialized_only = false),
--     refreshed by policies; late data is picked up through TimescaleDB's invalidation log;
--   * plain PostgreSQL: tables the ingest writer merges every committed batch into (exact for
--     late data, since raw readings are insert-only); `rollup_recompute()` rebuilds buckets.
-- Buckets use time_bucket's default origin (2000-01-03 00:00 UTC) on both paths.
-- depends: 0003_ingest

DO $$
DECLARE
    lvl record;
BEGIN
    FOR lvl IN SELECT * FROM (VALUES ('1m', INTERVAL '1 minute', INTERVAL '1 minute'),
                                     ('1h', INTERVAL '1 hour', INTERVAL '15 minutes'),
                                     ('1d', INTERVAL '1 day', INTERVAL '1 hour'))
                             AS t (suffix, width, schedule)
    LOOP
        IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
            -- WITH NO DATA: a continuous aggregate may only be created inside a transaction
            -- (yoyo runs each migration in one) when it is not materialized at once.
            EXECUTE format(
                'CREATE MATERIALIZED VIEW %I WITH (timescaledb.continuous, '
                '  timescaledb.materialized_only = false) AS '
                'SELECT sensor_id, time_bucket(%L::interval, ts) AS bucket, '
                '       min(ts) AS first_ts, first(value, ts) AS first_value, '
                '       max(ts) AS last_ts, last(value, ts) AS last_value, '
                '       min(value) AS min_value, max(value) AS max_value, count(*) AS n '
                'FROM readings WHERE quality = 0 AND value IS NOT NULL '
                'GROUP BY sensor_id, time_bucket(%L::interval, ts) WITH NO DATA',
                'rollup_' || lvl.suffix, lvl.width, lvl.width);
            -- start_offset NULL: late data of any age is re-materialized (only invalidated
            -- ranges are recomputed, so this stays cheap).
            PERFORM add_continuous_aggregate_policy(('rollup_' || lvl.suffix)::regclass,
                start_offset => NULL, end_offset => lvl.width,
                schedule_interval => lvl.schedule, if_not_exists => TRUE);
        ELSE
            EXECUTE format(
                'CREATE TABLE %I ('
                '  sensor_id bigint NOT NULL, bucket timestamptz NOT NULL,'
                '  first_ts timestamptz NOT NULL, first_value double precision NOT NULL,'
                '  last_ts timestamptz NOT NULL, last_value double precision NOT NULL,'
                '  min_value double precision NOT NULL, max_value double precision NOT NULL,'
                '  n bigint NOT NULL, PRIMARY KEY (sensor_id, bucket))',
                'rollup_' || lvl.suffix);
        END IF;
    END LOOP;
END
$$;

CREATE VIEW readings_1m AS
    SELECT sensor_id, bucket, first_value, last_value, min_value, max_value, n FROM rollup_1m;
CREATE VIEW readings_1h AS
    SELECT sensor_id, bucket, first_value, last_value, min_value, max_value, n FROM rollup_1h;
CREATE VIEW readings_1d AS
    SELECT sensor_id, bucket, first_value, last_value, min_value, max_value, n FROM rollup_1d;

-- Rebuild the rollup buckets of one sensor that overlap [p_from, p_to] from the raw readings
-- (corrections and new calibration versions call it through ingest.rollups.recompute). On
-- TimescaleDB the continuous aggregates are refreshed instead (refresh_continuous_aggregate
-- cannot run inside a function), so this returns 0 there. Returns the buckets written.
CREATE FUNCTION rollup_recompute(p_sensor bigint, p_from timestamptz, p_to timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    lvl record;
    lo timestamptz;
    hi timestamptz;
    written integer := 0;
    k integer;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN 0;
    END IF;
    FOR lvl IN SELECT * FROM (VALUES ('rollup_1m', INTERVAL '1 minute'),
                                     ('rollup_1h', INTERVAL '1 hour'),
                                     ('rollup_1d', INTERVAL '1 day')) AS t (tbl, width)
    LOOP
        lo := date_bin(lvl.width, p_from, TIMESTAMPTZ '2000-01-03 00:00:00+00');
        hi := date_bin(lvl.width, p_to, TIMESTAMPTZ '2000-01-03 00:00:00+00') + lvl.width;
        EXECUTE format('DELETE FROM %I WHERE sensor_id = $1 AND bucket >= $2 AND bucket < $3',
                       lvl.tbl) USING p_sensor, lo, hi;
        EXECUTE format(
            'INSERT INTO %I (sensor_id, bucket, first_ts, first_value, last_ts, last_value,'
            '                min_value, max_value, n) '
            'SELECT sensor_id, date_bin($4, ts, TIMESTAMPTZ ''2000-01-03 00:00:00+00'') AS b,'
            '       min(ts), (array_agg(value ORDER BY ts))[1],'
            '       max(ts), (array_agg(value ORDER BY ts DESC))[1],'
            '       min(value), max(value), count(*) '
            'FROM readings WHERE sensor_id = $1 AND ts >= $2 AND ts < $3'
            '  AND quality = 0 AND value IS NOT NULL '
            'GROUP BY sensor_id, b '
            -- a bucket the ingest writer created meanwhile: the raw rows decide.
            'ON CONFLICT (sensor_id, bucket) DO UPDATE SET first_ts = EXCLUDED.first_ts,'
            '  first_value = EXCLUDED.first_value, last_ts = EXCLUDED.last_ts,'
            '  last_value = EXCLUDED.last_value, min_value = EXCLUDED.min_value,'
            '  max_value = EXCLUDED.max_value, n = EXCLUDED.n', lvl.tbl)
            USING p_sensor, lo, hi, lvl.width;
        GET DIAGNOSTICS k = ROW_COUNT;
        written := written + k;
    END LOOP;
    RETURN written;
END
$$;

-- Retention of raw readings: OFF unless platform_meta('readings_retention') holds an interval
-- (e.g. '400 days'; keep raw data at least as long as a report can be revised). Rollups are kept.
-- The ingest service calls this hourly; returns the chunks dropped / rows deleted.
CREATE FUNCTION apply_readings_retention() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    keep interval;
    removed bigint := 0;
BEGIN
    SELECT value::interval INTO keep FROM platform_meta WHERE key = 'readings_retention';
    IF keep IS NULL THEN
        RETURN 0;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        EXECUTE 'SELECT count(*) FROM drop_chunks(''readings'', older_than => $1)'
            INTO removed USING now() - keep;
    ELSE
        DELETE FROM readings WHERE ts < now() - keep;
        GET DIAGNOSTICS removed = ROW_COUNT;
    END IF;
    RETURN removed;
END
$$;
