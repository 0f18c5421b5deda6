"""Fixtures for the API tests: a small registry (two provinces, facilities, suppliers), one
user per role with a known scope, and a TestClient on `create_app` against the test database."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import hash_password
from oxy.settings import Settings
from tests.fix_db import Seed, seeded

PASSWORD = "correct horse battery staple"
_HASH: list[str] = []


def password_hash() -> str:
    """One argon2 hash shared by every test user (hashing is deliberately slow)."""
    if not _HASH:
        _HASH.append(hash_password(PASSWORD))
    return _HASH[0]


@dataclass
class World:
    """Ids of the registry rows and users the tests use."""

    db_url: str
    syt_in: int = 0  # SYT-79
    syt_out: int = 0  # SYT-01
    fac_in: int = 0  # under SYT-79
    fac_out: int = 0  # under SYT-01
    sup_in: int = 0
    sup_out: int = 0
    gw_in: int = 0
    gw_out: int = 0
    users: dict[str, int] = field(default_factory=dict)  # role name -> user id
    victim: int = 0  # a spare account admin routes may act on


def _org(conn: psycopg.Connection[tuple[object, ...]], code: str) -> int:
    row = conn.execute("SELECT id FROM organisations WHERE code = %s", (code,)).fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def _add_org(
    conn: psycopg.Connection[tuple[object, ...]],
    code: str,
    kind: str,
    province: str | None,
    parent: int | None,
) -> int:
    row = conn.execute(
        "INSERT INTO organisations (code, kind, name, province_code, parent_id) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (code, kind, f"Test {code}", province, parent),
    ).fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def add_user(
    conn: psycopg.Connection[tuple[object, ...]],
    username: str,
    role: str,
    org_id: int | None,
    *,
    national: bool = False,
    facilities: tuple[int, ...] = (),
) -> int:
    """Insert an active user with the shared test password."""
    row = conn.execute(
        "INSERT INTO users (username, display_name, role, org_id, national, password_hash, "
        "must_change_password) VALUES (%s, %s, %s, %s, %s, %s, false) RETURNING id",
        (username, username.upper(), role, org_id, national, password_hash()),
    ).fetchone()
    assert row is not None
    uid = int(row[0])  # type: ignore[call-overload]
    for fid in facilities:
        conn.execute("INSERT INTO user_facilities VALUES (%s, %s)", (uid, fid))
    return uid


@pytest.fixture(scope="module")
def db_seed() -> Seed:
    """The world below, built once per module (`tests.fix_db.Seed`) for the tests using it."""
    return Seed("api-world", "world", build_world)


@pytest.fixture
def world(request: pytest.FixtureRequest, db_url: str) -> World:
    """The registry and one user per role (scopes: SYT-79, facility A, supplier S1, engineer A)."""
    w = seeded(request)
    assert isinstance(w, World) and w.db_url == db_url
    return w


def build_world(db_url: str) -> World:
    """Write the world of `world` into a database in the template's state."""
    w = World(db_url)
    with psycopg.connect(db_url) as conn:
        w.syt_in, w.syt_out = _org(conn, "SYT-79"), _org(conn, "SYT-01")
        w.fac_in = _add_org(conn, "BV-IN", "facility", "79", w.syt_in)
        w.fac_out = _add_org(conn, "BV-OUT", "facility", "01", w.syt_out)
        for fid in (w.fac_in, w.fac_out):
            conn.execute("INSERT INTO facilities (org_id) VALUES (%s)", (fid,))
        w.sup_in = _add_org(conn, "NCC-IN", "supplier", "79", None)
        w.sup_out = _add_org(conn, "NCC-OUT", "supplier", "01", None)
        for sid in (w.sup_in, w.sup_out):
            conn.execute(
                "INSERT INTO suppliers (org_id, supplier_kind) VALUES (%s, 'producer')", (sid,)
            )
        for name, fid in (("gw-bv-in", w.fac_in), ("gw-bv-out", w.fac_out)):
            row = conn.execute(
                "INSERT INTO gateways (facility_id, code) VALUES (%s, %s) RETURNING id",
                (fid, name),
            ).fetchone()
            assert row is not None
            if fid == w.fac_in:
                w.gw_in = int(row[0])  # type: ignore[call-overload]
            else:
                w.gw_out = int(row[0])  # type: ignore[call-overload]
        w.users["admin"] = add_user(conn, "admin1", "admin", None)
        w.users["byt"] = add_user(conn, "byt1", "byt", _org(conn, "BYT"))
        w.users["syt"] = add_user(conn, "syt79", "syt", w.syt_in)
        w.users["facility"] = add_user(conn, "staff-in", "facility", w.fac_in)
        w.users["supplier"] = add_user(conn, "ncc-in", "supplier", w.sup_in)
        w.users["engineer"] = add_user(conn, "eng-in", "engineer", None, facilities=(w.fac_in,))
        w.victim = add_user(conn, "victim", "facility", w.fac_out)
    return w


USERNAMES = {
    "admin": "admin1",
    "byt": "byt1",
    "syt": "syt79",
    "facility": "staff-in",
    "supplier": "ncc-in",
    "engineer": "eng-in",
}


@pytest.fixture
def settings(db_url: str) -> Settings:
    """Settings pointing at the per-test database."""
    return Settings(database_url=db_url)


@pytest.fixture
def client(settings: Settings, world: World) -> Iterator[TestClient]:
    """A TestClient running the whole application (lifespan included)."""
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def new_client(settings: Settings, world: World) -> Iterator[Callable[[], TestClient]]:
    """Make further clients, each on its own app instance (like separate API replicas)."""
    stack = ExitStack()

    def make() -> TestClient:
        return stack.enter_context(TestClient(create_app(settings)))

    with stack:
        yield make


def csrf_of(html: str) -> str:
    """The CSRF token a rendered form carries."""
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def login(c: TestClient, username: str, password: str = PASSWORD) -> TestClient:
    """Log in through the real form (CSRF included); asserts success."""
    page = c.get("/login")
    r = c.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return c
