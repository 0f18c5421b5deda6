"""Live figures of facilities for a report day: the facility report merged with telemetry.

A facility's figure is, in order: the value its staff entered (an override of a pre-filled figure
carries a reason), else the telemetry of its monitored tanks, else the registry (capacity), else
the estimate from patients by therapy (average daily need). SYT and BYT views sum these, so
their totals are always live. Liquid is kg of LOX, gas m3 at the declared reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from api.accounting.config import AccountingConfig
from api.accounting.stock import (
    Status,
    beyond_horizon,
    days_of_supply,
    facility_gas_nm3,
    is_leak,
    prefill,
    status,
    usable_after_override,
)
from api.accounting.telemetry import (
    FacilityTelemetry,
    Source,
    Unknown,
    facility_telemetry,
    facility_telemetry_days,
)
from api.accounting.therapy import Therapy, need_m3_per_day
from api.accounting.windows import deadline

if TYPE_CHECKING:
    from .rules import StoredWarning

THERAPY_COLUMNS: dict[Therapy, str] = {
    Therapy.MASK: "o2_mask",
    Therapy.HFNC: "o2_hfnc",
    Therapy.NIV: "o2_niv",
    Therapy.INVASIVE: "o2_invasive",
    Therapy.ECMO: "o2_ecmo",
}

# Plain-string keys, computed once: enum attribute access is measurable over 2,000 facilities.
_THERAPY_KEYS = tuple((t.value, column) for t, column in THERAPY_COLUMNS.items())
_THERAPY_BY_KEY = tuple((t.value, t) for t in Therapy)

# Active on some day of first..last (one day: first = last); each row says from when to when.
ACTIVE_FACILITIES = """
SELECT o.id, o.code, o.name, o.parent_id, o.province_code,
       coalesce(f.active_from, DATE '2000-01-01') AS active_from, f.active_to
FROM organisations o LEFT JOIN facilities f ON f.org_id = o.id
WHERE o.kind = 'facility'
  AND coalesce(f.active_from, DATE '2000-01-01') <= %(last)s
  AND (f.active_to IS NULL OR f.active_to >= %(first)s)
  AND (%(parents)s::bigint[] IS NULL OR o.parent_id = ANY(%(parents)s::bigint[]))
  AND (%(scope_national)s OR o.id = ANY(%(scope_facilities)s::bigint[]))
  AND (%(ids)s::bigint[] IS NULL OR o.id = ANY(%(ids)s::bigint[]))
ORDER BY o.code
"""

# Empty JSON documents travel as NULL: decoding thousands of '{}' costs more than the query.
REPORTS_OF_DAYS = """
SELECT facility_id, report_day, submitted_at, late, patients_current, patients_new,
       discharged_morning, discharged_evening, o2_mask, o2_hfnc, o2_niv, o2_invasive, o2_ecmo,
       refilled_liquid_kg, refilled_gas_nm3, stock_liquid_kg, stock_gas_nm3, capacity_nm3,
       avg_need_nm3, notes,
       NULLIF(overrides, '{}'::jsonb) AS overrides, NULLIF(warnings, '[]'::jsonb) AS warnings
FROM facility_reports
WHERE report_day >= %(first)s AND report_day <= %(last)s AND facility_id = ANY(%(ids)s::bigint[])
"""
# What `need_nm3` reads of a report, alone (the 7-day chart reads 7 days of every facility).
NEED_INPUTS_OF_DAYS = """
SELECT facility_id, report_day, submitted_at, avg_need_nm3,
       o2_mask, o2_hfnc, o2_niv, o2_invasive, o2_ecmo
FROM facility_reports
WHERE report_day >= %(first)s AND report_day <= %(last)s AND facility_id = ANY(%(ids)s::bigint[])
"""


@dataclass(frozen=True, slots=True)
class FacilityRef:
    """A facility as the registry knows it."""

    id: int
    code: str
    name: str
    parent_id: int | None
    province_code: str | None


@dataclass(slots=True)
class FacilityFigures:
    """Everything a facility contributes to the reports of one day (live)."""

    facility_id: int
    code: str
    name: str
    parent_id: int | None
    province_code: str | None
    reported: bool = False
    on_time: bool = False
    late: bool = False
    monitored: bool = False
    patients_current: int | None = None
    patients_new: int | None = None
    discharged: int | None = None  # morning update + 16:00 report
    on_oxygen: dict[str, int] = field(default_factory=dict)
    refilled_liquid_kg: float | None = None
    refilled_gas_nm3: float | None = None
    stock_liquid_kg: float | None = None
    usable_liquid_kg: float | None = None
    stock_gas_nm3: float | None = None
    capacity_nm3: float | None = None
    registry_capacity_nm3: float | None = None
    avg_need_nm3: float | None = None
    estimated_need_nm3: float | None = None
    consumption_kg: float | None = None
    days_of_supply: float | None = None
    status: Status = Status.UNKNOWN
    leak: bool = False
    sources: dict[str, str] = field(default_factory=dict)
    # Why a figure is null: "no_telemetry", "calibration_missing" or "not_reported" per name.
    unknown: dict[str, str] = field(default_factory=dict)
    days_of_supply_beyond: bool = False  # at the horizon: shown as "> N" days
    warnings: list[StoredWarning] = field(default_factory=list)  # confirmed, as stored
    notes: str | None = None
    # Monitored tanks, and how many of them have data in the window: when only some do, the
    # figures measured on the tanks stand for those alone and are listed in `incomplete`.
    monitored_tanks: int = 0
    observed_tanks: int = 0
    incomplete: list[str] = field(default_factory=list)

    @classmethod
    def stored(cls, d: Mapping[str, Any]) -> FacilityFigures:
        """The figures as a snapshot stored them (`as_dict`); a figure the copy lacks (stored
        before it existed) takes its default, a name no longer known is left out."""
        kw = {k: v for k, v in d.items() if k in _FIGURE_FIELDS and k != "status"}
        return cls(**kw, status=Status(d.get("status", Status.UNKNOWN)))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (its containers copied one level: their items are plain values).

        Not `dataclasses.asdict`: its recursive deep copy took 1.9 s of the BYT map page's 3 s
        with 2,000 facilities (bench/web_pages.py --facilities 2000)."""
        d = {name: _copied(getattr(self, name)) for name in _FIGURE_FIELDS}
        d["status"] = self.status.value
        return d


def _copied(value: Any) -> Any:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return [dict(v) if isinstance(v, dict) else v for v in value]
    return value


_FIGURE_FIELDS = tuple(f.name for f in fields(FacilityFigures))


def known_sum(values: Sequence[float | int | None]) -> tuple[float | None, int]:
    """(sum of the known values, how many are known); the sum is None when none is known."""
    known = [v for v in values if v is not None]
    return (sum(known) if known else None), len(known)


def resolve(
    ref: FacilityRef,
    row: dict[str, Any] | None,
    tele: FacilityTelemetry | None,
    cfg: AccountingConfig,
    history_kg: Sequence[float] = (),
) -> FacilityFigures:
    """Merge one facility's report row (may be None) with its telemetry into live figures."""
    m3_per_kg = 1.0 / cfg.reference.gas_density  # computed once: called for every facility
    f = FacilityFigures(ref.id, ref.code, ref.name, ref.parent_id, ref.province_code)
    monitored = tele is not None and tele.monitored_tanks > 0
    f.monitored = monitored
    r = row or {}
    if row is not None and row["submitted_at"] is not None:
        f.reported = True
        f.late = bool(row["late"])
        f.on_time = not f.late
        f.patients_current = r["patients_current"]
        f.patients_new = r["patients_new"]
        dm, de = r["discharged_morning"], r["discharged_evening"]
        f.discharged = None if dm is None and de is None else (dm or 0) + (de or 0)
        f.on_oxygen = {key: int(r[c] or 0) for key, c in _THERAPY_KEYS}
        f.notes = r["notes"]
        f.warnings = list(r["warnings"] or [])

    def pick(name: str, entered: float | None, derived: float | None, src: str) -> float | None:
        if entered is not None:
            f.sources[name] = "override" if name in (r.get("overrides") or {}) else "entered"
            return entered
        if derived is not None:
            f.sources[name] = src
        return derived

    t = tele
    pre = prefill(t, cfg.reference)
    f.refilled_liquid_kg = pick(
        "refilled_liquid", r.get("refilled_liquid_kg"), pre.refilled_liquid_kg, "telemetry"
    )
    f.refilled_gas_nm3 = pick("refilled_gas", r.get("refilled_gas_nm3"), None, "entered")
    f.stock_liquid_kg = pick(
        "stock_liquid", r.get("stock_liquid_kg"), pre.stock_liquid_kg, "telemetry"
    )
    if r.get("stock_liquid_kg") is not None:
        f.usable_liquid_kg = usable_after_override(
            r["stock_liquid_kg"], t.stock_kg if t else None, t.usable_kg if t else None
        )
    else:
        f.usable_liquid_kg = pre.usable_liquid_kg
    f.stock_gas_nm3 = pick("stock_gas", r.get("stock_gas_nm3"), None, "entered")
    f.registry_capacity_nm3 = pre.capacity_nm3
    f.capacity_nm3 = pick("capacity", r.get("capacity_nm3"), pre.capacity_nm3, "registry")
    if f.on_oxygen:
        patients = {therapy: f.on_oxygen.get(key, 0) for key, therapy in _THERAPY_BY_KEY}
        f.estimated_need_nm3 = need_m3_per_day(patients, cfg.flows_lpm)
    need, src = _need(r.get("avg_need_nm3"), pre.avg_need_nm3, f.estimated_need_nm3)
    if src == "entered":
        pick("avg_need", need, None, src)
    elif src is not None:
        f.sources["avg_need"] = src
    f.avg_need_nm3 = need
    f.consumption_kg = t.consumption_kg if t else None
    usable_nm3 = facility_gas_nm3(f.usable_liquid_kg, f.stock_gas_nm3, m3_per_kg)
    f.days_of_supply = days_of_supply(usable_nm3, need)
    f.status = status(f.days_of_supply, cfg.needs_more_days)
    f.days_of_supply_beyond = beyond_horizon(f.days_of_supply)
    _explain_unknown(f, t)
    _flag_silent_tanks(f, t)
    history = history_kg or (t.history_kg if t else ())
    if f.consumption_kg is not None and history:
        f.leak = is_leak(f.consumption_kg, history, cfg)
    return f


def _need(
    entered: float | None, telemetry: float | None, estimate: float | None
) -> tuple[float | None, str | None]:
    """The average daily need and where it comes from: entered, else the tanks' telemetry, else
    the estimate from patients by therapy (the one rule of `resolve` and `need_nm3`)."""
    for value, src in ((entered, "entered"), (telemetry, "telemetry"), (estimate, "estimate")):
        if value is not None:
            return value, src
    return None, None


def need_nm3(
    row: dict[str, Any] | None, tele: FacilityTelemetry | None, cfg: AccountingConfig
) -> float | None:
    """`resolve(...).avg_need_nm3` alone: what the national demand sums, without the rest of
    the figures (the 7-day chart asks it of every facility on every day). The estimate from
    patients is worked out only when neither an entered figure nor telemetry gives the need."""
    entered = row.get("avg_need_nm3") if row is not None else None
    telemetry = prefill(tele, cfg.reference).avg_need_nm3 if entered is None else None
    estimate = None
    reported = row is not None and row["submitted_at"] is not None
    if entered is None and telemetry is None and row is not None and reported:
        patients = {t: int(row[THERAPY_COLUMNS[t]] or 0) for _k, t in _THERAPY_BY_KEY}
        estimate = need_m3_per_day(patients, cfg.flows_lpm)
    return _need(entered, telemetry, estimate)[0]


def _flag_silent_tanks(f: FacilityFigures, t: FacilityTelemetry | None) -> None:
    """With only some monitored tanks reporting, flag the figures measured on the tanks (never
    one staff entered): they sum the reporting tanks, not the facility's whole stock."""
    if t is None:
        return
    f.monitored_tanks, f.observed_tanks = t.monitored_tanks, t.observed_tanks
    if not 0 < t.observed_tanks < t.monitored_tanks:
        return
    for name, value in (
        ("stock_liquid", f.stock_liquid_kg),
        ("refilled_liquid", f.refilled_liquid_kg),
    ):
        if value is not None and f.sources.get(name) == "telemetry":
            f.incomplete.append(name)
    if f.consumption_kg is not None:
        f.incomplete.append("consumption")
    if f.days_of_supply is not None and f.sources.get("stock_liquid") == "telemetry":
        f.incomplete.append("days_of_supply")


def _explain_unknown(f: FacilityFigures, t: FacilityTelemetry | None) -> None:
    """Record why each null figure is null (reported figures, telemetry figures)."""
    tele_reason = (
        (t.unknown or Unknown.NO_TELEMETRY.value) if f.monitored and t else Unknown.NOT_REPORTED
    )
    for name, value in (
        ("patients_current", f.patients_current),
        ("patients_new", f.patients_new),
        ("discharged", f.discharged),
        ("refilled_gas", f.refilled_gas_nm3),
        ("stock_gas", f.stock_gas_nm3),
    ):
        if value is None and not f.reported:
            f.unknown[name] = Unknown.NOT_REPORTED.value
    for name, value in (
        ("refilled_liquid", f.refilled_liquid_kg),
        ("stock_liquid", f.stock_liquid_kg),
        ("consumption", f.consumption_kg),
    ):
        if value is None:
            f.unknown[name] = str(tele_reason)
    if f.avg_need_nm3 is None:
        f.unknown["avg_need"] = str(tele_reason)
    if f.days_of_supply is None:
        f.unknown["days_of_supply"] = f.unknown.get("stock_liquid") or f.unknown.get(
            "avg_need", str(tele_reason)
        )


async def active_facilities(
    conn: AsyncConnection[Any],
    day: date,
    *,
    parents: Sequence[int] | None,
    visible: frozenset[int] | None,
    ids: Sequence[int] | None = None,
) -> list[FacilityRef]:
    """Facilities active on `day` under the reporting parents, inside the caller's scope."""
    return (await _active_between(conn, day, day, parents=parents, visible=visible, ids=ids))[day]


async def _active_between(
    conn: AsyncConnection[Any],
    first: date,
    last: date,
    *,
    parents: Sequence[int] | None,
    visible: frozenset[int] | None,
    ids: Sequence[int] | None = None,
) -> dict[date, list[FacilityRef]]:
    """Per day of first..last, the facilities active that day (in code order)."""
    cur = await conn.execute(
        ACTIVE_FACILITIES,
        {
            "first": first,
            "last": last,
            "parents": list(parents) if parents is not None else None,
            "scope_national": visible is None,
            "scope_facilities": sorted(visible or ()),
            "ids": list(ids) if ids is not None else None,
        },
    )
    spans = [
        (FacilityRef(int(r[0]), r[1], r[2], r[3], r[4]), r[5], r[6]) for r in await cur.fetchall()
    ]
    out: dict[date, list[FacilityRef]] = {}
    for d in (first + timedelta(days=i) for i in range((last - first).days + 1)):
        out[d] = [
            ref for ref, since, until in spans if since <= d and (until is None or until >= d)
        ]
    return out


async def figures_for(
    conn: AsyncConnection[Any],
    refs: Sequence[FacilityRef],
    day: date,
    cfg: AccountingConfig,
    *,
    source: Source = Source.STORED,
    now: datetime | None = None,
) -> list[FacilityFigures]:
    """Live figures of the facilities for report day D."""
    ids = [r.id for r in refs]
    if not ids:
        return []
    rows = await _reports(conn, ids, day, day)
    tele = await facility_telemetry(conn, ids, day, cfg, source=source, now=now)
    return [resolve(ref, rows.get((ref.id, day)), tele.get(ref.id), cfg) for ref in refs]


async def needs_over_days(
    conn: AsyncConnection[Any],
    first: date,
    last: date,
    cfg: AccountingConfig,
    *,
    visible: frozenset[int] | None,
    now: datetime | None = None,
) -> dict[date, list[float | None]]:
    """Per day of first..last, the average daily need (`need_nm3`) of each facility active that
    day in the caller's scope, in code order, as `figures_for(active_facilities(day), day)`
    would give them — set-based: the facilities, their reports and their tanks' windows are
    read once for the whole span (the BYT map page's 7-day chart)."""
    refs = await _active_between(conn, first, last, parents=None, visible=visible)
    ids = sorted({r.id for day_refs in refs.values() for r in day_refs})
    if not ids:
        return {d: [] for d in refs}
    rows = await _reports(conn, ids, first, last, NEED_INPUTS_OF_DAYS)
    tele = await facility_telemetry_days(conn, ids, list(refs), cfg, now=now)
    return {
        d: [need_nm3(rows.get((ref.id, d)), tele[d].get(ref.id), cfg) for ref in day_refs]
        for d, day_refs in refs.items()
    }


async def _reports(
    conn: AsyncConnection[Any],
    ids: Sequence[int],
    first: date,
    last: date,
    query: str = REPORTS_OF_DAYS,
) -> dict[tuple[int, date], dict[str, Any]]:
    """The facilities' report rows of first..last by (facility, day)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, {"first": first, "last": last, "ids": list(ids)})
        return {(int(r["facility_id"]), r["report_day"]): r for r in await cur.fetchall()}


def is_late(submitted_at: datetime, day: date, cfg: AccountingConfig) -> bool:
    """Whether a report filed at `submitted_at` missed the deadline of day D."""
    return submitted_at > deadline(day, cfg)
