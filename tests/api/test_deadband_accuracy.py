"""Report by exception (issue 24): the gateway's deadband filter (gateway.exception) on traces of
the project's tank simulator keeps refills and daily consumption within the accounting's accuracy
targets (refill amount 0.5 %, day's consumption 1 %: tests/api/test_accounting_accuracy.py),
computed by the real accounting code from what the filter lets through.

The trace is the simulator's minute series with its gauge noise (0.02 inH2O); the gateway polls at
1 Hz, where the filter holds back more readings in absolute terms but the stored series has the
same error bound (the deadband), which is what this test measures against the truth.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from api.accounting.simulate import TankPlan, add_facility, add_tank, copy_readings, refresh_rollups
from api.accounting.telemetry import Source, compute_windows, ensure_windows
from gateway.config import DEFAULT_RESOLUTION, SensorBinding
from gateway.engineering import Row
from gateway.exception import ExceptionFilter
from gateway.registers import Profile
from gateway.sim.model import TankSpec
from gateway.sim.trace import Delivery, Trace, simulate
from oxy.contract import Quantity
from tests.api.test_accounting_accuracy import CFG, DAY, WIN

# The recommended setting (docs/gateway.md, "Report by exception").
DEADBAND_INH2O = 0.05
HEARTBEAT_S = 300.0


def _filtered(trace: Trace, deadband: float | None) -> list[tuple[datetime, float]]:
    """The trace as the gateway would send it: through ExceptionFilter, then quantised to the
    v2 resolution of a DP sensor (what ingest stores from a v2 message)."""
    profile = Profile(name="dp", unit="inH2O")
    res = DEFAULT_RESOLUTION[Quantity.DIFF_PRESSURE]
    sensor = SensorBinding("T-dp", "T", Quantity.DIFF_PRESSURE, profile, 0, res, deadband,
                           HEARTBEAT_S)  # fmt: skip
    f = ExceptionFilter([sensor])
    rows = [Row("T-dp", int(ts.timestamp() * 1000), dp, "inH2O", "good") for ts, dp in
            trace.readings]  # fmt: skip
    kept = f.keep(rows) if f.active else rows
    return [(datetime.fromtimestamp(r.ts_ms / 1000, UTC), round(r.value / res) / (1 / res))
            for r in kept if r.value is not None]  # fmt: skip


async def _load(url: str, series: dict[str, tuple[TankSpec, list[Any]]], start: datetime,
                end: datetime) -> dict[str, Any]:  # fmt: skip
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        cur = await conn.execute("SELECT id FROM organisations WHERE code = 'SYT-01'")
        row = await cur.fetchone()
        assert row
        fac = await add_facility(conn, "BV-DB", int(row[0]), "01")
        tanks: dict[str, int] = {}
        for name, (spec, readings) in series.items():
            plan = TankPlan(spec.capacity_kg, spec.diameter_m, 0.0, 0.0)
            tank, sensor = await add_tank(
                conn, fac, name, plan, valid_from=start - timedelta(days=30)
            )
            assert sensor is not None
            await copy_readings(conn, iter((sensor, ts, dp, 0) for ts, dp in readings))
            await refresh_rollups(conn, sensor, start, end)
            tanks[name] = tank
        ids = list(tanks.values())
        stored = await ensure_windows(conn, ids, DAY, DAY, CFG, now=end + timedelta(days=1))
        raw, refills = await compute_windows(conn, ids, DAY, DAY, CFG, source=Source.RAW)
        return {"tanks": tanks, "stored": stored, "raw": raw, "refills": refills}


def test_refills_and_consumption_change_within_the_targets_with_the_recommended_deadband(
    db_url: str,
) -> None:
    start, end = WIN.start - timedelta(hours=4), WIN.end + timedelta(hours=4)
    cases: dict[str, Trace] = {}
    series: dict[str, tuple[TankSpec, list[Any]]] = {}
    for k, (hour, minute) in enumerate(((13, 5), (17, 40), (22, 59), (2, 17), (6, 30), (10, 1))):
        at = datetime(2026, 3, 1, hour, minute, tzinfo=UTC)
        if at < WIN.start:
            at += timedelta(days=1)
        spec = TankSpec(code=f"D{k}", capacity_kg=20000.0, diameter_m=2.5, fill=0.45,
                        daily_kg=1500.0 + 400 * k)  # fmt: skip
        trace = simulate(spec, start, end, (Delivery(at, 45, 0.9),), seed=k)
        cases[spec.code] = trace
        series[spec.code] = (spec, _filtered(trace, None))
        series[spec.code + "-rbe"] = (spec, _filtered(trace, DEADBAND_INH2O))
    every = sum(len(series[c][1]) for c in cases)
    sent = sum(len(series[c + "-rbe"][1]) for c in cases)
    print(f"deadband {DEADBAND_INH2O} inH2O: {sent} of {every} minute readings sent")
    assert sent < every * 0.6  # it does cut the traffic (far more at 1 Hz: docs/gateway.md)
    out = asyncio.run(_load(db_url, series, start, end))
    bad = []
    for name, trace in cases.items():
        (truth,) = trace.refills
        want = trace.consumption(WIN.start, WIN.end)
        every_t, rbe_t = out["tanks"][name], out["tanks"][name + "-rbe"]
        (r_every,) = out["refills"][every_t]
        (r_rbe,) = out["refills"][rbe_t]
        # The refill as measured from what the deadband let through: within the target of the
        # truth, and changed by less than the target from the figure of every reading.
        if abs(r_rbe[1].amount_kg / truth.amount_kg - 1) > 0.005:
            bad.append((name, "refill vs truth", round(r_rbe[1].amount_kg), round(truth.amount_kg)))
        if abs(r_rbe[1].amount_kg / r_every[1].amount_kg - 1) > 0.005:
            bad.append((name, "refill change", round(r_rbe[1].amount_kg)))
        for source in ("stored", "raw"):
            f_every, f = out[source][(every_t, DAY)], out[source][(rbe_t, DAY)]
            assert f.consumption_kg is not None and f_every.consumption_kg is not None
            change = f.consumption_kg / f_every.consumption_kg - 1
            print(f"{name} {source}: consumption {f.consumption_kg:.0f} kg (every reading "
                  f"{f_every.consumption_kg:.0f}, truth {want:.0f}), change {change:+.2%}; "
                  f"refill {r_rbe[1].amount_kg:.0f} (every {r_every[1].amount_kg:.0f}, truth "
                  f"{truth.amount_kg:.0f})")  # fmt: skip
            if abs(change) > 0.01:
                bad.append((name, source, "consumption change", f"{change:+.2%}"))
            if abs(f.refilled_kg / f_every.refilled_kg - 1) > 0.005:
                bad.append((name, source, "refilled change", round(f.refilled_kg)))
            # The contents at the window ends (the other input of the day's figures).
            assert f.close_kg is not None and f.open_kg is not None
            if abs(f.close_kg - trace.contents[WIN.end]) > 3.0:
                bad.append((name, source, "close", round(f.close_kg - trace.contents[WIN.end], 1)))
            if abs(f.open_kg - trace.contents[WIN.start]) > 3.0:
                bad.append((name, source, "open", round(f.open_kg - trace.contents[WIN.start], 1)))
    assert bad == []
