"""Reporting rate over 30 days (DHIS2's definition): expected from active_from, reported, on
time, late, missing; per department and facility; the drill-down with contacts; scope; exports."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from api.accounting.config import AccountingConfig
from api.deps import clock
from api.rates.rate import default_period
from tests.api.conftest import World, login

# 12:00 UTC is 19:00 in Viet Nam: the 17:00 deadline of that day has passed.
NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
LAST = date(2026, 3, 31)
FIRST = LAST - timedelta(days=29)


def test_period_ends_at_the_last_day_whose_deadline_passed() -> None:
    cfg = AccountingConfig.defaults()
    assert default_period(NOW, cfg) == type(default_period(NOW, cfg))(FIRST, LAST)
    # 09:00 UTC is 16:00 local: today's report is not due yet, so the period ends yesterday.
    early = default_period(datetime(2026, 3, 31, 9, 0, tzinfo=UTC), cfg)
    assert early.last == LAST - timedelta(days=1) and early.days == 30


def _fac(
    conn: psycopg.Connection[tuple[object, ...]], code: str, parent: int, **dates: date
) -> int:
    row = conn.execute(
        "INSERT INTO organisations (code, kind, name, province_code, parent_id) "
        "SELECT %s, 'facility', %s, province_code, id FROM organisations WHERE id = %s "
        "RETURNING id",
        (code, f"BV {code}", parent),
    ).fetchone()
    assert row is not None
    fid = int(row[0])  # type: ignore[call-overload]
    conn.execute(
        "INSERT INTO facilities (org_id, active_from, active_to) VALUES (%s, %s, %s)",
        (fid, dates.get("active_from", date(2020, 1, 1)), dates.get("active_to")),
    )
    return fid


def _report(
    conn: psycopg.Connection[tuple[object, ...]],
    fid: int,
    day: date,
    *,
    late: bool = False,
    filed: bool = True,
) -> None:
    conn.execute(
        "INSERT INTO facility_reports (facility_id, report_day, submitted_at, late) "
        "VALUES (%s, %s, %s, %s)",
        (fid, day, datetime.combine(day, datetime.min.time(), UTC) if filed else None, late),
    )


@pytest.fixture
def rated(world: World) -> dict[str, int]:
    """Facilities of SYT-79 with a known reporting history over the 30 days to LAST."""
    with psycopg.connect(world.db_url) as conn:
        a = _fac(conn, "BV-A", world.syt_in)
        b = _fac(conn, "BV-NEW", world.syt_in, active_from=LAST - timedelta(days=4))
        c = _fac(conn, "BV-CLOSED", world.syt_in, active_to=FIRST + timedelta(days=2))
        # A: filed 25 of the 30 days (3 of them late); no report on the last 4 days and on
        # FIRST; on LAST-2 only the morning update (not filed) exists.
        for i in range(1, 26):
            _report(conn, a, FIRST + timedelta(days=i), late=i in (3, 7, 11))
        _report(conn, a, LAST - timedelta(days=2), filed=False)
        # New facility: reports every day of its 5 active days, and one before it opened
        # (not expected then, so it does not count).
        for i in range(6):
            _report(conn, b, LAST - timedelta(days=i))
        # Closed after 3 days of the period, filed once (late).
        _report(conn, c, FIRST + timedelta(days=1), late=True)
        conn.execute(
            "INSERT INTO contacts (org_id, full_name, role, phone, email, is_primary) VALUES "
            "(%s, 'Nguyễn Thị Lan', 'Trưởng phòng Vật tư', '0903 123 456', 'lan@bv-a.vn', true),"
            "(%s, 'Trần Văn Bình', NULL, '0912 000 111', NULL, false)",
            (a, a),
        )
    return {"a": a, "new": b, "closed": c}


@pytest.fixture
def fixed(client: TestClient) -> TestClient:
    client.app.dependency_overrides[clock] = lambda: NOW  # type: ignore[attr-defined]
    return client


def _by_code(rows: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {r["code"]: r for r in rows}


def test_province_figures_per_facility(
    fixed: TestClient, world: World, rated: dict[str, int]
) -> None:
    login(fixed, "syt79")
    r = fixed.get(f"/api/syt/{world.syt_in}/reporting-rate")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["first_day"], body["last_day"], body["days"]) == (
        FIRST.isoformat(),
        LAST.isoformat(),
        30,
    )
    f = _by_code(body["facilities"])
    # BV-IN (world, active since 2020, never reported) is the fourth facility of SYT-79.
    assert set(f) == {"BV-A", "BV-NEW", "BV-CLOSED", "BV-IN"}
    assert {k: f["BV-A"][k] for k in ("expected", "reported", "on_time", "late", "missing")} == {
        "expected": 30,
        "reported": 25,
        "on_time": 22,
        "late": 3,
        "missing": 5,
    }
    assert f["BV-A"]["reporting_rate"] == pytest.approx(83.3)
    assert f["BV-A"]["last_reported"] == (FIRST + timedelta(days=25)).isoformat()
    assert f["BV-A"]["missing_last_day"] is True
    assert [c["full_name"] for c in f["BV-A"]["contacts"]] == ["Nguyễn Thị Lan", "Trần Văn Bình"]
    # Expected only from active_from: 5 days, all filed (the earlier report is not counted).
    assert (f["BV-NEW"]["expected"], f["BV-NEW"]["reported"], f["BV-NEW"]["missing"]) == (5, 5, 0)
    assert f["BV-NEW"]["reporting_rate"] == 100.0
    # Closed mid-period: expected on its 3 active days only.
    assert (f["BV-CLOSED"]["expected"], f["BV-CLOSED"]["late"], f["BV-CLOSED"]["missing"]) == (
        3,
        1,
        2,
    )
    assert (f["BV-IN"]["expected"], f["BV-IN"]["reported"]) == (30, 0)
    assert f["BV-IN"]["last_reported"] is None
    total = body["total"]
    assert (total["expected"], total["reported"], total["late"], total["missing"]) == (
        68,
        31,
        4,
        37,
    )
    # The drill-down: facilities with a missing report, most missing first, with contacts.
    assert [x["code"] for x in body["not_reported"]] == ["BV-IN", "BV-A", "BV-CLOSED"]
    # Per day: on LAST, BV-A, BV-NEW and BV-IN were expected; BV-NEW alone filed.
    by_day = {d["day"]: d for d in body["by_day"]}
    assert len(by_day) == 30
    assert (by_day[LAST.isoformat()]["expected"], by_day[LAST.isoformat()]["reported"]) == (3, 1)


def test_national_figures_per_department(
    fixed: TestClient, world: World, rated: dict[str, int]
) -> None:
    login(fixed, "byt1")
    body = fixed.get("/api/reporting-rate").json()
    parents = {p["org_id"]: p for p in body["parents"]}
    assert parents[world.syt_in]["expected"] == 68 and parents[world.syt_in]["facilities"] == 4
    assert (parents[world.syt_out]["expected"], parents[world.syt_out]["reported"]) == (30, 0)
    assert parents[world.syt_out]["reporting_rate"] == 0.0
    assert body["total"]["expected"] == 98 and body["total"]["missing"] == 67
    assert body["total"]["expected"] == sum(p["expected"] for p in body["parents"])
    seven = fixed.get("/api/reporting-rate?days=7").json()
    assert seven["days"] == 7 and seven["first_day"] == (LAST - timedelta(days=6)).isoformat()
    assert fixed.get("/api/reporting-rate?days=0").status_code == 422


def test_nothing_expected_is_unknown_not_zero(fixed: TestClient, world: World) -> None:
    with psycopg.connect(world.db_url) as conn:
        conn.execute("UPDATE facilities SET active_from = %s", (LAST + timedelta(days=1),))
    login(fixed, "byt1")
    body = fixed.get("/api/reporting-rate").json()
    assert body["total"]["expected"] == 0 and body["total"]["reporting_rate"] is None
    page = fixed.get("/byt/reporting-rate")
    assert page.status_code == 200
    total = page.text.split('data-testid="rate-total"', 1)[1].split("</table>", 1)[0]
    assert "—" in total and "0,0 %" not in total


def test_scope_an_syt_sees_only_its_province(
    fixed: TestClient, world: World, rated: dict[str, int]
) -> None:
    login(fixed, "syt79")
    assert fixed.get(f"/api/syt/{world.syt_out}/reporting-rate").status_code == 404
    assert fixed.get(f"/api/syt/{world.syt_out}/reporting-rate.csv").status_code == 404
    assert fixed.get(f"/provinces/{world.syt_out}/reporting-rate").status_code == 404
    assert fixed.get("/api/reporting-rate").status_code == 403
    assert fixed.get("/byt/reporting-rate").status_code == 403
    page = fixed.get("/syt/reporting-rate")
    assert page.url.path == f"/provinces/{world.syt_in}/reporting-rate"
    assert "BV-OUT" not in page.text and "BV BV-A" in page.text
    assert "tel:0903123456" in page.text and "mailto:lan@bv-a.vn" in page.text


def test_other_roles_are_refused(fixed: TestClient, world: World) -> None:
    for user in ("staff-in", "ncc-in", "eng-in"):
        login(fixed, user)
        assert fixed.get("/api/reporting-rate").status_code == 403
        assert fixed.get(f"/api/syt/{world.syt_in}/reporting-rate").status_code == 403
        fixed.cookies.clear()


def test_exports_carry_the_same_figures(
    fixed: TestClient, world: World, rated: dict[str, int]
) -> None:
    login(fixed, "byt1")
    r = fixed.get(f"/api/syt/{world.syt_in}/reporting-rate.csv?lang=en")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    a = next(x for x in rows if x["Code"] == "BV-A")
    assert (a["Expected reports"], a["Reported"], a["On time"], a["Late"], a["Missing"]) == (
        "30",
        "25",
        "22",
        "3",
        "5",
    )
    assert (a["Contact"], a["Phone"]) == ("Nguyễn Thị Lan", "0903 123 456")
    x = fixed.get("/api/reporting-rate.xlsx")
    sheet = load_workbook(io.BytesIO(x.content)).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][0] == "Mã"  # Vietnamese headings by default
    codes = {row[0]: row for row in values[1:]}
    assert codes["SYT-79"][3] == 68
    assert fixed.get("/api/reporting-rate.pdf").status_code == 422  # kind: csv or xlsx
