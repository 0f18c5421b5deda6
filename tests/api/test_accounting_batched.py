"""The accounting windows of many tanks computed set-based (api.accounting.telemetry
`tanks_figures`, `_store`) and the refill fits memoized on their exact readings
(api.accounting.series `_REFINED`): the figures equal one tank at a time and a computation from
the raw readings, and rounds of an open window — a refill crossing the round, a late reading, a
correction — equal a computation with nothing remembered."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from api.accounting import corrections as corr
from api.accounting import series
from api.accounting.config import AccountingConfig
from api.accounting.series import WindowFigures
from api.accounting.simulate import (
    PlannedRefill,
    TankPlan,
    add_facility,
    add_tank,
    copy_readings,
    readings,
    refresh_rollups,
)
from api.accounting.telemetry import (
    Source,
    calibrations,
    compute_windows,
    ensure_windows,
    level_sensors,
    tanks_figures,
)
from api.accounting.windows import days, window

CFG = AccountingConfig.defaults()
D = date(2026, 3, 13)
FIRST = D - timedelta(days=2)
W = window(D, CFG)
# The refill of the open window D: it starts at 10:00 local and pumps for an hour.
REFILL_AT = W.start + timedelta(hours=18)
START = window(FIRST, CFG).start - timedelta(hours=4)


def _plan(draw: float, refill_at: datetime | None) -> TankPlan:
    return TankPlan(
        capacity_kg=20000.0,
        diameter_m=2.5,
        start_kg=9000.0,
        draw_kg_per_day=draw,
        refills=(PlannedRefill(refill_at, 60, 7000.0),) if refill_at else (),
    )


async def _tank(
    conn: psycopg.AsyncConnection[Any], code: str, plan: TankPlan, end: datetime, *, seed: int
) -> tuple[int, int]:
    cur = await conn.execute("SELECT id FROM organisations WHERE code = 'SYT-01'")
    row = await cur.fetchone()
    assert row
    fac = await add_facility(conn, f"BV-B{code}", int(row[0]), "01")
    tank, sensor = await add_tank(conn, fac, "T1", plan, valid_from=START - timedelta(days=30))
    assert sensor is not None
    await copy_readings(conn, readings(plan, sensor, START, end, seed=seed))
    return tank, sensor


async def _dp_at(conn: psycopg.AsyncConnection[Any], sensor: int, ts: datetime) -> float:
    cur = await conn.execute(
        "SELECT value FROM readings WHERE sensor_id = %s AND ts = %s", (sensor, ts)
    )
    row = await cur.fetchone()
    assert row
    return float(row[0])


def _run(url: str, body: Callable[[psycopg.AsyncConnection[Any]], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("SET TIME ZONE 'UTC'")
            return await body(conn)

    return asyncio.run(go())


def _forget() -> None:
    with series._REFINED_LOCK:
        series._REFINED.clear()


async def _fresh(
    conn: psycopg.AsyncConnection[Any], tanks: list[int], first: date, last: date
) -> dict[tuple[int, date], WindowFigures]:
    """Figures from the raw readings with nothing remembered."""
    _forget()
    figs, _ = await compute_windows(conn, tanks, first, last, CFG, source=Source.RAW)
    return figs


def test_a_batch_equals_one_tank_at_a_time_and_the_raw_readings(db_url: str) -> None:
    """Four tanks in one batch: a plain one with a refill, one with an active correction (raw
    readings with the overlay), one whose rollups nobody maintains (raw), a silent one."""
    now = W.start + timedelta(hours=22)

    async def body(conn: psycopg.AsyncConnection[Any]) -> Any:
        plain, s_plain = await _tank(conn, "P", _plan(1200.0, REFILL_AT), now, seed=1)
        fixed, s_fixed = await _tank(conn, "C", _plan(900.0, REFILL_AT), now, seed=2)
        bare, _ = await _tank(conn, "R", _plan(700.0, None), now, seed=3)
        silent, _ = await _tank(conn, "S", _plan(500.0, None), START, seed=4)
        for s in (s_plain, s_fixed):
            await refresh_rollups(conn, s, START, now)
        await corr.create(
            conn,
            sensor_id=s_fixed,
            ts_from=W.start + timedelta(hours=3),
            ts_to=W.start + timedelta(hours=4),
            action=corr.CorrectionAction.INVALIDATE,
            value=None,
            reason="gauge fault",
            author="eng",
            cfg=CFG,
        )
        tanks = [plain, fixed, bare, silent]
        sensors = await level_sensors(conn, tanks)
        cals = await calibrations(conn, tanks)
        wins = [window(d, CFG) for d in days(FIRST, D)]
        _forget()
        batch = await tanks_figures(conn, sensors, cals, dict.fromkeys(tanks, wins), CFG)
        _forget()
        one = {t: (await tanks_figures(conn, sensors, cals, {t: wins}, CFG))[t] for t in tanks}
        stored = await ensure_windows(conn, tanks, FIRST, D, CFG, now=now)
        raw = await _fresh(conn, tanks, FIRST, D)
        return tanks, batch, one, stored, raw

    tanks, batch, one, stored, raw = _run(db_url, body)
    assert batch == one
    assert stored == raw
    plain, fixed, _bare, silent = tanks
    assert batch[plain][1], "the refill of the open window is found"
    assert raw[(plain, D)].refills == 1 and raw[(fixed, D)].refills == 1
    assert raw[(silent, D)].coverage == 0.0 and raw[(plain, D)].coverage > 0.5


def test_rounds_of_an_open_window_equal_a_computation_with_nothing_remembered(
    db_url: str,
) -> None:
    """The open window recomputed round after round (as the alert round and the windows-ahead
    job do): mid-refill, after it (the refill crossing the round), again with no change (the
    remembered fit used), after a late reading inside the refill and after a correction of it."""
    mid = REFILL_AT + timedelta(minutes=30)
    after = REFILL_AT + timedelta(hours=3)
    fresh = timedelta(seconds=0)  # every round recomputes, as a stale open window is
    plan = _plan(1500.0, REFILL_AT)

    async def body(conn: psycopg.AsyncConnection[Any]) -> Any:
        _forget()
        tank, sensor = await _tank(conn, "O", plan, mid, seed=5)
        await refresh_rollups(conn, sensor, START, mid)
        out: list[tuple[str, WindowFigures, WindowFigures, int]] = []

        async def round_at(name: str, now: datetime) -> None:
            before = len(series._REFINED)
            got = await ensure_windows(conn, [tank], D, D, CFG, now=now, fresh=fresh)
            fitted = len(series._REFINED) - before  # fits not found remembered
            want = await _fresh(conn, [tank], D, D)
            # Warm the memory again as the round left it, for the next round.
            await ensure_windows(conn, [tank], D, D, CFG, now=now, fresh=fresh)
            out.append((name, got[(tank, D)], want[(tank, D)], fitted))

        await round_at("mid-refill", mid + timedelta(seconds=5))
        await copy_readings(
            conn,
            (
                (s, ts, v, q)
                for s, ts, v, q in readings(plan, sensor, START, after, seed=5)
                if ts >= mid
            ),
        )
        await refresh_rollups(conn, sensor, mid - timedelta(hours=1), after)
        await round_at("refill ended", after + timedelta(seconds=5))
        await round_at("no change", after + timedelta(seconds=65))
        # A late reading (a replayed outbox) in the middle of the refill, well off the line.
        late = REFILL_AT + timedelta(minutes=20, seconds=30)
        await conn.execute(
            "INSERT INTO readings (sensor_id, ts, value, quality) "
            "SELECT sensor_id, %s, value + 3, 0 FROM readings WHERE sensor_id = %s AND ts = %s",
            (late, sensor, REFILL_AT + timedelta(minutes=20)),
        )
        await refresh_rollups(conn, sensor, REFILL_AT, after)
        await round_at("late reading", after + timedelta(seconds=125))
        await corr.create(
            conn,
            sensor_id=sensor,
            ts_from=REFILL_AT + timedelta(minutes=10),
            ts_to=REFILL_AT + timedelta(minutes=25),
            action=corr.CorrectionAction.REPLACE,  # the same times, other values
            value=(await _dp_at(conn, sensor, REFILL_AT + timedelta(minutes=10))) + 2.0,
            reason="gauge read low",
            author="eng",
            cfg=CFG,
        )
        await round_at("correction", after + timedelta(seconds=185))
        return out

    out = _run(db_url, body)
    for name, got, want, _n in out:
        assert got == want, name
    by = {name: (got, n) for name, got, _want, n in out}
    # The refill crosses the round: half of it seen mid-way, the whole of it after.
    assert by["mid-refill"][0].refilled_kg < 4500 < 6500 < by["refill ended"][0].refilled_kg
    assert by["refill ended"][0].refills == 1
    # The round with no new reading found every fit remembered (none made); the refill ending,
    # the late reading and the correction changed the refill's readings: a new fit each.
    assert by["no change"][1] == 0
    assert by["refill ended"][1] >= 1
    assert by["late reading"][1] >= 1
    assert by["correction"][1] >= 1
    assert by["late reading"][0] != by["refill ended"][0]
