"""The loop of the platform's periodic jobs (alert evaluation, coordination sync).

One connection is kept while it works; a failing round (the database down, a bad round) is
logged once when it starts failing and once when it recovers, and retried. After every good
round the job touches its heartbeat file, whose age the container health check reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection

logger = logging.getLogger(__name__)

Round = Callable[[AsyncConnection[Any]], Awaitable[object]]


async def run_forever(
    what: str,
    database_url: str,
    one_round: Round,
    *,
    interval_s: float,
    heartbeat: Path,
    autocommit: bool = False,
) -> None:
    """Run `one_round` every `interval_s` until cancelled."""
    failing = False
    while True:
        try:
            async with await AsyncConnection.connect(database_url, autocommit=autocommit) as conn:
                await conn.execute("SET TIME ZONE 'UTC'")
                while True:
                    await one_round(conn)
                    await asyncio.to_thread(heartbeat.touch)
                    if failing:
                        logger.info("%s recovered", what)
                        failing = False
                    await asyncio.sleep(interval_s)
        except Exception as exc:
            if not failing:
                logger.error("%s failing: %s", what, exc)
                failing = True
            await asyncio.sleep(min(interval_s, 10.0))
