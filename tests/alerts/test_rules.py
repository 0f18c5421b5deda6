"""Each rule fires on a scenario and clears when the scenario is repaired (real PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import AsyncConnection

from api.accounting.config import AccountingConfig
from api.alerts.config import AlertSettings
from api.alerts.engine import apply
from api.alerts.rules import Condition, Rule, Severity, evaluate_rules
from oxy.calibration import vertical_tank_table
from tests.api.conftest import World, login

NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)  # 10:00 local
CFG = AlertSettings()
ACC = AccountingConfig.defaults()


def evaluate(url: str, now: datetime, *rules: Rule) -> list[Condition]:
    async def go() -> list[Condition]:
        async with await AsyncConnection.connect(url) as conn:
            return await evaluate_rules(conn, now, CFG, ACC, only=rules or None)

    return asyncio.run(go())


def tank_with_sensors(conn: psycopg.Connection[Any], w: World) -> dict[str, int]:
    table = vertical_tank_table(11410, 2.2)
    tank = conn.execute(
        "INSERT INTO tanks (facility_id, code, name, capacity_kg, min_usable_kg, max_pressure_bar) "
        "VALUES (%s, 'T1', 'T1', 11410, 570, 17) RETURNING id",
        (w.fac_in,),
    ).fetchone()[0]
    cal = conn.execute(
        "INSERT INTO tank_calibrations (tank_id, version, valid_from) "
        "VALUES (%s, 1, '2020-01-01Z') RETURNING id",
        (tank,),
    ).fetchone()[0]
    for dp, kg in zip(table.dp, table.kg, strict=True):
        conn.execute("INSERT INTO calibration_points VALUES (%s, %s, %s)", (cal, dp, kg))
    ids = {"tank": tank, "dp_inh2o_for_300kg": table.dp_for(300.0)}
    for code, quantity, unit in (("T1-dp", "dp", "inH2O"), ("T1-p", "head_pressure", "bar")):
        ids[code] = conn.execute(
            "INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (w.gw_in, code, tank, quantity, unit),
        ).fetchone()[0]
    return ids


def latest(
    conn: psycopg.Connection[Any], sensor: int, ts: datetime, value: float | None, quality: int = 0
) -> None:
    conn.execute(
        "INSERT INTO sensor_latest (sensor_id, ts, value, quality, received_at) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (sensor_id) DO UPDATE SET ts = EXCLUDED.ts, "
        "value = EXCLUDED.value, quality = EXCLUDED.quality",
        (sensor, ts, value, quality, ts),
    )


def test_tank_sensor_and_gateway_rules_fire_and_clear(world: World) -> None:
    url = world.db_url
    with psycopg.connect(url) as conn:
        ids = tank_with_sensors(conn, world)
        latest(conn, ids["T1-dp"], NOW - timedelta(minutes=1), ids["dp_inh2o_for_300kg"])
        latest(conn, ids["T1-p"], NOW - timedelta(minutes=1), 18.2)
        conn.execute(
            "INSERT INTO gateway_status (gateway_id, last_seen, online) VALUES (%s, %s, false)",
            (world.gw_in, NOW - timedelta(minutes=1)),
        )
    found = {(c.rule, c.subject_kind): c for c in evaluate(url, NOW)}
    low = found[(Rule.CONTENTS_LOW, "tank")]
    assert low.severity == "critical" and abs(low.details["contents_kg"] - 300) < 5
    assert found[(Rule.HEAD_PRESSURE, "tank")].details["pressure_bar"] == 18.2
    assert found[(Rule.GATEWAY_OFFLINE, "gateway")].details["will"] is True
    assert (Rule.SENSOR_STALE, "sensor") not in found

    later = NOW + timedelta(minutes=30)  # nothing new arrived: both sensors are stale
    stale = [c for c in evaluate(url, later, Rule.SENSOR_STALE)]
    assert sorted(c.subject_id for c in stale) == sorted([ids["T1-dp"], ids["T1-p"]])

    with psycopg.connect(url) as conn:  # a tanker came, pressure is normal, gateway back
        latest(conn, ids["T1-dp"], later, 200.0)
        latest(conn, ids["T1-p"], later, 9.5)
        latest(conn, ids["T1-p"], later, None, quality=3)
        conn.execute("UPDATE gateway_status SET online = true, last_seen = %s", (later,))
    after = {(c.rule, c.subject_kind) for c in evaluate(url, later)}
    assert after == {(Rule.SENSOR_BAD, "sensor"), (Rule.REPORT_MISSING, "facility")}


def test_report_missing_only_after_the_deadline(world: World) -> None:
    url = world.db_url
    before = datetime(2026, 11, 28, 9, 59, tzinfo=UTC)  # 16:59 local, deadline 17:00
    after = datetime(2026, 11, 28, 10, 1, tzinfo=UTC)
    days = {c.details["day"] for c in evaluate(url, before, Rule.REPORT_MISSING)}
    assert days == {"2026-11-27"}
    missing = evaluate(url, after, Rule.REPORT_MISSING)
    assert {c.subject_id for c in missing} == {world.fac_in, world.fac_out}
    assert {c.details["day"] for c in missing} == {"2026-11-28"}
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO facility_reports (facility_id, report_day, submitted_at) "
            "VALUES (%s, %s, %s)",
            (world.fac_in, date(2026, 11, 28), after),
        )
        conn.execute(
            "UPDATE facilities SET active_to = '2026-11-01' WHERE org_id = %s", (world.fac_out,)
        )
    assert evaluate(url, after, Rule.REPORT_MISSING) == []


def test_alert_routes_enforce_scope_and_lifecycle(world: World, client: TestClient) -> None:
    url = world.db_url
    conds = [
        Condition(Rule.SENSOR_STALE, "sensor", 1, world.fac_in, Severity.WARNING, {}),
        Condition(Rule.SENSOR_STALE, "sensor", 2, world.fac_out, Severity.CRITICAL, {}),
    ]

    async def go() -> None:
        async with await AsyncConnection.connect(url) as conn:
            await apply(conn, conds, datetime.now(UTC), CFG)

    asyncio.run(go())
    login(client, "staff-in")
    mine = client.get("/api/alerts").json()
    assert [a["facility_id"] for a in mine] == [world.fac_in]
    assert mine[0]["title"]  # translated rule title
    assert client.get("/api/alerts/count").json() == {"active": 1, "critical": 0}
    with psycopg.connect(url) as conn:
        other = conn.execute(
            "SELECT id FROM alerts WHERE facility_id = %s", (world.fac_out,)
        ).fetchone()[0]
    token = client.cookies.get("oxy_session")
    assert token
    csrf = {"x-csrf-token": _csrf(client)}
    assert client.post(f"/api/alerts/{other}/ack", headers=csrf).status_code == 404
    assert client.post(f"/api/alerts/{mine[0]['id']}/ack", headers=csrf).status_code == 200
    assert client.post(f"/api/alerts/{mine[0]['id']}/ack", headers=csrf).status_code == 409
    r = client.post(f"/api/alerts/{mine[0]['id']}/resolve", json={"note": ""}, headers=csrf)
    assert r.status_code == 422
    r = client.post(f"/api/alerts/{mine[0]['id']}/resolve", json={"note": "ok"}, headers=csrf)
    assert r.status_code == 200
    assert client.get("/api/alerts/count").json() == {"active": 0, "critical": 0}
    r = client.post(
        "/api/alerts/subscriptions",
        headers=csrf,
        json={"channel": "webhook", "target": "not a url"},
    )
    assert r.status_code == 403  # facility staff may not add webhooks (test_webhook_ssrf)
    r = client.post(
        "/api/alerts/subscriptions",
        headers=csrf,
        json={"channel": "email", "target": "not an address"},
    )
    assert r.status_code == 422
    r = client.post(
        "/api/alerts/subscriptions",
        headers=csrf,
        json={
            "channel": "email",
            "target": "me@bv-in.example.vn",
            "quiet_start": 22,
            "quiet_end": 6,
        },
    )
    assert r.status_code == 201
    assert [s["target"] for s in client.get("/api/alerts/subscriptions").json()] == [
        "me@bv-in.example.vn"
    ]


def _csrf(client: TestClient) -> str:
    from tests.api.conftest import csrf_of

    return csrf_of(client.get("/account").text)


def test_alerts_page_lists_acknowledges_and_resolves(world: World, client: TestClient) -> None:
    from tests.api.conftest import csrf_of

    conds = [
        Condition(
            Rule.GATEWAY_OFFLINE,
            "gateway",
            world.gw_in,
            world.fac_in,
            Severity.WARNING,
            {"gateway": "gw-bv-in"},
        )
    ]

    async def go() -> None:
        async with await AsyncConnection.connect(world.db_url) as conn:
            await apply(conn, conds, datetime.now(UTC), CFG)

    asyncio.run(go())
    login(client, "staff-in")
    page = client.get("/alerts")
    assert page.status_code == 200
    assert "Gateway mất kết nối" in page.text  # Vietnamese by default
    assert "data-alert-badge" in page.text and "/static/src/alerts-badge.js" in page.text
    assert client.get("/static/src/alerts-badge.js").status_code == 200
    with psycopg.connect(world.db_url) as conn:
        (alert_id,) = conn.execute("SELECT id FROM alerts").fetchone()
    token = csrf_of(page.text)
    r = client.post(f"/alerts/{alert_id}/ack", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    r = client.post(
        f"/alerts/{alert_id}/resolve",
        data={"csrf_token": token, "note": ""},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with psycopg.connect(world.db_url) as conn:
        assert conn.execute("SELECT state FROM alerts").fetchone() == ("acknowledged",)
    r = client.post(
        f"/alerts/{alert_id}/resolve",
        data={"csrf_token": token, "note": "gateway power restored"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with psycopg.connect(world.db_url) as conn:
        assert conn.execute("SELECT state, resolution_note FROM alerts").fetchone() == (
            "resolved",
            "gateway power restored",
        )
    # Without the CSRF token the form is refused.
    assert client.post(f"/alerts/{alert_id}/ack", follow_redirects=False).status_code == 403


def test_delivery_overdue_fires_until_delivered(world: World) -> None:
    url = world.db_url
    with psycopg.connect(url) as conn:
        req = conn.execute(
            "INSERT INTO support_requests (facility_id, parent_id, province_code, form, "
            "amount_value, amount_unit, amount_kg, needed_by, urgency, created_by) "
            "VALUES (%s, %s, '79', 'liquid', 5000, 'kg', 5000, %s, 'high', 'syt79') RETURNING id",
            (world.fac_in, world.syt_in, NOW + timedelta(hours=6)),
        ).fetchone()[0]
        asg = conn.execute(
            "INSERT INTO assignments (request_id, source_id, source_kind, amount_kg, level, "
            "state, assigned_by) VALUES (%s, %s, 'supplier', 5000, 'province', 'dispatched', "
            "'syt79') RETURNING id",
            (req, world.sup_in),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO deliveries (assignment_id, source_id, facility_id, form, amount_kg, "
            "state, dispatched_at, created_by) VALUES (%s, %s, %s, 'liquid', 5000, 'in_transit', "
            "%s, 'ncc-in')",
            (asg, world.sup_in, world.fac_in, NOW),
        )
    assert evaluate(url, NOW + timedelta(hours=5), Rule.DELIVERY_OVERDUE) == []
    late = evaluate(url, NOW + timedelta(hours=7), Rule.DELIVERY_OVERDUE)
    assert [(c.subject_kind, c.facility_id) for c in late] == [("delivery", world.fac_in)]
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE deliveries SET state = 'delivered', delivered_at = %s",
            (NOW + timedelta(hours=8),),
        )
    assert evaluate(url, NOW + timedelta(hours=9), Rule.DELIVERY_OVERDUE) == []


@pytest.mark.own_database  # drops a constraint to store what it forbids
def test_one_unusable_stored_value_is_skipped_and_the_rest_evaluated(world: World) -> None:
    """Issue 14: an infinite head pressure in sensor_latest (1.7e308 MPa stored before the
    contract checked values after conversion) made every round fail on jsonb's "Infinity" and
    opened no alert anywhere. Now that row is skipped and logged; the other tank still alerts."""
    url = world.db_url
    with psycopg.connect(url) as conn:
        ids = tank_with_sensors(conn, world)
        # What got in before 0070: the guard is lifted to put it back, as an old database has it.
        conn.execute("ALTER TABLE sensor_latest DROP CONSTRAINT sensor_latest_value_finite")
        tank2 = conn.execute(
            "INSERT INTO tanks (facility_id, code, name, capacity_kg, min_usable_kg,"
            " max_pressure_bar) VALUES (%s, 'T2', 'T2', 11410, 570, 17) RETURNING id",
            (world.fac_in,),
        ).fetchone()[0]
        p2 = conn.execute(
            "INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit) "
            "VALUES (%s, 'T2-p', %s, 'head_pressure', 'bar') RETURNING id",
            (world.gw_in, tank2),
        ).fetchone()[0]
        latest(conn, ids["T1-p"], NOW - timedelta(minutes=1), float("inf"))
        latest(conn, ids["T1-dp"], NOW - timedelta(minutes=1), float("nan"))
        latest(conn, p2, NOW - timedelta(minutes=1), 18.2)

    async def round_() -> list[Condition]:
        async with await AsyncConnection.connect(url) as conn:
            found = await evaluate_rules(conn, NOW, CFG, ACC)
            await conn.commit()
            await apply(conn, found, NOW, CFG)
            return found

    found = asyncio.run(round_())
    pressure = [c for c in found if c.rule is Rule.HEAD_PRESSURE]
    assert [c.subject_id for c in pressure] == [tank2]
    assert not [c for c in found if c.rule is Rule.CONTENTS_LOW]
    with psycopg.connect(url) as conn:
        opened = conn.execute(
            "SELECT subject_id FROM alerts WHERE rule = 'head_pressure_out_of_range'"
        ).fetchall()
    assert opened == [(tank2,)]


def test_a_non_finite_detail_is_stored_as_null_not_a_failed_round(world: World) -> None:
    cond = Condition(Rule.HEAD_PRESSURE, "tank", 1, world.fac_in, Severity.WARNING,
                     {"pressure_bar": float("inf"), "history": [1.0, float("nan")]})  # fmt: skip

    async def go() -> None:
        async with await AsyncConnection.connect(world.db_url) as conn:
            await apply(conn, [cond], NOW, CFG)

    asyncio.run(go())
    with psycopg.connect(world.db_url) as conn:
        (details,) = conn.execute("SELECT details FROM alerts").fetchone()
    assert details == {"pressure_bar": None, "history": [1.0, None]}
