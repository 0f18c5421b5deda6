"""The suggestion endpoint on the demo country (oxy.demo_seed) plus telemetry: explained
proposals built from live figures, scoped to the caller, with what-if parameters — and nothing
written anywhere."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from api.accounting.simulate import TankPlan, copy_readings, readings, refresh_rollups
from api.app import create_app
from api.scope import Role
from oxy.demo_seed import seed_demo
from oxy.settings import Settings
from tests.fix_db import Seed, seeded

from .conftest import make_user, org_id

# Low stock in two HCM City hospitals: Thủ Đức runs dry within a day, Hồi sức COVID in two.
LOW = {
    ("BV-THUDUC", "T1"): TankPlan(11410.0, 2.2, 3600.0, 900.0),
    ("BV-HSCOVID-HCM", "T1"): TankPlan(34230.0, 2.6, 15000.0, 3000.0),
}
TABLES = (
    "support_requests",
    "assignments",
    "deliveries",
    "audit_log",
    "tank_windows",
    "refill_events",
)


@dataclass
class Demo:
    ids: dict[str, int]
    tokens: dict[str, str]

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


async def _build(url: str) -> Demo:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start, end = now - timedelta(days=3), now - timedelta(minutes=5)
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        ids = {}
        for code in ("BV-THUDUC", "BV-HSCOVID-HCM", "NCC-CHIETNAP-HCM", "NCC-KHIMIENNAM"):
            ids[code] = await org_id(conn, code)
        for (fac, tank), plan in LOW.items():
            cur = await conn.execute(
                "SELECT s.id FROM sensors s JOIN tanks t ON t.id = s.tank_id "
                "WHERE t.facility_id = %s AND t.code = %s AND s.quantity = 'dp'",
                (ids[fac], tank),
            )
            row = await cur.fetchone()
            assert row is not None
            await copy_readings(conn, readings(plan, int(row[0]), start, end, seed=5))
            await refresh_rollups(conn, int(row[0]), start, end)
        tokens = {
            "byt": await make_user(conn, "byt.demo", Role.BYT, "BYT"),
            "syt79": await make_user(conn, "syt.demo", Role.SYT, "SYT-79"),
            "fac": await make_user(conn, "staff.demo", Role.FACILITY, "BV-THUDUC"),
        }
    return Demo(ids, tokens)


def _seed_and_build(url: str) -> Demo:
    seed_demo(url)
    return asyncio.run(_build(url))


@pytest.fixture(scope="module")
def db_seed() -> Seed:
    """`demo`'s rows, built once per module (`tests.fix_db.Seed`)."""
    return Seed("suggest-demo", "demo", _seed_and_build)


@pytest.fixture
def demo(request: pytest.FixtureRequest, db_url: str) -> Demo:
    d: Demo = seeded(request)
    return d


@pytest.fixture
def client(db_url: str, demo: Demo) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=db_url))) as c:
        yield c


def _counts(db_url: str) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        out = {}
        for t in TABLES:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))
            ).fetchone()
            assert row is not None
            out[t] = int(row[0])
        return out


def _by_facility(plan: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {f["facility_id"]: f for f in plan["facilities"]}


def test_suggestions_are_explained_scoped_and_write_nothing(
    client: TestClient, demo: Demo, db_url: str
) -> None:
    before = _counts(db_url)
    thuduc, hscovid = demo.ids["BV-THUDUC"], demo.ids["BV-HSCOVID-HCM"]
    hcm_station, dongnai = demo.ids["NCC-CHIETNAP-HCM"], demo.ids["NCC-KHIMIENNAM"]

    r = client.get("/api/coordination/suggestions", headers=demo.h("syt79"))
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["proposal_only"] is True
    assert plan["scope"]["level"] == "province" and plan["scope"]["province"] == "79"
    # The SYT plans with the suppliers located in its province only.
    assert {s["id"] for s in plan["sources"] if s["kind"] == "supplier"} == {hcm_station}
    facs = _by_facility(plan)
    assert set(facs) == {thuduc, hscovid}
    # A facility whose stock nobody knows today (no telemetry, no report) is not "enough": it is
    # listed as left out with that reason, within the SYT's scope only.
    with psycopg.connect(db_url) as conn:
        code_of = dict(conn.execute("SELECT id, code FROM organisations").fetchall())
    unknown = {code_of[e["id"]] for e in plan["excluded"] if e["key"] == "coord.why.stock_unknown"}
    assert "BV-CHORAY" in unknown and "BV-BACHMAI" not in unknown
    assert unknown.isdisjoint({"BV-THUDUC", "BV-HSCOVID-HCM"})
    gone = next(e for e in plan["excluded"] if e["key"] == "coord.why.stock_unknown")
    assert "chưa biết tồn kho" in gone["message"]
    assert facs[thuduc]["urgency"] == "critical" and facs[hscovid]["urgency"] == "high"
    # Need = 3 days of the measured draw less the usable stock, all of it covered.
    for fid in (thuduc, hscovid):
        f = facs[fid]
        want = 3 * f["avg_daily_kg"] - f["usable_kg"]
        assert f["need_kg"] == pytest.approx(want, rel=1e-6)
        assert f["covered_kg"] == pytest.approx(f["need_kg"], abs=1.0)
        assert f["unmet_kg"] == pytest.approx(0.0, abs=1.0)
        assert f["reasons"][0]["key"] == "coord.why.nearest"
        assert "nguồn gần nhất" in f["reasons"][0]["message"]  # Vietnamese by default
    assert facs[thuduc]["avg_daily_kg"] == pytest.approx(900.0, rel=0.1)
    ships = plan["shipments"]
    assert {s["source_id"] for s in ships} == {hcm_station}
    assert all(s["road_km"] < 50 and s["assign_part"]["source_id"] == hcm_station for s in ships)
    # Each shipment carries its own reason (the map's popup): the one its facility lists for it.
    for s in ships:
        assert s["reason"] in facs[s["facility_id"]]["reasons"], s
        assert s["reason"]["key"] == "coord.why.nearest"
        assert s["reason"]["params"]["source"] == s["source_name"]

    # What-if, the station is down: nothing in the province can cover, and it says why.
    r = client.get(
        "/api/coordination/suggestions",
        params={"down": hcm_station, "lang": "en"},
        headers=demo.h("syt79"),
    )
    down = r.json()
    assert down["shipments"] == []
    assert down["parameters"]["suppliers_down"] == [hcm_station]
    for f in down["facilities"]:
        assert f["unmet_kg"] == pytest.approx(f["need_kg"])
        assert f["reasons"][-1]["key"] == "coord.why.unreachable"
    assert down["totals"]["unmet_weighted"] > 0

    # BYT plans nationally: with the HCM station down, Đồng Nai's producer covers HCM City.
    r = client.get(
        "/api/coordination/suggestions", params={"down": hcm_station}, headers=demo.h("byt")
    )
    nat = r.json()
    assert nat["scope"]["level"] == "national"
    assert {s["source_id"] for s in nat["shipments"]} == {dongnai}
    assert nat["totals"]["unmet_kg"] == pytest.approx(0.0, abs=1.0)
    # A surge in province 79 doubles its need.
    r = client.get("/api/coordination/suggestions", params={"surge": "79:2"}, headers=demo.h("byt"))
    surged = _by_facility(r.json())
    base = _by_facility(client.get("/api/coordination/suggestions", headers=demo.h("byt")).json())
    assert surged[thuduc]["need_kg"] == pytest.approx(2 * base[thuduc]["need_kg"])
    bad = client.get("/api/coordination/suggestions", params={"surge": "79"}, headers=demo.h("byt"))
    assert bad.status_code == 422
    # Facility staff do not get the coordinators' tool.
    r = client.get("/api/coordination/suggestions", headers=demo.h("fac"))
    assert r.status_code == 403

    assert _counts(db_url) == before


def test_open_requests_and_supplier_report_shape_the_proposal(
    client: TestClient, demo: Demo, db_url: str
) -> None:
    thuduc, hscovid = demo.ids["BV-THUDUC"], demo.ids["BV-HSCOVID-HCM"]
    station = demo.ids["NCC-CHIETNAP-HCM"]
    # The station's latest report: 2 t in stock and 1 t/day, less than both need.
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO supplier_reports (supplier_id, report_day, production_t, "
            "capacity_normal_tpd, lox_stock_kg) VALUES (%s, current_date - 1, 1, 1, 2000)",
            (station,),
        )
    plan = client.get("/api/coordination/suggestions", headers=demo.h("syt79")).json()
    src = next(s for s in plan["sources"] if s["id"] == station)
    assert src["available_kg"] == pytest.approx(3000.0)
    facs = _by_facility(plan)
    # Urgency decides: the critical hospital is served first, the other explains its gap.
    assert facs[thuduc]["unmet_kg"] == pytest.approx(0.0, abs=1.0)
    assert facs[hscovid]["unmet_kg"] > 0
    assert facs[hscovid]["reasons"][-1]["key"] == "coord.why.exhausted"
    # An open request larger than the computed shortfall raises the need to the request.
    body = {
        "amount": {"value": 20000, "unit": "kg"},
        "needed_by": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
    }
    r = client.post(f"/api/facilities/{thuduc}/support-requests", json=body, headers=demo.h("fac"))
    assert r.status_code == 201, r.text
    plan = client.get("/api/coordination/suggestions", headers=demo.h("syt79")).json()
    f = _by_facility(plan)[thuduc]
    assert f["need_kg"] == pytest.approx(20000.0)
    assert f["open_request_ids"] == [r.json()["id"]]
    assert any(x["key"] == "coord.why.capacity" for x in f["reasons"])  # an 11.4 t tank


def _keys(v: Any) -> Any:
    """The shape of a JSON value: its keys all the way down (lists by their items)."""
    if isinstance(v, dict):
        return {k: _keys(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_keys(x) for x in v]
    return None


def test_the_typed_answer_keeps_every_field_of_the_proposal(
    client: TestClient, demo: Demo, db_url: str
) -> None:
    """SuggestionPublic documents the whole proposal: every field of the service's typed result
    reaches the answer unchanged, and the route answers exactly that shape."""
    from dataclasses import asdict

    from api.accounting.config import AccountingConfig
    from api.coordination.http import jsonable as _jsonable
    from api.coordination.suggest import Suggestion, SuggestParams, suggest
    from api.coordination.suggestions_routes import suggestion_public
    from api.scope import Principal

    byt = Principal(1, "byt.demo", Role.BYT, None, None, "BYT", "vi", parent_ids=None)

    async def run() -> Suggestion:
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            params = SuggestParams(suppliers_down=(demo.ids["NCC-KHIMIENNAM"],), surge={"79": 1.5})
            return await suggest(
                conn,
                byt,
                params,
                cfg=AccountingConfig.defaults(),
                now=datetime.now(UTC),
                locale="vi",
            )

    out = asyncio.run(run())
    assert out.shipments and out.facilities and out.sources
    raw: dict[str, Any] = _jsonable(asdict(out))
    for sh in raw["shipments"]:
        sh["from"] = sh.pop("from_")  # a keyword in Python, the key in JSON
    assert raw["scope"].pop("org_id") is None  # national: no organisation planning, left out
    typed = suggestion_public(out).model_dump(mode="json", by_alias=True, exclude_unset=True)
    assert typed == raw
    r = client.get(
        "/api/coordination/suggestions",
        params={"down": demo.ids["NCC-KHIMIENNAM"], "surge": "79:1.5"},
        headers=demo.h("byt"),
    )
    assert r.status_code == 200, r.text
    assert _keys(r.json()) == _keys(raw)
    assert r.json()["shipments"][0]["from"].keys() == {"lat", "lon"}
