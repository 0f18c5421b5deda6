"""Facility report rules at the data layer with explicit clocks: on time / late, locks, warnings."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from api.accounting.config import AccountingConfig
from api.accounting.simulate import add_facility
from api.reports import facility, syt
from api.reports.errors import Locked, ValidationFailed

CFG = AccountingConfig.defaults()
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
D = date(2026, 3, 10)


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=TZ)


async def _run(url: str) -> dict[str, object]:
    out: dict[str, object] = {}
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        cur = await conn.execute("SELECT id FROM organisations WHERE code = 'SYT-01'")
        row = await cur.fetchone()
        assert row
        parent = int(row[0])
        f1 = await add_facility(conn, "BV-1", parent, "01")
        f2 = await add_facility(conn, "BV-2", parent, "01")
        closed = await add_facility(
            conn, "BV-3", parent, "01", active_to=(D - timedelta(days=1)).isoformat()
        )
        body = facility.FacilityReportIn(patients_current=40, patients_new=4, discharged_evening=2)
        r1 = await facility.file_report(conn, f1, D, body, author="a", cfg=CFG, now=at(D, 16, 30))
        r2 = await facility.file_report(conn, f2, D, body, author="b", cfg=CFG, now=at(D, 17, 30))
        out["late"] = (r1.late, r2.late)
        # An edit after the deadline does not make an on-time report late.
        r1b = await facility.file_report(conn, f1, D, body, author="a", cfg=CFG, now=at(D, 20))
        out["late_after_edit"] = r1b.late
        for name, fac, day, now in (
            ("closed", closed, D, at(D, 16)),
            ("past", f1, D, at(D + timedelta(days=40), 9)),
        ):
            try:
                await facility.file_report(conn, fac, day, body, author="a", cfg=CFG, now=now)
            except Locked as exc:
                out[name] = exc.key
        try:
            await facility.file_report(
                conn, f1, D + timedelta(days=1), body, author="a", cfg=CFG, now=at(D, 16)
            )
        except ValidationFailed as exc:
            out["future"] = [e.key for e in exc.errors]
        # The morning update closes once the 16:00 report is filed, and opens at 16:00 D−1.
        for name, when in (
            ("morning_closed", at(D, 18)),
            ("morning_early", at(D - timedelta(2), 9)),
        ):
            try:
                await facility.morning_update(
                    conn,
                    f2,
                    D,
                    facility.MorningUpdateIn(discharged_morning=1),
                    author="b",
                    cfg=CFG,
                    now=when,
                )
            except ValidationFailed as exc:
                out[name] = [e.key for e in exc.errors]
        # Discharges: morning update + evening cannot exceed yesterday's patients + new.
        f4 = await add_facility(conn, "BV-4", parent, "01")
        prev = D - timedelta(days=1)
        await facility.file_report(conn, f4, prev, body, author="b", cfg=CFG, now=at(prev, 16))
        await facility.morning_update(
            conn,
            f4,
            D,
            facility.MorningUpdateIn(discharged_morning=30),
            author="b",
            cfg=CFG,
            now=at(D, 9),
        )
        cur = await conn.execute(
            "SELECT r.late FROM facility_report_revisions r JOIN facility_reports f "
            "ON f.id = r.report_id WHERE f.facility_id = %s AND f.report_day = %s",
            (f4, D),
        )
        out["morning_late"] = [bool(r[0]) for r in await cur.fetchall()]
        try:
            await facility.file_report(
                conn,
                f4,
                D,
                facility.FacilityReportIn(
                    patients_current=10, patients_new=4, discharged_evening=15
                ),
                author="b",
                cfg=CFG,
                now=at(D, 18),
            )
        except ValidationFailed as exc:
            out["discharged"] = [e.key for e in exc.errors]
        # Implausible against its own history (median/MAD): refused until confirmed with a
        # reason, then stored with the warning (and the reason) SYT sees.
        for i in range(1, 12):
            day = D - timedelta(days=i)
            b = facility.FacilityReportIn(
                patients_current=40 + i % 3, patients_new=4, discharged_evening=2
            )
            await facility.file_report(conn, f1, day, b, author="a", cfg=CFG, now=at(day, 16))
        spike = facility.FacilityReportIn(
            patients_current=400, patients_new=4, discharged_evening=2
        )
        try:
            await facility.file_report(conn, f1, D, spike, author="a", cfg=CFG, now=at(D, 21))
        except ValidationFailed as exc:
            out["unconfirmed"] = [(e.key, (e.params or {}).get("importance")) for e in exc.errors]
        spike = spike.model_copy(update={"confirm": {"patients_current": "mass casualty"}})
        saved = await facility.file_report(conn, f1, D, spike, author="a", cfg=CFG, now=at(D, 21))
        out["warnings"] = [w["field"] for w in saved.warnings]
        details = await syt.details(conn, parent, D, visible=None, cfg=CFG, now=at(D, 22))
        by_code = {f.code: f for f in details.facilities}
        out["syt_sees"] = [w["field"] for w in by_code["BV-1"].warnings]
        out["on_time"] = (by_code["BV-1"].on_time, by_code["BV-2"].on_time)
        out["expected"] = details.fields.facilities
    return out


def test_deadline_locks_and_warnings(db_url: str) -> None:
    out = asyncio.run(_run(db_url))
    assert out["late"] == (False, True)
    assert out["late_after_edit"] is False
    assert out["closed"] == "report.locked.closed"
    assert out["past"] == "report.locked.past_deadline"
    assert out["future"] == ["report.error.future_day"]
    assert out["discharged"] == ["report.error.discharged_exceeds_patients"]
    assert out["morning_closed"] == ["report.error.morning_closed"]
    assert out["morning_early"] == ["report.error.morning_not_open"]
    assert out["morning_late"] == [True]  # after 08:00
    assert out["unconfirmed"] == [("report.warning.implausible", "warning")]
    assert out["warnings"] == ["patients_current"]
    assert out["syt_sees"] == ["patients_current"]
    assert out["on_time"] == (True, False)
    assert out["expected"] == 3  # the closed facility is not expected


def test_units_are_explicit() -> None:
    with pytest.raises(ValueError):
        facility.QuantityIn.model_validate({"value": 1.0, "unit": "m3"})
    q = facility.QuantityIn.model_validate({"value": 1.0, "unit": "m3_liquid"})
    from api.reports.units import to_nm3

    assert to_nm3(q.value, q.unit, CFG.reference) == pytest.approx(799, rel=0.002)
