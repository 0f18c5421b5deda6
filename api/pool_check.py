"""The connection pool's checkout check: a round trip only when the server may have hung up."""

from __future__ import annotations

import select
import time
import weakref
from typing import Any

from psycopg import AsyncConnection, pq
from psycopg_pool import AsyncConnectionPool

# A connection not taken from the pool for longer is checked with the round trip as before: a
# firewall or NAT that forgot an idle connection may answer its next packet with a reset, and
# then the empty query, not the request's statement, is the one to fail (the pool takes another
# connection). Kept per connection at checkout (not at return: psycopg_pool's `reset` callback
# would return every connection through its worker task, a hop more per checkout).
RECHECK_AFTER_S = 30.0
_checked_out: weakref.WeakKeyDictionary[AsyncConnection[Any], float] = weakref.WeakKeyDictionary()


def _server_spoke(fd: int) -> bool:
    """Whether the server sent anything, or closed the socket, since its last answer was read."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)  # POLLHUP and POLLERR come anyway
    return bool(poller.poll(0))


# psycopg_pool's own check is an empty query: a round trip on every checkout, which for a good
# login was two more round trips (event loop and PostgreSQL backend) beside its two statements
# (bench/login.py; docs/security.md, "How a burst is kept from stalling the API"). A server
# that stops, restarts or ends a session (shutdown, an administrator, an idle timeout, a crashed
# backend) sends its notice and closes the socket, which then reads: only then, when libpq says
# the connection is not idle, or for a connection new to the pool or not taken for over
# RECHECK_AFTER_S, is that check made.
async def check_connection(conn: AsyncConnection[Any]) -> None:
    """Raise if a pooled connection is broken (the pool then discards it and takes another)."""
    pgconn = conn.pgconn
    now = time.monotonic()
    last = _checked_out.get(conn)
    if not (
        last is not None
        and now - last < RECHECK_AFTER_S
        and hasattr(select, "poll")
        and pgconn.status == pq.ConnStatus.OK
        and pgconn.transaction_status == pq.TransactionStatus.IDLE
        and not _server_spoke(pgconn.socket)
    ):
        await AsyncConnectionPool.check_connection(conn)
    _checked_out[conn] = now
