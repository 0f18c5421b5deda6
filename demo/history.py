"""Eight days of simulated tank history for the demo, so charts, refills, averages and days of
supply are there the moment the demo starts; the live simulator then carries on from the tank
levels the history ends at.

It writes only for DP sensors that have no readings yet, so a second run changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from oxy.demo_seed import FACILITIES, DemoTank

logger = logging.getLogger(__name__)

HISTORY_DAYS = 8


def _plan(t: DemoTank, now: datetime) -> Any:
    """A TankPlan that ends near the tank's demo fill level at `now` (refills where needed)."""
    from api.accounting.simulate import PlannedRefill, TankPlan

    kg = t.fill * t.capacity_kg
    refills = []
    day_end = now
    for _ in range(HISTORY_DAYS):
        before = kg + t.daily_kg
        if before > 0.92 * t.capacity_kg:  # it cannot have held that much: a tanker came
            amount = round(0.55 * t.capacity_kg, -2)
            refills.append(PlannedRefill(day_end - timedelta(hours=13), 50, amount))
            before -= amount
        kg = before
        day_end -= timedelta(days=1)
    return TankPlan(
        capacity_kg=t.capacity_kg,
        diameter_m=t.diameter_m,
        start_kg=kg,
        draw_kg_per_day=t.daily_kg,
        refills=tuple(reversed(refills)),
        noise_inh2o=0.05,
    )


async def _backfill(db_url: str, now: datetime) -> int:
    from api.accounting.simulate import copy_readings, readings

    start = now - timedelta(days=HISTORY_DAYS)
    written = 0
    async with await AsyncConnection.connect(db_url, autocommit=True) as conn:
        for f in FACILITIES:
            for t in f.tanks:
                cur = await conn.execute(
                    "SELECT s.id FROM sensors s JOIN gateways g ON g.id = s.gateway_id "
                    "WHERE g.code = %s AND s.code = %s",
                    (f.gateway_code, f"{t.code}-dp"),
                )
                row = await cur.fetchone()
                if row is None:
                    continue
                sensor = int(row[0])
                cur = await conn.execute(
                    "SELECT 1 FROM readings WHERE sensor_id = %s LIMIT 1", (sensor,)
                )
                if await cur.fetchone():
                    continue
                plan = _plan(t, now)
                written += await copy_readings(conn, readings(plan, sensor, start, now))
                await conn.execute("SELECT rollup_recompute(%s, %s, %s)", (sensor, start, now))
    return written


def backfill_history(db_url: str, now: datetime | None = None) -> int:
    """Write the demo history if missing; return how many readings were written."""
    n = asyncio.run(_backfill(db_url, (now or datetime.now(UTC)).replace(second=0, microsecond=0)))
    if n:
        logger.info("demo history: %d readings over %d days", n, HISTORY_DAYS)
    return n
