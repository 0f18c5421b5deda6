"""Fixtures for the dashboard tests: a seeded database, and a connection as Grafana's role."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.dashboards.seed import World, seed


@pytest.fixture
def world_db(db_url: str) -> Iterator[tuple[str, World]]:
    """A fresh migrated database holding the seeded world."""
    with psycopg.connect(db_url) as conn:
        world = seed(conn)
    yield db_url, world


@pytest.fixture
def grafana_conn(world_db: tuple[str, World]) -> Iterator[psycopg.Connection[Any]]:
    """A read-only connection with the privileges of `oxy_grafana` (what Grafana gets)."""
    url, _ = world_db
    with psycopg.connect(url) as conn:
        conn.execute("SET ROLE oxy_grafana")
        conn.execute("SET TIME ZONE 'UTC'")
        conn.commit()
        yield conn
