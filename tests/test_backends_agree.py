"""Same readings, same figures: the plain PostgreSQL store and the TimescaleDB store (a private
cluster from scripts/timescaledb.sh) are fed the same telemetry the way the ingest writer stores it
(in-order batches, a redelivery, bad-quality readings, an outage replayed late), then a
correction and a new calibration version; every rollup row and every report figure must be
equal, exactly.

Runs in the plain pass (it starts its own TimescaleDB server); the TimescaleDB pass skips it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from api.accounting import corrections as corr
from api.accounting.config import AccountingConfig
from api.accounting.simulate import PlannedRefill, TankPlan, add_calibration, readings
from api.accounting.telemetry import Source, compute_windows, ensure_windows, facility_telemetry
from api.accounting.windows import window
from api.reports.figures import FacilityRef, resolve
from ingest.rollups import flush, recompute
from oxy.calibration import CalibrationTable
from oxy.database import storage_kind
from oxy.migrate import migrate
from tests.fix_db import IN_CI, TIMESCALEDB_SETTINGS, PrivatePostgres, timescaledb_pg_bin
from tests.ingest.conftest import seed_registry

pytestmark = [pytest.mark.postgresql_only, pytest.mark.slow]

CFG = AccountingConfig.defaults()
DAY0 = date(2026, 3, 1)
W0 = window(DAY0, CFG).start
DAYS = 4
PLAN = TankPlan(
    capacity_kg=10000.0,
    diameter_m=2.2,
    start_kg=7000.0,
    draw_kg_per_day=1200.0,
    refills=(PlannedRefill(W0 + timedelta(days=1, hours=6), 40, 4000.0),),
)
START, END = W0 - timedelta(hours=4), W0 + timedelta(days=DAYS, hours=4)
# An outage of the gateway's link: its outbox replays these readings after everything else.
OUTAGE = (W0 + timedelta(days=2, hours=3), W0 + timedelta(days=2, hours=7))
FAULT = (W0 + timedelta(days=2, hours=10), W0 + timedelta(days=2, hours=10, minutes=30))
RECAL_AT = W0 + timedelta(days=3, hours=2)


@pytest.fixture(scope="module")
def timescaledb_url() -> Iterator[str]:
    bin_dir = timescaledb_pg_bin()
    if bin_dir is None:
        message = "TimescaleDB is not built (scripts/timescaledb.sh)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    server = PrivatePostgres(bin_dir, TIMESCALEDB_SETTINGS)
    server.start()
    try:
        name = f"oxy_agree_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        params = conninfo_to_dict(server.url)
        params["dbname"] = name
        url = make_conninfo(**params)
        migrate(url)
        yield url
    finally:
        server.destroy()


def _rows(sensor_id: int) -> tuple[list[tuple[datetime, float, int]], list[Any]]:
    """(in order, replayed late) readings of T1-dp: (ts, dp, quality)."""
    rows = []
    for k, (_, ts, dp, _) in enumerate(readings(PLAN, sensor_id, START, END, seed=5)):
        # One hour in nine from a gauge in fault: stored, never counted as good.
        rows.append((ts, round(dp, 6), 3 if k // 60 % 9 == 4 else 0))
    live = [r for r in rows if not OUTAGE[0] <= r[0] < OUTAGE[1]]
    late = [r for r in rows if OUTAGE[0] <= r[0] < OUTAGE[1]]
    return live, late


async def _accounting(url: str, tank: int, sensor: int, fac: int) -> dict[str, Any]:
    """Windows before and after a correction and a new calibration version, and the figures."""
    last = DAY0 + timedelta(days=DAYS - 1)
    now = END + timedelta(days=2)
    out: dict[str, Any] = {}
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        out["stored"] = await ensure_windows(conn, [tank], DAY0, last, CFG, now=now)
        c = await corr.create(
            conn, sensor_id=sensor, ts_from=FAULT[0], ts_to=FAULT[1],
            action=corr.CorrectionAction.REPLACE, value=50.0, reason="gauge stuck",
            author="eng", cfg=CFG,
        )  # fmt: skip
        out["corrected"] = await ensure_windows(conn, [tank], DAY0, last, CFG, now=now)
        v1 = PLAN.table()
        v2 = CalibrationTable(v1.dp, tuple(kg * 1.05 for kg in v1.kg), version=2)
        await add_calibration(conn, tank, v2, RECAL_AT, version=2)
        out["recalibrated"] = await ensure_windows(conn, [tank], DAY0, last, CFG, now=now)
        out["raw"], out["refills"] = await compute_windows(
            conn, [tank], DAY0, last, CFG, source=Source.RAW
        )
        await corr.revert(conn, c.id, author="eng", reason="not stuck", cfg=CFG)
        out["reverted"] = await ensure_windows(conn, [tank], DAY0, last, CFG, now=now)
        for source in Source:
            tele = await facility_telemetry(conn, [fac], last, CFG, source=source, now=now)
            out[f"telemetry_{source}"] = asdict(tele[fac])
            ref = FacilityRef(fac, "BV-AGREE", "x", None, "01")
            out[f"figures_{source}"] = resolve(ref, None, tele[fac], CFG).as_dict()
    # Keys by date only: tank and facility ids may differ between the two databases.
    return {
        k: (
            {d: asdict(f) for (_, d), f in v.items()}
            if isinstance(v, dict) and v and isinstance(next(iter(v)), tuple)
            else v
        )
        for k, v in out.items()
    } | {"refills": [(d, asdict(r)) for d, r in out["refills"][tank]]}


def _rollups(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {
            view: conn.execute(
                "SELECT s.code, v.bucket, v.first_value, v.last_value, v.min_value, v.max_value,"
                f" v.n FROM {view} v JOIN sensors s ON s.id = v.sensor_id ORDER BY 1, 2"
            ).fetchall()
            for view in ("readings_1m", "readings_1h", "readings_1d")
        }


def _store(url: str, sensor: int, rows: list[tuple[datetime, float, int]]) -> None:
    """Store readings in batches of 60 as the ingest writer does (idempotent insert, the batch's
    range queued for the plain rollups in the same transaction), then flush the rollups."""
    with psycopg.connect(url) as conn:
        for k in range(0, len(rows), 60):
            batch = rows[k : k + 60]
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO readings (sensor_id, ts, value, quality) VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    [(sensor, ts, v, q) for ts, v, q in batch],
                )
            if storage_kind(conn) == "postgresql":
                conn.execute(
                    "INSERT INTO rollup_dirty (sensor_id, lo, hi) VALUES (%s, %s, %s)",
                    (sensor, batch[0][0], batch[-1][0]),
                )
            conn.commit()
        flush(conn)


def _feed(url: str) -> dict[str, Any]:
    reg = seed_registry(url)
    sensor = reg.sensors["T1-dp"]
    with psycopg.connect(url) as conn:
        tank, fac = conn.execute(
            "UPDATE tanks SET diameter_m = %s, capacity_kg = %s WHERE id ="
            " (SELECT tank_id FROM sensors WHERE id = %s) RETURNING id, facility_id",
            (PLAN.diameter_m, PLAN.capacity_kg, sensor),
        ).fetchone()
    asyncio.run(_calibrate(url, tank))
    live, late = _rows(sensor)
    _store(url, sensor, live)
    _store(url, sensor, live[600:840])  # a redelivery: nothing changes
    _store(url, sensor, late)  # the outage, replayed late
    with psycopg.connect(url) as conn:
        (n,) = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert n == len(live) + len(late)
    return {"sensor": sensor, "tank": tank, "fac": fac, "readings": n}


async def _calibrate(url: str, tank: int) -> None:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        await add_calibration(conn, tank, PLAN.table(), W0 - timedelta(days=30), version=1)


def test_plain_postgresql_and_timescaledb_give_the_same_rollups_and_figures(
    db_url: str, timescaledb_url: str
) -> None:
    results: dict[str, dict[str, Any]] = {}
    for kind, url in (("postgresql", db_url), ("timescaledb", timescaledb_url)):
        with psycopg.connect(url) as conn:
            assert storage_kind(conn) == kind
        ids = _feed(url)
        rollups = _rollups(url)
        if kind == "timescaledb":
            # Real-time answers first, then materialized by a refresh: both must be the same.
            with psycopg.connect(url, autocommit=True) as conn:
                recompute(conn, ids["sensor"], START - timedelta(days=1), END + timedelta(days=1))
            assert _rollups(url) == rollups
        results[kind] = {
            "readings": ids["readings"],
            "rollups": rollups,
            **asyncio.run(_accounting(url, ids["tank"], ids["sensor"], ids["fac"])),
        }
    plain, tsdb = results["postgresql"], results["timescaledb"]
    assert plain["rollups"]["readings_1m"], "no rollups at all"
    assert len(plain["rollups"]["readings_1m"]) > 60 * 24 * DAYS * 0.8
    assert plain.keys() == tsdb.keys()
    for key in plain:
        assert plain[key] == tsdb[key], key
    # The scenario has teeth: the correction and the new calibration changed the figures.
    assert plain["stored"] != plain["corrected"], "the correction changed nothing"
    assert plain["corrected"] != plain["raw"], "the new calibration version changed nothing"
    assert plain["refills"], "the planned refill was not detected"
