"""The pool's checkout check (api.pool_check): no round trip for a connection the server left
idle and that was taken from the pool lately, the empty query for one the server has hung up on
(which the pool then replaces), for a new one and for one not taken for long."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import psycopg
import pytest
from psycopg import AsyncConnection, AsyncCursor
from psycopg_pool import AsyncConnectionPool

from api import pool_check
from api.pool_check import check_connection


class _Counting(AsyncConnection[Any]):
    """Counts the statements sent through `execute` (the pool's empty-query check is one)."""

    statements: ClassVar[list[str]] = []

    async def execute(self, *args: Any, **kwargs: Any) -> AsyncCursor[Any]:  # type: ignore[override]
        type(self).statements.append(str(args[0]))
        return await super().execute(*args, **kwargs)


def _terminate(db_url: str, pid: int) -> None:
    """End one backend and wait until it is gone (its socket closed)."""
    with psycopg.connect(db_url, autocommit=True) as admin:
        row = admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,)).fetchone()
        assert row == (True,)


def test_an_idle_connection_is_checked_without_a_round_trip(db_url: str) -> None:
    async def run() -> None:
        conn = await _Counting.connect(db_url)
        async with conn:
            await conn.execute("SELECT 1")
            await conn.commit()  # idle, as the pool keeps its connections
            _Counting.statements.clear()
            await check_connection(conn)  # never checked out before: a new one, checked
            assert _Counting.statements == [""]
            _Counting.statements.clear()
            for _ in range(3):
                await check_connection(conn)
            assert _Counting.statements == []
            pool_check._checked_out[conn] -= pool_check.RECHECK_AFTER_S + 1  # not taken for long
            await check_connection(conn)
            assert _Counting.statements == [""]
            await conn.execute("SELECT 1")  # in a transaction: left to the pool's check, which
            with pytest.raises(psycopg.ProgrammingError):  # refuses it
                await check_connection(conn)

    asyncio.run(run())


def test_a_connection_the_server_ended_fails_the_check(db_url: str) -> None:
    async def run() -> None:
        conn = await _Counting.connect(db_url)
        async with conn:
            await conn.execute("SELECT 1")
            await conn.commit()
            await check_connection(conn)  # checked out once: the next check is the quick one
            _terminate(db_url, conn.info.backend_pid)
            _Counting.statements.clear()
            with pytest.raises(psycopg.OperationalError):
                await check_connection(conn)
            assert _Counting.statements == [""]  # the server spoke: the pool's own check ran

    asyncio.run(run())


def test_the_pool_replaces_a_connection_the_server_ended(db_url: str) -> None:
    """The same application keeps answering after its connection's backend is terminated (a
    database restart ends them all the same way)."""

    async def run() -> list[tuple[int]]:
        pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            db_url, min_size=1, max_size=1, open=False, check=check_connection
        )
        async with pool:
            await pool.open(wait=True)
            async with pool.connection() as conn:
                pid = conn.info.backend_pid
            _terminate(db_url, pid)
            async with pool.connection() as conn:
                assert conn.info.backend_pid != pid
                cur = await conn.execute("SELECT 1")
                return await cur.fetchall()

    assert asyncio.run(run()) == [(1,)]
