"""Accounting: pure figures, and a ground-truth tank simulated through its calibration table."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from api.accounting import corrections as corr
from api.accounting.config import AccountingConfig
from api.accounting.series import (
    Point,
    candidates,
    detect_refills,
    reaches_past,
    refill_regions,
    window_figures,
)
from api.accounting.simulate import (
    PlannedRefill,
    TankPlan,
    add_calibration,
    add_facility,
    add_tank,
    copy_readings,
    readings,
    refresh_rollups,
    true_consumption,
    true_series,
)
from api.accounting.stock import DayUse, Status, average_daily, days_of_supply, is_abnormal, status
from api.accounting.telemetry import (
    Source,
    compute_windows,
    ensure_windows,
    facility_telemetry,
    facility_telemetry_days,
)
from api.accounting.therapy import Therapy, need_m3_per_day
from api.accounting.windows import deadline, report_day_of, window
from api.reports.supplier import view as supplier_view
from oxy.calibration import CalibrationTable

CFG = AccountingConfig.defaults()
DAY0 = date(2026, 3, 1)


def test_window_is_1600_to_1600_local() -> None:
    w = window(date(2026, 3, 31), CFG)
    assert w.start == datetime(2026, 3, 30, 9, tzinfo=UTC)  # 16:00 +07:00
    assert w.end == datetime(2026, 3, 31, 9, tzinfo=UTC)
    assert report_day_of(datetime(2026, 3, 31, 9, tzinfo=UTC), CFG) == date(2026, 4, 1)
    assert report_day_of(datetime(2026, 3, 31, 8, 59, tzinfo=UTC), CFG) == date(2026, 3, 31)
    assert deadline(date(2026, 3, 31), CFG) == datetime(2026, 3, 31, 10, tzinfo=UTC)


def test_average_adjusts_for_days_without_data_like_openlmis() -> None:
    # 7 days, 2 without data, 5 × 1000 kg: OpenLMIS C × days / (days − missing) = 5000×7/5/7.
    week = [DayUse(1000.0, 1.0)] * 5 + [DayUse(None, 0.0)] * 2
    assert average_daily(week) == pytest.approx(5000.0 * 7 / (7 - 2) / 7)
    assert average_daily([DayUse(None, 0.0)]) is None
    assert days_of_supply(3000.0, 1000.0) == 3.0
    assert status(2.99, 3.0) is Status.NEEDS_MORE
    assert status(3.0, 3.0) is Status.ENOUGH
    assert status(None, 3.0) is Status.UNKNOWN


def test_leak_flag_uses_median_mad() -> None:
    history = [1000.0, 1040.0, 980.0, 1010.0, 995.0, 1020.0, 990.0]
    assert not is_abnormal(1050.0, history, 3.5)
    assert is_abnormal(1600.0, history, 3.5)
    assert not is_abnormal(600.0, history, 3.5)  # low use is not a leak


def test_need_from_patients_uses_who_flows() -> None:
    # WHO: severe 10 L/min = 14.4 m3/day; critical 30 L/min = 43.2 m3/day.
    assert need_m3_per_day({Therapy.MASK: 1}, CFG.flows_lpm) == pytest.approx(14.4)
    assert need_m3_per_day({Therapy.INVASIVE: 2}, CFG.flows_lpm) == pytest.approx(86.4)


def test_refill_detection_on_pure_series_estimates_draw_during_refill() -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    pts, kg = [], 5000.0
    for m in range(600):
        pts.append(Point(t0 + timedelta(minutes=m), kg))
        kg -= 2.0  # 2 kg/min draw
        if 300 <= m < 330:
            kg += 100.0  # 3000 kg pumped in 30 minutes
    refills = detect_refills(pts, CFG)
    assert len(refills) == 1
    assert refills[0].amount_kg == pytest.approx(3000.0, rel=0.01)
    f = window_figures(pts, refills, t0, t0 + timedelta(minutes=599), CFG)
    assert f.consumption_kg == pytest.approx(2.0 * 599, rel=0.01)
    # Noise alone is never a refill.
    noisy = [Point(p.ts, 5000.0 + (7.0 if i % 2 else -7.0)) for i, p in enumerate(pts)]
    assert detect_refills(noisy, CFG) == []


def test_refill_candidates_found_once_give_what_each_step_finds_itself() -> None:
    # Two refills in a day of minute data: the candidates computed once (as tanks_figures does)
    # give the same regions, edges and refills as each step computing them again.
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    pts, kg = [], 5000.0
    for m in range(24 * 60):
        pts.append(Point(t0 + timedelta(minutes=m), kg + (3.0 if m % 3 else -3.0)))
        kg -= 1.5
        if 200 <= m < 240 or 1300 <= m < 1330:
            kg += 90.0
    found = candidates(pts, CFG)
    assert len(found) == 2
    start, end = t0 + timedelta(hours=1), t0 + timedelta(hours=22)
    assert refill_regions(pts, CFG, found) == refill_regions(pts, CFG)
    assert reaches_past(pts, start, end, CFG, found) == reaches_past(pts, start, end, CFG)
    assert reaches_past(pts, start, end, CFG) == (False, True)  # the second ends past 22:00
    got = detect_refills(pts, CFG, (), found)
    assert got == detect_refills(pts, CFG)
    # Pumped 3,600 and 2,700 kg, plus the draw meanwhile (1.5 kg/min).
    assert [r.amount_kg for r in got] == [
        pytest.approx(3660.0, rel=0.02),
        pytest.approx(2745.0, rel=0.02),
    ]
    # The steps use what they are given: no candidates, no refill.
    assert detect_refills(pts, CFG, (), []) == []
    assert refill_regions(pts, CFG, []) == []


# --------------------------------------------------------------------------------------------
# Ground truth through the database.

W0 = window(DAY0, CFG).start


def plan() -> TankPlan:
    return TankPlan(
        capacity_kg=20000.0,
        diameter_m=2.5,
        start_kg=14000.0,
        draw_kg_per_day=1500.0,
        refills=(
            PlannedRefill(W0 + timedelta(days=2, hours=5), 45, 9000.0),
            PlannedRefill(W0 + timedelta(days=5, hours=13), 60, 5000.0),
        ),
        # A whole report window without data (day 4), and a 4-hour outage in day 2.
        gaps=(
            (W0 + timedelta(days=3, hours=-2), W0 + timedelta(days=4, hours=3)),
            (W0 + timedelta(days=1, hours=10), W0 + timedelta(days=1, hours=14)),
        ),
    )


async def _scenario(url: str) -> dict[str, Any]:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        cur = await conn.execute("SELECT id FROM organisations WHERE code = 'SYT-01'")
        row = await cur.fetchone()
        assert row
        fac = await add_facility(conn, "BV-GT", int(row[0]), "01")
        p = plan()
        tank, sensor = await add_tank(
            conn, fac, "T1", p, valid_from=W0 - timedelta(days=30), min_usable_kg=1000.0
        )
        assert sensor is not None
        start, end = W0 - timedelta(hours=4), W0 + timedelta(days=7, hours=4)
        await copy_readings(conn, readings(p, sensor, start, end, seed=7))
        await refresh_rollups(conn, sensor, start, end)
        last = DAY0 + timedelta(days=6)
        stored = await ensure_windows(conn, [tank], DAY0, last, CFG, now=end + timedelta(days=1))
        raw, refills = await compute_windows(conn, [tank], DAY0, last, CFG, source=Source.RAW)
        tele = await facility_telemetry(conn, [fac], last, CFG, now=end + timedelta(days=1))
        return {
            "tank": tank,
            "sensor": sensor,
            "fac": fac,
            "stored": stored,
            "raw": raw,
            "refills": refills[tank],
            "tele": tele[fac],
            "plan": p,
        }


def test_ground_truth_tank_figures_within_2_percent(db_url: str) -> None:
    out = asyncio.run(_scenario(db_url))
    p: TankPlan = out["plan"]
    truth = dict(true_series(p, W0 - timedelta(hours=4), W0 + timedelta(days=7, hours=4)))
    assert [r.amount_kg for _, r in out["refills"]] == [
        pytest.approx(9000.0, rel=0.02),
        pytest.approx(5000.0, rel=0.02),
    ]
    for source in ("stored", "raw"):
        figs = out[source]
        for i in range(7):
            day = DAY0 + timedelta(days=i)
            w = window(day, CFG)
            f = figs[(out["tank"], day)]
            if i == 3:  # the window with no data at all
                assert f.consumption_kg is None and f.coverage == 0.0
                continue
            want = true_consumption(p, w.start, w.end) if f.coverage == 1.0 else None
            if want is not None:
                assert f.consumption_kg == pytest.approx(want, rel=0.02), (source, day)
                assert f.close_kg == pytest.approx(truth[w.end], rel=0.02)
            delivered = sum(r.amount_kg for r in p.refills if w.start <= r.at < w.end)
            assert f.refilled_kg == pytest.approx(delivered, rel=0.02, abs=1.0), (source, day)
    t = out["tele"]
    # 7-day average: 1500 kg/day by construction, adjusted for the missing window.
    assert t.avg_daily_kg == pytest.approx(1500.0, rel=0.02)
    end = window(DAY0 + timedelta(days=6), CFG).end
    assert t.stock_kg == pytest.approx(truth[end], rel=0.02)
    assert t.usable_kg == pytest.approx(truth[end] - 1000.0, rel=0.02)
    assert t.capacity_kg == 20000.0


async def _correction_flow(
    url: str,
) -> tuple[list[float | None], list[float | None], list[float | None]]:
    out = await _scenario(url)
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        day = DAY0 + timedelta(days=1)
        w = window(day, CFG)
        # A gauge fault reads the tank 3 t fuller for the hour around 16:00: the close of the
        # window (and so its consumption) is wrong. A spike that falls back is no refill.
        fault_from, fault_to = (w.end - timedelta(minutes=40), w.end + timedelta(minutes=40))
        await conn.execute(
            "UPDATE readings SET value = value + 27 WHERE sensor_id = %s AND ts BETWEEN %s AND %s",
            (out["sensor"], fault_from, fault_to),
        )
        await refresh_rollups(conn, out["sensor"], fault_from, fault_to)
        now = w.end + timedelta(days=10)
        await conn.execute("DELETE FROM tank_windows")
        bad = await ensure_windows(conn, [out["tank"]], day, day, CFG, now=now)
        c = await corr.create(
            conn,
            sensor_id=out["sensor"],
            ts_from=fault_from,
            ts_to=fault_to,
            action=corr.CorrectionAction.INVALIDATE,
            value=None,
            reason="gauge fault",
            author="eng",
            cfg=CFG,
        )
        fixed = await ensure_windows(conn, [out["tank"]], day, day, CFG, now=now)
        await corr.revert(conn, c.id, author="eng", reason="wrong range", cfg=CFG)
        back = await ensure_windows(conn, [out["tank"]], day, day, CFG, now=now)
        cur = await conn.execute(
            "SELECT count(*) FROM readings WHERE sensor_id = %s", (out["sensor"],)
        )
        assert (await cur.fetchone()) is not None
        k = (out["tank"], day)
        return (
            [bad[k].consumption_kg, bad[k].refilled_kg],
            [fixed[k].consumption_kg, fixed[k].refilled_kg],
            [back[k].consumption_kg, back[k].refilled_kg],
        )


def test_correction_removes_false_refill_and_revert_restores_it(db_url: str) -> None:
    bad, fixed, back = asyncio.run(_correction_flow(db_url))
    p = plan()
    w = window(DAY0 + timedelta(days=1), CFG)
    want = true_consumption(p, w.start, w.end)
    assert bad[0] is not None and abs(bad[0] - want) > 1000  # the fault spoilt the figure
    assert bad[1] == 0.0  # but invented no refill
    assert fixed[1] == 0.0
    assert fixed[0] == pytest.approx(want, rel=0.02)
    assert back == bad


def test_correction_validation() -> None:
    t = datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(corr.CorrectionError) as e:
        corr.check(t, t - timedelta(1), corr.CorrectionAction.INVALIDATE, None, "x")
    assert e.value.key == "correction.error.range"
    with pytest.raises(corr.CorrectionError) as e:
        corr.check(t, t, corr.CorrectionAction.REPLACE, None, "x")
    assert e.value.key == "correction.error.value"
    with pytest.raises(corr.CorrectionError) as e:
        corr.check(t, t, corr.CorrectionAction.INVALIDATE, None, "  ")
    assert e.value.key == "correction.error.reason_required"


async def _leak_and_recalibration(url: str) -> dict[str, Any]:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        cur = await conn.execute("SELECT id FROM organisations WHERE code = 'SYT-01'")
        row = await cur.fetchone()
        assert row
        fac = await add_facility(conn, "BV-LK", int(row[0]), "01")
        last = DAY0 + timedelta(days=6)
        w_last = window(last, CFG)
        # Normal draw for six days, then a leak adds 1,500 kg/day on the last day.
        p = TankPlan(
            capacity_kg=20000.0,
            diameter_m=2.5,
            start_kg=18000.0,
            draw_kg_per_day=1200.0,
            extra=((w_last.start, w_last.end, 1500.0),),
        )
        tank, sensor = await add_tank(conn, fac, "T1", p, valid_from=W0 - timedelta(days=30))
        assert sensor is not None
        # The tank is re-strapped on day 3: from then on the same DP means 8 % more LOX.
        recal_at = W0 + timedelta(days=3, hours=7)
        v1 = p.table()
        v2 = CalibrationTable(v1.dp, tuple(k * 1.08 for k in v1.kg), version=2)
        await add_calibration(conn, tank, v2, recal_at, version=2)
        start, end = W0 - timedelta(hours=4), w_last.end + timedelta(hours=4)
        truth = dict(true_series(p, start, end))
        rows = [
            (sensor, ts, (v1 if ts < recal_at else v2).dp_for(kg), 0) for ts, kg in truth.items()
        ]
        await copy_readings(conn, iter(rows))
        await refresh_rollups(conn, sensor, start, end)
        now = end + timedelta(days=1)
        tele = (await facility_telemetry(conn, [fac], last, CFG, now=now))[fac]
        figs = await ensure_windows(conn, [tank], DAY0, last, CFG, now=now)
        return {"tele": tele, "figs": figs, "tank": tank, "plan": p, "truth": truth, "last": last}


def test_leak_flag_and_calibration_version_at_each_reading(db_url: str) -> None:
    from api.reports.figures import FacilityRef, resolve

    out = asyncio.run(_leak_and_recalibration(db_url))
    p, tele = out["plan"], out["tele"]
    for i in range(7):
        day = DAY0 + timedelta(days=i)
        w = window(day, CFG)
        f = out["figs"][(out["tank"], day)]
        # No jump at the recalibration: each reading used the version valid at its time.
        assert f.refilled_kg == 0.0, day
        assert f.consumption_kg == pytest.approx(true_consumption(p, w.start, w.end), rel=0.02)
        assert f.close_kg == pytest.approx(out["truth"][w.end], rel=0.02)
    assert len(tele.history_kg) == 6
    figures = resolve(FacilityRef(tele.facility_id, "BV-LK", "x", None, "01"), None, tele, CFG)
    assert figures.leak is True
    assert figures.consumption_kg == pytest.approx(2700.0, rel=0.02)


async def _late(url: str) -> tuple[Any, Any, float]:
    out = await _scenario(url)
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        p: TankPlan = out["plan"]
        gap_from, gap_to = p.gaps[0]
        day = DAY0 + timedelta(days=3)
        now = W0 + timedelta(days=9)
        before = (await ensure_windows(conn, [out["tank"]], DAY0, day, CFG, now=now))[
            (out["tank"], day)
        ]
        # The gateway's outbox replays the outage days later: the same readings, arriving late.
        full = TankPlan(p.capacity_kg, p.diameter_m, p.start_kg, p.draw_kg_per_day, p.refills)
        late = [
            r
            for r in readings(full, out["sensor"], W0 - timedelta(hours=4), gap_to, seed=9)
            if gap_from <= r[1] < gap_to
        ]
        await copy_readings(conn, iter(late))
        await refresh_rollups(conn, out["sensor"], gap_from, gap_to)
        after = (await ensure_windows(conn, [out["tank"]], DAY0, day, CFG, now=now))[
            (out["tank"], day)
        ]
        w = window(day, CFG)
        return before, after, true_consumption(p, w.start, w.end)


def test_late_readings_reach_stored_windows(db_url: str) -> None:
    before, after, want = asyncio.run(_late(db_url))
    assert before.consumption_kg is None and before.coverage == 0.0
    assert after.coverage == 1.0
    assert after.consumption_kg == pytest.approx(want, rel=0.02)


# A delivery from 15:40 to 16:30 local: 20 of its 50 minutes fall in the window of day 2.
STRADDLE = PlannedRefill(W0 + timedelta(days=1, minutes=-20), 50, 6000.0)


async def _tank_with(
    conn: psycopg.AsyncConnection[Any], code: str, refill: PlannedRefill
) -> tuple[int, int, TankPlan, datetime]:
    """A facility of SYT-01 with one tank drawing 1.5 t/day and the one delivery, its readings
    from 4 h before W0 to 3 days and 4 h after (rolled up): (facility, tank, plan, end)."""
    cur = await conn.execute("SELECT id FROM organisations WHERE code = 'SYT-01'")
    row = await cur.fetchone()
    assert row
    fac = await add_facility(conn, code, int(row[0]), "01")
    p = TankPlan(
        capacity_kg=20000.0,
        diameter_m=2.5,
        start_kg=9000.0,
        draw_kg_per_day=1500.0,
        refills=(refill,),
    )
    tank, sensor = await add_tank(conn, fac, "T1", p, valid_from=W0 - timedelta(days=30))
    assert sensor is not None
    start, end = W0 - timedelta(hours=4), W0 + timedelta(days=3, hours=4)
    await copy_readings(conn, readings(p, sensor, start, end, seed=11))
    await refresh_rollups(conn, sensor, start, end)
    return fac, tank, p, end


async def _straddle(url: str) -> dict[str, Any]:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        fac, tank, p, end = await _tank_with(conn, "BV-ST", STRADDLE)
        last = DAY0 + timedelta(days=2)
        now = end + timedelta(days=1)
        stored = await ensure_windows(conn, [tank], DAY0, last, CFG, now=now)
        raw, refills = await compute_windows(conn, [tank], DAY0, last, CFG, source=Source.RAW)
        cur = await conn.execute(
            "SELECT report_day, started_at, ended_at, amount_kg FROM refill_events "
            "WHERE tank_id = %s",
            (tank,),
        )
        events = await cur.fetchall()
        # A window stored under the old rule (fingerprint = reading count only) is redone.
        await conn.execute(
            "UPDATE tank_windows SET refilled_kg = 0, consumption_kg = 0, "
            "fingerprint = fingerprint & %s WHERE tank_id = %s",
            ((1 << 40) - 1, tank),
        )
        again = await ensure_windows(conn, [tank], DAY0, last, CFG, now=now)
        # The supplier reports the whole delivery on day 1: its cross-check compares it with the
        # whole refill event, not with day 1's share of the refilled figure.
        cur = await conn.execute(
            "INSERT INTO organisations (code, kind, name) VALUES ('NCC-ST', 'supplier', 'NCC')"
            " RETURNING id"
        )
        sup = (await cur.fetchone() or [0])[0]
        await conn.execute(
            "INSERT INTO suppliers (org_id, supplier_kind) VALUES (%s, 'producer')", (sup,)
        )
        cur = await conn.execute(
            "INSERT INTO supplier_reports (supplier_id, report_day, production_t)"
            " VALUES (%s, %s, 100) RETURNING id",
            (sup, DAY0),
        )
        report = (await cur.fetchone() or [0])[0]
        await conn.execute(
            "INSERT INTO supplier_deliveries (report_id, facility_id, liquid_kg)"
            " VALUES (%s, %s, %s)",
            (report, fac, STRADDLE.amount_kg),
        )
        checked = await supplier_view(conn, sup, DAY0, cfg=CFG, now=now, show_facility_figures=True)
        return {
            "supplier": checked,
            "tank": tank,
            "plan": p,
            "stored": stored,
            "raw": raw,
            "again": again,
            "refills": refills[tank],
            "events": events,
        }


def test_refill_across_1600_is_split_between_the_two_windows(db_url: str) -> None:
    out = asyncio.run(_straddle(db_url))
    p: TankPlan = out["plan"]
    tank = out["tank"]
    d1, d2 = DAY0, DAY0 + timedelta(days=1)
    assert window(d1, CFG).end == window(d2, CFG).start
    # One event, kept whole and on the day it started.
    assert len(out["refills"]) == 1
    day, event = out["refills"][0]
    assert day == d1
    assert event.started_at < window(d1, CFG).end < event.ended_at
    assert event.amount_kg == pytest.approx(STRADDLE.amount_kg, rel=0.02)
    assert [(r[0], r[3]) for r in out["events"]] == [(d1, pytest.approx(event.amount_kg))]
    for source in ("stored", "raw", "again"):
        figs = out[source]
        f1, f2 = figs[(tank, d1)], figs[(tank, d2)]
        for d, f in ((d1, f1), (d2, f2)):
            w = window(d, CFG)
            assert f.coverage == 1.0
            assert f.consumption_kg == pytest.approx(
                true_consumption(p, w.start, w.end), rel=0.02
            ), (source, d)
        assert f1.refilled_kg + f2.refilled_kg == pytest.approx(event.amount_kg, abs=1e-6)
        # 20 of 50 minutes of pumping before 16:00: 2,400 kg, then 3,600 kg.
        assert f1.refilled_kg == pytest.approx(2400.0, rel=0.05), source
        assert f1.refills == 1 and f2.refills == 0
    (delivery,) = out["supplier"].deliveries
    assert delivery.match is True
    assert delivery.refill is not None
    assert delivery.refill.liquid_kg == pytest.approx(event.amount_kg)


async def _spans(url: str, refill: PlannedRefill) -> dict[str, Any]:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        fac, tank, _plan, end = await _tank_with(conn, "BV-SP", refill)
        now = end + timedelta(days=1)  # every window settled: nothing depends on the clock
        report_days = [DAY0 + timedelta(days=i) for i in range(3)]
        # The BYT chart: the windows of the whole span computed together, every day from them.
        together = await facility_telemetry_days(conn, [fac], report_days, CFG, now=now)
        spanned = await ensure_windows(
            conn, [tank], DAY0 - timedelta(days=6), report_days[-1], CFG, now=now
        )
        await conn.execute("DELETE FROM tank_windows WHERE tank_id = %s", (tank,))
        # The national view of each day, oldest first: day 1 computes D−6..D1 (its window the
        # last of the span, the refill's draw after 16:00 at the edge of what it reads), then
        # day 2 computes its window alone (the refill's draw before 16:00 at the other edge).
        one_by_one = {
            d: await facility_telemetry(conn, [fac], d, CFG, now=now) for d in report_days
        }
        stored = await ensure_windows(
            conn, [tank], DAY0 - timedelta(days=6), report_days[-1], CFG, now=now
        )
        return {
            "tank": tank,
            "fac": fac,
            "together": together,
            "one_by_one": one_by_one,
            "spanned": spanned,
            "stored": stored,
        }


# A delivery of 6,000 kg pumped for 200 minutes from 16:00 − 5 min: still pumping at 19:15.
LONG_STRADDLE = PlannedRefill(W0 + timedelta(days=1, minutes=-5), 200, 6000.0)


@pytest.mark.parametrize("refill", [STRADDLE, LONG_STRADDLE], ids=["closed-range", "cut-search"])
def test_a_window_is_the_same_whichever_days_are_computed_with_it(
    db_url: str, refill: PlannedRefill
) -> None:
    # The windows of a span are computed from one series read over it ±3 h (telemetry.CONTEXT).
    # closed-range: the refill (08:40-09:30 UTC) is measured on the minute data of
    # [07:00 − 2 h, 10:59 + 2 h) but its fit took [.., 12:59] closed: the 12:59 reading came from
    # the hourly series only when day 2 was computed with day 1 (series read to 12:00 otherwise).
    # Day 1's refilled share moved by 0.10 kg, the BYT chart's demand of that day by 3 ppm
    # against its national view (tests/web/test_supply_chart.py, from 11:15 UTC).
    # cut-search: the refill (08:55-12:15 UTC) still pumps at 12:00, where day 1's series
    # stopped: its search span was cut there and day 1's share moved by 124 kg.
    out = asyncio.run(_spans(db_url, refill))
    tank, fac = out["tank"], out["fac"]
    d1, d2 = DAY0, DAY0 + timedelta(days=1)
    f1, f2 = out["spanned"][(tank, d1)], out["spanned"][(tank, d2)]
    assert (f1.refills, f2.refills) == (1, 0)
    assert f1.refilled_kg + f2.refilled_kg == pytest.approx(refill.amount_kg, rel=0.02)
    assert out["stored"] == out["spanned"]  # exactly, not approximately
    for d, tele in out["one_by_one"].items():
        assert tele[fac] == out["together"][d][fac], d
    assert out["together"][d2][fac].avg_daily_kg is not None
