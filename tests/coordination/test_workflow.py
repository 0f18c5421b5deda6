"""Coordination workflows over HTTP, per role and scope: requests, assignments, escalation,
deliveries and their match with the refills the tank sensors saw, supplier reports, exports."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from api.accounting.config import AccountingConfig
from api.accounting.windows import report_day_of
from api.coordination.service import SyncRound, run_once

from .conftest import REFILL_KG, World

CFG = AccountingConfig.defaults()


def sync(db_url: str, now: datetime | None = None) -> SyncRound:
    """One round of the periodic job (`oxy coordination sync`), as its service runs it."""

    async def go() -> SyncRound:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            return await run_once(conn, CFG, now or datetime.now(UTC))

    return asyncio.run(go())


def _request(client: TestClient, w: World, who: str, fac: str, kg: float, **kw: Any) -> Any:
    body = {
        "form": kw.get("form", "liquid"),
        "amount": {"value": kg, "unit": kw.get("unit", "kg")},
        "needed_by": (w.now + timedelta(hours=kw.get("hours", 24))).isoformat(),
    }
    return client.post(
        f"/api/facilities/{w.ids[fac]}/support-requests", json=body, headers=w.h(who)
    )


def _audit_count(db_url: str, entity: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM audit_log WHERE entity = %s", (entity,)).fetchone()
    assert row is not None
    return int(row[0])


def test_requests_urgency_units_and_scope(client: TestClient, world: World, db_url: str) -> None:
    w = world
    r = _request(client, w, "A", "A", 2.0, unit="m3_liquid")
    assert r.status_code == 201, r.text
    a = r.json()
    assert a["amount_kg"] == pytest.approx(2282.0)  # 2 m3 LOX × 1,141 kg/m3
    assert a["urgency"] == "normal"  # refilled yesterday: about a week of supply
    assert a["days_of_supply"] > 3
    r = _request(client, w, "B", "B", 300, form="cylinders", unit="cylinders")
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["urgency"] == "critical"  # ~1,000 kg left at 1,500 kg/day, 800 kg reserve
    assert b["amount_nm3"] == pytest.approx(1800.0)  # 300 cylinders × 6 Nm3
    # The SYT asks on behalf of a facility of its province, never of another province's.
    assert _request(client, w, "syt79", "B", 500).status_code == 201
    assert _request(client, w, "syt01", "A", 500).status_code == 404
    assert _request(client, w, "A", "B", 500).status_code == 404
    assert _request(client, w, "S79", "A", 500).status_code == 403
    # Units must fit the form; the time must be ahead.
    bad = _request(client, w, "A", "A", 5, unit="cylinders")
    assert bad.status_code == 422
    assert bad.json()["detail"]["errors"][0]["key"] == "coord.error.unit_form"
    assert _request(client, w, "A", "A", 5, hours=-1).status_code == 422
    assert _audit_count(db_url, "support_request") == 3

    def ids(who: str) -> set[int]:
        r = client.get("/api/coordination/requests", headers=w.h(who))
        assert r.status_code == 200, r.text
        return {x["facility_id"] for x in r.json()}

    assert ids("A") == {w.ids["A"]}
    assert ids("B") == {w.ids["B"]}
    assert ids("syt79") == {w.ids["A"], w.ids["B"]}
    assert ids("syt01") == set()
    assert ids("byt") == {w.ids["A"], w.ids["B"]}
    assert client.get("/api/coordination/requests", headers=w.h("S79")).status_code == 403
    assert client.get(f"/api/coordination/requests/{a['id']}", headers=w.h("B")).status_code == 404
    # Most urgent first.
    first = client.get("/api/coordination/requests", headers=w.h("syt79")).json()[0]
    assert first["urgency"] == "critical"


def test_assignment_scope_decline_escalation(client: TestClient, world: World, db_url: str) -> None:
    w = world
    req = _request(client, w, "B", "B", 6000).json()
    url = f"/api/coordination/requests/{req['id']}/assignments"

    def part(src: str, kg: float) -> dict[str, Any]:
        return {"source_id": w.ids[src], "amount": {"value": kg, "unit": "kg"}}

    # Another province's SYT cannot see, let alone assign, the request.
    r = client.post(url, json={"parts": [part("S01", 1000)]}, headers=w.h("syt01"))
    assert r.status_code == 404
    # An SYT assigns within its province only.
    r = client.post(url, json={"parts": [part("S01", 1000)]}, headers=w.h("syt79"))
    assert r.status_code == 403
    assert r.json()["detail"]["errors"][0]["key"] == "coord.error.source_out_of_province"
    r = client.post(url, json={"parts": [part("S79", 7000)]}, headers=w.h("syt79"))
    assert r.status_code == 422  # more than requested
    r = client.post(url, json={"parts": [part("S79", 3000), part("A", 1000)]}, headers=w.h("syt79"))
    assert r.status_code == 201, r.text
    s79_part, a_part = r.json()
    assert {s79_part["level"], a_part["level"]} == {"province"}
    got = client.get(f"/api/coordination/requests/{req['id']}", headers=w.h("B")).json()
    assert got["state"] == "partly_assigned"
    assert got["remaining_kg"] == pytest.approx(2000.0)

    # A supplier sees only its own assignments.
    mine = client.get("/api/coordination/assignments", headers=w.h("S79")).json()
    assert [x["id"] for x in mine] == [s79_part["id"]]
    assert client.get("/api/coordination/assignments", headers=w.h("S01")).json() == []
    own = client.get(f"/api/suppliers/{w.ids['S79']}/assignments", headers=w.h("S79"))
    assert [x["id"] for x in own.json()] == [s79_part["id"]]
    other = client.get(f"/api/suppliers/{w.ids['S01']}/assignments", headers=w.h("S79"))
    assert other.status_code == 404
    # Facility A sees the part it lends; facility C sees nothing.
    assert [
        x["id"] for x in client.get("/api/coordination/assignments", headers=w.h("A")).json()
    ] == [a_part["id"]]
    assert client.get("/api/coordination/assignments", headers=w.h("C")).json() == []

    # Only the source answers; declining needs a reason.
    acc = f"/api/coordination/assignments/{s79_part['id']}"
    assert client.post(f"{acc}/accept", headers=w.h("S01")).status_code == 404
    assert (
        client.post(f"{acc}/decline", json={"reason": " "}, headers=w.h("S79")).status_code == 422
    )
    r = client.post(f"{acc}/decline", json={"reason": "Xe bồn đang bảo dưỡng"}, headers=w.h("S79"))
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "declined"
    assert client.post(f"{acc}/accept", headers=w.h("S79")).status_code == 409
    r = client.post(f"/api/coordination/assignments/{a_part['id']}/accept", headers=w.h("A"))
    assert r.json()["state"] == "accepted"

    # The SYT escalates what it cannot cover; BYT assigns it across provinces.
    esc = f"/api/coordination/requests/{req['id']}/escalate"
    assert client.post(esc, json={"note": "x"}, headers=w.h("syt01")).status_code == 404
    r = client.post(esc, json={"note": "Hết nguồn trong tỉnh"}, headers=w.h("syt79"))
    assert r.status_code == 200, r.text
    assert r.json()["escalated_kg"] == pytest.approx(5000.0)
    assert client.post(esc, json={}, headers=w.h("syt79")).status_code == 409
    escalated = client.get("/api/coordination/requests?escalated=true", headers=w.h("byt")).json()
    assert [x["id"] for x in escalated] == [req["id"]]
    r = client.post(url, json={"parts": [part("S01", 5000)]}, headers=w.h("byt"))
    assert r.status_code == 201, r.text
    assert r.json()[0]["level"] == "national"
    got = client.get(f"/api/coordination/requests/{req['id']}", headers=w.h("byt")).json()
    assert got["state"] == "assigned"
    assert len(got["assignments"]) == 3
    # 2 creations + decline + accept recorded for assignments; the escalation on the request.
    assert _audit_count(db_url, "assignment") == 5
    assert _audit_count(db_url, "support_request") == 2


def _assigned(client: TestClient, w: World, fac: str, kg: float) -> int:
    req = _request(client, w, fac, fac, kg).json()
    r = client.post(
        f"/api/coordination/requests/{req['id']}/assignments",
        json={"parts": [{"source_id": w.ids["S79"], "amount": {"value": kg, "unit": "kg"}}]},
        headers=w.h("syt79"),
    )
    assert r.status_code == 201, r.text
    return int(r.json()[0]["id"])


def test_delivery_lifecycle_matches_the_refill(client: TestClient, world: World) -> None:
    w = world
    aid = _assigned(client, w, "A", REFILL_KG)
    r = client.post(f"/api/coordination/assignments/{aid}/accept", headers=w.h("S79"))
    assert r.status_code == 200
    r = client.post(
        f"/api/coordination/assignments/{aid}/dispatch",
        json={"at": (w.refill_at - timedelta(hours=2)).isoformat()},
        headers=w.h("S79"),
    )
    assert r.status_code == 201, r.text
    d = r.json()
    assert (d["state"], d["match_state"]) == ("dispatched", "pending")
    step = f"/api/coordination/deliveries/{d['id']}/advance"
    assert client.post(step, json={"state": "in_transit"}, headers=w.h("S01")).status_code == 404
    r = client.post(step, json={"state": "in_transit"}, headers=w.h("S79"))
    assert r.json()["state"] == "in_transit"
    assert client.post(step, json={"state": "dispatched"}, headers=w.h("S79")).status_code == 409
    r = client.post(
        step,
        json={"state": "delivered", "at": (w.refill_at + timedelta(hours=1)).isoformat()},
        headers=w.h("S79"),
    )
    d = r.json()
    assert d["state"] == "delivered"
    assert d["match_state"] == "matched", d
    assert d["matched_kg"] == pytest.approx(REFILL_KG, rel=0.05)
    assert d["matched_refills"][0]["tank_id"] == w.ids["tankA"]
    assert d["mismatch"] is False
    # Only the recipient confirms.
    conf = f"/api/coordination/deliveries/{d['id']}/confirm"
    assert client.post(conf, json={}, headers=w.h("B")).status_code == 404
    assert client.post(conf, json={}, headers=w.h("S79")).status_code == 403
    r = client.post(conf, json={"received": {"value": 9000, "unit": "kg"}}, headers=w.h("A"))
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "confirmed"
    assert client.post(conf, json={}, headers=w.h("A")).status_code == 409
    req = client.get("/api/coordination/requests", headers=w.h("A")).json()[0]
    assert req["state"] == "fulfilled"


def test_mismatches_are_flagged(client: TestClient, world: World) -> None:
    w = world
    # Five tonnes said delivered where the sensors saw nine: amount mismatch.
    wrong = _assigned(client, w, "A", 5000)
    d = client.post(
        f"/api/coordination/assignments/{wrong}/dispatch",
        json={"at": (w.refill_at - timedelta(hours=1)).isoformat()},
        headers=w.h("S79"),
    ).json()
    d = client.post(
        f"/api/coordination/deliveries/{d['id']}/advance",
        json={"state": "delivered", "at": (w.refill_at + timedelta(hours=1)).isoformat()},
        headers=w.h("S79"),
    ).json()
    assert d["match_state"] == "mismatch"
    assert d["matched_kg"] == pytest.approx(REFILL_KG, rel=0.05)
    assert d["match"]["key"] == "coord.match.amount"
    # Said delivered to B 20 hours ago: B's tank saw no refill at all.
    none = _assigned(client, w, "B", 3000)
    d2 = client.post(
        f"/api/coordination/assignments/{none}/dispatch",
        json={"at": (w.now - timedelta(hours=22)).isoformat()},
        headers=w.h("S79"),
    ).json()
    d2 = client.post(
        f"/api/coordination/deliveries/{d2['id']}/advance",
        json={"state": "delivered", "at": (w.now - timedelta(hours=20)).isoformat()},
        headers=w.h("S79"),
    ).json()
    assert (d2["match_state"], d2["match"]["key"]) == ("mismatch", "coord.match.none")
    flagged = client.get("/api/coordination/deliveries?match=mismatch", headers=w.h("syt79"))
    assert {x["id"] for x in flagged.json()} == {d["id"], d2["id"]}
    assert client.get("/api/coordination/deliveries", headers=w.h("syt01")).json() == []
    # Vietnamese by default, English on request.
    assert "Cảm biến" in d2["match"]["message"]
    en = client.get("/api/coordination/deliveries?match=mismatch&lang=en", headers=w.h("A"))
    assert all("tank sensors" in x["match"]["message"] for x in en.json())


def test_supplier_report_feeds_the_delivery_records(
    client: TestClient, world: World, db_url: str
) -> None:
    w = world
    day = report_day_of(w.refill_at, CFG)
    r = client.put(
        f"/api/suppliers/{w.ids['S79']}/reports/{day.isoformat()}",
        json={
            "production_t": 20,
            "deliveries": [
                {"facility_id": w.ids["A"], "liquid": {"value": REFILL_KG, "unit": "kg"}},
                {"facility_id": w.ids["B"], "liquid": {"value": 4000, "unit": "kg"}},
            ],
        },
        headers=w.h("S79"),
    )
    assert r.status_code == 200, r.text
    assert sync(db_url).new_lines == 2
    rows = client.get("/api/coordination/deliveries", headers=w.h("syt79")).json()
    by_fac = {x["facility_id"]: x for x in rows}
    assert set(by_fac) == {w.ids["A"], w.ids["B"]}
    a, b = by_fac[w.ids["A"]], by_fac[w.ids["B"]]
    assert a["supplier_report_id"] is not None and a["report_day"] == day.isoformat()
    assert (a["state"], a["match_state"]) == ("delivered", "matched")
    assert b["match_state"] == "mismatch"  # B's sensors saw no refill that day
    # The supplier sees its reported deliveries; the facility confirms one like any other.
    assert len(client.get("/api/coordination/deliveries", headers=w.h("S79")).json()) == 2
    assert client.get("/api/coordination/deliveries", headers=w.h("S01")).json() == []
    r = client.post(f"/api/coordination/deliveries/{a['id']}/confirm", json={}, headers=w.h("A"))
    assert r.json()["state"] == "confirmed"
    # A revision of the report changes B's line and drops nothing confirmed; no duplicates.
    r = client.put(
        f"/api/suppliers/{w.ids['S79']}/reports/{day.isoformat()}",
        json={
            "production_t": 20,
            "deliveries": [
                {"facility_id": w.ids["A"], "liquid": {"value": REFILL_KG, "unit": "kg"}},
            ],
        },
        headers=w.h("S79"),
    )
    assert r.status_code == 200, r.text
    assert sync(db_url).new_lines == 0  # the revision's line A is the one already taken in
    rows = client.get("/api/coordination/deliveries", headers=w.h("byt")).json()
    assert [(x["facility_id"], x["state"]) for x in rows] == [(w.ids["A"], "confirmed")]


def test_exports(client: TestClient, world: World) -> None:
    w = world
    _request(client, w, "A", "A", 1000)
    _request(client, w, "B", "B", 2000)
    _request(client, w, "C", "C", 3000)
    r = client.get("/api/coordination/requests.csv", headers=w.h("syt79"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    lines = r.content.decode("utf-8-sig").strip().splitlines()
    assert lines[0].startswith("Mã yêu cầu,")  # Vietnamese by default
    en = client.get("/api/coordination/requests.csv?lang=en", headers=w.h("syt79"))
    assert en.content.decode("utf-8-sig").startswith("Request,")
    assert len(lines) == 3  # header + the two requests of its province
    r = client.get("/api/coordination/requests.xlsx", headers=w.h("byt"))
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws is not None and ws.max_row == 4
    assert client.get("/api/coordination/requests.pdf", headers=w.h("byt")).status_code == 422
    r = client.get("/api/coordination/assignments.csv", headers=w.h("S79"))
    assert r.status_code == 200
    r = client.get("/api/coordination/deliveries.xlsx", headers=w.h("A"))
    assert r.status_code == 200


def test_map_shows_open_requests_and_flows_in_scope(client: TestClient, world: World) -> None:
    w = world
    aid = _assigned(client, w, "B", 2000)
    _request(client, w, "A", "A", 500)
    r = client.post(f"/api/coordination/assignments/{aid}/dispatch", json={}, headers=w.h("S79"))
    assert r.status_code == 201, r.text
    m = client.get("/api/coordination/map", headers=w.h("syt79")).json()
    assert {x["facility_id"] for x in m["requests"]} == {w.ids["A"], w.ids["B"]}
    (flow,) = m["flows"]
    assert (flow["state"], flow["source_id"], flow["facility_id"]) == (
        "dispatched",
        w.ids["S79"],
        w.ids["B"],
    )
    assert (flow["from_lat"], flow["to_lat"]) == (10.80, 10.85)
    assert client.get("/api/coordination/map", headers=w.h("syt01")).json() == {
        "requests": [],
        "flows": [],
    }
    # Suggested flows ride along on request: B still needs more than is on its way, A's open
    # request is not assigned yet.
    m = client.get("/api/coordination/map?suggested=true", headers=w.h("syt79")).json()
    kg = {s["facility_id"]: s["kg"] for s in m["suggested_flows"]}
    assert set(kg) == {w.ids["A"], w.ids["B"]}
    assert kg[w.ids["A"]] == pytest.approx(500.0)
    assert client.get("/api/coordination/map", headers=w.h("A")).status_code == 403


def test_supplier_report_line_links_to_the_assigned_delivery(
    client: TestClient, world: World, db_url: str
) -> None:
    w = world
    aid = _assigned(client, w, "A", REFILL_KG)
    url = f"/api/coordination/assignments/{aid}/dispatch"
    at = {"at": (w.refill_at - timedelta(hours=2)).isoformat()}
    d = client.post(url, json=at, headers=w.h("S79")).json()
    assert client.post(url, json=at, headers=w.h("S79")).status_code == 409  # once only
    delivered_at = w.refill_at + timedelta(hours=1)
    client.post(
        f"/api/coordination/deliveries/{d['id']}/advance",
        json={"state": "delivered", "at": delivered_at.isoformat()},
        headers=w.h("S79"),
    )
    # The supplier reports the delivery on the report day whose 16:00 window holds its arrival
    # (which, depending on the time the test runs, is not always the refill's day).
    day = report_day_of(delivered_at, CFG)
    r = client.put(
        f"/api/suppliers/{w.ids['S79']}/reports/{day.isoformat()}",
        json={
            "production_t": 20,
            "deliveries": [
                {"facility_id": w.ids["A"], "liquid": {"value": REFILL_KG, "unit": "kg"}}
            ],
        },
        headers=w.h("S79"),
    )
    assert r.status_code == 200, r.text
    assert sync(db_url).new_lines == 1
    rows = client.get("/api/coordination/deliveries", headers=w.h("A")).json()
    (only,) = rows  # the report's line is the assigned delivery, not a second one
    assert only["id"] == d["id"]
    assert only["supplier_report_id"] is not None and only["request_id"] is not None
    assert only["match_state"] == "matched"
