"""The accounting windows computed ahead by the API's periodic job (api.accounting.ahead): a round
stores every monitored tank's windows of D−12..D, pages then compute none, the open window is
reused while fresh, and corrections and late readings still reach the next load."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.accounting import corrections as corr
from api.accounting.ahead import LOCK, kept_fresh, windows_round
from api.accounting.config import AccountingConfig
from api.accounting.simulate import (
    PlannedRefill,
    TankPlan,
    add_facility,
    add_tank,
    copy_readings,
    readings,
    refresh_rollups,
)
from api.accounting.telemetry import FacilityTelemetry, Source, facility_telemetry, settles
from api.accounting.windows import days, window
from api.alerts.config import AlertSettings
from api.alerts.rules import Rule, evaluate_rules
from api.app import create_app
from api.deps import clock
from oxy.settings import Settings
from tests.api.conftest import World, login
from tests.fix_db import Seed, seeded

CFG = AccountingConfig.defaults()
D = date(2026, 3, 13)
NOW = window(D, CFG).start + timedelta(hours=20)  # 12:00 local on D: the window of D is open
FIRST = D - timedelta(days=12)
# Tank A's gateway has been offline for the last three hours (its outbox replays them later).
GAP = (NOW - timedelta(hours=3), NOW)


def _plan(refill_day: int, gaps: tuple[tuple[datetime, datetime], ...] = ()) -> TankPlan:
    at = window(FIRST + timedelta(days=refill_day), CFG).start + timedelta(hours=7)
    return TankPlan(
        capacity_kg=20000.0,
        diameter_m=2.5,
        start_kg=12000.0,
        draw_kg_per_day=1000.0,
        refills=(PlannedRefill(at, 45, 8000.0),),
        gaps=gaps,
    )


PLANS = (_plan(4, (GAP,)), _plan(8))
START = window(FIRST, CFG).start - timedelta(hours=4)


async def _country(
    conn: psycopg.AsyncConnection[Any], parent_code: str = "SYT-01"
) -> dict[str, Any]:
    """Two facilities with a monitored tank each, readings from D−12's window until NOW."""
    cur = await conn.execute("SELECT id FROM organisations WHERE code = %s", (parent_code,))
    row = await cur.fetchone()
    assert row
    out: dict[str, Any] = {"facs": [], "tanks": [], "sensors": []}
    for i, p in enumerate(PLANS):
        fac = await add_facility(conn, f"BV-AH{i}", int(row[0]), "01")
        tank, sensor = await add_tank(conn, fac, "T1", p, valid_from=START - timedelta(days=30))
        assert sensor is not None
        await copy_readings(conn, readings(p, sensor, START, NOW, seed=i))
        await refresh_rollups(conn, sensor, START, NOW)
        out["facs"].append(fac)
        out["tanks"].append(tank)
        out["sensors"].append(sensor)
    return out


async def _rows(conn: psycopg.AsyncConnection[Any]) -> dict[tuple[int, date], datetime]:
    cur = await conn.execute("SELECT tank_id, report_day, computed_at FROM tank_windows")
    return {(int(t), d): at for t, d, at in await cur.fetchall()}


async def _stored(
    conn: psycopg.AsyncConnection[Any], facs: list[int], now: datetime, cfg: AccountingConfig = CFG
) -> dict[int, FacilityTelemetry]:
    return await facility_telemetry(conn, facs, D, cfg, now=now)


async def _raw(conn: psycopg.AsyncConnection[Any], facs: list[int]) -> dict[int, FacilityTelemetry]:
    return await facility_telemetry(conn, facs, D, CFG, source=Source.RAW)


async def _arrive(
    conn: psycopg.AsyncConnection[Any], c: dict[str, Any], start: datetime, end: datetime
) -> None:
    """Both tanks' readings of [start, end) arrive, with their rollups."""
    for sensor, p in zip(c["sensors"], PLANS, strict=True):
        await copy_readings(conn, readings(p, sensor, start, end))
        await refresh_rollups(conn, sensor, start, end)


async def _replay_gap(conn: psycopg.AsyncConnection[Any], c: dict[str, Any]) -> None:
    """Tank A's gateway replays the three hours (GAP) it missed: late readings."""
    sensor, p = c["sensors"][0], PLANS[0]
    full = dataclasses.replace(p, gaps=())
    late = [r for r in readings(full, sensor, START, NOW, seed=0) if GAP[0] <= r[1] < GAP[1]]
    await copy_readings(conn, iter(late))
    await refresh_rollups(conn, sensor, GAP[0], GAP[1])


def _build_country(url: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("SET TIME ZONE 'UTC'")
            return await _country(conn)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def db_seed(db_seed: Seed) -> tuple[Seed, Seed]:
    """The api tests' world, and `_country` (~0.6 s to build: 13 days of readings and rollups
    of two tanks), built once for the module and reset to for each test using `country`."""
    return (db_seed, Seed("accounting-ahead-country", "country", _build_country))


@pytest.fixture
def country(request: pytest.FixtureRequest, db_url: str) -> dict[str, Any]:
    """`_country`'s facilities, tanks and sensors, in the test's database."""
    value: dict[str, Any] = seeded(request)
    return value


def _run(url: str, c: dict[str, Any], body: Any) -> Any:
    async def go() -> Any:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("SET TIME ZONE 'UTC'")
            return await body(conn, c)

    return asyncio.run(go())


def test_a_round_stores_every_monitored_tank_d12_to_d(db_url: str, country: dict[str, Any]) -> None:
    async def body(conn: psycopg.AsyncConnection[Any], c: dict[str, Any]) -> Any:
        result = await windows_round(conn, CFG, now=NOW)
        return result, await _rows(conn), c

    result, rows, c = _run(db_url, country, body)
    assert (result.first, result.last) == (FIRST, D)
    assert result.tanks == 2
    want = {(t, d) for t in c["tanks"] for d in days(FIRST, D)}
    assert set(rows) == want
    assert set(rows.values()) == {NOW}


def test_a_load_after_the_round_computes_no_window_and_equals_raw(
    db_url: str, country: dict[str, Any]
) -> None:
    async def body(conn: psycopg.AsyncConnection[Any], c: dict[str, Any]) -> Any:
        await windows_round(conn, CFG, now=NOW)
        before = await _rows(conn)
        stored = await _stored(conn, c["facs"], NOW + timedelta(seconds=20))
        after = await _rows(conn)
        return before, after, stored, await _raw(conn, c["facs"])

    before, after, stored, raw = _run(db_url, country, body)
    assert after == before  # nothing recomputed: every row kept its computed_at
    assert stored == raw  # the same numbers as a computation from the raw readings


def test_the_open_window_is_reused_while_fresh_then_recomputed(
    db_url: str, country: dict[str, Any]
) -> None:
    async def body(conn: psycopg.AsyncConnection[Any], c: dict[str, Any]) -> Any:
        await windows_round(conn, CFG, now=NOW)
        first = await _stored(conn, c["facs"], NOW)
        # The live readings of the next two minutes arrive (the current hour, not a late one).
        await _arrive(conn, c, NOW, NOW + timedelta(minutes=2))
        young = await _stored(conn, c["facs"], NOW + timedelta(seconds=59))
        rows_young = await _rows(conn)
        old = await _stored(conn, c["facs"], NOW + timedelta(seconds=61))
        rows_old = await _rows(conn)
        no_cache = dataclasses.replace(CFG, open_window_fresh_seconds=0)
        again = await _stored(conn, c["facs"], NOW + timedelta(seconds=62), no_cache)
        rows_again = await _rows(conn)
        return (
            c,
            first,
            young,
            rows_young,
            old,
            rows_old,
            again,
            rows_again,
            await _raw(conn, c["facs"]),
        )

    c, first, young, rows_young, old, rows_old, again, rows_again, raw = _run(db_url, country, body)
    fac = c["facs"][1]
    assert young == first  # 59 s: the stored open window, new readings not yet in it
    assert {at for (_t, d), at in rows_young.items() if d == D} == {NOW}
    assert old[fac].stock_kg != first[fac].stock_kg  # 61 s: recomputed with the new readings
    assert old == raw
    assert {at for (_t, d), at in rows_old.items() if d == D} == {NOW + timedelta(seconds=61)}
    # Closed days are kept whatever the freshness.
    assert {at for (_t, d), at in rows_old.items() if d < D - timedelta(days=1)} == {NOW}
    assert again == raw  # freshness 0: recomputed on every read
    assert {at for (_t, d), at in rows_again.items() if d == D} == {NOW + timedelta(seconds=62)}


def test_the_alert_round_reads_the_open_window_while_the_job_keeps_it(
    db_url: str, country: dict[str, Any]
) -> None:
    kept = kept_fresh(CFG)

    async def body(conn: psycopg.AsyncConnection[Any], c: dict[str, Any]) -> Any:
        await windows_round(conn, CFG, now=NOW)
        await _arrive(conn, c, NOW, NOW + timedelta(minutes=2))
        rounds = []
        for at in (NOW + kept - timedelta(seconds=1), NOW + kept + timedelta(seconds=1)):
            await evaluate_rules(conn, at, AlertSettings(), CFG, only=[Rule.DAYS_OF_SUPPLY])
            rows = await _rows(conn)
            rounds.append({at for (t, d), at in rows.items() if d == D and t in c["tanks"]})
        after = await _stored(conn, c["facs"], NOW + kept + timedelta(seconds=2))
        return rounds, after, await _raw(conn, c["facs"])

    (young, old), after, raw = _run(db_url, country, body)
    # The job's interval plus a round of its own: 90 s, where a page recomputes after 60 s.
    assert kept == timedelta(seconds=30 + 60)
    assert young == {NOW}  # 89 s: the job's row, not recomputed by the alert round
    assert old == {NOW + kept + timedelta(seconds=1)}  # 91 s: the job is behind, recomputed
    assert after == raw  # with the new readings, as from the raw readings


def test_a_late_reading_changes_the_next_load(db_url: str, country: dict[str, Any]) -> None:
    async def body(conn: psycopg.AsyncConnection[Any], c: dict[str, Any]) -> Any:
        await windows_round(conn, CFG, now=NOW)
        before = await _stored(conn, c["facs"], NOW + timedelta(seconds=5))
        await _replay_gap(conn, c)  # the outbox of tank A's gateway replays its missing hours
        after = await _stored(conn, c["facs"], NOW + timedelta(seconds=10))
        return c, before, after, await _raw(conn, c["facs"])

    c, before, after, raw = _run(db_url, country, body)
    fac = c["facs"][0]
    assert before[fac].coverage < after[fac].coverage  # the hours filled in at once
    assert before[fac].stock_kg != after[fac].stock_kg
    assert after == raw


def test_a_late_reading_in_a_closed_day_changes_the_next_load(
    db_url: str, country: dict[str, Any]
) -> None:
    async def body(conn: psycopg.AsyncConnection[Any], c: dict[str, Any]) -> Any:
        await windows_round(conn, CFG, now=NOW)
        sensor = c["sensors"][1]
        w = window(D - timedelta(days=3), CFG)
        await conn.execute(
            "DELETE FROM readings WHERE sensor_id = %s AND ts >= %s AND ts < %s",
            (sensor, w.start + timedelta(hours=2), w.start + timedelta(hours=8)),
        )
        await refresh_rollups(conn, sensor, w.start, w.end)
        # The deleted readings are stored windows' late readings in reverse: the count changed.
        before = await _rows(conn)
        await _stored(conn, c["facs"], NOW + timedelta(seconds=5))
        after = await _rows(conn)
        return c, before, after

    c, before, after = _run(db_url, country, body)
    tank = c["tanks"][1]
    key = (tank, D - timedelta(days=3))
    assert after[key] == NOW + timedelta(seconds=5)  # redone on the next load
    assert after[(c["tanks"][0], D - timedelta(days=3))] == before[(c["tanks"][0], key[1])]


def test_a_correction_changes_the_next_load(db_url: str, country: dict[str, Any]) -> None:
    async def body(conn: psycopg.AsyncConnection[Any], c: dict[str, Any]) -> Any:
        await windows_round(conn, CFG, now=NOW)
        before = await _stored(conn, c["facs"], NOW + timedelta(seconds=5))
        # The last hour of tank B's readings is declared bad: today's close is the one before.
        await corr.create(
            conn,
            sensor_id=c["sensors"][1],
            ts_from=NOW - timedelta(hours=1),
            ts_to=NOW,
            action=corr.CorrectionAction.INVALIDATE,
            value=None,
            reason="gauge fault",
            author="eng",
            cfg=CFG,
            now=NOW,
        )
        after = await _stored(conn, c["facs"], NOW + timedelta(seconds=10))
        return c, before, after, await _raw(conn, c["facs"])

    c, before, after, raw = _run(db_url, country, body)
    fac = c["facs"][1]
    assert after[fac].stock_kg != before[fac].stock_kg
    assert after == raw


def test_a_window_computed_open_is_redone_once_it_has_closed(
    db_url: str, country: dict[str, Any]
) -> None:
    end = window(D, CFG).end

    async def body(conn: psycopg.AsyncConnection[Any], c: dict[str, Any]) -> Any:
        await _arrive(conn, c, NOW, end + timedelta(minutes=5))
        await windows_round(conn, CFG, now=end - timedelta(seconds=10))
        await _stored(conn, c["facs"], end + timedelta(seconds=5))
        return await _rows(conn)

    rows = _run(db_url, country, body)
    # 16:00:05: the row of 15:59:50 is young but was computed open: D is recomputed, D+1 too
    # (its window opened at 16:00), the closed days are not.
    assert {at for (_t, d), at in rows.items() if d == D} == {end + timedelta(seconds=5)}
    assert {at for (_t, d), at in rows.items() if d < D} == {end - timedelta(seconds=10)}


def _supply_round(conn: psycopg.AsyncConnection[Any], at: datetime) -> Any:
    return evaluate_rules(conn, at, AlertSettings(), CFG, only=[Rule.DAYS_OF_SUPPLY])


async def _job_then_round(
    conn: psycopg.AsyncConnection[Any], c: dict[str, Any], job: datetime, edge: datetime
) -> dict[tuple[int, date], datetime]:
    """Readings until 5 min past `edge` (a cut-off, a midnight), the windows-ahead job's round
    at `job`, then the alert round 5 s past `edge`: the stored rows' computation times."""
    await _arrive(conn, c, NOW, edge + timedelta(minutes=5))
    await windows_round(conn, CFG, now=job)
    await _supply_round(conn, edge + timedelta(seconds=5))
    return await _rows(conn)


def test_right_after_the_cut_off_the_alert_round_leaves_the_closed_day_to_the_job(
    db_url: str, country: dict[str, Any]
) -> None:
    """16:00:05: the job's row of D from 15:59:50 is as young as an open window the round reads,
    so the round computes only D+1 (it computed all 6,000 windows of a national cut-off itself:
    5.0-5.5 s); once that row is older than the job's freshness, the round recomputes D."""
    end = window(D, CFG).end
    kept = kept_fresh(CFG)
    job = end - timedelta(seconds=10)

    async def body(conn: psycopg.AsyncConnection[Any], c: dict[str, Any]) -> Any:
        first = await _job_then_round(conn, c, job, end)
        await _supply_round(conn, job + kept + timedelta(seconds=1))
        return first, await _rows(conn)

    first, late = _run(db_url, country, body)
    assert {at for (_t, d), at in first.items() if d == D} == {job}
    assert {at for (_t, d), at in first.items() if d == D + timedelta(days=1)} == {
        end + timedelta(seconds=5)
    }
    assert {at for (_t, d), at in late.items() if d == D} == {job + kept + timedelta(seconds=1)}


def test_right_after_midnight_utc_the_alert_round_leaves_the_settling_day_to_the_job(
    db_url: str, country: dict[str, Any]
) -> None:
    """00:00:05 UTC: D settles (the last UTC day of its data is over). Its row, computed once all
    its hours had passed, is still read by its hours' fingerprint for the round's grace (it
    recomputed the 3,000 windows of a national day itself: 4.3 s); a late reading in D's hours
    still redoes that tank at once, and after the grace the round settles D itself."""
    midnight = settles(window(D, CFG), CFG)
    assert midnight.hour == 0 and midnight.date() == D + timedelta(days=1)
    kept = kept_fresh(CFG)
    job = midnight - timedelta(seconds=60)

    async def body(conn: psycopg.AsyncConnection[Any], c: dict[str, Any]) -> Any:
        kept_rows = await _job_then_round(conn, c, job, midnight)
        await _replay_gap(conn, c)  # late readings of D's own hours (tank A)
        await _supply_round(conn, midnight + timedelta(seconds=10))
        redone = await _rows(conn)
        await _supply_round(conn, midnight + kept + timedelta(seconds=1))
        after = await _stored(conn, c["facs"], midnight + kept + timedelta(seconds=2))
        return c, kept_rows, redone, await _rows(conn), after, await _raw(conn, c["facs"])

    c, kept_rows, redone, settled, after, raw = _run(db_url, country, body)
    tank_a, tank_b = c["tanks"]
    assert {at for (_t, d), at in kept_rows.items() if d >= D - timedelta(days=6)} == {job}
    assert redone[(tank_a, D)] == midnight + timedelta(seconds=10)
    assert redone[(tank_b, D)] == job
    assert settled[(tank_b, D)] == midnight + kept + timedelta(seconds=1)
    assert after == raw


def test_the_last_closed_day_is_kept_while_today_s_readings_arrive(
    db_url: str, country: dict[str, Any]
) -> None:
    """14:00 UTC (21:00 local): D closed at 09:00 UTC and its data ends at 12:00 UTC, but the
    UTC day it ends in goes on receiving readings. Those must not make D's windows stale (a
    national soak's alert round recomputed up to all 3,000 of them for it); a late reading in
    D's own hours still does."""
    late = window(D, CFG).end + timedelta(hours=5)

    async def body(conn: psycopg.AsyncConnection[Any], c: dict[str, Any]) -> Any:
        await _arrive(conn, c, NOW, late)
        await windows_round(conn, CFG, now=late)
        # The live readings of the next two minutes arrive.
        await _arrive(conn, c, late, late + timedelta(minutes=2))
        await _stored(conn, c["facs"], late + timedelta(minutes=5))
        kept = await _rows(conn)
        await _replay_gap(conn, c)  # late readings of D's own hours
        after = await _stored(conn, c["facs"], late + timedelta(minutes=6))
        return c, kept, await _rows(conn), after, await _raw(conn, c["facs"])

    c, kept, redone, after, raw = _run(db_url, country, body)
    assert {at for (_t, d), at in kept.items() if d <= D} == {late}
    tank_a, tank_b = c["tanks"]
    assert redone[(tank_a, D)] == late + timedelta(minutes=6)  # the late readings: redone
    assert redone[(tank_b, D)] == late
    assert after == raw


def test_the_api_starts_after_its_first_round_and_pages_compute_nothing(
    settings: Settings, world: World
) -> None:
    async def seed() -> dict[str, Any]:
        async with await psycopg.AsyncConnection.connect(world.db_url, autocommit=True) as conn:
            cur = await conn.execute(
                "SELECT code FROM organisations WHERE id = %s", (world.syt_in,)
            )
            row = await cur.fetchone()
            assert row
            return await _country(conn, str(row[0]))

    c = asyncio.run(seed())
    app = create_app(settings, windows_ahead=True)
    with TestClient(app) as client:
        # The first round ran before the first request (real time: the days around today).
        health = client.get("/health").json()
        assert health["accounting"] == "ready"
        with psycopg.connect(world.db_url) as conn:
            today = datetime.now(UTC)
            n = conn.execute(
                "SELECT count(*) FROM tank_windows WHERE tank_id = ANY(%s) AND computed_at < %s",
                (c["tanks"], today),
            ).fetchone()
        assert n is not None and n[0] >= 2 * 13
        # The BYT map page at NOW, after a round at NOW: page, points and chart compute nothing.
        login(client, "byt1")
        with psycopg.connect(world.db_url, autocommit=True) as conn:
            conn.execute("DELETE FROM tank_windows")
        asyncio.run(_round_at(world.db_url, NOW))
        before = asyncio.run(_rows_at(world.db_url))
        app.dependency_overrides[clock] = lambda: NOW + timedelta(seconds=30)
        for path in ("/byt", "/map/data", "/byt/supply-chart"):
            assert client.get(path).status_code == 200, path
        assert asyncio.run(_rows_at(world.db_url)) == before
    assert create_app(settings).state.windows_ahead is None  # the tests' apps run no job


def test_health_says_warming_until_the_first_round_has_ended(
    settings: Settings, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another worker's round holds the lock: this one waits its turn; with no warm-up budget
    # the server answers meanwhile, and says so.
    monkeypatch.setenv("OXY_WINDOWS_AHEAD_WARM_UP_SECONDS", "0")
    app = create_app(settings, windows_ahead=True)
    with psycopg.connect(world.db_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(hashtext(%s))", (LOCK,))
        with TestClient(app) as client:
            assert client.get("/health").json() == {
                "status": "ok",
                "database": "ok",
                "accounting": "warming",
            }
            other.execute("SELECT pg_advisory_unlock(hashtext(%s))", (LOCK,))
            deadline = time.monotonic() + 30
            while client.get("/health").json()["accounting"] != "ready":
                assert time.monotonic() < deadline, "the first round never ended"
                time.sleep(0.1)


async def _round_at(url: str, now: datetime) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await windows_round(conn, CFG, now=now)


async def _rows_at(url: str) -> dict[tuple[int, date], datetime]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return await _rows(conn)


@pytest.mark.parametrize("fresh", [0, 60])
def test_freshness_is_a_setting_written_once(fresh: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from api.settings import load_centre_settings

    monkeypatch.setenv("OXY_OPEN_WINDOW_FRESH_SECONDS", str(fresh))
    built = load_centre_settings(Settings(database_url="postgresql://unused@127.0.0.1:1/x"))
    assert built.accounting.open_window_fresh_seconds == fresh
    assert AccountingConfig.defaults().open_window_fresh_seconds == 60


def test_two_transactions_storing_the_same_windows_never_wait_on_each_other(
    db_url: str, country: dict[str, Any]
) -> None:
    """An alert round stores day D's windows and then D−1's in one transaction while a page
    stores D−12..D tank by tank in another: they used to wait on each other's rows (a deadlock
    in the national soak). Stored windows are a cache: the second one computes and returns the
    same figures without storing, and the first one's rows land once it commits."""

    async def body(conn: psycopg.AsyncConnection[Any], c: dict[str, Any]) -> Any:
        async with (
            await psycopg.AsyncConnection.connect(db_url) as alert,
            await psycopg.AsyncConnection.connect(db_url) as page,
        ):
            for x in (alert, page):
                await x.execute("SET TIME ZONE 'UTC'")
            # The alert round: D's windows first (its transaction stays open) ...
            await facility_telemetry(alert, c["facs"], D, CFG, now=NOW)
            # ... a page wants D−12..D meanwhile, then the round goes on with D−7's week.
            seen = await asyncio.wait_for(
                facility_telemetry(page, c["facs"], D, CFG, now=NOW), timeout=20
            )
            await asyncio.wait_for(
                facility_telemetry(alert, c["facs"], D - timedelta(days=1), CFG, now=NOW),
                timeout=20,
            )
            await alert.commit()
            await page.commit()
        return seen, await _raw(conn, c["facs"]), await _rows(conn), c["tanks"]

    seen, raw, rows, tanks = _run(db_url, country, body)
    assert seen == raw
    assert {(t, d) for t in tanks for d in days(D - timedelta(days=7), D)} <= set(rows)
