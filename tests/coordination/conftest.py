"""Fixtures of the coordination tests: a small registry with telemetry, one user per role and
scope (created through api.users), and a TestClient on create_app against the test database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.accounting.simulate import (
    PlannedRefill,
    TankPlan,
    add_facility,
    add_tank,
    copy_readings,
    readings,
    refresh_rollups,
)
from api.app import create_app
from api.auth import issue_token
from api.scope import Role
from api.users import NewUser, create_user
from oxy.settings import Settings
from tests.fix_db import Seed, seeded

PASSWORD = "Correct-Horse-Battery-9"
REFILL_KG = 9000.0


@dataclass
class World:
    """Ids and tokens of the coordination world (times are UTC)."""

    now: datetime
    ids: dict[str, int]
    tokens: dict[str, str]
    refill_at: datetime  # when facility A's tank was refilled (telemetry truth)

    def h(self, who: str) -> dict[str, str]:
        """Bearer headers of a user."""
        return {"Authorization": f"Bearer {self.tokens[who]}"}


async def org_id(conn: psycopg.AsyncConnection[Any], code: str) -> int:
    """An organisation's id by code."""
    cur = await conn.execute("SELECT id FROM organisations WHERE code = %s", (code,))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def make_user(
    conn: psycopg.AsyncConnection[Any], name: str, role: Role, org: str | None
) -> str:
    """An account issued the way administrators issue them, and a bearer token for it."""
    uid = await create_user(conn, "test", NewUser(name, name, role, PASSWORD, org_code=org))
    await conn.execute("UPDATE users SET must_change_password = false WHERE id = %s", (uid,))
    return (await issue_token(conn, uid, "test")).secret


async def add_supplier(
    conn: psycopg.AsyncConnection[Any], code: str, province: str, lat: float, lon: float, tpd: float
) -> int:
    """A producer with coordinates and a normal capacity (t/day)."""
    cur = await conn.execute(
        "INSERT INTO organisations (code, kind, name, province_code) "
        "VALUES (%s, 'supplier', %s, %s) RETURNING id",
        (code, f"Công ty {code}", province),
    )
    row = await cur.fetchone()
    assert row is not None
    await conn.execute(
        "INSERT INTO suppliers (org_id, supplier_kind, latitude, longitude, capacity_normal_tpd) "
        "VALUES (%s, 'producer', %s, %s, %s)",
        (row[0], lat, lon, tpd),
    )
    return int(row[0])


async def _build(url: str) -> World:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(days=3)
    end = now - timedelta(minutes=5)
    refill_at = now - timedelta(hours=30)
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        hcm, hn = await org_id(conn, "SYT-79"), await org_id(conn, "SYT-01")
        ids = {"syt79": hcm, "syt01": hn}
        ids["A"] = await add_facility(conn, "BV-A", hcm, "79")
        ids["B"] = await add_facility(conn, "BV-B", hcm, "79")
        ids["C"] = await add_facility(conn, "BV-C", hn, "01")
        for code, lat, lon in (("A", 10.76, 106.66), ("B", 10.85, 106.77), ("C", 21.00, 105.84)):
            await conn.execute(
                "UPDATE facilities SET latitude = %s, longitude = %s WHERE org_id = %s",
                (lat, lon, ids[code]),
            )
        ids["S79"] = await add_supplier(conn, "NCC-79", "79", 10.80, 106.70, 20.0)
        ids["S01"] = await add_supplier(conn, "NCC-01", "01", 21.05, 105.80, 20.0)
        # A: refilled 30 h ago (the delivery to match); B: running low, no refill.
        plan_a = TankPlan(
            capacity_kg=20000.0,
            diameter_m=2.5,
            start_kg=9000.0,
            draw_kg_per_day=1500.0,
            refills=(PlannedRefill(refill_at, 45, REFILL_KG),),
        )
        plan_b = TankPlan(
            capacity_kg=15000.0, diameter_m=2.2, start_kg=5500.0, draw_kg_per_day=1500.0
        )
        for key, plan in (("A", plan_a), ("B", plan_b)):
            tank, sensor = await add_tank(
                conn,
                ids[key],
                "T1",
                plan,
                valid_from=start - timedelta(days=1),
                min_usable_kg=800.0,
            )
            assert sensor is not None
            ids[f"tank{key}"] = tank
            await copy_readings(conn, readings(plan, sensor, start, end, seed=7))
            await refresh_rollups(conn, sensor, start, end)
        tokens = {
            "A": await make_user(conn, "staff.a", Role.FACILITY, "BV-A"),
            "B": await make_user(conn, "staff.b", Role.FACILITY, "BV-B"),
            "C": await make_user(conn, "staff.c", Role.FACILITY, "BV-C"),
            "syt79": await make_user(conn, "syt.hcm", Role.SYT, "SYT-79"),
            "syt01": await make_user(conn, "syt.hn", Role.SYT, "SYT-01"),
            "byt": await make_user(conn, "byt.one", Role.BYT, "BYT"),
            "S79": await make_user(conn, "ncc.79", Role.SUPPLIER, "NCC-79"),
            "S01": await make_user(conn, "ncc.01", Role.SUPPLIER, "NCC-01"),
        }
    return World(now, ids, tokens, refill_at)


@pytest.fixture(scope="module")
def db_seed() -> Seed:
    """`world`'s rows, built once per module (`tests.fix_db.Seed`)."""
    return Seed("coordination-world", "world", lambda url: asyncio.run(_build(url)))


@pytest.fixture
def world(request: pytest.FixtureRequest, db_url: str) -> World:
    """The registry, telemetry and users of the coordination tests."""
    w: World = seeded(request)
    return w


@pytest.fixture
def client(db_url: str, world: World) -> Iterator[TestClient]:
    """The whole application against the test database."""
    with TestClient(create_app(Settings(database_url=db_url))) as c:
        yield c
