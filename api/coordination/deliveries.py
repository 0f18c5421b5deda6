"""Deliveries: dispatched → in transit → delivered → confirmed by the facility.

A delivery opens when a source dispatches an assignment, or when a supplier's daily report lists
a delivery to a facility (the report's lines feed the same records: a line is linked to the
open delivery of that supplier to that facility, else it becomes one). Delivered deliveries are
matched with the refills the facility's tank sensors saw (see `matching`).

Reading deliveries never writes: taking in supplier-report lines and re-matching the deliveries
still waiting for their refill is the periodic job's work (`api.coordination.service`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Self

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.accounting.config import AccountingConfig
from api.accounting.windows import window
from api.audit import audit
from api.scope import Principal, Role

from .assignments import _own_assignment, fetch_visible
from .errors import CoordinationError, NotFound
from .matching import AFTER_DELIVERY, BEFORE_DISPATCH, match_delivery, tolerance_kg
from .messages import message
from .quantities import CYLINDER_NM3
from .support import AmountIn, refresh_state

logger = logging.getLogger(__name__)


MAX_PAST = timedelta(days=90)
CLOCK_SKEW = timedelta(minutes=10)


def checked_time(at: datetime | None, now: datetime, field: str) -> datetime:
    """The time an event happened (now when not given): within the last 90 days, not ahead."""
    if at is None:
        return now
    if not (now - MAX_PAST <= at <= now + CLOCK_SKEW):
        raise CoordinationError("coord.error.time_range", field=field)
    return at


class DeliveryState(StrEnum):
    """Where a delivery is."""

    DISPATCHED = "dispatched"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    CONFIRMED = "confirmed"


ORDER = [DeliveryState.DISPATCHED, DeliveryState.IN_TRANSIT, DeliveryState.DELIVERED]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery as listed: its record, its source and facility, the request it serves."""

    id: int
    assignment_id: int | None
    supplier_report_id: int | None
    report_day: date | None
    source_id: int
    facility_id: int
    form: str
    amount_kg: float
    gas_nm3: float
    cylinders: int
    state: str
    dispatched_at: datetime | None
    in_transit_at: datetime | None
    delivered_at: datetime | None
    confirmed_at: datetime | None
    confirmed_by: str | None
    received_kg: float | None
    expected_from: datetime | None
    expected_to: datetime | None
    match_state: str
    matched_kg: float | None
    matched_refills: list[dict[str, Any]]  # as matching stored them: [{tank_id, started_at, kg}]
    match_note: str | None
    matched_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    source_code: str | None
    source_name: str | None
    facility_code: str | None
    facility_name: str | None
    facility_province: str | None
    request_id: int | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Self:
        """From a row of SELECT_DELIVERIES (columns it does not know are left out)."""
        return cls(**{f.name: row[f.name] for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class DeliveryView(Delivery):
    """A delivery with the telemetry cross-check's verdict as a message in the reader's
    language (`match`, None while unchecked) and whether it is a mismatch."""

    match: dict[str, Any] | None
    mismatch: bool


class DispatchIn(BaseModel):
    """The source sends (part of) an accepted assignment on its way."""

    model_config = ConfigDict(extra="forbid")

    amount: AmountIn | None = None  # default: the assignment's amount
    at: AwareDatetime | None = None


class AdvanceIn(BaseModel):
    """The source moves its delivery on: in transit, then delivered."""

    model_config = ConfigDict(extra="forbid")

    state: DeliveryState
    at: AwareDatetime | None = None


class ConfirmIn(BaseModel):
    """The facility confirms receipt, optionally with the amount it counted."""

    model_config = ConfigDict(extra="forbid")

    received: AmountIn | None = None
    at: AwareDatetime | None = None
    note: str | None = Field(default=None, max_length=2000)


_INSERT_FROM_ASSIGNMENT = """
INSERT INTO deliveries (assignment_id, source_id, facility_id, form, amount_kg, gas_nm3, cylinders,
    state, dispatched_at, expected_from, created_by, created_at, updated_at)
VALUES (%(assignment)s, %(source)s, %(facility)s, %(form)s, %(kg)s, %(nm3)s, %(cyl)s, 'dispatched',
    %(at)s, %(from)s, %(by)s, %(now)s, %(now)s)
RETURNING id
"""
SELECT_DELIVERIES = """
SELECT d.*, s.code AS source_code, s.name AS source_name,
       f.code AS facility_code, f.name AS facility_name, f.province_code AS facility_province,
       a.request_id
FROM deliveries d
JOIN organisations s ON s.id = d.source_id
JOIN organisations f ON f.id = d.facility_id
LEFT JOIN assignments a ON a.id = d.assignment_id
WHERE (%(id)s::bigint IS NULL OR d.id = %(id)s)
  AND (%(facility)s::bigint IS NULL OR d.facility_id = %(facility)s)
  AND (%(source)s::bigint IS NULL OR d.source_id = %(source)s)
  AND (%(states)s::text[] IS NULL OR d.state = ANY(%(states)s))
  AND (%(match)s::text[] IS NULL OR d.match_state = ANY(%(match)s))
  AND (%(scope_national)s
       OR d.facility_id = ANY(%(scope_facilities)s::bigint[])
       OR d.source_id = %(scope_org)s)
ORDER BY coalesce(d.delivered_at, d.dispatched_at, d.created_at) DESC, d.id DESC
LIMIT %(limit)s
"""

# Supplier-report lines not yet in `deliveries`: the report's day, supplier and amounts.
_UNSYNCED_LINES = """
SELECT sr.id AS report_id, sr.report_day, sr.supplier_id, sd.facility_id, sd.liquid_kg,
       sd.gas_nm3, sd.cylinders
FROM supplier_deliveries sd
JOIN supplier_reports sr ON sr.id = sd.report_id
WHERE NOT EXISTS (SELECT 1 FROM deliveries d
                  WHERE d.supplier_report_id = sd.report_id AND d.facility_id = sd.facility_id)
  AND (%(supplier)s::bigint IS NULL OR sr.supplier_id = %(supplier)s)
ORDER BY sr.report_day, sr.id, sd.facility_id
"""
# A line whose amounts changed in a later revision of its report.
_CHANGED_LINES = """
UPDATE deliveries d SET amount_kg = sd.liquid_kg + sd.gas_nm3 * %(kg_per_nm3)s
                                    + sd.cylinders * %(cyl_kg)s,
       gas_nm3 = sd.gas_nm3, cylinders = sd.cylinders, match_state = 'pending',
       updated_at = %(now)s
FROM supplier_deliveries sd
WHERE d.supplier_report_id = sd.report_id AND d.facility_id = sd.facility_id
  AND d.assignment_id IS NULL
  AND (abs(d.amount_kg - (sd.liquid_kg + sd.gas_nm3 * %(kg_per_nm3)s
                          + sd.cylinders * %(cyl_kg)s)) > 0.01
       OR d.cylinders <> sd.cylinders)
RETURNING d.id
"""
# Lines removed by a later revision of their report (never a confirmed delivery).
_VANISHED = """
DELETE FROM deliveries d
WHERE d.supplier_report_id IS NOT NULL AND d.assignment_id IS NULL AND d.state <> 'confirmed'
  AND NOT EXISTS (SELECT 1 FROM supplier_deliveries sd
                  WHERE sd.report_id = d.supplier_report_id AND sd.facility_id = d.facility_id)
RETURNING d.id, d.facility_id
"""
# An open delivery of that supplier to that facility the report line may describe.
_LINKABLE = """
SELECT id FROM deliveries
WHERE source_id = %(supplier)s AND facility_id = %(facility)s AND supplier_report_id IS NULL
  AND assignment_id IS NOT NULL
  AND coalesce(delivered_at, dispatched_at) >= %(start)s - interval '1 day'
  AND coalesce(delivered_at, dispatched_at) < %(end)s
ORDER BY coalesce(delivered_at, dispatched_at) LIMIT 1
"""
_INSERT_REPORTED = """
INSERT INTO deliveries (supplier_report_id, report_day, source_id, facility_id, form, amount_kg,
    gas_nm3, cylinders, state, delivered_at, expected_from, expected_to, created_by, created_at,
    updated_at)
VALUES (%(report)s, %(day)s, %(supplier)s, %(facility)s, %(form)s, %(kg)s, %(nm3)s, %(cyl)s,
    'delivered', %(end)s, %(start)s, %(end)s, 'supplier-report', %(now)s, %(now)s)
RETURNING id
"""


def render(d: Delivery, locale: str) -> DeliveryView:
    """A delivery with the match verdict as a translated message."""
    params: dict[str, Any] = {}
    key = d.match_note
    if key == "coord.match.amount":
        kg = float(d.amount_kg)
        params = {
            "seen_kg": round(float(d.matched_kg or 0.0)),
            "kg": round(kg),
            "tolerance_kg": round(tolerance_kg(kg)),
        }
    elif key == "coord.match.none":
        params = {
            "start": d.expected_from.isoformat() if d.expected_from else "",
            "end": d.expected_to.isoformat() if d.expected_to else "",
        }
    return DeliveryView(
        **{f.name: getattr(d, f.name) for f in fields(Delivery)},
        match=message(key, locale, **params) if key else None,
        mismatch=d.match_state == "mismatch",
    )


async def fetch_deliveries(
    conn: AsyncConnection[Any],
    principal: Principal,
    *,
    delivery_id: int | None = None,
    facility_id: int | None = None,
    source_id: int | None = None,
    states: list[str] | None = None,
    match: list[str] | None = None,
    limit: int = 500,
) -> list[Delivery]:
    """Deliveries the principal may see, latest first."""
    filters = {
        "id": delivery_id,
        "facility": facility_id,
        "source": source_id,
        "states": states,
        "match": match,
    }
    rows = await fetch_visible(conn, principal, SELECT_DELIVERIES, filters, limit)
    return [Delivery.of(r) for r in rows]


async def _get(conn: AsyncConnection[Any], principal: Principal, delivery_id: int) -> Delivery:
    rows = await fetch_deliveries(conn, principal, delivery_id=delivery_id)
    if not rows:
        raise NotFound()
    return rows[0]


async def dispatch(
    conn: AsyncConnection[Any],
    principal: Principal,
    assignment_id: int,
    body: DispatchIn,
    *,
    cfg: AccountingConfig,
    now: datetime,
) -> Delivery:
    """The source dispatches an accepted (or still pending: accepting it) assignment."""
    from .quantities import Form, checked_kg

    a = await _own_assignment(conn, principal, assignment_id)
    if a.state not in ("pending", "accepted"):
        raise CoordinationError("coord.error.state", status=409, state=a.state)
    form = Form(a.form)
    kg = float(a.amount_kg)
    if body.amount is not None:
        kg = checked_kg(body.amount.value, body.amount.unit, form, cfg.reference, "amount")
    at = checked_time(body.at, now, "at")
    nm3 = cfg.reference.kg_to_m3(kg) if form is not Form.LIQUID else 0.0
    values = {
        "assignment": assignment_id,
        "source": a.source_id,
        "facility": a.facility_id,
        "form": form.value,
        "kg": kg,
        "nm3": nm3,
        "cyl": round(nm3 / CYLINDER_NM3) if form is Form.CYLINDERS else 0,
        "at": at,
        "from": at - BEFORE_DISPATCH,
        "by": principal.username,
        "now": now,
    }
    async with conn.transaction():
        if a.state == "pending":
            await conn.execute(
                "UPDATE assignments SET responded_by = %s, responded_at = %s WHERE id = %s",
                (principal.username, now, assignment_id),
            )
        moved = await conn.execute(
            "UPDATE assignments SET state = 'dispatched' WHERE id = %s "
            "AND state IN ('pending', 'accepted')",
            (assignment_id,),
        )
        if moved.rowcount != 1:  # dispatched or cancelled meanwhile
            raise CoordinationError("coord.error.state", status=409, state="changed")
        cur = await conn.execute(_INSERT_FROM_ASSIGNMENT, values)
        row = await cur.fetchone()
        assert row is not None
        did = int(row[0])
        await audit(
            conn, principal, "dispatch", "delivery", did, None, values, org_id=int(a.facility_id)
        )
        await refresh_state(conn, int(a.request_id), now)
    logger.info("assignment %s dispatched as delivery %s (%.0f kg)", assignment_id, did, kg)
    return await _get(conn, principal, did)


async def advance(
    conn: AsyncConnection[Any],
    principal: Principal,
    delivery_id: int,
    body: AdvanceIn,
    *,
    cfg: AccountingConfig,
    now: datetime,
) -> Delivery:
    """The source moves a delivery forward one step (in transit, delivered); audited."""
    d = await _get(conn, principal, delivery_id)
    if principal.role != Role.ADMIN and d.source_id != principal.org_id:
        raise NotFound()
    cur_state = DeliveryState(d.state)
    if body.state is DeliveryState.CONFIRMED or cur_state not in ORDER[:-1]:
        raise CoordinationError("coord.error.bad_transition", field="state", status=409)
    if ORDER.index(body.state) <= ORDER.index(cur_state):
        raise CoordinationError("coord.error.bad_transition", field="state", status=409)
    at = checked_time(body.at, now, "at")
    await _move(conn, principal, d, body.state, at=at, cfg=cfg, now=now)
    return await _get(conn, principal, delivery_id)


async def _move(
    conn: AsyncConnection[Any],
    principal: Principal,
    d: Delivery,
    to: DeliveryState,
    *,
    at: datetime,
    cfg: AccountingConfig,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> None:
    sets = {"state": to.value, "updated_at": now}
    if to is DeliveryState.IN_TRANSIT:
        sets["in_transit_at"] = at
    if to in (DeliveryState.DELIVERED, DeliveryState.CONFIRMED) and d.delivered_at is None:
        sets["delivered_at"] = at
        sets["expected_to"] = at + AFTER_DELIVERY
        if d.expected_from is None:
            sets["expected_from"] = at - AFTER_DELIVERY
    sets.update(extra or {})
    update = sql.SQL("UPDATE deliveries SET {} WHERE id = %(id)s").format(
        sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in sets
        )
    )
    async with conn.transaction():
        await conn.execute(update, {**sets, "id": d.id})
        if d.assignment_id is not None and to in (
            DeliveryState.DELIVERED,
            DeliveryState.CONFIRMED,
        ):
            await conn.execute(
                "UPDATE assignments SET state = 'delivered' WHERE id = %s", (d.assignment_id,)
            )
        await audit(
            conn,
            principal,
            to.value,
            "delivery",
            d.id,
            {"state": d.state},
            sets,
            org_id=int(d.facility_id),
        )
        if d.request_id is not None:
            await refresh_state(conn, int(d.request_id), now)
    logger.info("delivery %s: %s → %s", d.id, d.state, to.value)
    if to in (DeliveryState.DELIVERED, DeliveryState.CONFIRMED):
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("SELECT * FROM deliveries WHERE id = %s", (d.id,))
            fresh = await cur.fetchone()
        assert fresh is not None
        await match_delivery(conn, fresh, cfg, now)


async def confirm(
    conn: AsyncConnection[Any],
    principal: Principal,
    delivery_id: int,
    body: ConfirmIn,
    *,
    cfg: AccountingConfig,
    now: datetime,
) -> Delivery:
    """The recipient facility confirms receipt (from in transit or delivered); audited."""
    from .quantities import Form, checked_kg

    d = await _get(conn, principal, delivery_id)
    if principal.role != Role.ADMIN and d.facility_id != principal.org_id:
        raise NotFound()
    if d.state not in (DeliveryState.IN_TRANSIT, DeliveryState.DELIVERED):
        raise CoordinationError("coord.error.bad_transition", field="state", status=409)
    at = checked_time(body.at, now, "at")
    extra: dict[str, Any] = {"confirmed_at": at, "confirmed_by": principal.username}
    if body.received is not None:
        extra["received_kg"] = checked_kg(
            body.received.value, body.received.unit, Form(d.form), cfg.reference, "received"
        )
    await _move(
        conn,
        principal,
        d,
        DeliveryState.CONFIRMED,
        at=at,
        cfg=cfg,
        now=now,
        extra=extra,
    )
    return await _get(conn, principal, delivery_id)


async def sync_supplier_reports(
    conn: AsyncConnection[Any],
    cfg: AccountingConfig,
    now: datetime,
    *,
    supplier_id: int | None = None,
) -> int:
    """Bring supplier reports' deliveries into `deliveries`; returns how many lines were new.

    Run it under the job's lock (`service.run_once`): two syncs at once would both see the same
    new lines.
    """
    ref = cfg.reference
    kg_per_nm3 = ref.m3_to_kg(1.0)
    cyl_kg = ref.m3_to_kg(CYLINDER_NM3)
    changed: list[Any] = []
    async with conn.transaction():
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_UNSYNCED_LINES, {"supplier": supplier_id})
            lines = list(await cur.fetchall())
        cur2 = await conn.execute(
            _CHANGED_LINES, {"kg_per_nm3": kg_per_nm3, "cyl_kg": cyl_kg, "now": now}
        )
        changed = list(await cur2.fetchall())
        cur2 = await conn.execute(_VANISHED)
        for gone in await cur2.fetchall():
            await audit(
                conn,
                "coordination-sync",
                "withdrawn_by_report",
                "delivery",
                gone[0],
                org_id=int(gone[1]),
            )
        for ln in lines:
            w = window(ln["report_day"], cfg)
            liquid, gas, cyl = float(ln["liquid_kg"]), float(ln["gas_nm3"]), int(ln["cylinders"])
            form = "liquid" if liquid > 0 else "cylinders" if cyl > 0 else "gas"
            kg = liquid + ref.m3_to_kg(gas) + cyl_kg * cyl
            c = await conn.execute(
                _LINKABLE,
                {
                    "supplier": ln["supplier_id"],
                    "facility": ln["facility_id"],
                    "start": w.start,
                    "end": w.end,
                },
            )
            link = await c.fetchone()
            if link is not None:
                await conn.execute(
                    "UPDATE deliveries SET supplier_report_id = %s, report_day = %s, "
                    "updated_at = %s WHERE id = %s",
                    (ln["report_id"], ln["report_day"], now, link[0]),
                )
                did = int(link[0])
                action = "link_report"
            else:
                c = await conn.execute(
                    _INSERT_REPORTED,
                    {
                        "report": ln["report_id"],
                        "day": ln["report_day"],
                        "supplier": ln["supplier_id"],
                        "facility": ln["facility_id"],
                        "form": form,
                        "kg": kg,
                        "nm3": gas,
                        "cyl": cyl,
                        "start": w.start,
                        "end": w.end,
                        "now": now,
                    },
                )
                row = await c.fetchone()
                assert row is not None
                did = int(row[0])
                action = "from_report"
            await audit(
                conn,
                "coordination-sync",
                action,
                "delivery",
                did,
                None,
                {"supplier_report_id": ln["report_id"], "kg": kg, "facility": ln["facility_id"]},
                org_id=int(ln["facility_id"]),
            )
    if lines or changed:
        logger.info(
            "supplier reports: %d new delivery line(s), %d changed", len(lines), len(changed)
        )
    return len(lines)
