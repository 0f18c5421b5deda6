-- Each minute rolled up once it has closed (issue 22), whatever the queue holds.
--
-- Before: rollup_flush(p_max_ranges) took any p_max_ranges queued rows (LIMIT, no order). At a
-- national rate the writer queues one row per sensor and batch (6,000 sensors × 12 batches a
-- minute), so a slice took one or two of a sensor's rows for a minute and the next slice took
-- others of the same minute: the minute was rebuilt once per slice that held one of its rows.
-- Rows of the still-open minute were taken too, deleted and queued again (a new row, a new
-- queued_at) at every flush; a slice made only of them rebuilt nothing, returned 0, and
-- ingest.rollups.flush() took 0 for "nothing to do", leaving the closed minutes further in the
-- queue for the next round.
-- Now: a slice is up to p_max_ranges (sensor, hour) keys with work before the open minute and
-- every such row of those keys; rows wholly in the open minute stay where they are, untouched,
-- until it closes; a range running on into it queues that part once (keeping its queued_at,
-- so the lag seen in the queue is the work's). Late readings queue their own rows, taken at
-- the next flush. The rest of the function is 0125_rollup_quality_code's.
-- depends: 0125_rollup_quality_code

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
    -- The slice is up to p_max_ranges (sensor, hour) keys with closed work, and every queued
    -- row of those keys that starts before the open minute: all the batches a sensor queued
    -- in a minute are taken together, so that minute is rebuilt once, not once per slice that
    -- happens to hold one of its rows. Rows wholly in the open minute are not touched.
    WITH keys AS (
        SELECT DISTINCT sensor_id, date_bin(INTERVAL '1 hour', lo, origin) AS hour
        FROM rollup_dirty WHERE lo < open_minute
        LIMIT p_max_ranges
    ),
    taken AS (
        DELETE FROM rollup_dirty d USING keys k
        WHERE d.lo < open_minute AND d.sensor_id = k.sensor_id
          AND date_bin(INTERVAL '1 hour', d.lo, origin) = k.hour
        RETURNING d.sensor_id, d.lo, d.hi, d.queued_at
    ),
    ranges AS (
        SELECT sensor_id, min(lo) AS lo, max(hi) AS hi, min(queued_at) AS queued_at
        FROM taken GROUP BY sensor_id, date_bin(INTERVAL '1 hour', lo, origin)
    ),
    sliced AS (
        SELECT sensor_id, lo, hi AS full_hi, queued_at,
               least(hi, date_bin(INTERVAL '1 hour', lo, origin) + INTERVAL '1 hour'
                             - INTERVAL '1 microsecond') AS hi
        FROM ranges
    ),
    rest AS (
        INSERT INTO rollup_dirty (sensor_id, lo, hi, queued_at)
        SELECT s.sensor_id, n.next_ts, s.full_hi, s.queued_at
        FROM sliced s
        CROSS JOIN LATERAL (
            SELECT min(r.ts) AS next_ts FROM readings r
            WHERE r.sensor_id = s.sensor_id AND r.ts > s.hi AND r.ts <= s.full_hi
        ) n
        WHERE s.full_hi > s.hi AND n.next_ts IS NOT NULL
    ),
    open_part AS (
        -- a range that runs on into the open minute: that part once, from the open minute on
        INSERT INTO rollup_dirty (sensor_id, lo, hi, queued_at)
        SELECT sensor_id, open_minute, hi, queued_at FROM sliced WHERE hi >= open_minute
    )
    INSERT INTO rollup_work_1m (sensor_id, bucket)
    SELECT DISTINCT w.sensor_id, b.bucket
    FROM sliced w
    CROSS JOIN LATERAL generate_series(date_bin(INTERVAL '1 minute', w.lo, origin),
                                       least(date_bin(INTERVAL '1 minute', w.hi, origin),
                                             open_minute - INTERVAL '1 minute'),
                                       INTERVAL '1 minute') AS b (bucket);
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
