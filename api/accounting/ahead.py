"""The accounting windows computed ahead, by a periodic job of the API process.

Every monitored tank's windows of report days D−12..D (the BYT map page's 7-day chart, its days'
7-day averages and the open window) are kept stored: at start, before the API serves (its
`lifespan`), and then every `windows_ahead_interval_seconds`. A round computes only what is
missing or stale (`telemetry.ensure_windows`: a closed window once, again after late readings or
a correction; the open one when older than the interval), so the pages read stored rows.

Why before serving, and in the API process: the first page after a start would otherwise compute
these windows itself, once per visitor arriving at the same time (bench/web_pages.py measured
1.2–1.8 s for the BYT map page, against < 1 s wanted); the round does the same work once, and
after a restart only what changed while the API was down (stored windows survive it), usually
the open window of day D. The start waits for the first round at most
`windows_ahead_warm_up_seconds`, then serves anyway (a country seen for the first time); until
the round ends, /health says `"accounting": "warming"`, and the pages compute on read as before.
Only the API runs it (not the alert service): the windows are the pages' cache, and the API is
the process whose start they speed up. Several workers or replicas take turns (an advisory lock),
the later one finding the rows fresh.

A round's stale windows are computed and stored 500 tanks at a time (`telemetry.tanks_figures`),
each batch committed on its own, so pages see a long first round's windows as they come.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection

from api.periodic import run_forever

from .config import AccountingConfig
from .telemetry import ensure_windows, monitored_tanks
from .windows import local_today, report_day_of

logger = logging.getLogger(__name__)

HEARTBEAT = Path(tempfile.gettempdir()) / "oxy-windows-ahead.heartbeat"
# The chart's first day is D−6 and its 7-day averages look 6 days further back.
HISTORY_DAYS = 12
# One round at a time across workers and replicas (pg_advisory_lock of this text's hash).
LOCK = "oxy.accounting.windows_ahead"


def ahead_span(now: datetime, cfg: AccountingConfig) -> tuple[date, date]:
    """Report days the job keeps: D−12 (D = today's local date, the pages' "today") through
    the day whose window is open at `now` (D+1 after the 16:00 cut-off)."""
    return local_today(now, cfg) - timedelta(days=HISTORY_DAYS), report_day_of(now, cfg)


def kept_fresh(cfg: AccountingConfig) -> timedelta:
    """How old a stored open window may be for a reader that needs it only as fresh as this job
    keeps it: the job's interval plus a round of its own of up to `open_window_fresh_seconds`
    (90 s by default). The alert round reads with it (api.alerts.rules `supply`), so it never
    recomputes the 3,000 open windows the job recomputes every interval, unless the job has
    stopped or fallen that far behind; pages keep `open_window_fresh_seconds`."""
    return timedelta(seconds=cfg.windows_ahead_interval_seconds + cfg.open_window_fresh_seconds)


@dataclass(frozen=True, slots=True)
class RoundResult:
    """What one round covered."""

    tanks: int
    first: date
    last: date
    windows: int
    seconds: float


async def windows_round(
    conn: AsyncConnection[Any],
    cfg: AccountingConfig,
    *,
    now: datetime | None = None,
    fresh: timedelta | None = None,
) -> RoundResult:
    """Compute and store every monitored tank's missing or stale windows of D−12..D at `now`;
    an open window older than `fresh` (default the job's interval) is recomputed."""
    now = now or datetime.now(UTC)
    fresh = timedelta(seconds=cfg.windows_ahead_interval_seconds) if fresh is None else fresh
    t0 = asyncio.get_running_loop().time()
    first, last = ahead_span(now, cfg)
    tanks = await monitored_tanks(conn)
    got = await ensure_windows(conn, tanks, first, last, cfg, now=now, fresh=fresh)
    return RoundResult(len(tanks), first, last, len(got), asyncio.get_running_loop().time() - t0)


@dataclass
class WindowsAhead:
    """The job's state as /health reports it: warming until its first round has ended."""

    first_round: threading.Event = field(default_factory=threading.Event)
    last: RoundResult | None = None

    @property
    def state(self) -> str:
        """The job's state: "ready" once a round has ended, "warming" before."""
        return "ready" if self.first_round.is_set() else "warming"


async def _locked_round(
    conn: AsyncConnection[Any], cfg: AccountingConfig, ahead: WindowsAhead
) -> None:
    await conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (LOCK,))
    try:
        result = await windows_round(conn, cfg)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (LOCK,))
    if not ahead.first_round.is_set():
        logger.info(
            "accounting windows ready: %d tanks, days %s..%s, %.1f s",
            result.tanks,
            result.first,
            result.last,
            result.seconds,
        )
    ahead.last = result
    ahead.first_round.set()


@contextlib.asynccontextmanager
async def windows_ahead(database_url: str, cfg: AccountingConfig) -> AsyncIterator[WindowsAhead]:
    """Run the job while the block runs; on entry, wait for its first round (at most the
    warm-up setting). Its own connection, in autocommit: each tank's windows are committed as
    they are stored, so the pages see them during a long first round.

    The job runs in a thread of its own with its own event loop: a round's arithmetic is
    Python, and on the server's loop it would hold every request for the round's length (the
    bench saw the BYT page take 1.7 s instead of 0.5 s when a round fell in it); in a thread it
    only shares the interpreter with them."""
    ahead = WindowsAhead()
    loop: asyncio.AbstractEventLoop | None = None
    job: asyncio.Task[None] | None = None
    started = threading.Event()

    async def one_round(conn: AsyncConnection[Any]) -> None:
        await _locked_round(conn, cfg, ahead)

    async def main() -> None:
        nonlocal loop, job
        loop = asyncio.get_running_loop()
        job = asyncio.current_task()
        started.set()
        await run_forever(
            "accounting windows ahead",
            database_url,
            one_round,
            interval_s=cfg.windows_ahead_interval_seconds,
            heartbeat=HEARTBEAT,
            autocommit=True,
        )

    def thread_main() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            asyncio.run(main())

    thread = threading.Thread(target=thread_main, name="windows-ahead", daemon=True)
    thread.start()
    try:
        await asyncio.to_thread(started.wait)
        if not await asyncio.to_thread(ahead.first_round.wait, cfg.windows_ahead_warm_up_seconds):
            logger.warning(
                "accounting windows still warming after %.0f s: serving anyway",
                cfg.windows_ahead_warm_up_seconds,
            )
        yield ahead
    finally:
        if loop is not None and job is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # its loop closed in the meantime
                loop.call_soon_threadsafe(job.cancel)
        await asyncio.to_thread(thread.join, 10)
