"""The database goes away: authenticated routes answer 503 + Retry-After at once (JSON for the
API, a Vietnamese page for the UI) instead of a 500 or a 30 s wait, and recover without a restart.
Runs on a private PostgreSQL server that the test stops and starts."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from oxy.migrate import migrate
from oxy.settings import Settings
from tests.api.conftest import add_user, login
from tests.fix_db import SYSTEM_PG_BIN, PrivatePostgres


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    if not (SYSTEM_PG_BIN / "initdb").exists():
        pytest.fail("PostgreSQL 15 server binaries are needed for the outage test")
    pg = PrivatePostgres()
    pg.start()
    yield pg
    pg.destroy()


@pytest.mark.slow  # a database outage
def test_database_away_is_a_fast_503_and_recovers(private_pg: PrivatePostgres) -> None:
    url = private_pg.url
    migrate(url)
    with psycopg.connect(url) as conn:
        add_user(conn, "admin1", "admin", None)
    with TestClient(create_app(Settings(database_url=url))) as c:
        login(c, "admin1")
        assert c.get("/api/me").status_code == 200
        private_pg.stop()
        t0 = time.monotonic()
        r = c.get("/api/me")
        took = time.monotonic() - t0
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) > 0
        assert r.json()["detail"]["code"] == "database_unavailable"
        assert took < 8, took  # not the pool's 30 s default
        page = c.get("/", headers={"accept": "text/html"})
        assert page.status_code == 503 and "retry-after" in page.headers
        assert "Cơ sở dữ liệu tạm thời không truy cập được" in page.text
        assert c.get("/health").status_code == 503
        private_pg.start()
        deadline = time.monotonic() + 30
        while (status := c.get("/api/me").status_code) != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert status == 200  # the same application instance recovered
