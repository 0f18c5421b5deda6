"""The facility directory (every logged-in role, supplier staff included) and scoped device
listings: the smallest endpoints that exercise each kind of scope end to end."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TypeVar

from fastapi import APIRouter, HTTPException, status
from psycopg.rows import class_row
from pydantic import BaseModel

from api.deps import DbDep, PrincipalDep
from api.policy import Scope, policy
from api.scope import ALL_ROLES, SCOPE_PREDICATE, Role, scope_params

router = APIRouter(prefix="/api")
M = TypeVar("M", bound=BaseModel)


class FacilityEntry(BaseModel):
    """A facility as listed in the directory (names, places, contacts)."""

    id: int
    code: str
    name: str
    province_code: str | None
    parent_code: str | None
    address: str | None
    latitude: float | None
    longitude: float | None
    phone: str | None


class GatewayOut(BaseModel):
    """A gateway of a facility."""

    id: int
    code: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None
    mqtt_username: str | None
    mqtt_revoked_at: datetime | None


_DIRECTORY = """
SELECT o.id, o.code, o.name, o.province_code, p.code AS parent_code, f.address, f.latitude,
       f.longitude,
       (SELECT c.phone FROM contacts c WHERE c.org_id = o.id
        ORDER BY c.is_primary DESC, c.id LIMIT 1) AS phone
FROM organisations o
JOIN facilities f ON f.org_id = o.id
LEFT JOIN organisations p ON p.id = o.parent_id
WHERE o.kind = 'facility'
  AND (%(province)s::text IS NULL OR o.province_code = %(province)s)
ORDER BY o.province_code, o.name
"""

_UNDER_PARENT = (
    """
SELECT o.id, o.code, o.name, o.province_code, p.code AS parent_code, f.address, f.latitude,
       f.longitude, NULL::text AS phone
FROM organisations o
JOIN facilities f ON f.org_id = o.id
JOIN organisations p ON p.id = o.parent_id
WHERE o.kind = 'facility' AND o.parent_id = %(org_id)s AND """
    + SCOPE_PREDICATE.format(col="o.id")
    + """
ORDER BY o.name
"""
)

_GATEWAYS = (
    """
SELECT g.id, g.code, g.name, g.created_at, g.revoked_at,
       m.username AS mqtt_username, m.revoked_at AS mqtt_revoked_at
FROM gateways g LEFT JOIN mqtt_accounts m ON m.gateway_id = g.id
WHERE g.facility_id = %(facility_id)s AND """
    + SCOPE_PREDICATE.format(col="g.facility_id")
    + """
ORDER BY g.code
"""
)


async def _rows(conn: DbDep, model: type[M], query: str, params: Mapping[str, object]) -> list[M]:
    """The rows of `query` as `model`s (its fields named as the query's columns)."""
    async with conn.cursor(row_factory=class_row(model)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


@router.get(
    "/facilities",
    response_model=list[FacilityEntry],
    dependencies=[policy(roles=ALL_ROLES, scope=Scope.NATIONAL)],
)
async def facility_directory(conn: DbDep, province: str | None = None) -> list[FacilityEntry]:
    """The facility directory (read-only for every role)."""
    return await _rows(conn, FacilityEntry, _DIRECTORY, {"province": province})


@router.get(
    "/orgs/{org_id}/facilities",
    response_model=list[FacilityEntry],
    dependencies=[policy(roles=[Role.ADMIN, Role.BYT, Role.SYT], scope=Scope.PROVINCE)],
)
async def facilities_of_parent(org_id: int, conn: DbDep, me: PrincipalDep) -> list[FacilityEntry]:
    """The facilities reporting to one SYT / ministry health office."""
    return await _rows(conn, FacilityEntry, _UNDER_PARENT, {"org_id": org_id, **scope_params(me)})


@router.get(
    "/facilities/{facility_id}/gateways",
    response_model=list[GatewayOut],
    dependencies=[
        policy(
            roles=[Role.ADMIN, Role.BYT, Role.SYT, Role.FACILITY, Role.ENGINEER],
            scope=Scope.FACILITY,
        )
    ],
)
async def facility_gateways(facility_id: int, conn: DbDep, me: PrincipalDep) -> list[GatewayOut]:
    """The gateways of a facility and the state of their MQTT credentials."""
    params = {"facility_id": facility_id, **scope_params(me)}
    return await _rows(conn, GatewayOut, _GATEWAYS, params)


class SupplierOut(BaseModel):
    """A supplier's own record."""

    id: int
    code: str
    name: str
    supplier_kind: str
    capacity_normal_tpd: float | None
    capacity_full_tpd: float | None


@router.get(
    "/suppliers/{supplier_id}",
    response_model=SupplierOut,
    dependencies=[policy(roles=[Role.ADMIN, Role.BYT, Role.SUPPLIER], scope=Scope.SUPPLIER)],
)
async def supplier(supplier_id: int, conn: DbDep) -> SupplierOut:
    """One supplier's record (its own staff, BYT and administrators)."""
    rows = await _rows(
        conn,
        SupplierOut,
        "SELECT o.id, o.code, o.name, s.supplier_kind, s.capacity_normal_tpd::float8 "
        "AS capacity_normal_tpd, s.capacity_full_tpd::float8 AS capacity_full_tpd "
        "FROM organisations o JOIN suppliers s ON s.org_id = o.id WHERE o.id = %(id)s",
        {"id": supplier_id},
    )
    if not rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    return rows[0]
