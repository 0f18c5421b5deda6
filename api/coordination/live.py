"""Live figures the coordination reads: facilities' stock and days of supply, suppliers' stock.

A facility's figures are the reports package's live figures (its report merged with telemetry)
for the report day that is open now; a supplier's are its latest supplier report, else the
registry's capacity. Nothing here writes when `source` is RAW (the suggestion endpoint).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from api.accounting.config import AccountingConfig
from api.accounting.telemetry import Source
from api.accounting.windows import last_complete_day
from api.reports.figures import FacilityFigures, active_facilities, figures_for


def open_day(now: datetime, cfg: AccountingConfig) -> date:
    """The report day whose window is open at `now` (the live day)."""
    return last_complete_day(now, cfg) + timedelta(days=1)


async def facility_figures(
    conn: AsyncConnection[Any],
    facility_ids: Sequence[int] | None,
    cfg: AccountingConfig,
    now: datetime,
    *,
    source: Source = Source.STORED,
) -> dict[int, FacilityFigures]:
    """Live figures of the facilities (all active facilities when `facility_ids` is None)."""
    day = open_day(now, cfg)
    refs = await active_facilities(
        conn,
        day,
        parents=None,
        visible=None if facility_ids is None else frozenset(facility_ids),
    )
    figs = await figures_for(conn, refs, day, cfg, source=source, now=now)
    return {f.facility_id: f for f in figs}


@dataclass(frozen=True, slots=True)
class FacilitySite:
    """Where a facility is and what its tanks can hold."""

    id: int
    code: str
    name: str
    province: str | None
    parent_id: int | None
    lat: float | None
    lon: float | None
    tank_capacity_kg: float  # 0 without LOX tanks


_SITES = """
SELECT o.id, o.code, o.name, o.province_code, o.parent_id, f.latitude, f.longitude,
       coalesce((SELECT sum(t.capacity_kg) FROM tanks t WHERE t.facility_id = o.id), 0)
FROM organisations o LEFT JOIN facilities f ON f.org_id = o.id
WHERE o.kind = 'facility' AND (%(ids)s::bigint[] IS NULL OR o.id = ANY(%(ids)s::bigint[]))
"""


async def facility_sites(
    conn: AsyncConnection[Any], ids: Sequence[int] | None
) -> dict[int, FacilitySite]:
    """Registry location and tank capacity of the facilities (all when `ids` is None)."""
    cur = await conn.execute(_SITES, {"ids": None if ids is None else list(ids)})
    return {
        int(r[0]): FacilitySite(
            int(r[0]),
            r[1],
            r[2],
            r[3],
            None if r[4] is None else int(r[4]),
            None if r[5] is None else float(r[5]),
            None if r[6] is None else float(r[6]),
            float(r[7]),
        )
        for r in await cur.fetchall()
    }


@dataclass(frozen=True, slots=True)
class SupplierSite:
    """A supplier's location and what it can ship, from its latest report or the registry."""

    id: int
    code: str
    name: str
    kind: str
    province: str | None
    lat: float | None
    lon: float | None
    stock_kg: float
    production_tpd: float
    report_day: date | None


_SUPPLIERS = """
SELECT o.id, o.code, o.name, s.supplier_kind, o.province_code, s.latitude, s.longitude,
       r.lox_stock_kg, coalesce(r.capacity_normal_tpd, s.capacity_normal_tpd::float8),
       r.production_t, r.report_day
FROM organisations o
JOIN suppliers s ON s.org_id = o.id
LEFT JOIN LATERAL (
    SELECT * FROM supplier_reports sr
    WHERE sr.supplier_id = o.id AND sr.report_day <= %(day)s
    ORDER BY sr.report_day DESC LIMIT 1
) r ON TRUE
WHERE o.kind = 'supplier' AND (%(province)s::text IS NULL OR o.province_code = %(province)s)
ORDER BY o.code
"""


async def supplier_sites(
    conn: AsyncConnection[Any], day: date, province: str | None
) -> list[SupplierSite]:
    """Suppliers (located in `province`, or all) with stock and daily production."""
    cur = await conn.execute(_SUPPLIERS, {"day": day, "province": province})
    out = []
    for r in await cur.fetchall():
        # Production: the normal capacity it reports (or the registry's), else what it produced.
        tpd = r[8] if r[8] is not None else r[9]
        out.append(
            SupplierSite(
                int(r[0]),
                r[1],
                r[2],
                r[3],
                r[4],
                None if r[5] is None else float(r[5]),
                None if r[6] is None else float(r[6]),
                float(r[7] or 0.0),
                float(tpd or 0.0),
                r[10],
            )
        )
    return out


def free_capacity_kg(site: FacilitySite | None, stock_kg: float | None) -> float:
    """What the facility's tanks can take now (unbounded without tanks: cylinders only)."""
    if site is None or site.tank_capacity_kg <= 0:
        return math.inf
    return max(0.0, site.tank_capacity_kg - (stock_kg or 0.0))
