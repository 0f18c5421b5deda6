"""Simulated tanks with known truth: registry rows, 1-minute DP readings, the true figures.

Used by the ground-truth tests, the benchmark and demos. The true contents follow a draw profile
and scheduled refills; readings are the DP that the tank's calibration table shows for the true
contents plus gauge noise (oxy.calibration.vertical_tank_table and its inverse).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from oxy.calibration import CalibrationTable, vertical_tank_table


@dataclass(frozen=True, slots=True)
class PlannedRefill:
    """A tanker delivery: start time, minutes of pumping and kg delivered."""

    at: datetime
    minutes: int
    amount_kg: float


@dataclass(frozen=True, slots=True)
class TankPlan:
    """A simulated tank: geometry, starting contents, daily draw and refills."""

    capacity_kg: float
    diameter_m: float
    start_kg: float
    draw_kg_per_day: float
    refills: Sequence[PlannedRefill] = ()
    noise_inh2o: float = 0.05
    # Draw is higher by day than by night (±amplitude of the mean), as in a hospital.
    diurnal: float = 0.3
    gaps: Sequence[tuple[datetime, datetime]] = field(default_factory=tuple)
    # Extra draw (kg/day) over periods: a leak, or a surge of patients.
    extra: Sequence[tuple[datetime, datetime, float]] = field(default_factory=tuple)

    def table(self) -> CalibrationTable:
        """The tank's strapping table."""
        return vertical_tank_table(self.capacity_kg, self.diameter_m)


def draw_rate(plan: TankPlan, ts: datetime) -> float:
    """True draw in kg/min at `ts` (UTC); peaks at 14:00 local (07:00 UTC)."""
    hour = ts.hour + ts.minute / 60.0
    extra = sum(kg for a, b, kg in plan.extra if a <= ts < b) / 1440.0
    return extra + (
        plan.draw_kg_per_day
        / 1440.0
        * (1.0 + plan.diurnal * math.cos((hour - 7.0) / 24 * 2 * math.pi))
    )


def true_series(plan: TankPlan, start: datetime, end: datetime) -> Iterator[tuple[datetime, float]]:
    """The true contents every minute over [start, end), clamped to the tank."""
    kg = plan.start_kg
    ts = start
    step = timedelta(minutes=1)
    while ts < end:
        yield ts, kg
        kg -= draw_rate(plan, ts)
        for r in plan.refills:
            if r.at <= ts < r.at + timedelta(minutes=r.minutes):
                kg += r.amount_kg / r.minutes
        kg = min(max(kg, 0.0), plan.capacity_kg)
        ts += step


def true_consumption(plan: TankPlan, start: datetime, end: datetime) -> float:
    """Integral of the draw over [start, end), kg (minute steps, as the series)."""
    total = 0.0
    ts = start
    while ts < end:
        total += draw_rate(plan, ts)
        ts += timedelta(minutes=1)
    return total


def readings(
    plan: TankPlan, sensor_id: int, start: datetime, end: datetime, seed: int = 0
) -> Iterator[tuple[int, datetime, float, int]]:
    """(sensor_id, ts, dp_inh2o, quality) rows: the DP showing the true contents, plus noise."""
    rnd = random.Random(seed)
    table = plan.table()
    for ts, kg in true_series(plan, start, end):
        if any(a <= ts < b for a, b in plan.gaps):
            continue
        dp = max(0.0, table.dp_for(kg) + rnd.gauss(0.0, plan.noise_inh2o))
        yield sensor_id, ts, dp, 0


async def add_facility(
    conn: AsyncConnection[Any],
    code: str,
    parent_id: int,
    province_code: str,
    *,
    active_from: str = "2020-01-01",
    active_to: str | None = None,
) -> int:
    """Insert a facility organisation under a reporting parent; return its id."""
    cur = await conn.execute(
        "INSERT INTO organisations (code, kind, name, province_code, parent_id) "
        "VALUES (%s, 'facility', %s, %s, %s) RETURNING id",
        (code, f"Bệnh viện {code}", province_code, parent_id),
    )
    row = await cur.fetchone()
    assert row is not None
    await conn.execute(
        "INSERT INTO facilities (org_id, active_from, active_to) VALUES (%s, %s, %s)",
        (row[0], active_from, active_to),
    )
    return int(row[0])


async def add_tank(
    conn: AsyncConnection[Any],
    facility_id: int,
    code: str,
    plan: TankPlan,
    *,
    valid_from: datetime,
    min_usable_kg: float = 0.0,
    monitored: bool = True,
) -> tuple[int, int | None]:
    """Insert a tank, its calibration (version 1) and, if monitored, a gateway and DP sensor."""
    cur = await conn.execute(
        "INSERT INTO tanks (facility_id, code, name, capacity_kg, diameter_m, min_usable_kg) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (facility_id, code, code, plan.capacity_kg, plan.diameter_m, min_usable_kg),
    )
    row = await cur.fetchone()
    assert row is not None
    tank_id = int(row[0])
    await add_calibration(conn, tank_id, plan.table(), valid_from, version=1)
    if not monitored:
        return tank_id, None
    cur = await conn.execute(
        "INSERT INTO gateways (facility_id, code) VALUES (%s, %s) "
        "ON CONFLICT (code) DO UPDATE SET code = EXCLUDED.code RETURNING id",
        (facility_id, f"gw-{facility_id}"),
    )
    gw = await cur.fetchone()
    assert gw is not None
    cur = await conn.execute(
        "INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit) "
        "VALUES (%s, %s, %s, 'dp', 'inH2O') RETURNING id",
        (gw[0], f"{code}-dp", tank_id),
    )
    s = await cur.fetchone()
    assert s is not None
    return tank_id, int(s[0])


async def add_calibration(
    conn: AsyncConnection[Any],
    tank_id: int,
    table: CalibrationTable,
    valid_from: datetime,
    *,
    version: int,
) -> int:
    """Insert a calibration version with its points; return its id."""
    cur = await conn.execute(
        "INSERT INTO tank_calibrations (tank_id, version, valid_from) VALUES (%s, %s, %s) "
        "RETURNING id",
        (tank_id, version, valid_from),
    )
    row = await cur.fetchone()
    assert row is not None
    async with conn.cursor() as c:
        await c.executemany(
            "INSERT INTO calibration_points (calibration_id, dp_inh2o, contents_kg) "
            "VALUES (%s, %s, %s)",
            [(row[0], dp, kg) for dp, kg in zip(table.dp, table.kg, strict=True)],
        )
    return int(row[0])


async def copy_readings(
    conn: AsyncConnection[Any], rows: Iterator[tuple[int, datetime, float, int]]
) -> int:
    """COPY reading rows into `readings`; return how many."""
    n = 0
    async with (
        conn.cursor() as cur,
        cur.copy("COPY readings (sensor_id, ts, value, quality) FROM STDIN") as cp,
    ):
        for row in rows:
            await cp.write_row(row)
            n += 1
    return n


async def refresh_rollups(
    conn: AsyncConnection[Any], sensor_id: int, start: datetime, end: datetime
) -> None:
    """Rebuild the ingest rollups of a sensor (what the ingest writer does on every batch)."""
    await conn.execute("SELECT rollup_recompute(%s, %s, %s)", (sensor_id, start, end))
