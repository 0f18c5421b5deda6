"""Named SQL the pages need beyond the accounting and reports data layers (registry look-ups)."""

from __future__ import annotations

from typing import Any, Final

from fastapi import HTTPException
from psycopg.rows import dict_row

FACILITY: Final = """
SELECT o.id, o.code, o.name, o.province_code, a.name AS province_name, o.parent_id,
       p.name AS parent_name, f.latitude, f.longitude, f.beds, f.icu_beds, f.address
FROM organisations o
LEFT JOIN facilities f ON f.org_id = o.id
LEFT JOIN admin_units a ON a.code = o.province_code
LEFT JOIN organisations p ON p.id = o.parent_id
WHERE o.id = %(facility)s AND o.kind = 'facility'
"""

# Tanks of one facility with the level sensor (if any) and every sensor of the tank.
FACILITY_TANKS: Final = """
SELECT t.id, t.code, t.name, t.capacity_kg, t.min_usable_kg, t.diameter_m, t.max_pressure_bar,
       (SELECT count(*) FROM sensors s WHERE s.tank_id = t.id
        AND s.quantity IN ('dp', 'contents', 'level_pct')) > 0 AS monitored
FROM tanks t WHERE t.facility_id = %(facility)s ORDER BY t.code
"""

TANK_SENSORS: Final = """
SELECT s.id, s.code, s.quantity, s.unit, g.code AS gateway
FROM sensors s JOIN gateways g ON g.id = s.gateway_id
WHERE s.tank_id = %(tank)s ORDER BY s.quantity = 'dp' DESC, s.code
"""

LATEST_READING: Final = """
SELECT ts, value, quality FROM readings WHERE sensor_id = %(sensor)s ORDER BY ts DESC LIMIT 1
"""

# Facilities (scope-filtered) with their map position and reporting parent.
FACILITIES_IN_SCOPE: Final = """
SELECT o.id, o.code, o.name, o.province_code, a.name AS province_name, o.parent_id,
       p.code AS parent_code, p.name AS parent_name, f.latitude, f.longitude, f.beds
FROM organisations o
JOIN facilities f ON f.org_id = o.id
LEFT JOIN admin_units a ON a.code = o.province_code
LEFT JOIN organisations p ON p.id = o.parent_id
WHERE o.kind = 'facility'
  AND (%(scope_national)s OR o.id = ANY(%(scope_facilities)s::bigint[]))
  AND (%(parent)s::bigint IS NULL OR o.parent_id = %(parent)s)
ORDER BY a.name NULLS LAST, o.name
"""

SUPPLIERS: Final = """
SELECT o.id, o.code, o.name, o.province_code, a.name AS province_name, s.supplier_kind,
       s.latitude, s.longitude, s.capacity_normal_tpd, s.capacity_full_tpd,
       c.full_name AS contact, c.phone
FROM organisations o
JOIN suppliers s ON s.org_id = o.id
LEFT JOIN admin_units a ON a.code = o.province_code
LEFT JOIN LATERAL (SELECT full_name, phone FROM contacts WHERE org_id = o.id
                   ORDER BY is_primary DESC, id LIMIT 1) c ON TRUE
ORDER BY o.name
"""

SUPPLIER: Final = """
SELECT o.id, o.code, o.name, s.supplier_kind, s.capacity_normal_tpd, s.capacity_full_tpd
FROM organisations o JOIN suppliers s ON s.org_id = o.id WHERE o.id = %(supplier)s
"""

REPORTING_PARENTS: Final = """
SELECT o.id, o.code, o.name, o.kind, o.province_code, a.name AS province_name
FROM organisations o LEFT JOIN admin_units a ON a.code = o.province_code
WHERE o.kind IN ('syt', 'ministry_office')
ORDER BY o.kind DESC, a.name, o.name
"""

ADMIN_FACILITIES: Final = """
SELECT o.id, o.code, o.name, a.name AS province_name, p.name AS parent_name, f.facility_type,
       f.beds, f.icu_beds, f.latitude, f.longitude,
       (SELECT count(*) FROM tanks t WHERE t.facility_id = o.id) AS tanks,
       (SELECT count(*) FROM gateways g WHERE g.facility_id = o.id) AS gateways
FROM organisations o JOIN facilities f ON f.org_id = o.id
LEFT JOIN admin_units a ON a.code = o.province_code
LEFT JOIN organisations p ON p.id = o.parent_id
ORDER BY a.name, o.name
"""

ADMIN_TANKS: Final = """
SELECT t.id, t.code, t.name, o.id AS facility_id, o.name AS facility, t.capacity_kg,
       t.min_usable_kg, t.diameter_m, k.version, k.valid_from, k.points
FROM tanks t JOIN organisations o ON o.id = t.facility_id
LEFT JOIN LATERAL (
    SELECT c.version, c.valid_from, (SELECT count(*) FROM calibration_points p
                                     WHERE p.calibration_id = c.id) AS points
    FROM tank_calibrations c WHERE c.tank_id = t.id ORDER BY c.valid_from DESC LIMIT 1
) k ON TRUE
ORDER BY o.name, t.code
"""

CALIBRATION_POINTS: Final = """
SELECT c.version, c.valid_from, c.note, p.dp_inh2o, p.contents_kg
FROM tank_calibrations c JOIN calibration_points p ON p.calibration_id = c.id
WHERE c.tank_id = %(tank)s
ORDER BY c.valid_from DESC, p.dp_inh2o
"""

ADMIN_GATEWAYS: Final = """
SELECT g.id, g.code, g.name, o.name AS facility, g.created_at, g.revoked_at,
       (SELECT max(r.received_at) FROM sensors s2 JOIN LATERAL (
            SELECT received_at FROM readings WHERE sensor_id = s2.id
            ORDER BY ts DESC LIMIT 1) r ON TRUE WHERE s2.gateway_id = g.id) AS last_seen
FROM gateways g JOIN organisations o ON o.id = g.facility_id
ORDER BY o.name, g.code
"""

ADMIN_SENSORS: Final = """
SELECT s.id, s.code, s.quantity, s.unit, g.code AS gateway, t.code AS tank, s.valid_min,
       s.valid_max
FROM sensors s JOIN gateways g ON g.id = s.gateway_id LEFT JOIN tanks t ON t.id = s.tank_id
ORDER BY g.code, s.code
"""

# Refill events found by the accounting (refill_events is filled by ensure_windows).
TANK_REFILLS: Final = """
SELECT started_at, ended_at, report_day, before_kg, after_kg, amount_kg
FROM refill_events WHERE tank_id = %(tank)s AND started_at >= %(since)s
ORDER BY started_at DESC
"""


# A department (SYT) or ministry health office, with its province's name.
DEPARTMENT: Final = """
SELECT o.id, o.code, o.name, o.kind, a.name AS province_name
FROM organisations o LEFT JOIN admin_units a ON a.code = o.province_code
WHERE o.id = %(id)s AND o.kind IN ('syt', 'ministry_office')
"""


async def department(conn: Any, org_id: int) -> dict[str, Any]:
    """The department `org_id` (SYT or ministry health office); 404 when there is none."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(DEPARTMENT, {"id": org_id})
        row = await cur.fetchone()
    if row is None:
        raise HTTPException(404, "not found")
    return dict(row)
