"""BYT national view: per reporting parent (province SYT or ministry health office) and nation.

Every row is the sum of its facilities' live figures, and the nation is the sum of the rows, so
the totals agree at every level by construction (the property tests check it). Expected
facilities are those active on D; on time means filed before the deadline (setting).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
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
SELECT id, code, name, kind, province_code FROM organisations WHERE id = ANY(%(ids)s)
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


def _capacity(r: dict[str, Any]) -> tuple[float | None, float | None, str, str | None]:
    """(normal, full, source, as-of day) of one supplier's capacity: today's report, else its
    last report, else the registry; `unknown` when none gives a figure."""
    if r["reported"] and (r["t_normal"] is not None or r["t_full"] is not None):
        return r["t_normal"], r["t_full"], "report", None
    if r["l_day"] is not None:
        return r["l_normal"], r["l_full"], "last_report", r["l_day"].isoformat()
    if r["r_normal"] is not None or r["r_full"] is not None:
        return r["r_normal"], r["r_full"], "registry", None
    return None, None, "unknown", None


class Grouping(StrEnum):
    """Rows of the national view: by reporting parent (SYT / ministry office) or by location."""

    PARENT = "parent"
    LOCATION = "location"


def totals(figs: Sequence[FacilityFigures], cfg: AccountingConfig) -> dict[str, Any]:
    """The summable figures of a set of facilities (and the derived days of supply, status)."""
    m3_per_kg = 1.0 / cfg.reference.gas_density
    rep = [f for f in figs if f.reported]
    reported = {
        "patients_current": known_sum([f.patients_current for f in rep]),
        "patients_new": known_sum([f.patients_new for f in rep]),
        "discharged": known_sum([f.discharged for f in rep]),
        "on_oxygen": known_sum([sum(f.on_oxygen.values()) if f.on_oxygen else None for f in rep]),
        "refilled_liquid_kg": known_sum([f.refilled_liquid_kg for f in rep]),
        "refilled_gas_nm3": known_sum([f.refilled_gas_nm3 for f in rep]),
        "need_reported_nm3_per_day": known_sum([f.avg_need_nm3 for f in rep]),
    }
    # Stock, usable stock and need over every facility (reported or measured): a facility whose
    # figure is unknown is left out and counted (`contributors`), never added as 0; a sum of
    # nothing is unknown (None).
    measured = {
        "stock_nm3": known_sum(
            [facility_gas_nm3(f.stock_liquid_kg, f.stock_gas_nm3, m3_per_kg) for f in figs]
        ),
        "usable_nm3": known_sum(
            [facility_gas_nm3(f.usable_liquid_kg, f.stock_gas_nm3, m3_per_kg) for f in figs]
        ),
        "need_nm3_per_day": known_sum([f.avg_need_nm3 for f in figs]),
    }
    stock, usable, need = (measured[k][0] for k in ("stock_nm3", "usable_nm3", "need_nm3_per_day"))
    days = days_of_supply(usable, need)
    return {
        "expected": len(figs),
        "reported": len(rep),
        "on_time": sum(1 for f in rep if f.on_time),
        "not_reported": len(figs) - len(rep),
        **{k: v for k, (v, _n) in reported.items()},
        "stock_nm3": stock,
        "usable_nm3": usable,
        "need_nm3_per_day": need,
        "capacity_nm3": sum(f.registry_capacity_nm3 or 0.0 for f in figs),
        "needs_more": sum(1 for f in figs if f.status is Status.NEEDS_MORE),
        "leaks": sum(1 for f in figs if f.leak),
        "days_of_supply": days,
        "status": status(days, cfg.needs_more_days).value,
        # How many facilities each sum stands for (None above: no facility has the figure).
        "contributors": {k: n for k, (_v, n) in (reported | measured).items()},
    }


def _add(rows: Sequence[dict[str, Any]], cfg: AccountingConfig) -> dict[str, Any]:
    keys = (
        [
            k
            for k, v in rows[0].items()
            if (v is None or isinstance(v, int | float)) and k not in ("days_of_supply",)
        ]
        if rows
        else []
    )
    out: dict[str, Any] = {k: known_sum([r[k] for r in rows])[0] for k in keys}
    out["contributors"] = {
        k: sum(r["contributors"].get(k, 0) for r in rows)
        for k in (rows[0]["contributors"] if rows else {})
    }
    for k in (
        "expected",
        "reported",
        "on_time",
        "not_reported",
        "needs_more",
    ):
        out.setdefault(k, 0)
    days = days_of_supply(out.get("usable_nm3"), out.get("need_nm3_per_day"))
    out["days_of_supply"] = days
    out["status"] = status(days, cfg.needs_more_days).value
    return out


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
) -> dict[str, Any]:
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
        row = {
            "org_id": key if by is Grouping.PARENT else None,
            "code": p.get("code"),
            "name": p.get("name"),
            "kind": p.get("kind"),
            "province_code": p.get("province_code"),
            **totals(members, cfg),
        }
        if include_facilities:
            row["facilities"] = [f.as_dict() for f in members]
        rows.append(row)
    rows.sort(key=lambda r: (r["province_code"] or "99", r["code"] or ""))
    # No facility active on D (a deployment's first days, D before the registry): the same keys
    # as ever, every figure unknown, so the pages show "—" instead of failing on a missing key.
    nation = (
        _add([{k: v for k, v in r.items() if k not in ("org_id",)} for r in rows], cfg)
        if rows
        else totals([], cfg)
    )
    supply = await supply_figures(conn, day)
    need = nation.get("need_nm3_per_day")  # None when no facility has a need figure
    demand_t = None if need is None else cfg.reference.m3_to_kg(need) / 1000.0
    return {
        "report_day": day.isoformat(),
        "provinces": rows,
        "nation": nation,
        "supply": {**supply, "demand_t_per_day": demand_t},
        "units": unit_labels(cfg.reference),
    }


async def chart_days(
    conn: AsyncConnection[Any],
    first: date,
    last: date,
    *,
    visible: frozenset[int] | None,
    cfg: AccountingConfig,
    now: datetime | None = None,
) -> dict[date, dict[str, Any]]:
    """`national_view(conn, day, ...)["supply"]` (demand vs production vs capacity) of every
    day of first..last, without the rows and their totals, set-based: facilities, reports,
    windows and supplier reports are read once for the span (the BYT map page's 7-day chart;
    tests/web/test_supply_chart.py checks it against the national view of each day)."""
    needs = await needs_over_days(conn, first, last, cfg, visible=visible, now=now)
    supply = await supply_figures_days(conn, list(needs))
    out = {}
    for d, day_needs in needs.items():
        need, _n = known_sum(day_needs)
        demand_t = None if need is None else cfg.reference.m3_to_kg(need) / 1000.0
        out[d] = {**supply[d], "demand_t_per_day": demand_t}
    return out


async def supply_figures(conn: AsyncConnection[Any], day: date) -> dict[str, Any]:
    """National production today and capacity. Capacity counts every supplier: its report of
    the day, else its last report, else the registry (each supplier says which)."""
    return (await supply_figures_days(conn, [day]))[day]


async def supply_figures_days(
    conn: AsyncConnection[Any], report_days: Sequence[date]
) -> dict[date, dict[str, Any]]:
    """`supply_figures` of several days, in one query."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_SUPPLY, {"days": list(report_days)})
        rows = await cur.fetchall()
    by_day: dict[date, list[dict[str, Any]]] = {d: [] for d in report_days}
    for r in rows:
        by_day[r["day"]].append(r)
    return {d: _supply(day_rows) for d, day_rows in by_day.items()}


def _supply(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One day's supply figures from its supplier rows."""
    suppliers = []
    normal = full = 0.0
    sources: dict[str, int] = {"report": 0, "last_report": 0, "registry": 0, "unknown": 0}
    for r in rows:
        n, f, source, as_of = _capacity(r)
        sources[source] += 1
        normal += float(n or 0.0)
        full += float(f or 0.0)
        suppliers.append(
            {
                "supplier_id": r["org_id"],
                "code": r["code"],
                "reported": bool(r["reported"]),
                "production_t": None if r["production_t"] is None else float(r["production_t"]),
                "capacity_normal_t_per_day": None if n is None else float(n),
                "capacity_full_t_per_day": None if f is None else float(f),
                "capacity_source": source,
                "capacity_as_of": as_of,
            }
        )
    reported = [r for r in rows if r["reported"]]
    return {
        "supplier_reports": len(reported),
        "suppliers": len(rows),
        # Production is known only from the suppliers that reported today.
        "production_t": sum(float(r["production_t"] or 0.0) for r in reported),
        "capacity_normal_t_per_day": normal,
        "capacity_full_t_per_day": full,
        "capacity_sources": sources,
        "lox_stock_kg": sum(float(r["lox_stock_kg"] or 0.0) for r in reported),
        "by_supplier": suppliers,
    }
