import psycopg

from oxy.database import storage_kind
from oxy.migrate import migrate


def test_migrations_are_idempotent_and_load_reference_data(db_url: str) -> None:
    assert migrate(db_url) == []  # the template already applied everything
    assert migrate(db_url) == []
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM admin_units").fetchone() == (34,)
        assert conn.execute("SELECT count(*) FROM legacy_admin_units").fetchone() == (63,)
        assert conn.execute("SELECT count(*) FROM organisations WHERE kind = 'syt'").fetchone() == (
            34,
        )
        # Hà Giang (02) merged into Tuyên Quang (08) in 2025.
        assert conn.execute(
            "SELECT new_code FROM legacy_admin_units WHERE old_code = '02'"
        ).fetchone() == ("08",)
        assert storage_kind(conn) in {"postgresql", "timescaledb"}


def test_fresh_database_migrates_from_scratch(pg_admin_url: str) -> None:
    import uuid

    from tests.fix_db import _with_db

    # A name of its own: other test processes (pytest-xdist workers, other runs) share the server.
    name = f"oxy_scratch_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = _with_db(pg_admin_url, name)
        applied = migrate(url)
        assert applied and applied[0] == "0001_registry"
        assert migrate(url) == []
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_timescaledb_installed_but_not_preloaded_is_one_line_saying_what_to_do() -> None:
    """CREATE EXTENSION timescaledb is FATAL on a server that has the extension but does not
    preload it (the session closes, no exception block catches it): the readings migration checks
    first, and `oxy db migrate` prints one line with the fix instead of "the connection is closed".
    The server is a private one from the TimescaleDB build, started without the preload."""
    import os
    import subprocess
    import sys

    import pytest

    from tests.fix_db import IN_CI, PrivatePostgres, timescaledb_pg_bin

    bin_dir = timescaledb_pg_bin()
    if bin_dir is None:
        message = "TimescaleDB is not built (scripts/timescaledb.sh)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    server = PrivatePostgres(bin_dir)  # extension installed, nothing preloaded
    server.start()
    try:
        with psycopg.connect(server.url) as conn:
            assert conn.execute(
                "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
            ).fetchone() == (1,)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OXY_")}
        r = subprocess.run(
            [sys.executable, "-m", "oxy", "db", "migrate"],
            env={**env, "OXY_DATABASE_URL": server.url},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert "not preloaded" in lines[0]
        assert "shared_preload_libraries = 'timescaledb'" in lines[0]
        assert "connection is closed" not in lines[0]
        # Nothing half-done: the failed migration rolled back, and the server is still up.
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT to_regclass('readings')").fetchone() == (None,)
    finally:
        server.destroy()
