"""The coordination map's data: open requests where they are, and flows in flight (assignments
not yet delivered and deliveries on the road) from source to facility, in the caller's scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row

from api.scope import NATIONAL_ROLES, Principal


@dataclass(frozen=True, slots=True)
class MapRequest:
    """An open request where its facility is (no coordinates: lat and lon None)."""

    id: int
    facility_id: int
    code: str | None
    name: str | None
    province_code: str | None
    lat: float | None
    lon: float | None
    form: str
    amount_kg: float
    urgency: str
    state: str
    needed_by: datetime
    escalated: bool
    remaining_kg: float


@dataclass(frozen=True, slots=True)
class MapFlow:
    """An assignment not yet delivered, or a delivery on the road, from source to facility."""

    assignment_id: int
    delivery_id: int | None
    request_id: int
    state: str
    amount_kg: float
    source_id: int
    source_name: str | None
    source_kind: str
    from_lat: float | None
    from_lon: float | None
    facility_id: int
    facility_name: str | None
    to_lat: float | None
    to_lon: float | None


@dataclass(frozen=True, slots=True)
class MapData:
    """What the coordination map draws."""

    requests: list[MapRequest]
    flows: list[MapFlow]


_OPEN = """
SELECT r.id, r.facility_id, o.code, o.name, r.province_code, f.latitude AS lat,
       f.longitude AS lon, r.form, r.amount_kg, r.urgency, r.state, r.needed_by,
       r.escalated_at IS NOT NULL AS escalated,
       r.amount_kg - coalesce((SELECT sum(a.amount_kg) FROM assignments a WHERE a.request_id = r.id
           AND a.state IN ('pending', 'accepted', 'dispatched', 'delivered')), 0) AS remaining_kg
FROM support_requests r
JOIN organisations o ON o.id = r.facility_id
LEFT JOIN facilities f ON f.org_id = r.facility_id
WHERE r.state IN ('open', 'partly_assigned', 'assigned')
  AND (%(national)s OR r.facility_id = ANY(%(facilities)s::bigint[]))
ORDER BY r.id
"""
_FLOWS = """
SELECT a.id AS assignment_id, d.id AS delivery_id, a.request_id,
       coalesce(d.state, a.state) AS state, a.amount_kg,
       a.source_id, s.name AS source_name, a.source_kind,
       coalesce(sp.latitude, sf.latitude) AS from_lat,
       coalesce(sp.longitude, sf.longitude) AS from_lon,
       r.facility_id, o.name AS facility_name, f.latitude AS to_lat, f.longitude AS to_lon
FROM assignments a
JOIN support_requests r ON r.id = a.request_id
JOIN organisations s ON s.id = a.source_id
JOIN organisations o ON o.id = r.facility_id
LEFT JOIN suppliers sp ON sp.org_id = a.source_id
LEFT JOIN facilities sf ON sf.org_id = a.source_id
LEFT JOIN facilities f ON f.org_id = r.facility_id
LEFT JOIN deliveries d ON d.assignment_id = a.id
WHERE (a.state IN ('pending', 'accepted')
       OR (a.state = 'dispatched' AND d.state IN ('dispatched', 'in_transit')))
  AND (%(national)s OR r.facility_id = ANY(%(facilities)s::bigint[]))
ORDER BY a.id
"""


async def map_data(conn: AsyncConnection[Any], principal: Principal) -> MapData:
    """Open requests and flows in flight with their coordinates."""
    national = principal.role in NATIONAL_ROLES
    params = {"national": national, "facilities": sorted(principal.facility_ids or ())}
    async with conn.cursor(row_factory=class_row(MapRequest)) as cur:
        await cur.execute(_OPEN, params)
        requests = await cur.fetchall()
    async with conn.cursor(row_factory=class_row(MapFlow)) as fcur:
        await fcur.execute(_FLOWS, params)
        flows = await fcur.fetchall()
    return MapData(requests, flows)
