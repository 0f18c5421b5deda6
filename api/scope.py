"""Roles, the logged-in principal and its data scope (which facilities it may see).

"Who belongs where" (shared MISSION.md): BYT is national; an SYT officer sees the facilities whose
reporting parent is its organisation; facility staff see their own facility; supplier staff see
their own supplier and the (read-only) facility directory; engineers see their assigned
facilities or, for platform engineers, everything; administrators are national.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from psycopg import AsyncConnection, sql


class Role(StrEnum):
    """The six kinds of people who use the platform."""

    ADMIN = "admin"
    BYT = "byt"
    SYT = "syt"
    FACILITY = "facility"
    SUPPLIER = "supplier"
    ENGINEER = "engineer"


ALL_ROLES: frozenset[Role] = frozenset(Role)
NATIONAL_ROLES: frozenset[Role] = frozenset({Role.ADMIN, Role.BYT})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, with the scope resolved from the database at authentication time."""

    user_id: int
    username: str
    role: Role
    org_id: int | None
    facility_ids: frozenset[int] | None  # None means national
    display_name: str
    locale: str
    # Reporting parents (SYT / ministry health office) this principal may act for; None: all.
    parent_ids: frozenset[int] | None = frozenset()
    must_change_password: bool = False
    via_token: bool = False

    @property
    def is_national(self) -> bool:
        """True when the principal sees every facility."""
        return self.facility_ids is None

    def can_see_facility(self, facility_id: int) -> bool:
        """Whether the facility (organisation id) is inside this principal's scope."""
        return self.facility_ids is None or facility_id in self.facility_ids

    def can_see_parent(self, org_id: int) -> bool:
        """Whether the reporting parent (SYT / ministry office) is inside this scope."""
        return self.parent_ids is None or org_id in self.parent_ids

    def can_see_supplier(self, org_id: int) -> bool:
        """Whether the supplier's own figures are inside this scope."""
        if self.role == Role.SUPPLIER:
            return self.org_id == org_id
        return self.role in NATIONAL_ROLES or (self.role == Role.ENGINEER and self.is_national)


# --------------------------------------------------------------------------------------------
# Data-layer helpers: every query that lists facility data filters with one of these.


def scope_params(principal: Principal) -> dict[str, Any]:
    """Parameters for `(%(scope_national)s OR <col> = ANY(%(scope_facilities)s))` in named SQL."""
    return {
        "scope_national": principal.facility_ids is None,
        "scope_facilities": sorted(principal.facility_ids or ()),
    }


SCOPE_PREDICATE = "(%(scope_national)s OR {col} = ANY(%(scope_facilities)s::bigint[]))"


def visible_facilities_sql(
    principal: Principal, column: str = "facility_id"
) -> tuple[sql.Composable, dict[str, Any]]:
    """A safe SQL predicate limiting `column` (e.g. "f.org_id") to visible facilities, + params."""
    ident = sql.Identifier(*column.split("."))
    if principal.facility_ids is None:
        return sql.SQL("TRUE"), {}
    pred = sql.SQL("{} = ANY(%(scope_facilities)s::bigint[])").format(ident)
    return pred, {"scope_facilities": sorted(principal.facility_ids)}


def visible_facility_ids(principal: Principal) -> list[int] | None:
    """The visible facility ids, or None for national scope."""
    return None if principal.facility_ids is None else sorted(principal.facility_ids)


# --------------------------------------------------------------------------------------------
# Resolving the scope from the registry.

_FACILITIES_UNDER_PARENT = """
SELECT id FROM organisations WHERE kind = 'facility' AND parent_id = %(org)s
"""
_ENGINEER_FACILITIES = "SELECT facility_id FROM user_facilities WHERE user_id = %(uid)s"


async def _ids(conn: AsyncConnection[Any], query: str, params: dict[str, Any]) -> frozenset[int]:
    cur = await conn.execute(query, params)
    return frozenset(int(r[0]) for r in await cur.fetchall())


async def resolve_scope(
    conn: AsyncConnection[Any],
    *,
    user_id: int,
    role: Role,
    org_id: int | None,
    national: bool,
) -> tuple[frozenset[int] | None, frozenset[int] | None]:
    """(facility_ids, parent_ids) for a user; None means national."""
    if role in NATIONAL_ROLES or (role == Role.ENGINEER and national):
        return None, None
    if role == Role.SYT and org_id is not None:
        return await _ids(conn, _FACILITIES_UNDER_PARENT, {"org": org_id}), frozenset({org_id})
    if role == Role.FACILITY and org_id is not None:
        return frozenset({org_id}), frozenset()
    if role == Role.ENGINEER:
        return await _ids(conn, _ENGINEER_FACILITIES, {"uid": user_id}), frozenset()
    # Supplier staff: no facility data, only the directory and their own organisation.
    return frozenset(), frozenset()


def roles(*names: Role | str) -> frozenset[Role]:
    """A frozen set of roles from names."""
    return frozenset(Role(n) for n in names)


def role_set(items: Iterable[Role | str]) -> frozenset[Role]:
    """A frozen set of roles from any iterable of names."""
    return frozenset(Role(n) for n in items)
