"""BYT national view: per reporting parent (province SYT or ministry health office) and nation.

Every row is the sum of its facilities' live figures, and the nation is the sum of the rows, so
the totals agree at every level by construction (the property tests check it). Expected
facilities are those active on D; on time means filed before the deadline (setting).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from api.accounting.config import AccountingConfig
from api.accounting.stock import Status, days_of_supply, facility_gas_nm3, status
from api.accounting.telemetry import Source

from .figures import (
    FacilityFigures,
    active_facilities,
    figures_for,
    known_sum,
    needs_over_days,
)
from .units import unit_labels

_PARENTS = """
SELECT id, code, name, kind, province_code FROM organisations WHERE id = ANY(%(ids)s::bigint[])
"""
# Location provinces (for the map): the facility's own province, whoever it reports to.
_UNITS = """
SELECT code, code AS province_code, name, 'province' AS kind FROM admin_units
WHERE code = ANY(%(codes)s)
"""
# Every supplier with today's report, its last earlier report giving a capacity, and the
# registry's capacity: a supplier that did not report still counts (national capacity must not
# drop because a supplier was silent), marked with where its figure comes from.
_SUPPLY = """
SELECT d.day, s.org_id, o.code,
       t.supplier_id IS NOT NULL AS reported, t.production_t, t.lox_stock_kg,
       t.capacity_normal_tpd AS t_normal, t.capacity_full_tpd AS t_full,
       l.report_day AS l_day, l.capacity_normal_tpd AS l_normal, l.capacity_full_tpd AS l_full,
       s.capacity_normal_tpd AS r_normal, s.capacity_full_tpd AS r_full
FROM unnest(%(days)s::date[]) AS d (day)
CROSS JOIN suppliers s JOIN organisations o ON o.id = s.org_id
LEFT JOIN supplier_reports t ON t.supplier_id = s.org_id AND t.report_day = d.day
LEFT JOIN LATERAL (
    SELECT r.report_day, r.capacity_normal_tpd, r.capacity_full_tpd FROM supplier_reports r
    WHERE r.supplier_id = s.org_id AND r.report_day < d.day
      AND (r.capacity_normal_tpd IS NOT NULL OR r.capacity_full_tpd IS NOT NULL)
    ORDER BY r.report_day DESC LIMIT 1
) l ON true
ORDER BY d.day, o.code
"""


def _capacity(r: dict[str, Any]) -> tuple[float | None, float | None, str, date | None]:
    """(normal, full, source, as-of day) of one supplier's capacity: today's report, else its
    last report, else the registry; `unknown` when none gives a figure."""
    if r["reported"] and (r["t_normal"] is not None or r["t_full"] is not None):
        return r["t_normal"], r["t_full"], "report", None
    if r["l_day"] is not None:
        return r["l_normal"], r["l_full"], "last_report", r["l_day"]
    if r["r_normal"] is not None or r["r_full"] is not None:
        return r["r_normal"], r["r_full"], "registry", None
    return None, None, "unknown", None


@dataclass(frozen=True, slots=True, kw_only=True)
class Totals:
    """Summable figures of a set of facilities. A sum of nothing is None (unknown), and
    `contributors` says how many facilities each sum stands for."""

    expected: int
    reported: int
    on_time: int
    not_reported: int
    patients_current: int | None
    patients_new: int | None
    discharged: int | None
    on_oxygen: int | None
    refilled_liquid_kg: float | None
    refilled_gas_nm3: float | None
    need_reported_nm3_per_day: float | None
    stock_nm3: float | None
    usable_nm3: float | None
    need_nm3_per_day: float | None
    capacity_nm3: float | None
    needs_more: int
    leaks: int | None
    days_of_supply: float | None
    status: str
    contributors: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        """Its figures by name, shallow (a row of the exports, a body of the answer)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


# The figures of Totals summed over rows (counts and sums; days of supply and status derived).
_SUMMED = tuple(
    f.name for f in fields(Totals) if f.name not in ("days_of_supply", "status", "contributors")
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvinceTotals(Totals):
    """One reporting parent (or location province) of the national view."""

    org_id: int | None  # None: grouped by location
    code: str | None
    name: str | None
    kind: str | None
    province_code: str | None
    facilities: list[FacilityFigures] | None = None  # asked for (include_facilities) or None


@dataclass(frozen=True, slots=True)
class SupplierSupply:
    """A supplier's production and capacity for the day, and where the capacity comes from."""

    supplier_id: int
    code: str
    reported: bool
    production_t: float | None
    capacity_normal_t_per_day: float | None
    capacity_full_t_per_day: float | None
    capacity_source: str  # report, last_report, registry or unknown
    capacity_as_of: date | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Supply:
    """National production and capacity of a day; against demand when it is known."""

    supplier_reports: int
    suppliers: int
    production_t: float
    capacity_normal_t_per_day: float
    capacity_full_t_per_day: float
    capacity_sources: dict[str, int]
    lox_stock_kg: float
    by_supplier: list[SupplierSupply]
    demand_t_per_day: float | None = None  # the facilities' daily need; None: unknown


@dataclass(frozen=True, slots=True)
class NationalView:
    """The national view of a report day: its rows, the nation, supply and the units."""

    report_day: date
    provinces: list[ProvinceTotals]
    nation: Totals
    supply: Supply
    units: dict[str, str]


def _ints(values: Sequence[int | None]) -> tuple[int | None, int]:
    """`known_sum` of counts: an int, or None when none is known."""
    known = [v for v in values if v is not None]
    return (sum(known) if known else None), len(known)


class Grouping(StrEnum):
    """Rows of the national view: by reporting parent (SYT / ministry office) or by location."""

    PARENT = "parent"
    LOCATION = "location"


def totals(figs: Sequence[FacilityFigures], cfg: AccountingConfig) -> Totals:
    """The summable figures of a set of facilities (and the derived days of supply, status)."""
    m3_per_kg = 1.0 / cfg.reference.gas_density
    rep = [f for f in figs if f.reported]
    patients_current = _ints([f.patients_current for f in rep])
    patients_new = _ints([f.patients_new for f in rep])
    discharged = _ints([f.discharged for f in rep])
    on_oxygen = _ints([sum(f.on_oxygen.values()) if f.on_oxygen else None for f in rep])
    refilled_liquid = known_sum([f.refilled_liquid_kg for f in rep])
    refilled_gas = known_sum([f.refilled_gas_nm3 for f in rep])
    need_reported = known_sum([f.avg_need_nm3 for f in rep])
    # Stock, usable stock and need over every facility (reported or measured): a facility whose
    # figure is unknown is left out and counted (`contributors`), never added as 0; a sum of
    # nothing is unknown (None).
    stock = known_sum(
        [facility_gas_nm3(f.stock_liquid_kg, f.stock_gas_nm3, m3_per_kg) for f in figs]
    )
    usable = known_sum(
        [facility_gas_nm3(f.usable_liquid_kg, f.stock_gas_nm3, m3_per_kg) for f in figs]
    )
    need = known_sum([f.avg_need_nm3 for f in figs])
    days = days_of_supply(usable[0], need[0])
    return Totals(
        expected=len(figs),
        reported=len(rep),
        on_time=sum(1 for f in rep if f.on_time),
        not_reported=len(figs) - len(rep),
        patients_current=patients_current[0],
        patients_new=patients_new[0],
        discharged=discharged[0],
        on_oxygen=on_oxygen[0],
        refilled_liquid_kg=refilled_liquid[0],
        refilled_gas_nm3=refilled_gas[0],
        need_reported_nm3_per_day=need_reported[0],
        stock_nm3=stock[0],
        usable_nm3=usable[0],
        need_nm3_per_day=need[0],
        capacity_nm3=sum(f.registry_capacity_nm3 or 0.0 for f in figs),
        needs_more=sum(1 for f in figs if f.status is Status.NEEDS_MORE),
        leaks=sum(1 for f in figs if f.leak),
        days_of_supply=days,
        status=status(days, cfg.needs_more_days).value,
        # How many facilities each sum stands for (None above: no facility has the figure).
        contributors={
            "patients_current": patients_current[1],
            "patients_new": patients_new[1],
            "discharged": discharged[1],
            "on_oxygen": on_oxygen[1],
            "refilled_liquid_kg": refilled_liquid[1],
            "refilled_gas_nm3": refilled_gas[1],
            "need_reported_nm3_per_day": need_reported[1],
            "stock_nm3": stock[1],
            "usable_nm3": usable[1],
            "need_nm3_per_day": need[1],
        },
    )


def _add(rows: Sequence[Totals], cfg: AccountingConfig) -> Totals:
    """The rows' totals summed (the nation): every figure the sum of the rows' known ones."""
    summed: dict[str, Any] = {k: known_sum([getattr(r, k) for r in rows])[0] for k in _SUMMED}
    for k in ("expected", "reported", "on_time", "not_reported", "needs_more"):
        summed[k] = summed[k] or 0
    contributors = {k: sum(r.contributors.get(k, 0) for r in rows) for k in rows[0].contributors}
    days = days_of_supply(summed["usable_nm3"], summed["need_nm3_per_day"])
    return Totals(
        **summed,
        days_of_supply=days,
        status=status(days, cfg.needs_more_days).value,
        contributors=contributors,
    )


async def national_view(
    conn: AsyncConnection[Any],
    day: date,
    *,
    visible: frozenset[int] | None,
    cfg: AccountingConfig,
    now: datetime | None = None,
    source: Source = Source.STORED,
    include_facilities: bool = False,
    by: Grouping = Grouping.PARENT,
) -> NationalView:
    """Per reporting parent (or location province) and national figures for D, plus supply
    vs demand vs production capacity."""
    refs = await active_facilities(conn, day, parents=None, visible=visible)
    figs = await figures_for(conn, refs, day, cfg, source=source, now=now)
    groups: dict[Any, list[FacilityFigures]] = defaultdict(list)
    for f in figs:
        groups[f.parent_id if by is Grouping.PARENT else f.province_code].append(f)
    async with conn.cursor(row_factory=dict_row) as cur:
        if by is Grouping.PARENT:
            await cur.execute(_PARENTS, {"ids": [g for g in groups if g is not None]})
            heads = {r["id"]: r for r in await cur.fetchall()}
        else:
            await cur.execute(_UNITS, {"codes": [g for g in groups if g is not None]})
            heads = {r["code"]: r for r in await cur.fetchall()}
    rows = []
    for key, members in groups.items():
        p = heads.get(key, {})
        t = totals(members, cfg)
        rows.append(
            ProvinceTotals(
                **t.as_dict(),
                org_id=key if by is Grouping.PARENT else None,
                code=p.get("code"),
                name=p.get("name"),
                kind=p.get("kind"),
                province_code=p.get("province_code"),
                facilities=list(members) if include_facilities else None,
            )
        )
    rows.sort(key=lambda r: (r.province_code or "99", r.code or ""))
    # No facility active on D (a deployment's first days, D before the registry): every figure
    # unknown, so the pages show "—".
    nation = _add(rows, cfg) if rows else totals([], cfg)
    supply = await supply_figures(conn, day)
    need = nation.need_nm3_per_day  # None when no facility has a need figure
    demand_t = None if need is None else cfg.reference.m3_to_kg(need) / 1000.0
    return NationalView(
        report_day=day,
        provinces=rows,
        nation=nation,
        supply=replace(supply, demand_t_per_day=demand_t),
        units=unit_labels(cfg.reference),
    )


async def chart_days(
    conn: AsyncConnection[Any],
    first: date,
    last: date,
    *,
    visible: frozenset[int] | None,
    cfg: AccountingConfig,
    now: datetime | None = None,
) -> dict[date, Supply]:
    """`national_view(conn, day, ...).supply` (demand vs production vs capacity) of every
    day of first..last, without the rows and their totals, set-based: facilities, reports,
    windows and supplier reports are read once for the span (the BYT map page's 7-day chart;
    tests/web/test_supply_chart.py checks it against the national view of each day)."""
    needs = await needs_over_days(conn, first, last, cfg, visible=visible, now=now)
    supply = await supply_figures_days(conn, list(needs))
    out = {}
    for d, day_needs in needs.items():
        need, _n = known_sum(day_needs)
        demand_t = None if need is None else cfg.reference.m3_to_kg(need) / 1000.0
        out[d] = replace(supply[d], demand_t_per_day=demand_t)
    return out


async def supply_figures(conn: AsyncConnection[Any], day: date) -> Supply:
    """National production today and capacity. Capacity counts every supplier: its report of
    the day, else its last report, else the registry (each supplier says which)."""
    return (await supply_figures_days(conn, [day]))[day]


async def supply_figures_days(
    conn: AsyncConnection[Any], report_days: Sequence[date]
) -> dict[date, Supply]:
    """`supply_figures` of several days, in one query."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_SUPPLY, {"days": list(report_days)})
        rows = await cur.fetchall()
    by_day: dict[date, list[dict[str, Any]]] = {d: [] for d in report_days}
    for r in rows:
        by_day[r["day"]].append(r)
    return {d: _supply(day_rows) for d, day_rows in by_day.items()}


def _supply(rows: Sequence[dict[str, Any]]) -> Supply:
    """One day's supply figures from its supplier rows."""
    suppliers: list[SupplierSupply] = []
    normal = full = 0.0
    sources: dict[str, int] = {"report": 0, "last_report": 0, "registry": 0, "unknown": 0}
    for r in rows:
        n, f, source, as_of = _capacity(r)
        sources[source] += 1
        normal += float(n or 0.0)
        full += float(f or 0.0)
        suppliers.append(
            SupplierSupply(
                supplier_id=r["org_id"],
                code=r["code"],
                reported=bool(r["reported"]),
                production_t=None if r["production_t"] is None else float(r["production_t"]),
                capacity_normal_t_per_day=None if n is None else float(n),
                capacity_full_t_per_day=None if f is None else float(f),
                capacity_source=source,
                capacity_as_of=as_of,
            )
        )
    reported = [r for r in rows if r["reported"]]
    return Supply(
        supplier_reports=len(reported),
        suppliers=len(rows),
        # Production is known only from the suppliers that reported today.
        production_t=sum(float(r["production_t"] or 0.0) for r in reported),
        capacity_normal_t_per_day=normal,
        capacity_full_t_per_day=full,
        capacity_sources=sources,
        lox_stock_kg=sum(float(r["lox_stock_kg"] or 0.0) for r in reported),
        by_supplier=suppliers,
    )
