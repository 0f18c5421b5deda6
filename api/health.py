"""GET /health: the process is up and its database answers; and whether the accounting windows
are computed ahead yet ("warming" until the first round of api.accounting.ahead has ended)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from api.policy import Scope, policy

router = APIRouter()


class Health(BaseModel):
    """Liveness and database reachability."""

    status: str
    database: str
    # "ready", "warming" (the first round of the windows job still running: pages compute
    # what they need on read, slower) or "not_run" (no such job in this process).
    accounting: str = "not_run"


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health}},
    dependencies=[policy(scope=Scope.PUBLIC)],
)
async def health(request: Request) -> JSONResponse:
    """200 when the database answers, 503 otherwise (a warming accounting job is said, not an
    error: the pages work, slower).

    One statement in autocommit: no BEGIN and COMMIT round trips around it (monitoring polls
    this often, and during a burst of logins each round trip waits behind theirs)."""
    pool: AsyncConnectionPool[AsyncConnection[Any]] = request.app.state.pool
    ahead = getattr(request.app.state, "windows_ahead", None)
    accounting = ahead.state if ahead is not None else "not_run"
    try:
        async with pool.connection(timeout=5) as conn:
            await conn.set_autocommit(True)
            try:
                await conn.execute("SELECT 1")
            finally:
                await conn.set_autocommit(False)
    except Exception:  # any failure to reach the database is "unavailable", by design
        return JSONResponse(
            {"status": "degraded", "database": "unreachable", "accounting": accounting},
            status_code=503,
        )
    return JSONResponse({"status": "ok", "database": "ok", "accounting": accounting})
