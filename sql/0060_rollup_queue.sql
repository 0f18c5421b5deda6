-- Plain PostgreSQL: the rollups are rebuilt from a queue of dirty ranges instead of being folded
-- into every ingest transaction (that fold cost more than the readings' own insert).
--
-- The ingest writer appends (sensor, first ts, last ts) of every committed batch to
-- `rollup_dirty` in the batch's own transaction, so no committed reading can miss its rollup;
-- `rollup_flush()` (the ingest service calls it every couple of seconds) takes the queue and
-- rebuilds the 1 minute buckets it covers from the raw readings, then the hours from those
-- minutes and the days from those hours. Rebuilding (not folding) keeps the rollups exact for
-- late data and redeliveries, and the rebuild is idempotent: a range queued twice costs time,
-- never a wrong count. On TimescaleDB nothing is queued (continuous aggregates).
-- depends: 0004_rollups

CREATE TABLE rollup_dirty (
    sensor_id bigint NOT NULL,
    lo timestamptz NOT NULL,
    hi timestamptz NOT NULL,
    CHECK (lo <= hi)
);

-- One key for everything that rewrites rollup rows on plain PostgreSQL, so that a flush and a
-- recompute (or two ingest replicas' flushes) never interleave their delete + insert.
CREATE FUNCTION rollup_lock_key() RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT 7305431902817335601::bigint
$$;

-- Rebuild the buckets the queue names; returns the 1 minute buckets rebuilt, or -1 when another
-- session is flushing (the queue stays for the next call).
CREATE FUNCTION rollup_flush() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    origin CONSTANT timestamptz := TIMESTAMPTZ '2000-01-03 00:00:00+00';
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
    WITH taken AS (DELETE FROM rollup_dirty RETURNING sensor_id, lo, hi),
    ranges AS (
        SELECT sensor_id, min(lo) AS lo, max(hi) AS hi
        FROM taken GROUP BY sensor_id, date_bin(INTERVAL '1 hour', lo, origin)
    )
    INSERT INTO rollup_work_1m (sensor_id, bucket)
    SELECT DISTINCT w.sensor_id, b.bucket
    FROM ranges w
    CROSS JOIN LATERAL generate_series(date_bin(INTERVAL '1 minute', w.lo, origin),
                                       date_bin(INTERVAL '1 minute', w.hi, origin),
                                       INTERVAL '1 minute') AS b (bucket);
    GET DIAGNOSTICS k = ROW_COUNT;
    IF k = 0 THEN
        RETURN 0;
    END IF;
    ANALYZE rollup_work_1m;

    DELETE FROM rollup_1m r USING rollup_work_1m w
    WHERE r.sensor_id = w.sensor_id AND r.bucket = w.bucket;
    INSERT INTO rollup_1m (sensor_id, bucket, first_ts, first_value, last_ts, last_value,
                           min_value, max_value, n)
    SELECT w.sensor_id, w.bucket,
           min(r.ts), (array_agg(r.value ORDER BY r.ts))[1],
           max(r.ts), (array_agg(r.value ORDER BY r.ts DESC))[1],
           min(r.value), max(r.value), count(*)
    FROM rollup_work_1m w
    JOIN readings r ON r.sensor_id = w.sensor_id
                   AND r.ts >= w.bucket AND r.ts < w.bucket + INTERVAL '1 minute'
    WHERE r.quality = 0 AND r.value IS NOT NULL
    GROUP BY w.sensor_id, w.bucket;

    INSERT INTO rollup_work_1h (sensor_id, bucket)
    SELECT DISTINCT sensor_id, date_bin(INTERVAL '1 hour', bucket, origin) AS bucket
    FROM rollup_work_1m;
    DELETE FROM rollup_1h r USING rollup_work_1h w
    WHERE r.sensor_id = w.sensor_id AND r.bucket = w.bucket;
    INSERT INTO rollup_1h (sensor_id, bucket, first_ts, first_value, last_ts, last_value,
                           min_value, max_value, n)
    SELECT w.sensor_id, w.bucket,
           min(m.first_ts), (array_agg(m.first_value ORDER BY m.first_ts))[1],
           max(m.last_ts), (array_agg(m.last_value ORDER BY m.last_ts DESC))[1],
           min(m.min_value), max(m.max_value), sum(m.n)
    FROM rollup_work_1h w
    JOIN rollup_1m m ON m.sensor_id = w.sensor_id
                    AND m.bucket >= w.bucket AND m.bucket < w.bucket + INTERVAL '1 hour'
    GROUP BY w.sensor_id, w.bucket;

    INSERT INTO rollup_work_1d (sensor_id, bucket)
    SELECT DISTINCT sensor_id, date_bin(INTERVAL '1 day', bucket, origin) AS bucket
    FROM rollup_work_1h;
    DELETE FROM rollup_1d r USING rollup_work_1d w
    WHERE r.sensor_id = w.sensor_id AND r.bucket = w.bucket;
    INSERT INTO rollup_1d (sensor_id, bucket, first_ts, first_value, last_ts, last_value,
                           min_value, max_value, n)
    SELECT w.sensor_id, w.bucket,
           min(h.first_ts), (array_agg(h.first_value ORDER BY h.first_ts))[1],
           max(h.last_ts), (array_agg(h.last_value ORDER BY h.last_ts DESC))[1],
           min(h.min_value), max(h.max_value), sum(h.n)
    FROM rollup_work_1d w
    JOIN rollup_1h h ON h.sensor_id = w.sensor_id
                    AND h.bucket >= w.bucket AND h.bucket < w.bucket + INTERVAL '1 day'
    GROUP BY w.sensor_id, w.bucket;
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
