"""Reporting chain end to end over HTTP: ground truth, validation, lifecycle, scope, exports."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from api.accounting.config import AccountingConfig
from api.accounting.simulate import (
    PlannedRefill,
    TankPlan,
    add_facility,
    add_tank,
    copy_readings,
    readings,
    refresh_rollups,
    true_consumption,
    true_series,
)
from api.accounting.windows import local_today, window
from api.app import create_app
from api.auth import issue_token
from api.scope import Role
from api.users import NewUser, create_user
from oxy.settings import load_settings
from tests.fix_db import Seed, seeded

CFG = AccountingConfig.defaults()
PASSWORD = "Correct-Horse-Battery-9"


@dataclass
class World:
    day: date
    ids: dict[str, int]
    tokens: dict[str, str]
    plan: TankPlan
    truth_refill_kg: float
    truth_stock_kg: float
    truth_avg_kg: float


async def _org(conn: psycopg.AsyncConnection[Any], code: str) -> int:
    cur = await conn.execute("SELECT id FROM organisations WHERE code = %s", (code,))
    row = await cur.fetchone()
    assert row
    return int(row[0])


async def _user(conn: psycopg.AsyncConnection[Any], name: str, role: Role, org: str | None) -> str:
    uid = await create_user(conn, "test", NewUser(name, name, role, PASSWORD, org_code=org))
    await conn.execute("UPDATE users SET must_change_password = false WHERE id = %s", (uid,))
    return (await issue_token(conn, uid, "test")).secret


async def _build(url: str) -> World:
    day = local_today(datetime.now(UTC), CFG) - timedelta(days=2)
    w = window(day, CFG)
    first = window(day - timedelta(days=7), CFG).start
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        hn, hcm = await _org(conn, "SYT-01"), await _org(conn, "SYT-79")
        ids = {"syt01": hn, "syt79": hcm}
        ids["A"] = await add_facility(conn, "BV-A", hn, "01")
        ids["B"] = await add_facility(conn, "BV-B", hn, "01")
        ids["C"] = await add_facility(conn, "BV-C", hn, "01")
        ids["E"] = await add_facility(
            conn, "BV-E", hn, "01", active_to=(day - timedelta(days=10)).isoformat()
        )
        ids["D"] = await add_facility(conn, "BV-D", hcm, "79")
        plan = TankPlan(
            capacity_kg=20000.0,
            diameter_m=2.5,
            start_kg=12000.0,
            draw_kg_per_day=1500.0,
            refills=(
                PlannedRefill(first + timedelta(days=3, hours=4), 40, 6000.0),
                PlannedRefill(w.start + timedelta(hours=5), 45, 9000.0),
            ),
        )
        _tank, sensor = await add_tank(
            conn, ids["A"], "T1", plan, valid_from=first - timedelta(days=1), min_usable_kg=800.0
        )
        assert sensor
        start, end = first - timedelta(hours=4), w.end + timedelta(hours=4)
        await copy_readings(conn, readings(plan, sensor, start, end, seed=3))
        await refresh_rollups(conn, sensor, start, end)
        await add_tank(
            conn,
            ids["B"],
            "T1",
            TankPlan(10000.0, 2.0, 0.0, 0.0),
            valid_from=first,
            monitored=False,
        )
        tokens = {
            "A": await _user(conn, "staff.a", Role.FACILITY, "BV-A"),
            "B": await _user(conn, "staff.b", Role.FACILITY, "BV-B"),
            "D": await _user(conn, "staff.d", Role.FACILITY, "BV-D"),
            "syt01": await _user(conn, "syt.hn", Role.SYT, "SYT-01"),
            "syt79": await _user(conn, "syt.hcm", Role.SYT, "SYT-79"),
            "byt": await _user(conn, "byt.one", Role.BYT, "BYT"),
        }
    truth = dict(true_series(plan, start, end))
    week = [window(day - timedelta(days=i), CFG) for i in range(7)]
    avg = sum(true_consumption(plan, x.start, x.end) for x in week) / 7
    return World(day, ids, tokens, plan, 9000.0, truth[w.end], avg)


@pytest.fixture(scope="module")
def db_seed() -> Seed:
    """`world`'s rows, built once per module (`tests.fix_db.Seed`)."""
    return Seed("reports-world", "world", lambda url: asyncio.run(_build(url)))


@pytest.fixture
def world(request: pytest.FixtureRequest, db_url: str) -> World:
    w: World = seeded(request)
    return w


@pytest.fixture
def client(db_url: str) -> Any:
    app = create_app(load_settings(database_url=db_url))
    with TestClient(app) as c:
        yield c


def h(world: World, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[who]}"}


def nm3(kg: float) -> float:
    return CFG.reference.kg_to_m3(kg)


A_REPORT = {
    "patients_current": 40,
    "patients_new": 5,
    "discharged_evening": 3,
    "on_oxygen": {"mask": 10, "hfnc": 3, "invasive": 2},
    "refilled_gas": {"value": 60, "unit": "nm3"},
}
B_REPORT = {
    "patients_current": 20,
    "patients_new": 2,
    "discharged_evening": 1,
    "on_oxygen": {"mask": 5},
    "refilled_liquid": {"value": 2, "unit": "m3_liquid"},
    "stock_liquid": {"value": 3000, "unit": "kg"},
    "avg_need": {"value": 700, "unit": "nm3"},
}


# Sending or approving an SYT report whose sums leave out a facility needs this confirmation.
OK_INCOMPLETE = {"confirm_incomplete": "true"}


def _file_all(client: TestClient, world: World) -> None:
    d = world.day.isoformat()
    # Before anyone files: not reported (field 8), but A's tanks still give its figures.
    r = client.get(
        f"/api/syt/{world.ids['syt01']}/report", params={"day": d}, headers=h(world, "syt01")
    )
    early = {x["code"]: x for x in r.json()["facilities"]}
    assert r.json()["fields"]["8"] == 3 and early["BV-A"]["reported"] is False
    assert early["BV-A"]["stock_liquid_kg"] == pytest.approx(world.truth_stock_kg, rel=0.02)
    r = client.put(
        f"/api/facilities/{world.ids['B']}/reports/{d}/morning",
        json={"discharged_morning": 2},
        headers=h(world, "B"),
    )
    assert r.status_code == 200, r.text
    r = client.put(
        f"/api/facilities/{world.ids['A']}/reports/{d}", json=A_REPORT, headers=h(world, "A")
    )
    assert r.status_code == 200, r.text
    assert r.json()["late"] is True  # filed two days after the 17:00 deadline
    r = client.put(
        f"/api/facilities/{world.ids['B']}/reports/{d}", json=B_REPORT, headers=h(world, "B")
    )
    assert r.status_code == 200, r.text
    r = client.put(
        f"/api/facilities/{world.ids['D']}/reports/{d}",
        json={"patients_current": 7, "patients_new": 1, "discharged_evening": 0},
        headers=h(world, "D"),
    )
    assert r.status_code == 200, r.text


def test_auto_filled_facility_syt_and_byt_figures_match_truth(
    client: TestClient, world: World
) -> None:
    _file_all(client, world)
    d = world.day.isoformat()
    fa = client.get(f"/api/facilities/{world.ids['A']}/reports/{d}", headers=h(world, "A")).json()
    figs = fa["figures"]
    assert figs["sources"]["refilled_liquid"] == "telemetry"
    assert figs["refilled_liquid_kg"] == pytest.approx(world.truth_refill_kg, rel=0.02)
    assert figs["stock_liquid_kg"] == pytest.approx(world.truth_stock_kg, rel=0.02)
    assert figs["avg_need_nm3"] == pytest.approx(nm3(world.truth_avg_kg), rel=0.02)
    want_days = nm3(world.truth_stock_kg - 800.0) / nm3(world.truth_avg_kg)
    assert figs["days_of_supply"] == pytest.approx(want_days, rel=0.02)

    r = client.get(
        f"/api/syt/{world.ids['syt01']}/report", params={"day": d}, headers=h(world, "syt01")
    )
    assert r.status_code == 200, r.text
    f = r.json()["fields"]
    assert (f["5"], f["6"], f["7"], f["8"], f["10"]) == (60, 7, 3 + 1 + 2, 1, 3)
    b_liquid = CFG.reference.liquid_m3_to_kg(2.0)
    assert f["9"]["kg"] == pytest.approx(world.truth_refill_kg + b_liquid, rel=0.02)
    assert f["9"]["nm3"] == pytest.approx(nm3(world.truth_refill_kg + b_liquid), rel=0.02)
    assert f["9"]["m3_liquid"] == pytest.approx(
        (world.truth_refill_kg + b_liquid) / 1141.0, rel=0.02
    )
    assert f["11"] == pytest.approx(60.0)
    assert f["13"]["reporting_nm3"] == pytest.approx(nm3(20000.0 + 10000.0), rel=0.001)
    assert f["13"]["registry_all_nm3"] == pytest.approx(nm3(30000.0), rel=0.001)
    assert f["14"] == pytest.approx(nm3(world.truth_avg_kg) + 700.0, rel=0.02)
    assert r.json()["units"]["gas"].startswith("m3 @ 0 °C")

    n = client.get("/api/byt/national", params={"day": d}, headers=h(world, "byt")).json()
    rows = {p["code"]: p for p in n["provinces"]}
    hn = rows["SYT-01"]
    assert (hn["expected"], hn["reported"], hn["on_time"], hn["patients_current"]) == (3, 2, 0, 60)
    assert hn["need_reported_nm3_per_day"] == pytest.approx(f["14"], abs=0.05)
    assert n["nation"]["patients_current"] == 60 + 7
    loc = client.get(
        "/api/byt/national", params={"day": d, "by": "location"}, headers=h(world, "byt")
    )
    by_loc = {p["province_code"]: p for p in loc.json()["provinces"]}
    assert by_loc["01"]["expected"] == 3 and by_loc["79"]["expected"] == 1
    assert loc.json()["nation"]["expected"] == n["nation"]["expected"]
    assert n["nation"]["expected"] == sum(p["expected"] for p in n["provinces"])
    assert n["nation"]["need_nm3_per_day"] == pytest.approx(
        sum(p["need_nm3_per_day"] for p in n["provinces"])
    )
    # With the facilities (typed as FacilityFiguresPublic): the same totals, one row each.
    full = client.get(
        "/api/byt/national", params={"day": d, "facilities": "true"}, headers=h(world, "byt")
    )
    assert full.status_code == 200
    hn_full = {p["code"]: p for p in full.json()["provinces"]}["SYT-01"]
    assert len(hn_full["facilities"]) == hn["expected"] == 3
    assert {k: v for k, v in hn_full.items() if k != "facilities"} == hn
    assert "facilities" not in hn  # only when asked for


def test_status_filter_and_facility_selection(client: TestClient, world: World) -> None:
    _file_all(client, world)
    base = f"/api/syt/{world.ids['syt01']}/report"
    d = world.day.isoformat()
    # B: 3000 kg ≈ 2100 Nm3 against 700 Nm3/day = 3.0 days → Enough; A has far more.
    only_b = client.get(
        base, params={"day": d, "facility_ids": [world.ids["B"]]}, headers=h(world, "syt01")
    ).json()
    assert [x["code"] for x in only_b["facilities"]] == ["BV-B"]
    assert only_b["fields"]["5"] == 20
    needs = client.get(
        base, params={"day": d, "status": "needs_more"}, headers=h(world, "syt01")
    ).json()
    assert all(x["status"] == "needs_more" for x in needs["facilities"])
    # Fields 8 and 10 are the department's totals whatever the filters show.
    assert (needs["fields"]["8"], needs["fields"]["10"]) == (1, 3)
    assert (only_b["fields"]["8"], only_b["fields"]["10"]) == (1, 3)
    enough = client.get(
        base, params={"day": d, "status": "enough"}, headers=h(world, "syt01")
    ).json()
    assert {x["code"] for x in enough["facilities"]} >= {"BV-A"}
    # Another province's facility id in the filter is simply not there.
    leak = client.get(
        base, params={"day": d, "facility_ids": [world.ids["D"]]}, headers=h(world, "syt01")
    ).json()
    # Nothing selected: the sums are unknown (null), not 0.
    assert leak["facilities"] == [] and leak["fields"]["5"] is None


def test_validation_refuses_field_by_field_and_stores_nothing(
    client: TestClient, world: World
) -> None:
    d = world.day.isoformat()
    url = f"/api/facilities/{world.ids['B']}/reports/{d}"
    bad = {
        "patients_current": -1,
        "patients_new": 2,
        "discharged_evening": 0,
        "on_oxygen": {"mask": 3},
        "refilled_liquid": {"value": 50000, "unit": "kg"},
    }
    r = client.put(url, json=bad, headers={**h(world, "B"), "Accept-Language": "en"})
    assert r.status_code == 422
    errors = {e["field"]: e["key"] for e in r.json()["detail"]["errors"]}
    assert errors == {
        "patients_current": "report.error.negative",
        "refilled_liquid": "report.error.refill_exceeds_capacity",
    }
    assert all(e["message"] for e in r.json()["detail"]["errors"])
    r = client.put(
        url, json={"patients_current": 2, "on_oxygen": {"mask": 3}}, headers=h(world, "B")
    )
    assert {e["key"] for e in r.json()["detail"]["errors"]} == {
        "report.error.on_oxygen_exceeds_patients",
        "report.error.required",  # patients_new and discharged_evening
    }
    got = client.get(url, headers=h(world, "B")).json()
    assert got["revision"] == 0 and got["submitted_at"] is None and got["revisions"] == []
    # Overriding a pre-filled (telemetry) figure needs a reason.
    url_a = f"/api/facilities/{world.ids['A']}/reports/{d}"
    body = {**A_REPORT, "refilled_liquid": {"value": 5000, "unit": "kg"}}
    r = client.put(url_a, json=body, headers=h(world, "A"))
    assert r.status_code == 422
    assert r.json()["detail"]["errors"][0]["key"] == "report.error.override_reason_required"
    r = client.put(
        url_a,
        json={**body, "reasons": {"refilled_liquid": "delivery note says 5 t"}},
        headers=h(world, "A"),
    )
    assert r.status_code == 200, r.text
    got = client.get(url_a, headers=h(world, "A")).json()
    assert got["figures"]["refilled_liquid_kg"] == 5000.0
    assert got["figures"]["sources"]["refilled_liquid"] == "override"
    assert got["overrides"] == {"refilled_liquid": "delivery note says 5 t"}


def test_revisions_send_change_approve_lock_send_back(client: TestClient, world: World) -> None:
    _file_all(client, world)
    d = world.day.isoformat()
    org = world.ids["syt01"]
    hs = h(world, "syt01")
    r = client.post(f"/api/syt/{org}/reports/{d}/send", headers=hs)
    assert (
        r.status_code == 422
        and r.json()["detail"]["errors"][0]["key"] == "syt.error.notice_required"
    )
    body = {
        "notice": "Ổn định",
        "own_capacity": {"value": 30, "unit": "m3_liquid"},
        "own_need": {"value": 2000, "unit": "nm3"},
    }
    assert client.put(f"/api/syt/{org}/reports/{d}", json=body, headers=hs).status_code == 200
    sent = client.post(f"/api/syt/{org}/reports/{d}/send", headers=hs)
    # C has not reported: the sums leave it out, so sending needs an explicit confirmation.
    assert sent.status_code == 409 and sent.json()["detail"]["key"] == "syt.error.incomplete"
    assert sent.json()["detail"]["incomplete"]["5"] == {"contributors": 2, "expected": 3}
    sent = client.post(f"/api/syt/{org}/reports/{d}/send", headers=hs, params=OK_INCOMPLETE)
    assert sent.status_code == 200 and sent.json()["state"] == "sent"
    det = client.get(f"/api/syt/{org}/report", params={"day": d}, headers=hs).json()
    assert det["changed_since_sent"] is False
    assert det["entered"]["15"]["nm3"] == pytest.approx(CFG.reference.liquid_m3_to_gas_m3(30))
    # A facility edits its report after sending: the SYT report shows what changed.
    r = client.put(
        f"/api/facilities/{world.ids['B']}/reports/{d}",
        json={**B_REPORT, "patients_current": 25},
        headers=h(world, "B"),
    )
    assert r.status_code == 200
    det = client.get(f"/api/syt/{org}/report", params={"day": d}, headers=hs).json()
    assert det["changed_since_sent"] is True
    items = {c["item"]: (c["sent"], c["now"]) for c in det["changes"]}
    assert items["field.5"] == (60, 65)
    assert items["facility.BV-B.patients_current"] == (20, 25)
    fb = client.get(f"/api/facilities/{world.ids['B']}/reports/{d}", headers=h(world, "B")).json()
    assert [x["revision"] for x in fb["revisions"]] == [1, 2, 3]
    assert fb["revisions"][2]["diff"]["patients_current"] == [20, 25]
    # The copy that was sent stays whole beside the live figures.
    assert det["as_sent"]["revision"] == 2
    assert det["as_sent"]["fields"]["5"] == 60 and det["fields"]["5"] == 65
    sent_b = {f["code"]: f for f in det["as_sent"]["facilities"]}["BV-B"]
    assert sent_b["patients_current"] == 20
    assert det["as_sent"]["entered"]["12"] == "Ổn định"
    # BYT cannot approve figures that were never sent.
    report_id = det["id"]
    hb = h(world, "byt")
    assert client.post(f"/api/byt/syt-reports/{report_id}/approve", headers=hs).status_code == 403
    r = client.post(f"/api/byt/syt-reports/{report_id}/approve", headers=hb)
    assert r.status_code == 409 and r.json()["detail"]["key"] == "syt.error.changed_since_sent"
    assert (
        client.post(
            f"/api/syt/{org}/reports/{d}/send", headers=hs, params=OK_INCOMPLETE
        ).status_code
        == 200
    )
    # A change of the SYT's own typed fields (12, 15, 16) counts too.
    edited = {**body, "notice": "Ổn định, cần theo dõi", "own_need": {"value": 2100, "unit": "nm3"}}
    assert client.put(f"/api/syt/{org}/reports/{d}", json=edited, headers=hs).status_code == 200
    det = client.get(f"/api/syt/{org}/report", params={"day": d}, headers=hs).json()
    assert det["state"] == "sent" and det["changed_since_sent"] is True
    items = {c["item"]: (c["sent"], c["now"]) for c in det["changes"]}
    assert items["entered.12"] == ("Ổn định", "Ổn định, cần theo dõi")
    assert items["entered.16.nm3_per_day"] == (2000.0, 2100.0)
    r = client.post(f"/api/byt/syt-reports/{report_id}/approve", headers=hb)
    assert r.status_code == 409
    assert (
        client.post(
            f"/api/syt/{org}/reports/{d}/send", headers=hs, params=OK_INCOMPLETE
        ).status_code
        == 200
    )
    # Sent with incomplete figures: approving it needs the confirmation too.
    r = client.post(f"/api/byt/syt-reports/{report_id}/approve", headers=hb)
    assert r.status_code == 409 and r.json()["detail"]["key"] == "syt.error.incomplete"
    assert "5" in r.json()["detail"]["incomplete"]
    # BYT approves what was sent: everything locks, and says why.
    r = client.post(f"/api/byt/syt-reports/{report_id}/approve", headers=hb, params=OK_INCOMPLETE)
    assert r.status_code == 200 and r.json()["state"] == "approved"
    r = client.put(f"/api/syt/{org}/reports/{d}", json=body, headers=hs)
    assert r.status_code == 409 and r.json()["detail"]["locked"] == "syt.locked.approved"
    r = client.put(
        f"/api/facilities/{world.ids['B']}/reports/{d}", json=B_REPORT, headers=h(world, "B")
    )
    assert r.status_code == 409 and r.json()["detail"]["locked"] == "report.locked.approved"
    got = client.get(f"/api/facilities/{world.ids['B']}/reports/{d}", headers=h(world, "B")).json()
    assert got["locked"] == "report.locked.approved"
    assert client.post(f"/api/byt/syt-reports/{report_id}/approve", headers=hb).status_code == 409
    # Send back needs a sent report; once reopened the SYT can send again.
    r = client.post(f"/api/byt/syt-reports/{report_id}/send-back", json={"reason": "x"}, headers=hb)
    assert r.status_code == 409
    listing = client.get(f"/api/syt/{org}/reports", headers=hs).json()
    # save, send, send, save, send, approve
    assert listing[0]["state"] == "approved" and listing[0]["revisions"] == 6


def test_send_back_reopens(client: TestClient, world: World) -> None:
    _file_all(client, world)
    d = world.day.isoformat()
    org = world.ids["syt01"]
    hs, hb = h(world, "syt01"), h(world, "byt")
    client.put(f"/api/syt/{org}/reports/{d}", json={"notice": "Cần thêm oxy"}, headers=hs)
    rid = client.post(f"/api/syt/{org}/reports/{d}/send", headers=hs, params=OK_INCOMPLETE).json()[
        "id"
    ]
    r = client.post(f"/api/byt/syt-reports/{rid}/send-back", json={"reason": " "}, headers=hb)
    assert r.status_code == 422
    r = client.post(
        f"/api/byt/syt-reports/{rid}/send-back", json={"reason": "Thiếu số liệu"}, headers=hb
    )
    assert r.json()["state"] == "sent_back"
    assert (
        client.put(
            f"/api/syt/{org}/reports/{d}", json={"notice": "Đã bổ sung"}, headers=hs
        ).status_code
        == 200
    )
    assert (
        client.post(f"/api/syt/{org}/reports/{d}/send", headers=hs, params=OK_INCOMPLETE).json()[
            "state"
        ]
        == "sent"
    )


def test_scope_syt_cannot_read_or_modify_another_province(client: TestClient, world: World) -> None:
    _file_all(client, world)
    d = world.day.isoformat()
    other = world.ids["syt01"]
    h79 = h(world, "syt79")
    assert client.get(f"/api/syt/{other}/report", params={"day": d}, headers=h79).status_code == 404
    assert (
        client.put(f"/api/syt/{other}/reports/{d}", json={"notice": "x"}, headers=h79).status_code
        == 404
    )
    assert client.post(f"/api/syt/{other}/reports/{d}/send", headers=h79).status_code == 404
    assert client.get(f"/api/syt/{other}/reports", headers=h79).status_code == 404
    assert (
        client.get(f"/api/facilities/{world.ids['A']}/reports/{d}", headers=h79).status_code == 404
    )
    assert (
        client.get(
            f"/api/facilities/{world.ids['A']}/reports/{d}", headers=h(world, "B")
        ).status_code
        == 404
    )
    assert (
        client.put(
            f"/api/facilities/{world.ids['A']}/reports/{d}", json=A_REPORT, headers=h(world, "B")
        ).status_code
        == 404
    )
    assert client.get("/api/byt/national", headers=h79).status_code == 403
    own = client.get(f"/api/syt/{world.ids['syt79']}/report", params={"day": d}, headers=h79).json()
    assert [x["code"] for x in own["facilities"]] == ["BV-D"]
    assert client.get(f"/api/syt/{other}/report", params={"day": d}).status_code == 401


def test_export_of_unreported_facilities_says_why_each_figure_is_unknown(
    client: TestClient, world: World
) -> None:
    """Before anything is filed, the SYT file's figures are "—" with the page's reason, never
    empty cells (a spreadsheet would sum them as 0); the print page says the same."""
    d = world.day.isoformat()
    org, hs = world.ids["syt01"], h(world, "syt01")
    r = client.get(f"/api/syt/{org}/reports/{d}/facilities.csv", headers=hs)
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) == 1 + 3 and rows[0][4] == "Số người bệnh hiện tại", rows[0]
    assert {row[4] for row in rows[1:]} == {"— (Chưa báo cáo)"}, rows
    assert all(cell != "" for row in rows for cell in row), rows
    printed = client.get(f"/api/syt/{org}/reports/{d}/print", headers=hs).text
    assert "— (Chưa báo cáo)" in printed


def test_exports_and_printable_report(client: TestClient, world: World) -> None:
    _file_all(client, world)
    d = world.day.isoformat()
    org = world.ids["syt01"]
    hs = h(world, "syt01")
    r = client.get(f"/api/syt/{org}/reports/{d}/facilities.csv", headers=hs)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.content.decode("utf-8-sig").splitlines()
    assert "(kg)" in lines[0] and "m3 @ 0 °C" in lines[0] and len(lines) == 1 + 3
    r = client.get(f"/api/syt/{org}/reports/{d}/facilities.xlsx", headers=hs)
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws is not None and ws.max_row == 4
    r = client.get(f"/api/syt/{org}/reports/{d}/print", headers=hs)
    assert r.status_code == 200 and "@page" in r.text and "BV-A" in r.text and "m3 LOX" in r.text
    r = client.get("/api/byt/national.xlsx", params={"day": d}, headers=h(world, "byt"))
    assert r.status_code == 200
    # The national export says, beside each sum, how many facilities it stands for (as the BYT
    # table's "n/m"), and ends with the nation's row.
    view = client.get("/api/byt/national", params={"day": d}, headers=h(world, "byt")).json()
    r = client.get(
        "/api/byt/national.csv", params={"day": d, "lang": "en"}, headers=h(world, "byt")
    )
    table = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    want = [*view["provinces"], view["nation"]]
    assert len(table) == len(want) and table[-1]["Reporting parent"] == "Nation"
    for row, p in zip(table, want, strict=True):
        assert row["Expected"] == str(p["expected"])
        assert row["Patients: facilities counted"] == str(p["contributors"]["patients_current"])
        assert row["Stock: facilities counted"] == str(p["contributors"]["stock_nm3"])
        assert row["Need: facilities counted"] == str(p["contributors"]["need_nm3_per_day"])
    assert client.get(f"/api/syt/{org}/reports/{d}/facilities.pdf", headers=hs).status_code == 422
    # A day without any stock or need figure: the national sums are unknown (null), not 0, and
    # so is the demand (this crashed once the sums became null-aware).
    early = (world.day - timedelta(days=400)).isoformat()
    r = client.get("/api/byt/national", params={"day": early}, headers=h(world, "byt"))
    assert r.status_code == 200, r.text
    nation = r.json()["nation"]
    for key in ("stock_nm3", "usable_nm3", "need_nm3_per_day"):
        assert (nation[key] is None) == (nation["contributors"].get(key, 0) == 0), key
    assert nation["need_nm3_per_day"] is None and r.json()["supply"]["demand_t_per_day"] is None
    # The seed fields export: one row per field of the field table, as printed.
    r = client.get(f"/api/syt/{org}/reports/{d}/fields.csv", headers=hs)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [x[0] for x in rows[1:]] == [str(n) for n in range(1, 17) if n != 4]
    by_no = {x[0]: x[2] for x in rows[1:]}
    assert by_no["8"] == "1" and "m3" in by_no["9"] and "kg" in by_no["9"]
    assert client.get(f"/api/syt/{org}/reports/{d}/fields.xlsx", headers=hs).status_code == 200
    other = world.ids["syt79"]
    assert client.get(f"/api/syt/{other}/reports/{d}/fields.csv", headers=hs).status_code in (
        403,
        404,
    )


def test_supplier_report_cross_checks_deliveries(
    client: TestClient, world: World, db_url: str
) -> None:
    _file_all(client, world)

    async def supplier() -> str:
        conn = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
        async with conn:
            cur = await conn.execute(
                "INSERT INTO organisations (code, kind, name) "
                "VALUES ('NCC-1', 'supplier', 'Khí Việt') RETURNING id"
            )
            row = await cur.fetchone()
            assert row
            world.ids["sup"] = int(row[0])
            await conn.execute(
                "INSERT INTO suppliers (org_id, supplier_kind) VALUES (%s, 'producer')", (row[0],)
            )
            return await _user(conn, "sup.one", Role.SUPPLIER, "NCC-1")

    world.tokens["sup"] = asyncio.run(supplier())
    d = world.day.isoformat()
    url = f"/api/suppliers/{world.ids['sup']}/reports/{d}"
    body = {
        "production_t": 120,
        "capacity_normal_tpd": 150,
        "capacity_full_tpd": 140,
        "deliveries": [{"facility_id": world.ids["A"], "liquid": {"value": 9, "unit": "t"}}],
    }
    r = client.put(url, json=body, headers=h(world, "sup"))
    assert r.status_code == 422
    assert r.json()["detail"]["errors"][0]["key"] == "supplier.error.capacity_order"
    body["capacity_full_tpd"] = 170
    assert client.put(url, json=body, headers=h(world, "sup")).status_code == 200
    body["capacity_full_tpd"] = 180
    body["deliveries"].append(
        {"facility_id": world.ids["B"], "liquid": {"value": 5000, "unit": "kg"}}
    )
    assert client.put(url, json=body, headers=h(world, "sup")).status_code == 200
    mine = client.get(url, headers=h(world, "sup")).json()
    assert [v["revision"] for v in mine["revisions"]] == [1, 2]
    assert mine["revisions"][1]["diff"]["capacity_full_tpd"] == [170.0, 180.0]
    checks = {x["code"]: x["match"] for x in mine["deliveries"]}
    assert checks == {"BV-A": True, "BV-B": False}  # A's tank saw 9 t; B reported 2 m3 (2282 kg)
    assert "facility_refilled_liquid_kg" not in mine["deliveries"][0]
    byt = client.get(url, headers=h(world, "byt")).json()
    assert byt["deliveries"][0]["facility_refilled_liquid_kg"] == pytest.approx(9000.0, rel=0.02)
    assert client.get(url, headers=h(world, "syt01")).status_code == 403
    csv_rows = client.get(url + "/deliveries.csv", headers=h(world, "sup")).content.decode(
        "utf-8-sig"
    )
    assert "BV-A" in csv_rows and "(kg)" in csv_rows.splitlines()[0]
    assert "CSYT báo nạp" in csv_rows.splitlines()[0]  # headings in the user's language
    english = client.get(url + "/deliveries.csv?lang=en", headers=h(world, "sup"))
    assert "Facility's refill" in english.content.decode("utf-8-sig").splitlines()[0]
    assert client.get("/api/byt/syt-reports.xlsx", headers=h(world, "byt")).status_code == 200
    n = client.get("/api/byt/national", params={"day": d}, headers=h(world, "byt")).json()
    assert n["supply"]["production_t"] == 120.0 and n["supply"]["capacity_full_t_per_day"] == 180.0
