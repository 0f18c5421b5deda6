"""Fixtures for the dashboard tests: a seeded database, and a connection as Grafana's role.

Most tests only read, through the read-only role Grafana gets: they share one seeded database per
module (`world_db`). Tests that write, or whose figures depend on how long ago the world was
seeded (gateway online within 10 minutes, alert windows), take a fresh one (`fresh_world_db`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.dashboards.seed import World, seed


def _seeded(url: str) -> tuple[str, World]:
    with psycopg.connect(url) as conn:
        world = seed(conn)
    return url, world


def _as_grafana(url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(url) as conn:
        conn.execute("SET ROLE oxy_grafana")
        conn.execute("SET TIME ZONE 'UTC'")
        conn.commit()
        yield conn


@pytest.fixture(scope="module")
def world_db(module_db_url: str) -> tuple[str, World]:
    """The seeded world, shared by the module's read-only tests."""
    return _seeded(module_db_url)


@pytest.fixture
def fresh_world_db(db_url: str) -> tuple[str, World]:
    """The seeded world in a database of the test's own, seeded just now."""
    return _seeded(db_url)


@pytest.fixture
def grafana_conn(world_db: tuple[str, World]) -> Iterator[psycopg.Connection[Any]]:
    """A read-only connection with the privileges of `oxy_grafana` (what Grafana gets)."""
    yield from _as_grafana(world_db[0])


@pytest.fixture
def fresh_grafana_conn(fresh_world_db: tuple[str, World]) -> Iterator[psycopg.Connection[Any]]:
    """The same, on the test's own freshly seeded database."""
    yield from _as_grafana(fresh_world_db[0])
