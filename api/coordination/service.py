"""`oxy coordination sync`: supplier-report lines into deliveries, refill matching, every interval.

Reading the deliveries never writes; this job does what a list used to do first. Each round is
two transactions (the sync, then the matching), each under one transaction-level advisory lock:
a second runner (another container, a `--once` from a shell) finds it taken and skips its round,
so two runners never take in the same line twice or claim the same refill for two deliveries.
Everything it does is idempotent: a round with nothing new writes nothing.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection

from api.accounting.config import AccountingConfig
from api.periodic import run_forever
from api.settings import load_centre_settings
from oxy.settings import Settings

from .deliveries import sync_supplier_reports
from .matching import match_pending

logger = logging.getLogger(__name__)

HEARTBEAT = Path(tempfile.gettempdir()) / "oxy-coordination-sync.heartbeat"
DEFAULT_INTERVAL_S = 60.0

_TRY_LOCK = "SELECT pg_try_advisory_xact_lock(hashtextextended('oxy.coordination.sync', 0))"


@dataclass(frozen=True, slots=True)
class SyncRound:
    """What one round did; `ran` is False when another runner held the lock."""

    ran: bool
    new_lines: int = 0
    examined: int = 0


async def _locked(conn: AsyncConnection[Any]) -> bool:
    cur = await conn.execute(_TRY_LOCK)
    row = await cur.fetchone()
    return bool(row and row[0])


async def run_once(conn: AsyncConnection[Any], cfg: AccountingConfig, now: datetime) -> SyncRound:
    """One round at `now`: take in new supplier-report lines, re-match waiting deliveries.

    `conn` should be in autocommit mode: each step is then its own transaction, and the lock
    is released when the step commits.
    """
    async with conn.transaction():
        if not await _locked(conn):
            logger.debug("coordination sync: another runner is at work, round skipped")
            return SyncRound(ran=False)
        new_lines = await sync_supplier_reports(conn, cfg, now)
    # A separate transaction: a delivery the matcher cannot judge does not hold back the sync.
    async with conn.transaction():
        if not await _locked(conn):
            return SyncRound(ran=True, new_lines=new_lines)
        examined = await match_pending(conn, cfg, now, facility_ids=None)
    return SyncRound(ran=True, new_lines=new_lines, examined=examined)


async def once(settings: Settings) -> SyncRound:
    """One round against the configured database (`oxy coordination sync --once`)."""
    async with await AsyncConnection.connect(settings.database_url, autocommit=True) as conn:
        await conn.execute("SET TIME ZONE 'UTC'")
        return await run_once(conn, load_centre_settings(settings).accounting, datetime.now(UTC))


async def serve(settings: Settings, interval_s: float = DEFAULT_INTERVAL_S) -> None:
    """Run a round every `interval_s` until cancelled; failures logged once per transition."""
    cfg = load_centre_settings(settings).accounting  # validated before the first round

    async def one_round(conn: AsyncConnection[Any]) -> None:
        await run_once(conn, cfg, datetime.now(UTC))

    await run_forever(
        "coordination sync",
        settings.database_url,
        one_round,
        interval_s=interval_s,
        heartbeat=HEARTBEAT,
        autocommit=True,
    )
