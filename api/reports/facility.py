"""Facility daily report (16:00): pre-filled from telemetry, validated, every revision kept.

The report for day D describes 16:00 on D and the window 16:00 D−1 → 16:00 D. A morning update
(discharges as of 08:00) may come first; only the 16:00 report makes the facility "reported".
Filed after the deadline it is marked late. It stays editable until BYT approves the SYT report
of that day; each save is a revision with a full snapshot and the diff.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from api.accounting.config import AccountingConfig
from api.accounting.stock import Prefill, prefill
from api.accounting.telemetry import FacilityTelemetry, facility_telemetry
from api.accounting.therapy import Therapy
from api.accounting.windows import local_today, morning_cutoff, window

from . import rules
from .errors import FieldError, Locked, ValidationFailed
from .figures import THERAPY_COLUMNS, FacilityFigures, FacilityRef, is_late, resolve
from .public import EnteredQuantityPublic
from .units import EntryUnit, to_kg, to_nm3

logger = logging.getLogger(__name__)


class QuantityIn(BaseModel):
    """An oxygen quantity as typed, with its unit (never guessed)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    value: float
    unit: EntryUnit


class FacilityReportIn(BaseModel):
    """The 16:00 report as filed (complete: a pre-filled figure left empty means telemetry)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    patients_current: int | None = None
    patients_new: int | None = None
    discharged_evening: int | None = None
    on_oxygen: dict[Therapy, int] = Field(default_factory=dict)
    refilled_liquid: QuantityIn | None = None
    refilled_gas: QuantityIn | None = None
    stock_liquid: QuantityIn | None = None
    stock_gas: QuantityIn | None = None
    capacity: QuantityIn | None = None
    avg_need: QuantityIn | None = None
    notes: Annotated[str | None, Field(max_length=20000)] = None
    # Reason for each pre-filled figure the staff member changes: field -> reason.
    reasons: dict[str, str] = Field(default_factory=dict)
    # Reason confirming each figure a rule warns about (field -> reason), stored with it.
    confirm: dict[str, str] = Field(default_factory=dict)


class MorningUpdateIn(BaseModel):
    """The short morning update: discharges since 16:00 yesterday, as of 08:00."""

    model_config = ConfigDict(extra="forbid")

    discharged_morning: int


# Stored column, kind ('liquid' kg / 'gas' Nm3), units allowed.
QUANTITY_FIELDS: dict[str, tuple[str, str]] = {
    "refilled_liquid": ("refilled_liquid_kg", "liquid"),
    "refilled_gas": ("refilled_gas_nm3", "gas"),
    "stock_liquid": ("stock_liquid_kg", "liquid"),
    "stock_gas": ("stock_gas_nm3", "gas"),
    "capacity": ("capacity_nm3", "gas"),
    "avg_need": ("avg_need_nm3", "gas"),
}
COUNT_FIELDS = ("patients_current", "patients_new", "discharged_evening")
SNAPSHOT_FIELDS = (
    "patients_current",
    "patients_new",
    "discharged_morning",
    "discharged_evening",
    *THERAPY_COLUMNS.values(),
    "refilled_liquid_kg",
    "refilled_gas_nm3",
    "stock_liquid_kg",
    "stock_gas_nm3",
    "capacity_nm3",
    "avg_need_nm3",
    "notes",
    "overrides",
    "entered_units",
)

_FACILITY = """
SELECT o.id, o.code, o.name, o.parent_id, o.province_code,
       coalesce(f.active_from, DATE '2000-01-01') AS active_from, f.active_to
FROM organisations o LEFT JOIN facilities f ON f.org_id = o.id
WHERE o.id = %(id)s AND o.kind = 'facility'
"""
_APPROVED = """
SELECT 1 FROM syt_reports WHERE org_id = %(parent)s AND report_day = %(day)s AND state = 'approved'
"""
_ROW = "SELECT * FROM facility_reports WHERE facility_id = %(f)s AND report_day = %(d)s FOR UPDATE"
_PREV_PATIENTS = """
SELECT patients_current FROM facility_reports
WHERE facility_id = %(f)s AND report_day = %(d)s AND submitted_at IS NOT NULL
"""
_HISTORY = """
SELECT patients_current, patients_new, refilled_liquid_kg, avg_need_nm3
FROM facility_reports
WHERE facility_id = %(f)s AND report_day < %(d)s AND report_day >= %(d)s - 28
  AND submitted_at IS NOT NULL
"""
_BEDS = "SELECT beds FROM facilities WHERE org_id = %(f)s"
_INSERT = """
INSERT INTO facility_reports (facility_id, report_day) VALUES (%(f)s, %(d)s)
ON CONFLICT (facility_id, report_day) DO NOTHING
"""
_UPDATE = """
UPDATE facility_reports SET
    revision = %(revision)s, submitted_at = %(submitted_at)s, late = %(late)s,
    updated_at = %(now)s, updated_by = %(author)s,
    patients_current = %(patients_current)s, patients_new = %(patients_new)s,
    discharged_morning = %(discharged_morning)s, discharged_evening = %(discharged_evening)s,
    o2_mask = %(o2_mask)s, o2_hfnc = %(o2_hfnc)s, o2_niv = %(o2_niv)s,
    o2_invasive = %(o2_invasive)s, o2_ecmo = %(o2_ecmo)s,
    refilled_liquid_kg = %(refilled_liquid_kg)s, refilled_gas_nm3 = %(refilled_gas_nm3)s,
    stock_liquid_kg = %(stock_liquid_kg)s, stock_gas_nm3 = %(stock_gas_nm3)s,
    capacity_nm3 = %(capacity_nm3)s, avg_need_nm3 = %(avg_need_nm3)s, notes = %(notes)s,
    overrides = %(overrides)s, entered_units = %(entered_units)s, warnings = %(warnings)s
WHERE id = %(id)s
"""
_REVISION = """
INSERT INTO facility_report_revisions (report_id, revision, author, created_at, kind, late,
                                       snapshot, diff)
VALUES (%(id)s, %(revision)s, %(author)s, %(now)s, %(kind)s, %(late)s, %(snapshot)s, %(diff)s)
"""
_REVISIONS = """
SELECT r.revision, r.author, r.created_at, r.kind, r.late, r.snapshot, r.diff
FROM facility_report_revisions r JOIN facility_reports f ON f.id = r.report_id
WHERE f.facility_id = %(f)s AND f.report_day = %(d)s ORDER BY r.revision
"""


async def facility_ref(
    conn: AsyncConnection[Any], facility_id: int
) -> tuple[FacilityRef, date, date | None] | None:
    """A facility, its first and last active day; None if it is not a facility."""
    cur = await conn.execute(_FACILITY, {"id": facility_id})
    r = await cur.fetchone()
    if r is None:
        return None
    return FacilityRef(int(r[0]), r[1], r[2], r[3], r[4]), r[5], r[6]


async def lock_reason(
    conn: AsyncConnection[Any], facility_id: int, day: date, cfg: AccountingConfig, now: datetime
) -> str | None:
    """Why the facility's report for D cannot be changed (an i18n key), or None."""
    found = await facility_ref(conn, facility_id)
    if found is None:
        return "report.locked.closed"
    ref, active_from, active_to = found
    if day < active_from or (active_to is not None and day > active_to):
        return "report.locked.closed"
    if ref.parent_id is not None:
        cur = await conn.execute(_APPROVED, {"parent": ref.parent_id, "day": day})
        if await cur.fetchone():
            return "report.locked.approved"
    if day < local_today(now, cfg) - timedelta(days=cfg.edit_window_days):
        return "report.locked.past_deadline"
    return None


def _count_errors(name: str, value: int | None) -> list[FieldError]:
    return [FieldError(name, "report.error.negative")] if value is not None and value < 0 else []


def validate(
    body: FacilityReportIn,
    *,
    discharged_morning: int | None,
    prev_patients: int | None,
    tele: FacilityTelemetry | None,
    capacity_kg: float,
    cfg: AccountingConfig,
    beds: int | None = None,
    history: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], list[FieldError]]:
    """Check a filed report against the rules (api.reports.rules); return the stored columns and
    the refused fields (all of them: errors, and warnings not confirmed with a reason). The
    confirmed warnings are in `cols["warnings"]`."""
    errors: list[FieldError] = []
    for name in COUNT_FIELDS:
        errors += _count_errors(name, getattr(body, name))
    for therapy, n in body.on_oxygen.items():
        errors += _count_errors(f"on_oxygen.{therapy.value}", n)
    cols: dict[str, Any] = {}
    units: dict[str, Any] = {}
    from_tele = prefill(tele, cfg.reference)
    prefilled: dict[str, float | None] = {
        "refilled_liquid": from_tele.refilled_liquid_kg,
        "stock_liquid": from_tele.stock_liquid_kg,
        "avg_need": from_tele.avg_need_nm3,
        "capacity": from_tele.capacity_nm3,
    }
    overrides: dict[str, str] = {}
    # A changed pre-filled figure without a reason: reported unless a rule refuses it anyway.
    missing_reason: list[FieldError] = []
    for name, (column, kind) in QUANTITY_FIELDS.items():
        q: QuantityIn | None = getattr(body, name)
        if q is None:
            cols[column] = None
            continue
        if not math.isfinite(q.value) or q.value < 0:
            errors.append(FieldError(name, "report.error.negative"))
            continue
        if (
            kind == "gas"
            and q.unit is EntryUnit.M3_LIQUID
            and name in ("refilled_gas", "stock_gas")
        ):
            # Cylinders are gas: a liquid volume here is a slip, refuse rather than guess.
            errors.append(FieldError(name, "report.error.unit"))
            continue
        value = (
            to_kg(q.value, q.unit, cfg.reference)
            if kind == "liquid"
            else to_nm3(q.value, q.unit, cfg.reference)
        )
        cols[column] = value
        units[name] = {"value": q.value, "unit": q.unit.value}
        pre = prefilled.get(name)
        if pre is not None and abs(value - pre) > max(1.0, 0.005 * abs(pre)):
            reason = (body.reasons.get(name) or "").strip()
            if not reason:
                missing_reason.append(
                    FieldError(
                        name, "report.error.override_reason_required", {"prefilled": round(pre, 1)}
                    )
                )
            else:
                overrides[name] = reason
    if capacity_kg <= 0 and (
        (cols.get("refilled_liquid_kg") or 0.0) > 0 or (cols.get("stock_liquid_kg") or 0.0) > 0
    ):
        field = "refilled_liquid" if cols.get("refilled_liquid_kg") else "stock_liquid"
        errors.append(FieldError(field, "report.error.no_tank"))
    if body.notes is not None and len(body.notes) > 2000:
        errors.append(FieldError("notes", "report.error.notes_too_long"))
    # PostgreSQL text cannot hold NUL: refuse it by field rather than fail on storing.
    texts = {"notes": body.notes or ""}
    texts |= {f"reason_{k}": v for k, v in body.reasons.items()}
    texts |= {f"confirm_{k}": v for k, v in body.confirm.items()}
    errors += [
        FieldError(k.split("_", 1)[1] if k != "notes" else k, "report.error.invalid_text")
        for k, v in texts.items()
        if "\x00" in v or "\x00" in k
    ]
    for name in COUNT_FIELDS:
        cols[name] = getattr(body, name)
    for therapy, column in THERAPY_COLUMNS.items():
        cols[column] = body.on_oxygen.get(therapy)
    # The rules see the typed figures with their context; refused fields already explained
    # (negative, unit, reason) are not judged again.
    refused = {e.field.split(".")[0] for e in errors}
    values: dict[str, Any] = {
        **{k: v for k, v in cols.items() if k not in refused},
        "on_oxygen": sum(max(0, n) for n in body.on_oxygen.values()) if body.on_oxygen else None,
        "discharged": (discharged_morning or 0) + max(0, body.discharged_evening or 0),
        "prev_patients_current": prev_patients,
        "tank_kg": capacity_kg if capacity_kg > 0 else None,
        "beds": beds or None,
        "registry_capacity_nm3": prefilled["capacity"],
        **rules.history_bounds(history or [], HISTORY_COLUMNS, cfg.outlier_z),
    }
    for name in COUNT_FIELDS:
        if name in refused:
            values.pop(name, None)
    findings = [f for f in rules.check(rules.FACILITY_RULES, values) if f.rule.field not in refused]
    rule_errors, warnings = rules.split(findings, body.confirm)
    errors += rule_errors
    refused |= {e.field for e in rule_errors}
    errors += [e for e in missing_reason if e.field not in refused]
    cols["notes"] = body.notes
    cols["overrides"] = overrides
    cols["entered_units"] = units
    cols["warnings"] = warnings
    return cols, errors


HISTORY_COLUMNS = ("patients_current", "patients_new", "refilled_liquid_kg", "avg_need_nm3")


def _jsonable(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime | date) else v


# The figures a revision keeps, as stored (JSON: instants and days as ISO strings).
Snapshot = dict[str, JsonValue]


def snapshot(row: dict[str, Any]) -> Snapshot:
    """The stored figures of a report row (what a revision keeps)."""
    return {k: _jsonable(row.get(k)) for k in SNAPSHOT_FIELDS}


def diff(old: Snapshot, new: Snapshot) -> dict[str, list[JsonValue]]:
    """Changed fields: name -> [old, new]."""
    return {k: [old.get(k), new.get(k)] for k in new if old.get(k) != new.get(k)}


@dataclass(frozen=True, slots=True)
class SavedReport:
    """A facility report revision just stored."""

    id: int  # the report's row (facility_reports.id)
    revision: int
    late: bool  # filed after the day's cut-off
    snapshot: Snapshot  # the figures this revision keeps
    before: Snapshot | None  # the figures it replaced (None for the first), for the audit trail
    warnings: list[rules.StoredWarning]  # the confirmed rule warnings stored with it


async def _prepare(
    conn: AsyncConnection[Any], facility_id: int, day: date, cfg: AccountingConfig, now: datetime
) -> tuple[FacilityRef, dict[str, Any]]:
    lock = await lock_reason(conn, facility_id, day, cfg, now)
    if lock is not None:
        raise Locked(lock)
    if day > local_today(now, cfg):
        raise ValidationFailed([FieldError("report_day", "report.error.future_day")])
    found = await facility_ref(conn, facility_id)
    assert found is not None
    await conn.execute(_INSERT, {"f": facility_id, "d": day})
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_ROW, {"f": facility_id, "d": day})
        row = await cur.fetchone()
    assert row is not None
    return found[0], row


async def _write(
    conn: AsyncConnection[Any],
    row: dict[str, Any],
    new: dict[str, Any],
    *,
    kind: str,
    author: str,
    now: datetime,
    day: date,
    cfg: AccountingConfig,
) -> SavedReport:
    old = snapshot(row)
    merged = {**row, **new}
    revision = int(row["revision"]) + 1
    submitted_at = row["submitted_at"]
    if kind == "report" and submitted_at is None:
        submitted_at = now
    late = bool(row["late"]) or (
        kind == "report" and row["submitted_at"] is None and is_late(now, day, cfg)
    )
    params = {
        **{k: merged.get(k) for k in SNAPSHOT_FIELDS},
        "overrides": Jsonb(merged.get("overrides") or {}),
        "entered_units": Jsonb(merged.get("entered_units") or {}),
        "warnings": Jsonb(merged.get("warnings") or []),
        "revision": revision,
        "submitted_at": submitted_at,
        "late": late,
        "now": now,
        "author": author,
        "id": row["id"],
    }
    await conn.execute(_UPDATE, params)
    snap = snapshot(merged)
    await conn.execute(
        _REVISION,
        {
            "id": row["id"],
            "revision": revision,
            "author": author,
            "now": now,
            "kind": kind if (kind != "report" or row["submitted_at"] is None) else "edit",
            # The morning update is due as of 08:00 (setting), the report by 17:00 (setting).
            "late": now > morning_cutoff(day, cfg) if kind == "morning" else is_late(now, day, cfg),
            "snapshot": Jsonb(snap),
            "diff": Jsonb(diff(old, snap)),
        },
    )
    logger.info(
        "facility report %s/%s revision %s by %s (%s)",
        row["facility_id"],
        day,
        revision,
        author,
        kind,
    )
    return SavedReport(
        id=int(row["id"]),
        revision=revision,
        late=late,
        snapshot=snap,
        before=old if int(row["revision"]) > 0 else None,
        warnings=list(merged.get("warnings") or []),
    )


async def file_report(
    conn: AsyncConnection[Any],
    facility_id: int,
    day: date,
    body: FacilityReportIn,
    *,
    author: str,
    cfg: AccountingConfig,
    now: datetime,
) -> SavedReport:
    """File or edit the 16:00 report: all-or-nothing, a new revision each time."""
    async with conn.transaction():
        _ref, row = await _prepare(conn, facility_id, day, cfg, now)
        tele = (await facility_telemetry(conn, [facility_id], day, cfg, now=now)).get(facility_id)
        cur = await conn.execute(_PREV_PATIENTS, {"f": facility_id, "d": day - timedelta(days=1)})
        prev = await cur.fetchone()
        cur = await conn.execute(_BEDS, {"f": facility_id})
        beds = await cur.fetchone()
        async with conn.cursor(row_factory=dict_row) as hc:
            await hc.execute(_HISTORY, {"f": facility_id, "d": day})
            history = list(await hc.fetchall())
        # Typed figures only are judged against the typed history (telemetry is not).
        cols, errors = validate(
            body,
            discharged_morning=row["discharged_morning"],
            prev_patients=int(prev[0]) if prev and prev[0] is not None else None,
            tele=tele,
            capacity_kg=tele.capacity_kg if tele else 0.0,
            cfg=cfg,
            beds=int(beds[0]) if beds and beds[0] is not None else None,
            history=history,
        )
        if errors:
            raise ValidationFailed(errors)
        return await _write(
            conn, row, cols, kind="report", author=author, now=now, day=day, cfg=cfg
        )


async def morning_update(
    conn: AsyncConnection[Any],
    facility_id: int,
    day: date,
    body: MorningUpdateIn,
    *,
    author: str,
    cfg: AccountingConfig,
    now: datetime,
) -> SavedReport:
    """Record the morning discharge update (does not make the facility 'reported').

    The update describes the discharges since 16:00 D−1 as of 08:00 D (MISSION.md): it opens with
    the window of D, is marked late after 08:00, and closes once the 16:00 report of D is filed
    (later discharges go in that report, whose field 7 adds both)."""
    if body.discharged_morning < 0:
        raise ValidationFailed([FieldError("discharged_morning", "report.error.negative")])
    if body.discharged_morning > rules.MAX_PATIENTS:
        raise ValidationFailed([FieldError("discharged_morning", "report.error.too_large")])
    if now < window(day, cfg).start:
        raise ValidationFailed([FieldError("discharged_morning", "report.error.morning_not_open")])
    async with conn.transaction():
        _ref, row = await _prepare(conn, facility_id, day, cfg, now)
        if row["submitted_at"] is not None:
            raise ValidationFailed(
                [FieldError("discharged_morning", "report.error.morning_closed")]
            )
        return await _write(
            conn,
            row,
            {"discharged_morning": body.discharged_morning},
            kind="morning",
            author=author,
            now=now,
            day=day,
            cfg=cfg,
        )


@dataclass(frozen=True, slots=True)
class FacilityRevision:
    """One revision of a facility report (append-only history), as stored."""

    revision: int
    author: str
    created_at: str  # ISO 8601 instant
    kind: str
    late: bool
    snapshot: Snapshot
    diff: dict[str, list[JsonValue]] | None  # the figures changed: name -> [before, after]


@dataclass(frozen=True, slots=True)
class FacilityReportView:
    """A facility's report for day D as staff see it: figures, pre-fills, lock, history."""

    facility_id: int
    report_day: date
    revision: int  # 0: not filed yet
    submitted_at: str | None  # ISO 8601 instant
    late: bool
    discharged_morning: int | None
    overrides: dict[str, str]  # pre-filled values replaced: field -> reason
    entered_units: dict[str, EnteredQuantityPublic]  # each quantity as typed
    locked: str | None  # why it cannot be changed (message id)
    figures: FacilityFigures
    prefill: Prefill | None  # telemetry's pre-fill; None when no tank is monitored
    revisions: list[FacilityRevision]


async def report_view(
    conn: AsyncConnection[Any], facility_id: int, day: date, *, cfg: AccountingConfig, now: datetime
) -> FacilityReportView:
    """The report for D as shown to staff: live figures, pre-filled values, lock and revisions."""
    found = await facility_ref(conn, facility_id)
    assert found is not None
    ref = found[0]
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT * FROM facility_reports WHERE facility_id = %(f)s AND report_day = %(d)s",
            {"f": facility_id, "d": day},
        )
        row = await cur.fetchone()
        await cur.execute(_REVISIONS, {"f": facility_id, "d": day})
        revisions = [
            FacilityRevision(
                revision=r["revision"],
                author=r["author"],
                created_at=r["created_at"].isoformat(),
                kind=r["kind"],
                late=r["late"],
                snapshot=r["snapshot"],
                diff=r["diff"],
            )
            for r in await cur.fetchall()
        ]
    tele = (await facility_telemetry(conn, [facility_id], day, cfg, now=now)).get(facility_id)
    pre = prefill(tele, cfg.reference)
    return FacilityReportView(
        facility_id=facility_id,
        report_day=day,
        revision=row["revision"] if row else 0,
        submitted_at=row["submitted_at"].isoformat() if row and row["submitted_at"] else None,
        late=bool(row["late"]) if row else False,
        discharged_morning=row["discharged_morning"] if row else None,
        overrides=(row["overrides"] or {}) if row else {},
        entered_units={
            k: EnteredQuantityPublic.model_validate(v)
            for k, v in ((row["entered_units"] or {}) if row else {}).items()
        },
        locked=await lock_reason(conn, facility_id, day, cfg, now),
        figures=resolve(ref, row, tele, cfg),
        prefill=pre if pre.monitored else None,
        revisions=revisions,
    )
