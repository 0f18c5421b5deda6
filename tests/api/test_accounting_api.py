"""Accounting over HTTP: tank figures and series, corrections (audited, scoped, revertible)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

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
from api.accounting.windows import local_today, window
from api.app import create_app
from api.auth import issue_token
from api.scope import Role
from api.users import NewUser, create_user
from oxy.settings import load_settings
from tests.fix_db import Seed, seeded

CFG = AccountingConfig.defaults()


async def _token(conn: psycopg.AsyncConnection[Any], name: str, role: Role, org: str | None) -> str:
    uid = await create_user(
        conn, "test", NewUser(name, name, role, "Correct-Horse-Battery-9", org_code=org)
    )
    await conn.execute("UPDATE users SET must_change_password = false WHERE id = %s", (uid,))
    return (await issue_token(conn, uid, "t")).secret


async def _build(url: str) -> dict[str, Any]:
    day = local_today(datetime.now(UTC), CFG) - timedelta(days=2)
    w = window(day, CFG)
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        cur = await conn.execute("SELECT id FROM organisations WHERE code = 'SYT-01'")
        row = await cur.fetchone()
        assert row
        a = await add_facility(conn, "BV-A", int(row[0]), "01")
        b = await add_facility(conn, "BV-B", int(row[0]), "01")
        plan = TankPlan(
            20000.0,
            2.5,
            12000.0,
            1500.0,
            refills=(PlannedRefill(w.start + timedelta(hours=6), 40, 6000.0),),
        )
        tank, sensor = await add_tank(conn, a, "T1", plan, valid_from=w.start - timedelta(days=30))
        tank_b, sensor_b = await add_tank(
            conn, b, "T1", plan, valid_from=w.start - timedelta(days=30)
        )
        assert sensor and sensor_b
        start, end = w.start - timedelta(days=7), w.end + timedelta(hours=4)
        await copy_readings(conn, readings(plan, sensor, start, end, seed=1))
        await refresh_rollups(conn, sensor, start, end)
        # A gauge fault on A: 40 minutes around 16:00 reading 3 t too much (a wrong close).
        fault = (w.end - timedelta(minutes=20), w.end + timedelta(minutes=20))
        await conn.execute(
            "UPDATE readings SET value = value + 27 WHERE sensor_id = %s AND ts BETWEEN %s AND %s",
            (sensor, *fault),
        )
        await refresh_rollups(conn, sensor, *fault)
        tokens = {
            "A": await _token(conn, "staff.a", Role.FACILITY, "BV-A"),
            "B": await _token(conn, "staff.b", Role.FACILITY, "BV-B"),
            "syt": await _token(conn, "syt.hn", Role.SYT, "SYT-01"),
        }
    return {
        "day": day,
        "a": a,
        "b": b,
        "tank": tank,
        "sensor": sensor,
        "sensor_b": sensor_b,
        "tank_b": tank_b,
        "fault": fault,
        "tokens": tokens,
    }


@pytest.fixture(scope="module")
def db_seed() -> Seed:
    """`world`'s rows, built once per module (`tests.fix_db.Seed`)."""
    return Seed("accounting-api-world", "world", lambda url: asyncio.run(_build(url)))


@pytest.fixture
def world(request: pytest.FixtureRequest, db_url: str) -> dict[str, Any]:
    w: dict[str, Any] = seeded(request)
    return w


@pytest.fixture
def client(db_url: str) -> Any:
    with TestClient(create_app(load_settings(database_url=db_url))) as c:
        yield c


def auth(world: dict[str, Any], who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world['tokens'][who]}"}


def test_correction_lifecycle_over_http(
    client: TestClient, world: dict[str, Any], db_url: str
) -> None:
    a, day = world["a"], world["day"].isoformat()
    acc = f"/api/facilities/{a}/accounting"
    before = client.get(acc, params={"day": day}, headers=auth(world, "A")).json()
    assert before["refills"] == 1 and before["gas_unit"].startswith("m3 @ 0 °C")
    body = {
        "sensor_id": world["sensor"],
        "ts_from": world["fault"][0].isoformat(),
        "ts_to": world["fault"][1].isoformat(),
        "action": "invalidate",
        "reason": "kẹt cảm biến",
    }
    r = client.post(
        f"/api/facilities/{a}/corrections", json={**body, "reason": " "}, headers=auth(world, "A")
    )
    assert r.status_code == 422
    assert r.json()["detail"]["errors"][0]["key"] == "correction.error.reason_required"
    # A value the sensor cannot read, and a window in the future, are refused.
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE sensors SET valid_min = 0, valid_max = 120.2 WHERE id = %s",
            (world["sensor"],),
        )
    replace = {**body, "action": "replace", "value": 1e12}
    r = client.post(f"/api/facilities/{a}/corrections", json=replace, headers=auth(world, "A"))
    assert r.status_code == 422
    assert r.json()["detail"]["errors"][0]["key"] == "correction.error.out_of_range"
    soon = datetime.now(UTC) + timedelta(days=1)
    future = {**body, "ts_from": soon.isoformat(), "ts_to": (soon + timedelta(hours=1)).isoformat()}
    r = client.post(f"/api/facilities/{a}/corrections", json=future, headers=auth(world, "A"))
    assert r.status_code == 422
    assert r.json()["detail"]["errors"][0]["key"] == "correction.error.future"
    # A range of years would recompute every day of it: refused.
    ages = {**body, "ts_from": "2021-01-01T00:00:00+07:00"}
    r = client.post(f"/api/facilities/{a}/corrections", json=ages, headers=auth(world, "A"))
    assert r.status_code == 422
    assert r.json()["detail"]["errors"][0]["key"] == "correction.error.range_too_long"
    # A time before the platform's date range is refused by the application-wide date check.
    older = {**body, "ts_from": "1990-01-01T00:00:00+07:00"}
    r = client.post(f"/api/facilities/{a}/corrections", json=older, headers=auth(world, "A"))
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "ts_from"]
    # Scope and role: another facility's staff and SYT officers cannot correct A's readings.
    assert (
        client.post(
            f"/api/facilities/{a}/corrections", json=body, headers=auth(world, "B")
        ).status_code
        == 404
    )
    other = {**body, "sensor_id": world["sensor"]}
    assert (
        client.post(
            f"/api/facilities/{world['b']}/corrections", json=other, headers=auth(world, "B")
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/api/facilities/{a}/corrections", json=body, headers=auth(world, "syt")
        ).status_code
        == 403
    )
    r = client.post(f"/api/facilities/{a}/corrections", json=body, headers=auth(world, "A"))
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    after = client.get(acc, params={"day": day}, headers=auth(world, "A")).json()
    assert after["refills"] == 1
    assert after["refilled_kg"] == pytest.approx(6000.0, rel=0.02)
    assert after["consumption_kg"] > before["consumption_kg"] + 1000
    listed = client.get(
        f"/api/facilities/{a}/tanks/{world['tank']}/corrections", headers=auth(world, "syt")
    )
    assert [c["id"] for c in listed.json()] == [cid] and listed.json()[0]["active"] is True
    r = client.post(
        f"/api/facilities/{a}/corrections/{cid}/revert",
        json={"reason": "nhầm"},
        headers=auth(world, "A"),
    )
    assert r.status_code == 200 and r.json()["active"] is False
    assert (
        client.post(
            f"/api/facilities/{a}/corrections/{cid}/revert",
            json={"reason": "x"},
            headers=auth(world, "A"),
        ).status_code
        == 409
    )
    again = client.get(acc, params={"day": day}, headers=auth(world, "A")).json()
    assert again["refills"] == before["refills"]
    assert again["consumption_kg"] == pytest.approx(before["consumption_kg"])
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT action, username FROM audit_log WHERE entity = 'correction' ORDER BY id"
        ).fetchall()
        raw = conn.execute(
            "SELECT count(*) FROM readings WHERE sensor_id = %s AND ts BETWEEN %s AND %s",
            (world["sensor"], *world["fault"]),
        ).fetchone()
    assert rows == [("create", "staff.a"), ("revert", "staff.a")]
    assert raw == (41,)  # raw readings untouched


def test_tank_series_and_scope(client: TestClient, world: dict[str, Any]) -> None:
    a, w = world["a"], window(world["day"], CFG)
    url = f"/api/facilities/{a}/tanks/{world['tank']}/series"
    params = {"start": w.start.isoformat(), "end": w.end.isoformat(), "minutes": 60}
    r = client.get(url, params=params, headers=auth(world, "A"))
    assert r.status_code == 200
    s = r.json()
    assert len(s["points"]) >= 40 and s["points"][0]["m3"] == pytest.approx(
        s["points"][0]["kg"] / 1.429, rel=0.001
    )
    assert any(x["amount_kg"] == pytest.approx(6000.0, rel=0.02) for x in s["refills"])
    assert client.get(url, params=params, headers=auth(world, "B")).status_code == 404
    # A tank of another facility under A's path is not found either.
    wrong = f"/api/facilities/{a}/tanks/{world['tank_b']}/series"
    assert client.get(wrong, params=params, headers=auth(world, "A")).status_code == 404
    assert date.fromisoformat(
        client.get(f"/api/facilities/{a}/accounting", headers=auth(world, "A")).json()["report_day"]
    )


def test_correction_preview_units_and_confirmation(
    client: TestClient, world: dict[str, Any]
) -> None:
    a = world["a"]
    w = window(world["day"], CFG)
    quiet = w.start + timedelta(hours=18)  # the tank is only drawn from at this time
    # A gauge stuck high from then to the end of the data: a step up that never falls back
    # reads as a refill (a spike that falls back does not, since refills are measured on minutes).
    body = {
        "sensor_id": world["sensor"],
        "ts_from": quiet.isoformat(),
        "ts_to": (w.end + timedelta(hours=3)).isoformat(),
        "action": "replace",
        "value": 19000,
        "value_unit": "kg",
        "reason": "gauge stuck high",
    }
    url = f"/api/facilities/{a}/corrections"
    r = client.post(url + "/preview", json=body, headers=auth(world, "A"))
    assert r.status_code == 200, r.text
    p = r.json()
    # The value typed in kg is converted to the sensor's unit through the calibration.
    assert p["sensor_unit"] == "inH2O" and 0 < p["value_sensor"] < 200
    same = client.post(
        url + "/preview",
        json={**body, "value": 95, "value_unit": "pct"},  # 95 % of 20,000 kg
        headers=auth(world, "A"),
    ).json()
    assert same["value_sensor"] == pytest.approx(p["value_sensor"], rel=1e-6)
    # The readings of the window are shown, and the effect: a phantom refill on that day.
    assert len(p["readings"]) >= 10
    day = {d["day"]: d for d in p["days"]}[world["day"].isoformat()]
    assert day["refills_after"] > day["refills_before"] and p["refills_created"] >= 1
    assert p["needs_confirmation"] is True
    # A preview saves nothing; saving such a correction needs a confirmation.
    listed = client.get(
        f"/api/facilities/{a}/tanks/{world['tank']}/corrections", headers=auth(world, "A")
    )
    assert listed.json() == []
    r = client.post(url, json=body, headers=auth(world, "A"))
    assert r.status_code == 409 and r.json()["detail"]["key"] == "correction.error.confirm"
    assert r.json()["detail"]["preview"]["refills_created"] >= 1
    r = client.post(url, json={**body, "confirm": True}, headers=auth(world, "A"))
    assert r.status_code == 201, r.text
    assert r.json()["value"] == pytest.approx(p["value_sensor"])
    # Invalidating the 16:00 gauge fault (a wrong close, not a refill) creates and removes none.
    fault = {
        "sensor_id": world["sensor"],
        "ts_from": world["fault"][0].isoformat(),
        "ts_to": world["fault"][1].isoformat(),
        "action": "invalidate",
        "reason": "kẹt cảm biến",
    }
    p = client.post(url + "/preview", json=fault, headers=auth(world, "A")).json()
    assert p["refills_removed"] == 0 and p["refills_created"] == 0


def test_preview_just_after_the_cutoff_reads_the_last_close(
    world: dict[str, Any], db_url: str
) -> None:
    """In the minutes after 16:00 the new day's window has no reading yet: the preview's days of
    supply stand on the previous close, as the tank page's do, instead of turning unknown."""
    from api.accounting.correction_preview import ValueUnit, preview
    from api.accounting.corrections import CorrectionAction

    # The data ends 4 h into the window after `day`; a minute after the next cutoff the open
    # window (day + 2) is empty.
    now = window(world["day"] + timedelta(days=1), CFG).end + timedelta(minutes=1)

    async def run() -> Any:
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            return await preview(
                conn,
                sensor_id=world["sensor"],
                ts_from=world["fault"][0],
                ts_to=world["fault"][1],
                action=CorrectionAction.INVALIDATE,
                value=None,
                unit=ValueUnit.SENSOR,
                reason="kẹt cảm biến",
                author="staff.a",
                cfg=CFG,
                now=now,
            )

    p = asyncio.run(run())
    assert p.latest_day == (world["day"] + timedelta(days=2)).isoformat()
    assert p.days_of_supply_before is not None and p.days_of_supply_before > 0
    assert p.status_before != "unknown" and p.status_after != "unknown"
