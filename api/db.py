"""Rows of a named query as dicts: the one way routes and pages read a query module's SQL.

Queries are named constants in a feature's `queries.py` (or beside the service that owns them),
with `%(name)s` parameters; a query built from other fragments is composed with `psycopg.sql`,
never by formatting strings (docs/architecture.md, "SQL").
"""

from __future__ import annotations

from typing import Any, LiteralString

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

# A named constant, or one composed from named fragments with psycopg.sql.
Query = LiteralString | sql.SQL | sql.Composed


async def fetch_all(
    conn: AsyncConnection[Any], query: Query, **params: Any
) -> list[dict[str, Any]]:
    """Rows of a named query as dicts."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return list(await cur.fetchall())


async def fetch_one(
    conn: AsyncConnection[Any], query: Query, **params: Any
) -> dict[str, Any] | None:
    """The first row of a named query as a dict, or None."""
    rows = await fetch_all(conn, query, **params)
    return rows[0] if rows else None
