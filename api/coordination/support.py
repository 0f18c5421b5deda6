"""Support requests: a facility (or an SYT on its behalf) asks for oxygen by a time.

Urgency comes from the facility's live days of supply when the request is made. The request's
state follows its assignments: open → partly assigned → assigned → fulfilled (deliveries
confirmed), or cancelled. An SYT escalates to BYT what it cannot cover in its province.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Self

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.accounting.config import AccountingConfig
from api.accounting.stock import urgency_of
from api.audit import audit
from api.scope import NATIONAL_ROLES, Principal, Role

from .errors import CoordinationError, NotFound
from .live import facility_figures
from .quantities import AmountUnit, Form, checked_kg

logger = logging.getLogger(__name__)

OPEN_STATES = ("open", "partly_assigned")
CLOSED_STATES = ("fulfilled", "cancelled")
# Assignments that still count towards covering a request.
LIVE_ASSIGNMENTS = ("pending", "accepted", "dispatched", "delivered")
SLACK_KG = 0.5  # rounding of typed amounts


class AmountIn(BaseModel):
    """An amount as typed, with its unit (never guessed)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    value: float = Field(gt=0, le=1e9)
    unit: AmountUnit


class RequestIn(BaseModel):
    """A support request: how much of which form of oxygen, by when."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    form: Form = Form.LIQUID
    amount: AmountIn
    needed_by: AwareDatetime
    note: str | None = Field(default=None, max_length=2000)


class EscalateIn(BaseModel):
    """Why the SYT cannot cover the rest in its province."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=2000)


@dataclass(frozen=True, slots=True)
class SupportRequest:
    """A request with its facility and handling department, what is assigned (live parts) and
    confirmed delivered, and what remains to assign."""

    id: int
    facility_id: int
    parent_id: int
    province_code: str | None
    form: str
    amount_value: float
    amount_unit: str
    amount_kg: float
    needed_by: datetime
    days_of_supply: float | None
    urgency: str
    state: str
    note: str | None
    escalated_at: datetime | None
    escalated_by: str | None
    escalated_kg: float | None
    escalation_note: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    facility_code: str | None
    facility_name: str | None
    parent_name: str | None
    assigned_kg: float
    confirmed_kg: float
    parts: int
    remaining_kg: float
    escalated: bool

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Self:
        """From a row of SELECT_REQUESTS (columns it does not know are left out)."""
        values: dict[str, Any] = {
            **row,
            "remaining_kg": max(0.0, float(row["amount_kg"]) - float(row["assigned_kg"])),
            "escalated": row["escalated_at"] is not None,
        }
        return cls(**{f.name: values[f.name] for f in fields(cls)})


_FACILITY = """
SELECT o.id, o.parent_id, o.province_code FROM organisations o
WHERE o.id = %(id)s AND o.kind = 'facility'
"""
_INSERT = """
INSERT INTO support_requests (facility_id, parent_id, province_code, form, amount_value,
    amount_unit, amount_kg, needed_by, days_of_supply, urgency, note, created_by, created_at,
    updated_at)
VALUES (%(facility)s, %(parent)s, %(province)s, %(form)s, %(value)s, %(unit)s, %(kg)s,
    %(needed_by)s, %(dos)s, %(urgency)s, %(note)s, %(by)s, %(now)s, %(now)s)
RETURNING id
"""
# One request with what is assigned (live assignments) and confirmed delivered.
SELECT_REQUESTS = """
SELECT r.*, o.code AS facility_code, o.name AS facility_name,
       p.name AS parent_name,
       coalesce(a.assigned_kg, 0) AS assigned_kg,
       coalesce(d.confirmed_kg, 0) AS confirmed_kg,
       coalesce(a.parts, 0) AS parts
FROM support_requests r
JOIN organisations o ON o.id = r.facility_id
JOIN organisations p ON p.id = r.parent_id
LEFT JOIN LATERAL (
    SELECT sum(x.amount_kg) AS assigned_kg, count(*) AS parts FROM assignments x
    WHERE x.request_id = r.id AND x.state = ANY(%(live)s)
) a ON TRUE
LEFT JOIN LATERAL (
    SELECT sum(coalesce(dl.received_kg, dl.amount_kg)) AS confirmed_kg
    FROM deliveries dl JOIN assignments x ON x.id = dl.assignment_id
    WHERE x.request_id = r.id AND dl.state = 'confirmed'
) d ON TRUE
WHERE (%(id)s::bigint IS NULL OR r.id = %(id)s)
  AND (%(scope_national)s OR r.facility_id = ANY(%(scope_facilities)s::bigint[]))
  AND (%(facility)s::bigint IS NULL OR r.facility_id = %(facility)s)
  AND (%(states)s::text[] IS NULL OR r.state = ANY(%(states)s))
  AND (%(escalated)s::boolean IS NULL OR (r.escalated_at IS NOT NULL) = %(escalated)s)
  AND (%(province)s::text IS NULL OR r.province_code = %(province)s)
ORDER BY CASE r.urgency WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'unknown' THEN 2
         ELSE 3 END, r.needed_by, r.id
LIMIT %(limit)s
"""
_SET_STATE = """
UPDATE support_requests SET state = %(state)s, updated_at = %(now)s WHERE id = %(id)s
"""
_ESCALATE = """
UPDATE support_requests SET escalated_at = %(now)s, escalated_by = %(by)s,
    escalated_kg = %(kg)s, escalation_note = %(note)s, updated_at = %(now)s
WHERE id = %(id)s
"""


def _scope(principal: Principal) -> dict[str, Any]:
    return {
        "scope_national": principal.facility_ids is None,
        "scope_facilities": sorted(principal.facility_ids or ()),
    }


async def fetch_requests(
    conn: AsyncConnection[Any],
    principal: Principal,
    *,
    request_id: int | None = None,
    facility_id: int | None = None,
    states: list[str] | None = None,
    escalated: bool | None = None,
    province: str | None = None,
    limit: int = 500,
) -> list[SupportRequest]:
    """Requests the principal may see (its facilities; national: all), most urgent first."""
    params = {
        **_scope(principal),
        "live": list(LIVE_ASSIGNMENTS),
        "id": request_id,
        "facility": facility_id,
        "states": states,
        "escalated": escalated,
        "province": province,
        "limit": max(1, min(limit, 5000)),
    }
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(SELECT_REQUESTS, params)
        return [SupportRequest.of(r) for r in await cur.fetchall()]


async def get_request(
    conn: AsyncConnection[Any], principal: Principal, request_id: int
) -> SupportRequest:
    """One request inside the principal's scope (NotFound otherwise)."""
    rows = await fetch_requests(conn, principal, request_id=request_id)
    if not rows:
        raise NotFound()
    return rows[0]


async def create_request(
    conn: AsyncConnection[Any],
    principal: Principal,
    facility_id: int,
    body: RequestIn,
    *,
    cfg: AccountingConfig,
    now: datetime,
) -> SupportRequest:
    """Store a request with the urgency its facility's live days of supply give; audited."""
    cur = await conn.execute(_FACILITY, {"id": facility_id})
    fac = await cur.fetchone()
    if fac is None:
        raise CoordinationError("coord.error.not_facility", field="facility_id", status=404)
    kg = checked_kg(body.amount.value, body.amount.unit, body.form, cfg.reference, "amount")
    if body.needed_by <= now:
        raise CoordinationError("coord.error.needed_by_past", field="needed_by")
    figs = (await facility_figures(conn, [facility_id], cfg, now)).get(facility_id)
    dos = figs.days_of_supply if figs else None
    urgency = urgency_of(dos, cfg.needs_more_days)
    values = {
        "facility": facility_id,
        "parent": fac[1],
        "province": fac[2],
        "form": body.form.value,
        "value": body.amount.value,
        "unit": body.amount.unit.value,
        "kg": kg,
        "needed_by": body.needed_by,
        "dos": dos,
        "urgency": urgency.value,
        "note": body.note,
        "by": principal.username,
        "now": now,
    }
    async with conn.transaction():
        cur = await conn.execute(_INSERT, values)
        row = await cur.fetchone()
        assert row is not None
        rid = int(row[0])
        await audit(
            conn, principal, "create", "support_request", rid, None, values, org_id=facility_id
        )
    logger.info(
        "support request %s for facility %s: %.0f kg, urgency %s", rid, facility_id, kg, urgency
    )
    return await get_request(conn, principal, rid)


async def refresh_state(conn: AsyncConnection[Any], request_id: int, now: datetime) -> str:
    """Recompute a request's state from its assignments and confirmed deliveries."""
    cur = await conn.execute(
        """
        SELECT r.state, r.amount_kg,
          coalesce((SELECT sum(amount_kg) FROM assignments
                    WHERE request_id = r.id AND state = ANY(%(live)s)), 0),
          coalesce((SELECT sum(coalesce(d.received_kg, d.amount_kg)) FROM deliveries d
                    JOIN assignments a ON a.id = d.assignment_id
                    WHERE a.request_id = r.id AND d.state = 'confirmed'), 0)
        FROM support_requests r WHERE r.id = %(id)s
        """,
        {"id": request_id, "live": list(LIVE_ASSIGNMENTS)},
    )
    row = await cur.fetchone()
    assert row is not None
    old, amount, assigned, confirmed = str(row[0]), float(row[1]), float(row[2]), float(row[3])
    if old == "cancelled":
        return old
    if confirmed >= amount - SLACK_KG:
        new = "fulfilled"
    elif assigned >= amount - SLACK_KG:
        new = "assigned"
    elif assigned > 0:
        new = "partly_assigned"
    else:
        new = "open"
    if new != old:
        await conn.execute(_SET_STATE, {"state": new, "now": now, "id": request_id})
        logger.info("support request %s: %s → %s", request_id, old, new)
    return new


def _may_coordinate(principal: Principal, request: SupportRequest) -> bool:
    if principal.role in NATIONAL_ROLES:
        return True
    return principal.role == Role.SYT and principal.can_see_facility(request.facility_id)


async def escalate(
    conn: AsyncConnection[Any],
    principal: Principal,
    request_id: int,
    body: EscalateIn,
    now: datetime,
) -> SupportRequest:
    """SYT → BYT: hand the uncovered rest of a request to the Ministry; audited."""
    req = await get_request(conn, principal, request_id)
    if not _may_coordinate(principal, req):
        raise NotFound()
    if req.state in CLOSED_STATES:
        raise CoordinationError("coord.error.closed_request", status=409)
    if req.escalated:
        raise CoordinationError("coord.error.already_escalated", status=409)
    rest = req.remaining_kg
    if rest <= SLACK_KG:
        raise CoordinationError("coord.error.nothing_to_escalate", status=409)
    after = {"escalated_kg": rest, "note": body.note, "by": principal.username}
    async with conn.transaction():
        await conn.execute(
            _ESCALATE,
            {"now": now, "by": principal.username, "kg": rest, "note": body.note, "id": request_id},
        )
        await audit(
            conn,
            principal,
            "escalate",
            "support_request",
            request_id,
            {"escalated": False},
            after,
            org_id=req.facility_id,
        )
    logger.info("support request %s escalated to BYT: %.0f kg uncovered", request_id, rest)
    return await get_request(conn, principal, request_id)


async def cancel(
    conn: AsyncConnection[Any], principal: Principal, request_id: int, now: datetime
) -> SupportRequest:
    """Withdraw a request (its facility, its SYT or BYT); pending assignments are cancelled."""
    req = await get_request(conn, principal, request_id)
    if req.state in CLOSED_STATES:
        raise CoordinationError("coord.error.closed_request", status=409)
    async with conn.transaction():
        await conn.execute(
            "UPDATE assignments SET state = 'cancelled' WHERE request_id = %(id)s "
            "AND state IN ('pending', 'accepted')",
            {"id": request_id},
        )
        await conn.execute(_SET_STATE, {"state": "cancelled", "now": now, "id": request_id})
        await audit(
            conn,
            principal,
            "cancel",
            "support_request",
            request_id,
            {"state": req.state},
            {"state": "cancelled"},
            org_id=req.facility_id,
        )
    logger.info("support request %s cancelled by %s", request_id, principal.username)
    return await get_request(conn, principal, request_id)
