"""The connection pool's checkout check: a round trip only when the server may have hung up."""

from __future__ import annotations

import select
from typing import Any

from psycopg import AsyncConnection, pq
from psycopg_pool import AsyncConnectionPool


def _server_spoke(fd: int) -> bool:
    """Whether the server sent anything, or closed the socket, since its last answer was read."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)  # POLLHUP and POLLERR come anyway
    return bool(poller.poll(0))


# psycopg_pool's own check is an empty query: a round trip on every checkout, which for a good
# login was two more round trips (event loop and PostgreSQL backend) beside its two statements
# (bench/login.py; docs/security.md, "How a burst is kept from stalling the API"). A server
# that stops, restarts or ends a session (shutdown, an administrator, an idle timeout, a crashed
# backend) sends its notice and closes the socket, which then reads: only then, or when libpq
# says the connection is not idle, is that check made. A peer gone silently (no FIN, no RST) is
# not seen here, nor was it there: the empty query waited on it as the request's statement now
# does.
async def check_connection(conn: AsyncConnection[Any]) -> None:
    """Raise if a pooled connection is broken (the pool then discards it and takes another)."""
    pgconn = conn.pgconn
    if (
        hasattr(select, "poll")
        and pgconn.status == pq.ConnStatus.OK
        and pgconn.transaction_status == pq.TransactionStatus.IDLE
        and not _server_spoke(pgconn.socket)
    ):
        return
    await AsyncConnectionPool.check_connection(conn)
