-- Plain PostgreSQL: the rollups are rebuilt from a queue of dirty ranges instead of being folded
-- into every ingest transaction (that fold cost more than the readings' own insert).
--
-- The ingest writer appends (sensor, first ts, last ts) of every committed batch to
-- `rollup_dirty` in the batch's own transaction, so no committed reading can miss its rollup;
-- `rollup_flush()` (the ingest service calls it every few seconds) takes the queue and
-- rebuilds the closed 1 minute buckets it covers from the raw readings, then the hours from
-- those minutes and the days from those hours; what falls in the minute still open (by the
-- database clock) waits in the queue until that minute has closed. Rebuilding (not folding) keeps the rollups exact for
-- late data and redeliveries, and the rebuild is idempotent: a range queued twice costs time,
-- never a wrong count. On TimescaleDB nothing is queued (continuous aggregates).
-- depends: 0004_rollups 0030_grafana_views

CREATE TABLE rollup_dirty (
    sensor_id bigint NOT NULL,
    lo timestamptz NOT NULL,
    hi timestamptz NOT NULL,
    queued_at timestamptz NOT NULL DEFAULT now(),
    CHECK (lo <= hi)
);

-- For the engineers (Grafana, read-only role): how far behind the rollups are. Only the open
-- minute should wait here (about a minute); anything older means no flush is running.
CREATE VIEW grafana.rollup_queue AS
    SELECT count(*) AS ranges, min(queued_at) AS oldest_queued_at FROM rollup_dirty;
GRANT SELECT ON grafana.rollup_queue TO oxy_grafana;

-- One key for everything that rewrites rollup rows on plain PostgreSQL, so that a flush and a
-- recompute (or two ingest replicas' flushes) never interleave their delete + insert.
CREATE FUNCTION rollup_lock_key() RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT 7305431902817335601::bigint
$$;

-- Rebuild the closed buckets the queue names; returns the 1 minute buckets rebuilt, or -1 when
-- another session is flushing (the queue stays for the next call).
CREATE FUNCTION rollup_flush() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    origin CONSTANT timestamptz := TIMESTAMPTZ '2000-01-03 00:00:00+00';
    open_minute CONSTANT timestamptz := date_bin(INTERVAL '1 minute', now(), origin);
    lvl record;
    k integer;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN 0;
    END IF;
    IF NOT pg_try_advisory_xact_lock(rollup_lock_key()) THEN
        RETURN -1;
    END IF;
    CREATE TEMP TABLE IF NOT EXISTS rollup_work_1m (sensor_id bigint, bucket timestamptz)
        ON COMMIT DROP;
    CREATE TEMP TABLE IF NOT EXISTS rollup_work_1h (sensor_id bigint, bucket timestamptz)
        ON COMMIT DROP;
    CREATE TEMP TABLE IF NOT EXISTS rollup_work_1d (sensor_id bigint, bucket timestamptz)
        ON COMMIT DROP;
    TRUNCATE rollup_work_1m, rollup_work_1h, rollup_work_1d;  -- a second flush, one transaction
    -- Ranges of one sensor within the same hour collapse into one; a late range stays apart
    -- from the live one, so a reading from last week does not rebuild the whole week.
    -- Only closed minutes are rebuilt: the part of a range in the minute still open goes back
    -- into the queue. Rebuilding the open minute at every flush would read each of its
    -- readings again and again (12 times a minute at one flush every 5 s).
    WITH taken AS (DELETE FROM rollup_dirty RETURNING sensor_id, lo, hi),
    ranges AS (
        SELECT sensor_id, min(lo) AS lo, max(hi) AS hi
        FROM taken GROUP BY sensor_id, date_bin(INTERVAL '1 hour', lo, origin)
    ),
    open_part AS (
        INSERT INTO rollup_dirty (sensor_id, lo, hi)
        SELECT sensor_id, greatest(lo, open_minute), hi FROM ranges WHERE hi >= open_minute
    )
    INSERT INTO rollup_work_1m (sensor_id, bucket)
    SELECT DISTINCT w.sensor_id, b.bucket
    FROM ranges w
    CROSS JOIN LATERAL generate_series(date_bin(INTERVAL '1 minute', w.lo, origin),
                                       least(date_bin(INTERVAL '1 minute', w.hi, origin),
                                             open_minute - INTERVAL '1 minute'),
                                       INTERVAL '1 minute') AS b (bucket)
    WHERE w.lo < open_minute;
    GET DIAGNOSTICS k = ROW_COUNT;
    IF k = 0 THEN
        RETURN 0;
    END IF;

    -- One index range scan per bucket (LATERAL) and an upsert by primary key: no join the
    -- planner could turn into a scan of a whole table, which it picks while the statistics
    -- still describe a table much smaller than it has become. Readings are insert-only, so a
    -- bucket never loses its good readings: rewriting the rows is enough, nothing to delete.
    INSERT INTO rollup_1m (sensor_id, bucket, first_ts, first_value, last_ts, last_value,
                           min_value, max_value, n)
    SELECT w.sensor_id, w.bucket, a.*
    FROM rollup_work_1m w
    CROSS JOIN LATERAL (
        SELECT min(r.ts), (array_agg(r.value ORDER BY r.ts))[1],
               max(r.ts), (array_agg(r.value ORDER BY r.ts DESC))[1],
               min(r.value), max(r.value), count(*) AS n
        FROM readings r
        WHERE r.sensor_id = w.sensor_id
          AND r.ts >= w.bucket AND r.ts < w.bucket + INTERVAL '1 minute'
          AND r.quality = 0 AND r.value IS NOT NULL
    ) a
    WHERE a.n > 0
    ON CONFLICT (sensor_id, bucket) DO UPDATE SET
        first_ts = EXCLUDED.first_ts, first_value = EXCLUDED.first_value,
        last_ts = EXCLUDED.last_ts, last_value = EXCLUDED.last_value,
        min_value = EXCLUDED.min_value, max_value = EXCLUDED.max_value, n = EXCLUDED.n;

    -- Hours from their minutes, then days from their hours: the same statement one level up.
    FOR lvl IN SELECT * FROM (VALUES ('1h', '1m', INTERVAL '1 hour'),
                                     ('1d', '1h', INTERVAL '1 day')) AS t (name, finer, width)
    LOOP
        EXECUTE format('INSERT INTO %I (sensor_id, bucket) '
                       'SELECT DISTINCT sensor_id, date_bin($1, bucket, $2) FROM %I',
                       'rollup_work_' || lvl.name, 'rollup_work_' || lvl.finer)
            USING lvl.width, origin;
        EXECUTE format(
            'INSERT INTO %I (sensor_id, bucket, first_ts, first_value, last_ts, last_value,'
            '                min_value, max_value, n) '
            'SELECT w.sensor_id, w.bucket, a.* FROM %I w '
            'CROSS JOIN LATERAL ('
            '    SELECT min(f.first_ts), (array_agg(f.first_value ORDER BY f.first_ts))[1],'
            '           max(f.last_ts), (array_agg(f.last_value ORDER BY f.last_ts DESC))[1],'
            '           min(f.min_value), max(f.max_value), sum(f.n) AS n'
            '    FROM %I f WHERE f.sensor_id = w.sensor_id'
            '      AND f.bucket >= w.bucket AND f.bucket < w.bucket + $1'
            ') a WHERE a.n > 0 '
            'ON CONFLICT (sensor_id, bucket) DO UPDATE SET'
            '    first_ts = EXCLUDED.first_ts, first_value = EXCLUDED.first_value,'
            '    last_ts = EXCLUDED.last_ts, last_value = EXCLUDED.last_value,'
            '    min_value = EXCLUDED.min_value, max_value = EXCLUDED.max_value, n = EXCLUDED.n',
            'rollup_' || lvl.name, 'rollup_work_' || lvl.name, 'rollup_' || lvl.finer)
            USING lvl.width;
    END LOOP;
    RETURN k;
END
$$;

-- rollup_recompute() (corrections, calibration versions, quarantine replay) now waits for a
-- running flush instead of racing it; otherwise unchanged from 0004_rollups.
CREATE OR REPLACE FUNCTION rollup_recompute(p_sensor bigint, p_from timestamptz,
                                            p_to timestamptz)
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
    PERFORM pg_advisory_xact_lock(rollup_lock_key());
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
            'GROUP BY sensor_id, b', lvl.tbl)
            USING p_sensor, lo, hi, lvl.width;
        GET DIAGNOSTICS k = ROW_COUNT;
        written := written + k;
    END LOOP;
    RETURN written;
END
$$;
