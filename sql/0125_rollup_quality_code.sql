-- The rollup functions name the good quality as the wire contract does (issue 15): the latest
-- statements of rollup_flush() (0071_rollup_flush_bounded) and rollup_recompute()
-- (0095_retention_floor) restated with `quality = quality_code('good')` (0116_quality_code)
-- instead of a literal 0; nothing else changes. quality_code() is IMMUTABLE, so the planner
-- folds it to the constant and the readings index still applies.
-- The TimescaleDB continuous aggregates of 0004_rollups keep their stored definition (replacing
-- a continuous aggregate drops its materialised buckets and the views over it); their filter is
-- the same code, checked by tests/api/test_quality_code_sql.py.
-- depends: 0071_rollup_flush_bounded 0095_retention_floor 0116_quality_code

CREATE OR REPLACE FUNCTION rollup_flush(p_max_ranges integer DEFAULT 2000) RETURNS integer
LANGUAGE plpgsql AS $$
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
    -- Ranges of one sensor starting in the same hour collapse into one; each is rebuilt up to
    -- the end of that hour (a slice), the rest of it queued again from its next reading. Only
    -- closed minutes are rebuilt: the part of a slice in the minute still open goes back too.
    WITH taken AS (
        DELETE FROM rollup_dirty
        WHERE ctid = ANY (ARRAY(SELECT ctid FROM rollup_dirty LIMIT p_max_ranges))
        RETURNING sensor_id, lo, hi
    ),
    ranges AS (
        SELECT sensor_id, min(lo) AS lo, max(hi) AS hi
        FROM taken GROUP BY sensor_id, date_bin(INTERVAL '1 hour', lo, origin)
    ),
    sliced AS (
        SELECT sensor_id, lo, hi AS full_hi,
               least(hi, date_bin(INTERVAL '1 hour', lo, origin) + INTERVAL '1 hour'
                             - INTERVAL '1 microsecond') AS hi
        FROM ranges
    ),
    rest AS (
        INSERT INTO rollup_dirty (sensor_id, lo, hi)
        SELECT s.sensor_id, n.next_ts, s.full_hi
        FROM sliced s
        CROSS JOIN LATERAL (
            SELECT min(r.ts) AS next_ts FROM readings r
            WHERE r.sensor_id = s.sensor_id AND r.ts > s.hi AND r.ts <= s.full_hi
        ) n
        WHERE s.full_hi > s.hi AND n.next_ts IS NOT NULL
    ),
    open_part AS (
        INSERT INTO rollup_dirty (sensor_id, lo, hi)
        SELECT sensor_id, greatest(lo, open_minute), hi FROM sliced WHERE hi >= open_minute
    )
    INSERT INTO rollup_work_1m (sensor_id, bucket)
    SELECT DISTINCT w.sensor_id, b.bucket
    FROM sliced w
    CROSS JOIN LATERAL generate_series(date_bin(INTERVAL '1 minute', w.lo, origin),
                                       least(date_bin(INTERVAL '1 minute', w.hi, origin),
                                             open_minute - INTERVAL '1 minute'),
                                       INTERVAL '1 minute') AS b (bucket)
    WHERE w.lo < open_minute;
    GET DIAGNOSTICS k = ROW_COUNT;
    IF k = 0 THEN
        RETURN 0;
    END IF;

    -- Minutes from the good readings (one index range scan per bucket, upsert by primary key),
    -- hours from minutes, days from hours.
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
          AND r.quality = quality_code('good') AND r.value IS NOT NULL
    ) a
    WHERE a.n > 0
    ON CONFLICT (sensor_id, bucket) DO UPDATE SET
        first_ts = EXCLUDED.first_ts, first_value = EXCLUDED.first_value,
        last_ts = EXCLUDED.last_ts, last_value = EXCLUDED.last_value,
        min_value = EXCLUDED.min_value, max_value = EXCLUDED.max_value, n = EXCLUDED.n;

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
    -- Never rebuild a bucket whose raw readings retention has dropped: it would lose them.
    p_from := greatest(p_from, readings_retained_from());
    IF p_from > p_to THEN
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
            '  AND quality = quality_code(''good'') AND value IS NOT NULL '
            'GROUP BY sensor_id, b', lvl.tbl)
            USING p_sensor, lo, hi, lvl.width;
        GET DIAGNOSTICS k = ROW_COUNT;
        written := written + k;
    END LOOP;
    RETURN written;
END
$$;
