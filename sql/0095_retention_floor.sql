-- Raw readings retention never drops what a report still needs, and never takes rollups with it.
--
-- * Facility reports can be edited for 31 days (AccountingConfig.edit_window_days) and a report
--   day's figures read the 7 windows before it, so a correction or a late window recomputes from
--   raw readings up to ~38 days back: a `readings_retention` shorter than
--   `readings_retention_floor` (40 days unless set) is refused with a clear error (the ingest
--   service logs it and drops nothing). Retention stays OFF by default.
-- * Only whole UTC days go (the daily rollup buckets), before `readings_retained_from()`.
-- * Rollups of dropped days are kept: nothing rebuilds a bucket before that horizon.
--   TimescaleDB: dropping chunks invalidates the continuous aggregates, and the refresh policies
--   (start_offset NULL: late data of any age) would then re-materialise the dropped days from
--   nothing; with retention on, their start_offset becomes the retention, and
--   ingest.rollups.recompute clamps its window. Plain PostgreSQL: rollup_recompute() clamps.
-- depends: 0004_rollups 0060_rollup_queue

INSERT INTO platform_meta (key, value) VALUES ('readings_retention_floor', '40 days')
    ON CONFLICT (key) DO NOTHING;

-- The oldest instant whose raw readings are kept: -infinity while retention is off.
CREATE FUNCTION readings_retained_from() RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        date_bin(INTERVAL '1 day', now() - (SELECT value::interval FROM platform_meta
                                            WHERE key = 'readings_retention'),
                 TIMESTAMPTZ '2000-01-03 00:00:00+00'),
        '-infinity'::timestamptz)
$$;

CREATE OR REPLACE FUNCTION apply_readings_retention() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    keep interval;
    floor_keep interval;
    horizon timestamptz;
    job record;
    removed bigint := 0;
BEGIN
    SELECT value::interval INTO keep FROM platform_meta WHERE key = 'readings_retention';
    IF keep IS NULL THEN
        RETURN 0;
    END IF;
    SELECT coalesce((SELECT value::interval FROM platform_meta
                     WHERE key = 'readings_retention_floor'), INTERVAL '40 days')
        INTO floor_keep;
    IF keep < floor_keep THEN
        RAISE EXCEPTION 'readings_retention % is shorter than the % reports still need; set at least %',
                        keep, floor_keep, floor_keep
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    horizon := readings_retained_from();
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        -- The refresh policies stop short of the horizon before anything is dropped.
        FOR job IN EXECUTE 'SELECT job_id, config FROM timescaledb_information.jobs'
                           ' WHERE proc_name = ''policy_refresh_continuous_aggregate'''
        LOOP
            EXECUTE 'SELECT alter_job($1, config => $2)'
                USING job.job_id,
                      job.config || jsonb_build_object('start_offset', (now() - horizon)::text);
        END LOOP;
        EXECUTE 'SELECT count(*) FROM drop_chunks(''readings'', older_than => $1)'
            INTO removed USING horizon;
    ELSE
        DELETE FROM readings WHERE ts < horizon;
        GET DIAGNOSTICS removed = ROW_COUNT;
    END IF;
    RETURN removed;
END
$$;

-- rollup_recompute() as in 0060_rollup_queue, clamped to the retention horizon.
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
            '  AND quality = 0 AND value IS NOT NULL '
            'GROUP BY sensor_id, b', lvl.tbl)
            USING p_sensor, lo, hi, lvl.width;
        GET DIAGNOSTICS k = ROW_COUNT;
        written := written + k;
    END LOOP;
    RETURN written;
END
$$;
