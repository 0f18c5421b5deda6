"""The minute data around refills and window ends (api.accounting.telemetry `dense_series_many`):
read from the minute rollups where no correction touches a tank's intervals (at 1 Hz the raw
readings are 60 times the rows, at every recompute of an open window), from the raw readings
with the corrections overlay otherwise; intervals are read as whole minutes, so both give the
same points."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from api.accounting import corrections as corr
from api.accounting.config import AccountingConfig
from api.accounting.simulate import (
    TankPlan,
    add_facility,
    add_tank,
    copy_readings,
    refresh_rollups,
)
from api.accounting.telemetry import Source, calibrations, dense_series_many, level_sensors
from api.accounting.windows import window

CFG = AccountingConfig.defaults()
W = window(date(2026, 3, 13), CFG)
# Two hours of readings every 10 s around the window's start, drawing down.
START, END = W.start - timedelta(hours=1), W.start + timedelta(hours=1)
# Intervals that start and end inside minutes (the refill regions' bounds are readings' times).
IVS = [
    (W.start - timedelta(minutes=30, seconds=17), W.start + timedelta(minutes=1, seconds=5)),
    (W.start + timedelta(minutes=3, seconds=35), W.start + timedelta(minutes=31, seconds=5)),
]
PLAN = TankPlan(capacity_kg=20000.0, diameter_m=2.5, start_kg=9000.0, draw_kg_per_day=1000.0)


def _every_10_s(sensor: int) -> Iterator[tuple[int, datetime, float, int]]:
    ts, dp = START, PLAN.table().dp_for(PLAN.start_kg)
    while ts < END:
        yield sensor, ts, dp, 0
        ts, dp = ts + timedelta(seconds=10), dp - 0.001


Body = Callable[[psycopg.AsyncConnection[Any], int, int], Awaitable[Any]]


def _run(url: str, body: Body) -> Any:
    async def go() -> Any:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("SET TIME ZONE 'UTC'")
            cur = await conn.execute("SELECT id FROM organisations WHERE code = 'SYT-01'")
            row = await cur.fetchone()
            assert row
            fac = await add_facility(conn, "BV-DM", int(row[0]), "01")
            tank, sensor = await add_tank(
                conn, fac, "T1", PLAN, valid_from=START - timedelta(days=30)
            )
            assert sensor is not None
            await copy_readings(conn, _every_10_s(sensor))
            await refresh_rollups(conn, sensor, START, END)
            return await body(conn, tank, sensor)

    return asyncio.run(go())


async def _dense(
    conn: psycopg.AsyncConnection[Any], tank: int, source: Source = Source.STORED
) -> list[Any]:
    sensors = await level_sensors(conn, [tank])
    cals = await calibrations(conn, [tank])
    got = await dense_series_many(conn, sensors, cals, {tank: IVS}, source=source)
    return got[tank]


def test_minute_data_comes_from_the_rollups_and_equals_the_raw_readings(db_url: str) -> None:
    async def body(conn: psycopg.AsyncConnection[Any], tank: int, sensor: int) -> Any:
        stored, raw = await _dense(conn, tank), await _dense(conn, tank, Source.RAW)
        cur = await conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")
        row = await cur.fetchone()
        if row and row[0]:
            # The minute rollup is a real-time aggregate there: materialized, its rows stay
            # until the next refresh of the range, whatever happens to the readings.
            await conn.execute(
                "CALL refresh_continuous_aggregate('rollup_1m', %s::timestamptz, %s::timestamptz)",
                (START, END + timedelta(minutes=1)),
            )
        # What the stored path read was the rollups: without the raw readings it still has it.
        await conn.execute("DELETE FROM readings WHERE sensor_id = %s", (sensor,))
        return stored, raw, await _dense(conn, tank), await _dense(conn, tank, Source.RAW)

    stored, raw, rolled, gone = _run(db_url, body)
    # Whole minutes, 33 + 29 of them (the minute between the intervals is not read), the first
    # and last reading of each.
    assert len(stored) == 2 * 62
    assert stored == raw
    assert rolled == stored
    assert gone == []


def test_a_correction_sends_the_tank_to_the_raw_readings(db_url: str) -> None:
    bad = (W.start + timedelta(minutes=10), W.start + timedelta(minutes=20))

    async def body(conn: psycopg.AsyncConnection[Any], tank: int, sensor: int) -> Any:
        before = await _dense(conn, tank)
        await corr.create(
            conn,
            sensor_id=sensor,
            ts_from=bad[0],
            ts_to=bad[1],
            action=corr.CorrectionAction.INVALIDATE,
            value=None,
            reason="gauge fault",
            author="eng",
            cfg=CFG,
        )
        return before, await _dense(conn, tank), await _dense(conn, tank, Source.RAW)

    before, after, raw = _run(db_url, body)
    assert after == raw  # the overlay applied: the invalidated readings are gone
    assert not any(bad[0] <= p.ts <= bad[1] for p in after)
    assert any(bad[0] <= p.ts <= bad[1] for p in before)
