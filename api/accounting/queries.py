"""Named SQL of the accounting data layer (values always travel as parameters)."""

from __future__ import annotations

from typing import Final

from psycopg import sql as pgsql

# The level sensor of each tank: DP first, then already-derived contents, then percent full.
LEVEL_SENSORS: Final = """
SELECT DISTINCT ON (s.tank_id) s.tank_id, s.id, s.quantity, t.capacity_kg, t.min_usable_kg,
       t.facility_id
FROM sensors s JOIN tanks t ON t.id = s.tank_id
WHERE s.tank_id = ANY(%(tanks)s::bigint[]) AND s.quantity IN ('dp', 'contents', 'level_pct')
ORDER BY s.tank_id, (s.quantity = 'dp') DESC, (s.quantity = 'contents') DESC, s.id
"""

CALIBRATIONS: Final = """
SELECT k.tank_id, k.id, k.version, k.valid_from,
       array_agg(p.dp_inh2o ORDER BY p.dp_inh2o) AS dp,
       array_agg(p.contents_kg ORDER BY p.dp_inh2o) AS kg
FROM tank_calibrations k JOIN calibration_points p ON p.calibration_id = k.id
WHERE k.tank_id = ANY(%(tanks)s::bigint[])
GROUP BY k.tank_id, k.id, k.version, k.valid_from
ORDER BY k.tank_id, k.valid_from
"""

STORED_WINDOWS: Final = """
SELECT tank_id, report_day, open_kg, close_kg, min_kg, consumption_kg, refilled_kg, refills,
       coverage, readings, computed_at, fingerprint
FROM tank_windows
WHERE tank_id = ANY(%(tanks)s::bigint[]) AND report_day >= %(first)s AND report_day <= %(last)s
"""

UPSERT_WINDOW: Final = """
INSERT INTO tank_windows (tank_id, report_day, open_kg, close_kg, min_kg, consumption_kg,
                          refilled_kg, refills, coverage, readings, computed_at, fingerprint)
VALUES (%(tank)s, %(day)s, %(open)s, %(close)s, %(min)s, %(consumption)s, %(refilled)s,
        %(refills)s, %(coverage)s, %(readings)s, %(computed_at)s, %(fingerprint)s)
ON CONFLICT (tank_id, report_day) DO UPDATE SET
    open_kg = EXCLUDED.open_kg, close_kg = EXCLUDED.close_kg, min_kg = EXCLUDED.min_kg,
    consumption_kg = EXCLUDED.consumption_kg, refilled_kg = EXCLUDED.refilled_kg,
    refills = EXCLUDED.refills, coverage = EXCLUDED.coverage, readings = EXCLUDED.readings,
    computed_at = EXCLUDED.computed_at, fingerprint = EXCLUDED.fingerprint
"""

# Good readings per sensor and report day, as the daily rollup counts them over the UTC days a
# window (with its context) overlaps: late data changes the count.
WINDOW_COUNTS: Final = """
SELECT r.sensor_id, d.day, sum(r.n)::bigint
FROM unnest(%(days)b::date[], %(lo)b::timestamptz[], %(hi)b::timestamptz[]) AS d (day, lo, hi)
JOIN rollup_1d r ON r.bucket >= d.lo AND r.bucket < d.hi
WHERE r.sensor_id = ANY(%(sensors)s::bigint[])
GROUP BY 1, 2
"""

# Good readings per sensor and report day over whole hours [lo, hi) of the hourly rollup: the
# fingerprint of a window still open or just closed, over the hours that had passed when it was
# computed (a reading arriving later for one of those hours changes it, the live ones do not).
HOUR_COUNTS: Final = """
SELECT d.sensor_id, d.day, coalesce(sum(r.n), 0)::bigint
FROM unnest(%(sensors)b::bigint[], %(days)b::date[], %(lo)b::timestamptz[],
            %(hi)b::timestamptz[]) AS d (sensor_id, day, lo, hi)
LEFT JOIN rollup_1h r ON r.sensor_id = d.sensor_id AND r.bucket >= d.lo AND r.bucket < d.hi
GROUP BY 1, 2
"""

# Every tank with a level sensor: the tanks whose windows the periodic job computes ahead.
MONITORED_TANKS: Final = """
SELECT DISTINCT tank_id FROM sensors
WHERE tank_id IS NOT NULL AND quantity IN ('dp', 'contents', 'level_pct')
ORDER BY tank_id
"""

INSERT_REFILL: Final = """
INSERT INTO refill_events (tank_id, started_at, ended_at, report_day, before_kg, after_kg,
                           amount_kg)
VALUES (%(tank)s, %(started_at)s, %(ended_at)s, %(day)s, %(before)s, %(after)s, %(amount)s)
ON CONFLICT (tank_id, started_at) DO UPDATE SET ended_at = EXCLUDED.ended_at,
    report_day = EXCLUDED.report_day, before_kg = EXCLUDED.before_kg,
    after_kg = EXCLUDED.after_kg, amount_kg = EXCLUDED.amount_kg
"""

REFILLS_IN: Final = """
SELECT tank_id, started_at, ended_at, report_day, before_kg, after_kg, amount_kg
FROM refill_events WHERE tank_id = ANY(%(tanks)s::bigint[]) AND report_day >= %(first)s
  AND report_day <= %(last)s
ORDER BY tank_id, started_at
"""

# Tanks of facilities, with the level sensor if any (a tank without one is not monitored).
FACILITY_TANKS: Final = """
SELECT t.facility_id, t.id, t.capacity_kg, t.min_usable_kg,
       EXISTS (SELECT 1 FROM sensors s WHERE s.tank_id = t.id
               AND s.quantity IN ('dp', 'contents', 'level_pct')) AS monitored
FROM tanks t WHERE t.facility_id = ANY(%(facilities)s::bigint[])
ORDER BY t.facility_id, t.id
"""

FACILITY_CYLINDERS: Final = """
SELECT facility_id, sum(cylinder_count * gas_m3_each) AS nm3
FROM cylinder_banks WHERE facility_id = ANY(%(facilities)s::bigint[]) GROUP BY facility_id
"""

INVALIDATE_WINDOWS: Final = """
DELETE FROM tank_windows w USING sensors s
WHERE s.id = %(sensor)s AND w.tank_id = s.tank_id
  AND w.report_day >= %(first)s AND w.report_day <= %(last)s
"""

# DP-measured tanks with readings in [start, end) and no calibration valid at the window's end:
# their contents cannot be known ("calibration_missing", not "no telemetry").
UNCALIBRATED_TANKS: Final = """
SELECT s.tank_id FROM sensors s
WHERE s.tank_id = ANY(%(tanks)s::bigint[]) AND s.quantity = 'dp'
  AND EXISTS (SELECT 1 FROM readings r WHERE r.sensor_id = s.id
              AND r.ts >= %(start)s AND r.ts < %(end)s)
  AND NOT EXISTS (SELECT 1 FROM tank_calibrations k WHERE k.tank_id = s.tank_id
                  AND k.valid_from <= %(end)s)
"""
# The same for several report windows at once: (report day, tank).
UNCALIBRATED_TANKS_DAYS: Final = """
WITH uncalibrated AS MATERIALIZED (
    SELECT w.day, w.start_ts, w.end_ts, s.id AS sensor_id, s.tank_id
    FROM unnest(%(days)s::date[], %(starts)s::timestamptz[], %(ends)s::timestamptz[])
         AS w (day, start_ts, end_ts)
    JOIN sensors s ON s.tank_id = ANY(%(tanks)s::bigint[]) AND s.quantity = 'dp'
    WHERE NOT EXISTS (SELECT 1 FROM tank_calibrations k WHERE k.tank_id = s.tank_id
                      AND k.valid_from <= w.end_ts)
)
SELECT u.day, u.tank_id
FROM uncalibrated u
WHERE EXISTS (SELECT 1 FROM readings r WHERE r.sensor_id = u.sensor_id
              AND r.ts >= u.start_ts AND r.ts < u.end_ts)
"""

# Readings are read for many tanks in one round trip (the alert round and the windows-ahead job
# recompute up to 3,000 tanks' windows at once; one tank is the same query with one element):
# each query takes parallel arrays (sensor, range start, range end) and returns the sensor id with
# its rows, in sensor then bucket order. A sensor may appear with several disjoint ranges.
ACTIVE_CORRECTIONS_OVERLAP_EACH: Final = """
SELECT DISTINCT d.sensor_id
FROM unnest(%(sensors)b::bigint[], %(start)b::timestamptz[], %(end)b::timestamptz[])
     AS d (sensor_id, lo, hi)
JOIN corrections c ON c.sensor_id = d.sensor_id AND c.reverted_at IS NULL
  AND c.ts_from < d.hi AND c.ts_to >= d.lo
"""

# The ingest rollups (good readings only, no corrections): used when no correction touches the
# range. The tables behind readings_1h/_1m carry first_ts/last_ts on both storage paths. Hourly:
# the coarse series; minutes: the data around refills and window ends (the raw readings are 60
# times as many rows at 1 Hz).
_ROLLUP_BUCKETS_EACH: Final = """
SELECT d.sensor_id, r.bucket, r.first_ts, r.first_value, r.last_ts, r.last_value, r.min_value,
       r.n
FROM unnest(%(sensors)b::bigint[], %(start)b::timestamptz[], %(end)b::timestamptz[])
     AS d (sensor_id, lo, hi)
JOIN {table} r ON r.sensor_id = d.sensor_id AND r.bucket >= d.lo AND r.bucket < d.hi
ORDER BY d.sensor_id, r.bucket
"""
ROLLUP_1H_BUCKETS_EACH: Final = pgsql.SQL(_ROLLUP_BUCKETS_EACH).format(
    table=pgsql.Identifier("rollup_1h")
)
ROLLUP_1M_BUCKETS_EACH: Final = pgsql.SQL(_ROLLUP_BUCKETS_EACH).format(
    table=pgsql.Identifier("rollup_1m")
)

# Raw readings with the corrections overlay: an active 'invalidate' drops the reading, an active
# 'replace' substitutes its value (and makes a bad reading usable). The newest correction covering
# a reading wins. Bucketed so that the same query serves the 1-hour series (no rollup, or a
# correction applies) and the 1-minute data that refines refills and window ends; the origin is
# the rollups' (2000-01-03 00:00 UTC).
RAW_BUCKETS_EACH: Final = """
WITH d AS (
    SELECT * FROM unnest(%(sensors)b::bigint[], %(start)b::timestamptz[],
                         %(end)b::timestamptz[]) AS d (sensor_id, lo, hi)
), r AS (
    SELECT r.sensor_id, r.ts,
           CASE WHEN c.action = 'replace' THEN c.value ELSE r.value END AS value,
           r.quality, c.action
    FROM d JOIN readings r ON r.sensor_id = d.sensor_id AND r.ts >= d.lo AND r.ts < d.hi
    LEFT JOIN LATERAL (
        SELECT action, value FROM corrections c
        WHERE c.sensor_id = r.sensor_id AND c.reverted_at IS NULL
          AND r.ts >= c.ts_from AND r.ts <= c.ts_to
        ORDER BY c.id DESC LIMIT 1
    ) c ON TRUE
)
SELECT sensor_id, date_bin(%(width)s, ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
       min(ts) AS first_ts, (array_agg(value ORDER BY ts))[1] AS first_value,
       max(ts) AS last_ts, (array_agg(value ORDER BY ts DESC))[1] AS last_value,
       min(value) AS min_value, count(*) AS n
FROM r
WHERE value IS NOT NULL AND action IS DISTINCT FROM 'invalidate'
  AND (quality = quality_code('good') OR action = 'replace')
GROUP BY 1, 2 ORDER BY 1, 2
"""

# The right to write tanks' cached windows until the transaction ends, taken without waiting
# (two int4 keys: their space never meets the one-bigint locks of api.accounting.ahead): the
# tanks whose lock this transaction got.
TRY_TANK_CACHE_LOCKS: Final = """
SELECT t FROM (
    SELECT t, pg_try_advisory_xact_lock(20251, t) AS got FROM unnest(%(tanks)b::int[]) AS t
) l WHERE got
"""

DELETE_REFILLS_EACH: Final = """
DELETE FROM refill_events e
USING unnest(%(tanks)b::bigint[], %(first)b::date[], %(last)b::date[]) AS d (tank_id, lo, hi)
WHERE e.tank_id = d.tank_id AND e.report_day >= d.lo AND e.report_day <= d.hi
"""
