"""Assignments: an SYT (within its province) or BYT (between provinces) assigns a request, in
whole or in parts, to suppliers, filling stations or a facility with surplus; the source accepts
or declines with a reason, then dispatches (which opens a delivery)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, LiteralString, Self

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

from api.accounting.config import AccountingConfig
from api.audit import audit
from api.scope import NATIONAL_ROLES, Principal, Role

from .errors import CoordinationError, NotFound
from .quantities import Form, checked_kg
from .support import (
    CLOSED_STATES,
    SLACK_KG,
    AmountIn,
    SupportRequest,
    _may_coordinate,
    get_request,
    refresh_state,
)

logger = logging.getLogger(__name__)


class PartIn(BaseModel):
    """One part of a request given to one source."""

    model_config = ConfigDict(extra="forbid")

    source_id: int = Field(ge=1, le=2**62)
    amount: AmountIn


class AssignIn(BaseModel):
    """The parts of an assignment (a suggestion's shipments, or chosen by hand)."""

    model_config = ConfigDict(extra="forbid")

    parts: list[PartIn] = Field(min_length=1, max_length=50)
    note: str | None = Field(default=None, max_length=2000)
    from_suggestion: bool = False


class DeclineIn(BaseModel):
    """Why the source cannot supply it."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(max_length=2000)


@dataclass(frozen=True, slots=True)
class Assignment:
    """A part of a request given to a source, with the source, the request's facility, form,
    deadline and urgency, and the delivery it opened (if any)."""

    id: int
    request_id: int
    source_id: int
    source_kind: str
    amount_kg: float
    level: str
    state: str
    from_suggestion: bool
    note: str | None
    assigned_by: str
    assigned_at: datetime
    responded_by: str | None
    responded_at: datetime | None
    decline_reason: str | None
    source_code: str | None
    source_name: str | None
    source_province: str | None
    facility_id: int
    facility_code: str | None
    facility_name: str | None
    facility_province: str | None
    form: str
    needed_by: datetime
    urgency: str
    delivery_id: int | None
    delivery_state: str | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Self:
        """From a row of SELECT_ASSIGNMENTS (columns it does not know are left out)."""
        return cls(**{f.name: row[f.name] for f in fields(cls)})


_SOURCE = "SELECT id, kind, province_code FROM organisations WHERE id = %(id)s"
_PARENT_PROVINCE = "SELECT province_code FROM organisations WHERE id = %(id)s"
_LOCK_REQUEST = "SELECT id FROM support_requests WHERE id = %(id)s FOR UPDATE"
_RESPOND = """
UPDATE assignments SET state = %(s)s, responded_by = %(by)s, responded_at = %(now)s,
    decline_reason = %(reason)s
WHERE id = %(id)s AND state = 'pending'
"""
_INSERT = """
INSERT INTO assignments (request_id, source_id, source_kind, amount_kg, level, from_suggestion,
    note, assigned_by, assigned_at)
VALUES (%(request)s, %(source)s, %(kind)s, %(kg)s, %(level)s, %(suggested)s, %(note)s, %(by)s,
    %(now)s)
RETURNING id
"""
SELECT_ASSIGNMENTS = """
SELECT a.*, s.code AS source_code, s.name AS source_name, s.province_code AS source_province,
       r.facility_id, f.code AS facility_code, f.name AS facility_name,
       r.province_code AS facility_province, r.form, r.needed_by, r.urgency,
       d.id AS delivery_id, d.state AS delivery_state
FROM assignments a
JOIN organisations s ON s.id = a.source_id
JOIN support_requests r ON r.id = a.request_id
JOIN organisations f ON f.id = r.facility_id
LEFT JOIN deliveries d ON d.assignment_id = a.id
WHERE (%(id)s::bigint IS NULL OR a.id = %(id)s)
  AND (%(request)s::bigint IS NULL OR a.request_id = %(request)s)
  AND (%(source)s::bigint IS NULL OR a.source_id = %(source)s)
  AND (%(states)s::text[] IS NULL OR a.state = ANY(%(states)s))
  AND (%(scope_national)s
       OR r.facility_id = ANY(%(scope_facilities)s::bigint[])
       OR a.source_id = %(scope_org)s)
ORDER BY a.assigned_at DESC, a.id DESC
LIMIT %(limit)s
"""


def _scope(principal: Principal) -> dict[str, Any]:
    # Supplier staff see the assignments given to their organisation; facility staff those of
    # their requests and those where their facility is the source; an SYT its facilities'.
    national = principal.role in NATIONAL_ROLES
    return {
        "scope_national": national,
        "scope_facilities": [] if national else sorted(principal.facility_ids or ()),
        "scope_org": principal.org_id if principal.role in (Role.SUPPLIER, Role.FACILITY) else None,
    }


async def fetch_visible(
    conn: AsyncConnection[Any],
    principal: Principal,
    query: LiteralString,
    filters: dict[str, Any],
    limit: int,
) -> list[dict[str, Any]]:
    """Rows of a list query (assignments, deliveries) within the principal's scope, capped."""
    params = {**_scope(principal), **filters, "limit": max(1, min(limit, 5000))}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return list(await cur.fetchall())


async def fetch_assignments(
    conn: AsyncConnection[Any],
    principal: Principal,
    *,
    assignment_id: int | None = None,
    request_id: int | None = None,
    source_id: int | None = None,
    states: list[str] | None = None,
    limit: int = 500,
) -> list[Assignment]:
    """Assignments the principal may see, newest first."""
    filters = {"id": assignment_id, "request": request_id, "source": source_id, "states": states}
    rows = await fetch_visible(conn, principal, SELECT_ASSIGNMENTS, filters, limit)
    return [Assignment.of(r) for r in rows]


async def _check_source(
    conn: AsyncConnection[Any],
    principal: Principal,
    request: SupportRequest,
    source_id: int,
    field: str,
) -> str:
    """The source's kind, after the province rule (an SYT assigns within its province)."""
    cur = await conn.execute(_SOURCE, {"id": source_id})
    row = await cur.fetchone()
    if row is None or row[1] not in ("supplier", "facility"):
        raise CoordinationError("coord.error.source_unknown", field=field)
    kind, province = str(row[1]), row[2]
    if kind == "facility" and source_id == request.facility_id:
        raise CoordinationError("coord.error.source_is_recipient", field=field)
    if principal.role == Role.SYT:
        cur = await conn.execute(_PARENT_PROVINCE, {"id": principal.org_id})
        own = await cur.fetchone()
        own_province = own[0] if own else None
        inside = (
            principal.can_see_facility(source_id)
            if kind == "facility"
            else own_province is not None and province == own_province
        )
        if not inside:
            raise CoordinationError("coord.error.source_out_of_province", field=field, status=403)
    return kind


async def assign(
    conn: AsyncConnection[Any],
    principal: Principal,
    request_id: int,
    body: AssignIn,
    *,
    cfg: AccountingConfig,
    now: datetime,
) -> list[Assignment]:
    """Assign a request in whole or in parts; each part audited. SYT: its province only."""
    req = await get_request(conn, principal, request_id)
    if not _may_coordinate(principal, req):
        raise NotFound()
    if req.state in CLOSED_STATES:
        raise CoordinationError("coord.error.closed_request", status=409)
    form = Form(req.form)
    rows = []
    total = 0.0
    for i, part in enumerate(body.parts):
        field = f"parts.{i}"
        kind = await _check_source(conn, principal, req, part.source_id, f"{field}.source_id")
        kg = checked_kg(part.amount.value, part.amount.unit, form, cfg.reference, f"{field}.amount")
        total += kg
        rows.append((part.source_id, kind, kg))
    if total > req.remaining_kg + SLACK_KG:
        raise CoordinationError(
            "coord.error.over_assigned", field="parts", remaining_kg=round(req.remaining_kg, 1)
        )
    level = "province" if principal.role == Role.SYT else "national"
    ids = []
    async with conn.transaction():
        # Two coordinators assigning the same request at once: the second waits, then sees
        # the first one's parts in the remaining amount.
        await conn.execute(_LOCK_REQUEST, {"id": request_id})
        fresh = await get_request(conn, principal, request_id)
        if fresh.state in CLOSED_STATES:
            raise CoordinationError("coord.error.closed_request", status=409)
        if total > fresh.remaining_kg + SLACK_KG:
            raise CoordinationError(
                "coord.error.over_assigned",
                field="parts",
                remaining_kg=round(fresh.remaining_kg, 1),
            )
        for source_id, kind, kg in rows:
            values = {
                "request": request_id,
                "source": source_id,
                "kind": kind,
                "kg": kg,
                "level": level,
                "suggested": body.from_suggestion,
                "note": body.note,
                "by": principal.username,
                "now": now,
            }
            cur = await conn.execute(_INSERT, values)
            got = await cur.fetchone()
            assert got is not None
            ids.append(int(got[0]))
            await audit(
                conn, principal, "assign", "assignment", got[0], None, values, org_id=source_id
            )
        await refresh_state(conn, request_id, now)
    logger.info(
        "request %s assigned by %s in %d part(s), %.0f kg",
        request_id,
        principal.username,
        len(ids),
        total,
    )
    out = []
    for aid in ids:
        out.extend(await fetch_assignments(conn, principal, assignment_id=aid))
    return out


async def _own_assignment(
    conn: AsyncConnection[Any], principal: Principal, assignment_id: int
) -> Assignment:
    """An assignment the principal answers for (its organisation is the source)."""
    rows = await fetch_assignments(conn, principal, assignment_id=assignment_id)
    if not rows:
        raise NotFound()
    a = rows[0]
    if principal.role != Role.ADMIN and a.source_id != principal.org_id:
        raise NotFound()
    return a


async def respond(
    conn: AsyncConnection[Any],
    principal: Principal,
    assignment_id: int,
    *,
    accept: bool,
    reason: str | None,
    now: datetime,
) -> Assignment:
    """The source accepts, or declines with a reason (the request reopens for that part)."""
    a = await _own_assignment(conn, principal, assignment_id)
    if a.state != "pending":
        raise CoordinationError("coord.error.state", status=409, state=a.state)
    if not accept and not (reason or "").strip():
        raise CoordinationError("coord.error.reason_required", field="reason")
    new = "accepted" if accept else "declined"
    async with conn.transaction():
        cur = await conn.execute(
            _RESPOND,
            {
                "s": new,
                "by": principal.username,
                "now": now,
                "reason": None if accept else (reason or "").strip(),
                "id": assignment_id,
            },
        )
        if cur.rowcount != 1:  # answered meanwhile by a colleague
            raise CoordinationError("coord.error.state", status=409, state="answered")
        await audit(
            conn,
            principal,
            "accept" if accept else "decline",
            "assignment",
            assignment_id,
            {"state": a.state},
            {"state": new, "reason": None if accept else reason},
            org_id=int(a.source_id),
        )
        await refresh_state(conn, int(a.request_id), now)
    logger.info("assignment %s %s by %s", assignment_id, new, principal.username)
    return (await fetch_assignments(conn, principal, assignment_id=assignment_id))[0]
