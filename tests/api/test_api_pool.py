"""The API's database pool is sized and bounded by the settings (OXY_API_POOL_MAX,
OXY_API_POOL_WAIT_S): the pool opens with that many connections at most, and a request that
finds every one of them taken waits no longer than the bound, then is answered 503 +
Retry-After (database_unavailable), and is served again once a connection is back."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api.app import create_app
from oxy.settings import Settings, load_settings
from tests.api.conftest import USERNAMES, World, login


def test_pool_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OXY_API_POOL_MAX", "64")
    monkeypatch.setenv("OXY_API_POOL_WAIT_S", "2.5")
    s = load_settings()
    assert (s.api_pool_max, s.api_pool_wait_s) == (64, 2.5)
    # The default lets the 34 SYT officers of the 16:00 burst hold one each at once.
    monkeypatch.delenv("OXY_API_POOL_MAX")
    assert load_settings().api_pool_max >= 34 + 2


def test_an_exhausted_pool_is_a_bounded_wait_then_503(db_url: str, world: World) -> None:
    settings = Settings(database_url=db_url, api_pool_max=3, api_pool_wait_s=0.6)
    with TestClient(create_app(settings)) as c:
        login(c, USERNAMES["byt"])
        pool: AsyncConnectionPool[AsyncConnection[Any]] = c.app.state.pool  # type: ignore[attr-defined]
        assert pool.max_size == 3
        held = [c.portal.call(pool.getconn) for _ in range(3)]  # type: ignore[union-attr]
        t0 = time.monotonic()
        r = c.get("/api/me")
        took = time.monotonic() - t0
        assert r.status_code == 503, r.text
        assert r.json()["detail"]["code"] == "database_unavailable"
        assert int(r.headers["retry-after"]) > 0
        assert 0.5 <= took < 3, took  # waited for the bound, not psycopg_pool's 30 s
        for conn in held:
            c.portal.call(pool.putconn, conn)  # type: ignore[union-attr]
        assert c.get("/api/me").status_code == 200
