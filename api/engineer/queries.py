"""SQL of the engineers' pages. Every list is limited to the caller's facilities."""

from __future__ import annotations

from typing import Final

from psycopg import sql

GATEWAYS: Final = """
SELECT g.id, g.code, g.name, g.revoked_at, o.id AS facility_id, o.code AS site,
       o.name AS facility, o.province_code,
       gs.online, gs.last_seen, gs.state_at, gs.status_ts, gs.version, gs.config_hash,
       gs.outbox_depth, gs.outbox_oldest, gs.evicted_total, gs.published_total,
       gs.devices, gs.alarms,
       (SELECT count(*) FROM sensors s WHERE s.gateway_id = g.id) AS sensors
FROM gateways g
JOIN organisations o ON o.id = g.facility_id
LEFT JOIN gateway_status gs ON gs.gateway_id = g.id
WHERE (%(scope_national)s OR g.facility_id = ANY(%(scope_facilities)s::bigint[]))
  AND (%(gateway)s::bigint IS NULL OR g.id = %(gateway)s)
  AND (%(facility)s::bigint IS NULL OR g.facility_id = %(facility)s)
ORDER BY o.province_code, o.code, g.code
"""

# The last reading of each sensor (any quality) and the tank it measures: `sensor_latest` (kept
# by ingest), else the newest stored reading (readings loaded another way, e.g. a backfill).
SENSORS: Final = """
SELECT s.id, s.code, s.quantity, s.unit, s.valid_min, s.valid_max, s.gateway_id,
       g.code AS gateway, t.id AS tank_id, t.code AS tank,
       coalesce(sl.ts, r.ts) AS ts, CASE WHEN sl.sensor_id IS NULL THEN r.value ELSE sl.value END
       AS value, coalesce(sl.quality, r.quality) AS quality,
       coalesce(sl.received_at, r.received_at) AS received_at
FROM sensors s
JOIN gateways g ON g.id = s.gateway_id
LEFT JOIN tanks t ON t.id = s.tank_id
LEFT JOIN sensor_latest sl ON sl.sensor_id = s.id
LEFT JOIN LATERAL (
    SELECT x.ts, x.value, x.quality, x.received_at FROM readings x
    WHERE sl.sensor_id IS NULL AND x.sensor_id = s.id ORDER BY x.ts DESC LIMIT 1
) r ON TRUE
WHERE (%(gateway)s::bigint IS NULL OR s.gateway_id = %(gateway)s)
  AND (%(tank)s::bigint IS NULL OR s.tank_id = %(tank)s)
ORDER BY g.code, s.code
"""

HISTORY: Final = """
SELECT received_at, kind, online, bd_seq, outbox_depth, evicted_total
FROM gateway_status_history WHERE gateway_id = %(gateway)s
ORDER BY received_at DESC LIMIT %(limit)s
"""

# Readings held back because the registry did not know the gateway or sensor when they came.
QUARANTINE_OF_GATEWAY: Final = """
SELECT id, received_at, sensor, ts, value, unit, quality, reason
FROM quarantine WHERE gateway = %(code)s
ORDER BY received_at DESC LIMIT %(limit)s
"""

# For a tank: its sensors' codes on their gateways, or codes its gateways sent that the
# registry still does not know (they may be this tank's unregistered sensors).
QUARANTINE_OF_TANK: Final = """
SELECT q.id, q.received_at, q.gateway, q.sensor, q.ts, q.value, q.unit, q.quality, q.reason
FROM quarantine q
WHERE q.sensor IS NOT NULL
  AND q.gateway IN (SELECT g.code FROM sensors s JOIN gateways g ON g.id = s.gateway_id
                    WHERE s.tank_id = %(tank)s)
  AND (EXISTS (SELECT 1 FROM sensors s JOIN gateways g ON g.id = s.gateway_id
               WHERE s.tank_id = %(tank)s AND g.code = q.gateway AND s.code = q.sensor)
       OR NOT EXISTS (SELECT 1 FROM sensors s JOIN gateways g ON g.id = s.gateway_id
                      WHERE g.code = q.gateway AND s.code = q.sensor))
ORDER BY q.received_at DESC LIMIT %(limit)s
"""

CONFLICTS: Final = """
SELECT c.id, s.code AS sensor, c.ts, c.stored_value, c.stored_quality, c.new_value,
       c.new_quality, c.received_at
FROM reading_conflicts c JOIN sensors s ON s.id = c.sensor_id
WHERE s.tank_id = %(tank)s
ORDER BY c.received_at DESC LIMIT %(limit)s
"""

TANK: Final = """
SELECT t.id, t.code, t.name, t.capacity_kg, t.facility_id, o.code AS site, o.name AS facility,
       o.province_code
FROM tanks t JOIN organisations o ON o.id = t.facility_id
WHERE t.id = %(tank)s AND t.facility_id = %(facility)s
"""

# Per hour and quantity: readings by quality and the last good value; DP as contents through the
# calibration valid then (grafana.tank_kg, the dashboards' own conversion).
HOURLY: Final = """
SELECT h.bucket, h.quantity, h.n, h.good, h.stale, h.out_of_range, h.comm_error, h.last_good,
       CASE WHEN h.quantity = 'dp' AND h.last_good IS NOT NULL
            THEN grafana.tank_kg(%(tank)s, h.bucket, h.last_good) END AS contents_kg
FROM (
    SELECT date_bin('1 hour', r.ts, TIMESTAMPTZ '2000-01-03 00:00+00') AS bucket, s.quantity,
           count(*) AS n,
           count(*) FILTER (WHERE r.quality = quality_code('good') AND r.value IS NOT NULL) AS good,
           count(*) FILTER (WHERE r.quality = quality_code('stale')) AS stale,
           count(*) FILTER (WHERE r.quality = quality_code('out_of_range')) AS out_of_range,
           count(*) FILTER (WHERE r.quality = quality_code('comm_error')) AS comm_error,
           (array_agg(r.value ORDER BY r.ts DESC)
                FILTER (WHERE r.quality = quality_code('good') AND r.value IS NOT NULL))[1]
               AS last_good
    FROM readings r JOIN sensors s ON s.id = r.sensor_id
    WHERE s.tank_id = %(tank)s AND r.ts >= %(since)s AND r.ts < %(until)s
    GROUP BY 1, 2
) h
ORDER BY h.bucket
"""

# Silences between consecutive readings of a sensor longer than `gap` or three times the
# sensor's usual (median) interval, whichever is longer; newest first. `last_ts` and the
# threshold per sensor tell whether it is silent now (an open gap).
_DELTAS = sql.SQL("""
    SELECT s.id AS sensor_id, s.code AS sensor, r.ts,
           r.ts - lag(r.ts) OVER (PARTITION BY r.sensor_id ORDER BY r.ts) AS delta
    FROM readings r JOIN sensors s ON s.id = r.sensor_id
    WHERE s.tank_id = %(tank)s AND r.ts >= %(since)s AND r.ts < %(until)s
""")
_TYPICAL = sql.SQL("""
    SELECT sensor_id, greatest(%(gap)s::interval,
                               3 * percentile_cont(0.5) WITHIN GROUP (ORDER BY delta)) AS limit_
    FROM d WHERE delta IS NOT NULL GROUP BY sensor_id
""")
# Both gap queries share the two CTEs, composed in (psycopg.sql).
GAPS: Final = sql.SQL("""
WITH d AS ({deltas}), typical AS ({typical})
SELECT d.sensor, d.ts - d.delta AS gap_from, d.ts AS gap_to
FROM d JOIN typical t USING (sensor_id)
WHERE d.delta > t.limit_
ORDER BY d.ts DESC LIMIT %(limit)s
""").format(deltas=_DELTAS, typical=_TYPICAL)

OPEN_GAPS: Final = sql.SQL("""
WITH d AS ({deltas}), typical AS ({typical})
SELECT s.code AS sensor, l.last_ts
FROM sensors s
LEFT JOIN typical t ON t.sensor_id = s.id
CROSS JOIN LATERAL (SELECT max(r.ts) AS last_ts FROM readings r
                    WHERE r.sensor_id = s.id AND r.ts < %(until)s) l
WHERE s.tank_id = %(tank)s
  AND (l.last_ts IS NULL OR %(until)s - l.last_ts > coalesce(t.limit_, %(gap)s::interval))
ORDER BY s.code
""").format(deltas=_DELTAS, typical=_TYPICAL)

# Unresolved alarms of a gateway (itself, its sensors, the tanks they measure) or of a tank (and
# its sensors): one of %(gateway)s / %(tank)s is NULL. Newest first; the caller has already
# checked that the gateway or tank is in scope.
ALARMS: Final = """
SELECT a.id, a.rule, a.subject_kind, a.subject_id, a.severity, a.state, a.level, a.opened_at,
       a.acknowledged_at, a.details
FROM alerts a
WHERE a.state <> 'resolved' AND a.facility_id = %(facility)s
  AND ((a.subject_kind = 'gateway' AND a.subject_id = %(gateway)s)
       OR (a.subject_kind = 'sensor' AND a.subject_id IN (
           SELECT id FROM sensors WHERE gateway_id = %(gateway)s OR tank_id = %(tank)s))
       OR (a.subject_kind = 'tank' AND (a.subject_id = %(tank)s OR a.subject_id IN (
           SELECT tank_id FROM sensors WHERE gateway_id = %(gateway)s))))
ORDER BY a.state = 'acknowledged', a.severity = 'warning', a.opened_at DESC
LIMIT %(limit)s
"""
# Readings of a gateway still held back: their sensor is not (or not yet) in the registry.
STILL_UNKNOWN: Final = "SELECT count(*) FROM quarantine WHERE gateway = %(code)s"

TANK_SENSOR_IDS: Final = "SELECT id FROM sensors WHERE tank_id = %(tank)s ORDER BY id"

# What the tank page lists as quarantined, counted (LIMIT NULL: all of it).
QUARANTINE_COUNT_OF_TANK: Final = sql.SQL("SELECT count(*) FROM ({listed}) AS q").format(
    listed=sql.SQL(QUARANTINE_OF_TANK)
)
