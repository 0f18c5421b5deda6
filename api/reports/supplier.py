"""Supplier report: production today, capacity (normal / full, t/day), LOX stock, cylinders
filled, deliveries by recipient facility — cross-checked against the facilities' refills."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from api.accounting.config import AccountingConfig

from . import rules
from .errors import FieldError, ValidationFailed
from .facility import QuantityIn
from .figures import active_facilities, figures_for
from .units import EntryUnit, to_kg, to_nm3

logger = logging.getLogger(__name__)

# A delivery and a facility's refill agree when within this fraction (or 50 kg).
MATCH_TOLERANCE = 0.05


class DeliveryIn(BaseModel):
    """Oxygen delivered to one facility on the day."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    facility_id: int
    liquid: QuantityIn | None = None
    gas: QuantityIn | None = None
    cylinders: int = 0


class SupplierReportIn(BaseModel):
    """The supplier's daily report."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    production_t: float
    capacity_normal_tpd: float | None = None
    capacity_full_tpd: float | None = None
    lox_stock: QuantityIn | None = None
    cylinders_filled: int | None = None
    deliveries: list[DeliveryIn] = Field(default_factory=list)
    # Reason confirming each figure a rule warns about (field -> reason), stored with it.
    confirm: dict[str, str] = Field(default_factory=dict)


_UPSERT = """
INSERT INTO supplier_reports AS r (supplier_id, report_day, revision, production_t,
    capacity_normal_tpd, capacity_full_tpd, lox_stock_kg, cylinders_filled, updated_at, updated_by)
VALUES (%(s)s, %(d)s, 1, %(production_t)s, %(normal)s, %(full)s, %(stock)s, %(cyl)s, %(now)s,
        %(author)s)
ON CONFLICT (supplier_id, report_day) DO UPDATE SET revision = r.revision + 1,
    production_t = EXCLUDED.production_t, capacity_normal_tpd = EXCLUDED.capacity_normal_tpd,
    capacity_full_tpd = EXCLUDED.capacity_full_tpd, lox_stock_kg = EXCLUDED.lox_stock_kg,
    cylinders_filled = EXCLUDED.cylinders_filled, updated_at = EXCLUDED.updated_at,
    updated_by = EXCLUDED.updated_by
RETURNING id, revision
"""
_GET = "SELECT * FROM supplier_reports WHERE supplier_id = %(s)s AND report_day = %(d)s"
_DELIVERIES = """
SELECT d.facility_id, o.code, o.name, d.liquid_kg, d.gas_nm3, d.cylinders
FROM supplier_deliveries d JOIN organisations o ON o.id = d.facility_id
WHERE d.report_id = %(id)s ORDER BY o.code
"""
# Whole refill events that started in day D's window, per facility: a delivery crossing 16:00 is
# split between two windows in the facility's figures, but it is one delivery for the supplier.
_REFILLS_STARTED = """
SELECT t.facility_id, sum(e.amount_kg) AS kg
FROM refill_events e JOIN tanks t ON t.id = e.tank_id
WHERE t.facility_id = ANY(%(facilities)s::bigint[]) AND e.report_day = %(d)s
GROUP BY t.facility_id
"""
_INSERT_DELIVERY = """
INSERT INTO supplier_deliveries (report_id, facility_id, liquid_kg, gas_nm3, cylinders)
VALUES (%s, %s, %s, %s, %s)
"""
_INSERT_REVISION = """
INSERT INTO supplier_report_revisions (report_id, revision, author, created_at, snapshot, diff)
VALUES (%s, %s, %s, %s, %s, %s)
"""
_REVISIONS = """
SELECT revision, author, created_at, diff FROM supplier_report_revisions
WHERE report_id = %(id)s ORDER BY revision
"""
_REGISTRY = "SELECT capacity_full_tpd FROM suppliers WHERE org_id = %(s)s"
_KNOWN = "SELECT id FROM organisations WHERE kind = 'facility' AND id = ANY(%(ids)s::bigint[])"


def _snap(body: SupplierReportIn) -> dict[str, Any]:
    return body.model_dump(mode="json")


_PREVIOUS = """
SELECT snapshot FROM supplier_report_revisions WHERE report_id = %s AND revision = %s
"""


@dataclass(frozen=True, slots=True)
class SavedSupplierReport:
    """A supplier report revision just stored."""

    id: int
    revision: int
    # The report this revision replaced, as its revision stored it (None for the first), for
    # the audit trail.
    before: dict[str, JsonValue] | None


async def save(
    conn: AsyncConnection[Any],
    supplier_id: int,
    day: date,
    body: SupplierReportIn,
    *,
    author: str,
    cfg: AccountingConfig,
    now: datetime,
) -> SavedSupplierReport:
    """Store the report and its deliveries (all or nothing, a revision each time)."""
    errors: list[FieldError] = []
    for name in ("production_t", "capacity_normal_tpd", "capacity_full_tpd", "cylinders_filled"):
        v = getattr(body, name)
        if v is not None and v < 0:
            errors.append(FieldError(name, "report.error.negative"))
    stock = None
    if body.lox_stock is not None:
        if body.lox_stock.value < 0:
            errors.append(FieldError("lox_stock", "report.error.negative"))
        else:
            stock = to_kg(body.lox_stock.value, body.lox_stock.unit, cfg.reference)
    seen: set[int] = set()
    rows = []
    for i, d in enumerate(body.deliveries):
        if d.facility_id in seen:
            errors.append(
                FieldError(f"deliveries.{i}.facility_id", "supplier.error.duplicate_facility")
            )
        seen.add(d.facility_id)
        liquid = gas = 0.0
        for name, q in (("liquid", d.liquid), ("gas", d.gas)):
            if q is not None and q.value < 0:
                errors.append(FieldError(f"deliveries.{i}.{name}", "report.error.negative"))
        if d.cylinders < 0:
            errors.append(FieldError(f"deliveries.{i}.cylinders", "report.error.negative"))
        elif d.cylinders > rules.MAX_CYLINDERS:
            errors.append(FieldError(f"deliveries.{i}.cylinders", "report.error.too_large"))
        if d.liquid is not None and d.liquid.value >= 0:
            liquid = to_kg(d.liquid.value, d.liquid.unit, cfg.reference)
        if d.gas is not None and d.gas.value >= 0:
            if d.gas.unit is EntryUnit.M3_LIQUID:
                errors.append(FieldError(f"deliveries.{i}.gas", "report.error.unit"))
            gas = to_nm3(d.gas.value, d.gas.unit, cfg.reference)
        rows.append((d.facility_id, liquid, gas, max(0, d.cylinders)))
    if seen:
        cur = await conn.execute(_KNOWN, {"ids": sorted(seen)})
        known = {int(r[0]) for r in await cur.fetchall()}
        for i, d in enumerate(body.deliveries):
            if d.facility_id not in known:
                errors.append(
                    FieldError(f"deliveries.{i}.facility_id", "supplier.error.unknown_facility")
                )
    cur = await conn.execute(_REGISTRY, {"s": supplier_id})
    registry = await cur.fetchone()
    full = body.capacity_full_tpd
    if full is None and registry is not None and registry[0] is not None:
        full = float(registry[0])  # the registry's full capacity when the report gives none
    refused = {e.field for e in errors}
    values = {
        "production_t": body.production_t,
        "capacity_normal_tpd": body.capacity_normal_tpd,
        "capacity_full_tpd": body.capacity_full_tpd,
        "full_capacity": full,
        "lox_stock_kg": stock,
        "cylinders_filled": body.cylinders_filled,
    }
    findings = [
        f
        for f in rules.check(
            rules.SUPPLIER_RULES, {k: v for k, v in values.items() if k not in refused}
        )
        if f.rule.field not in refused
    ]
    # Confirmed warnings are kept in the revision snapshot (the body with its `confirm`).
    rule_errors, _confirmed = rules.split(findings, body.confirm)
    errors += rule_errors
    if errors:
        raise ValidationFailed(errors)
    async with conn.transaction():
        cur = await conn.execute(
            _UPSERT,
            {
                "s": supplier_id,
                "d": day,
                "production_t": body.production_t,
                "normal": body.capacity_normal_tpd,
                "full": body.capacity_full_tpd,
                "stock": stock,
                "cyl": body.cylinders_filled,
                "now": now,
                "author": author,
            },
        )
        got = await cur.fetchone()
        assert got is not None
        report_id, revision = int(got[0]), int(got[1])
        await conn.execute("DELETE FROM supplier_deliveries WHERE report_id = %s", (report_id,))
        async with conn.cursor() as c:
            await c.executemany(
                _INSERT_DELIVERY,
                [(report_id, *r) for r in rows],
            )
        snap = _snap(body)
        cur = await conn.execute(_PREVIOUS, (report_id, revision - 1))
        prev = await cur.fetchone()
        old: dict[str, Any] = prev[0] if prev else {}
        changed = {k: [old.get(k), v] for k, v in snap.items() if old.get(k) != v}
        await conn.execute(
            _INSERT_REVISION,
            (report_id, revision, author, now, Jsonb(snap), Jsonb(changed)),
        )
    logger.info("supplier report %s/%s revision %s by %s", supplier_id, day, revision, author)
    return SavedSupplierReport(report_id, revision, prev[0] if prev else None)


@dataclass(frozen=True, slots=True)
class FacilityRefill:
    """The facility's own refill of the day (shown to national roles only)."""

    liquid_kg: float | None
    gas_nm3: float | None


@dataclass(frozen=True, slots=True)
class CheckedDelivery:
    """A delivery the supplier reported, cross-checked against the facility's own refill."""

    facility_id: int
    code: str
    name: str
    liquid_kg: float | None
    gas_nm3: float | None
    cylinders: int | None
    match: bool | None  # agrees with the facility's refill; None: unknown
    refill: FacilityRefill | None  # None: not shown to the caller

    def as_row(self) -> dict[str, Any]:
        """The delivery as an export row (the facility's refill only when shown)."""
        row: dict[str, Any] = {
            "facility_id": self.facility_id,
            "code": self.code,
            "name": self.name,
            "liquid_kg": self.liquid_kg,
            "gas_nm3": self.gas_nm3,
            "cylinders": self.cylinders,
            "match": self.match,
        }
        if self.refill is not None:
            row["facility_refilled_liquid_kg"] = self.refill.liquid_kg
            row["facility_refilled_gas_nm3"] = self.refill.gas_nm3
        return row


@dataclass(frozen=True, slots=True)
class SupplierRevision:
    """One revision of a supplier report: what it changed (field -> [before, after])."""

    revision: int
    author: str
    created_at: str  # ISO 8601 instant
    diff: dict[str, list[JsonValue]] | None


@dataclass(frozen=True, slots=True)
class SupplierReportView:
    """A supplier's report of the day with its deliveries cross-checked."""

    supplier_id: int
    report_day: date
    revision: int
    production_t: float
    capacity_normal_tpd: float | None
    capacity_full_tpd: float | None
    lox_stock_kg: float | None
    cylinders_filled: int | None
    deliveries: list[CheckedDelivery]
    updated_at: str  # ISO 8601 instant
    updated_by: str | None
    revisions: list[SupplierRevision]


async def view(
    conn: AsyncConnection[Any],
    supplier_id: int,
    day: date,
    *,
    cfg: AccountingConfig,
    now: datetime,
    show_facility_figures: bool,
) -> SupplierReportView | None:
    """The report with each delivery cross-checked against the facility's refill of day D."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_GET, {"s": supplier_id, "d": day})
        row = await cur.fetchone()
        if row is None:
            return None
        await cur.execute(_DELIVERIES, {"id": row["id"]})
        deliveries = list(await cur.fetchall())
        await cur.execute(_REVISIONS, {"id": row["id"]})
        revisions = [
            SupplierRevision(r["revision"], r["author"], r["created_at"].isoformat(), r["diff"])
            for r in await cur.fetchall()
        ]
    refs = await active_facilities(
        conn, day, parents=None, visible=None, ids=[d["facility_id"] for d in deliveries]
    )
    figs = {f.facility_id: f for f in await figures_for(conn, refs, day, cfg, now=now)}
    async with conn.cursor() as cur:  # figures_for has stored the refill events of day D
        await cur.execute(_REFILLS_STARTED, {"facilities": list(figs), "d": day})
        started = {int(fid): float(kg) for fid, kg in await cur.fetchall()}
    checked = []
    for d in deliveries:
        f = figs.get(d["facility_id"])
        got = f.refilled_liquid_kg if f else None
        if f is not None and f.sources.get("refilled_liquid") == "telemetry":
            got = started.get(f.facility_id, 0.0)
        match = None
        if got is not None:
            match = abs(got - d["liquid_kg"]) <= max(50.0, MATCH_TOLERANCE * d["liquid_kg"])
        checked.append(
            CheckedDelivery(
                facility_id=d["facility_id"],
                code=d["code"],
                name=d["name"],
                liquid_kg=d["liquid_kg"],
                gas_nm3=d["gas_nm3"],
                cylinders=d["cylinders"],
                match=match,
                refill=(
                    FacilityRefill(got, f.refilled_gas_nm3 if f else None)
                    if show_facility_figures
                    else None
                ),
            )
        )
    return SupplierReportView(
        supplier_id=supplier_id,
        report_day=day,
        revision=row["revision"],
        production_t=row["production_t"],
        capacity_normal_tpd=row["capacity_normal_tpd"],
        capacity_full_tpd=row["capacity_full_tpd"],
        lox_stock_kg=row["lox_stock_kg"],
        cylinders_filled=row["cylinders_filled"],
        deliveries=checked,
        updated_at=row["updated_at"].isoformat(),
        updated_by=row["updated_by"],
        revisions=revisions,
    )
