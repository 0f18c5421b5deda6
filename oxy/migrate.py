"""Schema migrations (yoyo-migrations over the SQL files in `sql/`) and reference data."""

from __future__ import annotations

import csv
import logging
import os
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict

from oxy import OxyError

logger = logging.getLogger(__name__)


def sql_dir() -> Path:
    """The migrations folder: `OXY_SQL_DIR`, else `sql/` beside the packages."""
    env = os.environ.get("OXY_SQL_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[1] / "sql"
    if not path.is_dir():
        raise FileNotFoundError(f"migrations folder {path} not found; set OXY_SQL_DIR")
    return path


def _yoyo_uri(conninfo: str) -> str:
    """Any libpq conninfo (URI or key=value) as the URI yoyo's psycopg 3 backend parses."""
    params = {k: str(v) for k, v in conninfo_to_dict(conninfo).items() if v is not None}
    user = quote(params.pop("user", ""), safe="")
    password = params.pop("password", None)
    host = params.pop("host", "")
    port = params.pop("port", "")
    dbname = quote(params.pop("dbname", ""), safe="")
    netloc = user + (":" + quote(password, safe="") if password else "")
    if host.startswith("/"):  # a socket directory travels as a query argument
        params["host"] = host
        host = ""
    netloc = (netloc + "@" if netloc else "") + host + (":" + port if port and host else "")
    if port and not host:
        params["port"] = port
    query = ("?" + urlencode(params)) if params else ""
    return f"postgresql+psycopg://{netloc}/{dbname}{query}"


def migrate(url: str) -> list[str]:
    """Apply every pending migration, then load reference data; return the migrations applied."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(_yoyo_uri(url))
    migrations = read_migrations(str(sql_dir()))
    with backend.lock():
        pending = backend.to_apply(migrations)
        ids = [m.id for m in pending]
        if pending:
            try:
                backend.apply_migrations(pending)
            except psycopg.errors.ObjectNotInPrerequisiteState as exc:
                # A server the schema cannot run on (TimescaleDB installed but not preloaded):
                # the migration's own one-line message says what to do.
                raise OxyError(exc.diag.message_primary or str(exc)) from exc
    backend.connection.close()
    with psycopg.connect(url) as conn:
        load_reference_data(conn)
    if ids:
        logger.info("applied migrations: %s", ", ".join(ids))
    return ids


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("oxy.data").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def load_reference_data(conn: psycopg.Connection[Any]) -> None:
    """Upsert administrative units, the old→new mapping, BYT and one SYT per province."""
    with conn.transaction():
        for r in _rows("provinces-2025.csv"):
            conn.execute(
                "INSERT INTO admin_units (code, name, kind) VALUES (%s, %s, %s) "
                "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind",
                (r["code"], r["name"], r["kind"]),
            )
        for r in _rows("provinces-legacy-to-2025.csv"):
            conn.execute(
                "INSERT INTO legacy_admin_units (old_code, old_name, new_code) VALUES (%s, %s, %s) "
                "ON CONFLICT (old_code) DO UPDATE SET old_name = EXCLUDED.old_name, "
                "new_code = EXCLUDED.new_code",
                (r["old_code"], r["old_name"], r["new_code"]),
            )
        conn.execute(
            "INSERT INTO organisations (code, kind, name) VALUES ('BYT', 'ministry', %s) "
            "ON CONFLICT (code) DO NOTHING",
            ("Bộ Y tế",),
        )
        conn.execute(
            """
            INSERT INTO organisations (code, kind, name, province_code, parent_id)
            SELECT 'SYT-' || u.code, 'syt', 'Sở Y tế ' || u.name, u.code,
                   (SELECT id FROM organisations WHERE code = 'BYT')
            FROM admin_units u
            ON CONFLICT (code) DO NOTHING
            """
        )
