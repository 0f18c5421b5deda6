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
    from tests.fix_db import _with_db

    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "oxy_scratch_mig" WITH (FORCE)')
        conn.execute('CREATE DATABASE "oxy_scratch_mig"')
    try:
        url = _with_db(pg_admin_url, "oxy_scratch_mig")
        applied = migrate(url)
        assert applied and applied[0] == "0001_registry"
        assert migrate(url) == []
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute('DROP DATABASE IF EXISTS "oxy_scratch_mig" WITH (FORCE)')
