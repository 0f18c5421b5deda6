"""Rollup maintenance on plain PostgreSQL: rebuild the buckets of newly stored readings from the
queue the writer fills (`flush`), and recompute buckets after corrections or a new calibration
version (`recompute`)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Final

import psycopg

from ingest import queries

ROLLUPS = ("rollup_1m", "rollup_1h", "rollup_1d")
# Queued ranges one rollup_flush() call takes: its slice of work is at most this many times
# 60 minute buckets (each range is rebuilt an hour at a time).
FLUSH_RANGES: Final = 2000


def recompute(conn: psycopg.Connection[Any], sensor_id: int, start: datetime, end: datetime) -> int:
    """Rebuild the 1 min/1 h/1 day buckets of `sensor_id` overlapping [start, end].

    Plain PostgreSQL: rewrites the writer-maintained buckets in the caller's transaction and
    returns the number of buckets written. TimescaleDB: refreshes the continuous aggregates over
    the whole buckets of that window (for every sensor; it cannot be limited to one), which must
    run outside a transaction, so `conn` must be in autocommit mode there; returns 0.
    """
    row = conn.execute(queries.STORAGE_KIND).fetchone()
    if row and row[0] == "timescaledb":
        if not conn.autocommit:
            raise ValueError("refresh_continuous_aggregate needs an autocommit connection")
        # Never refresh over days retention dropped: the refresh would empty their buckets.
        kept = conn.execute(
            "SELECT greatest(%s::timestamptz, readings_retained_from())", (start,)
        ).fetchone()
        start = kept[0] if kept else start
        if start > end:
            return 0
        for name, width in zip(ROLLUPS, ("1 minute", "1 hour", "1 day"), strict=True):
            lo, hi = conn.execute(
                "SELECT time_bucket(%s::interval, %s::timestamptz),"
                " time_bucket(%s::interval, %s::timestamptz) + %s::interval",
                (width, start, width, end, width),
            ).fetchone() or (start, end)
            call_refresh(conn, queries.REFRESH_CAGG, (name, lo, hi))
        return 0
    got = conn.execute(queries.RECOMPUTE, (sensor_id, start, end)).fetchone()
    return int(got[0]) if got else 0


def call_refresh(
    conn: psycopg.Connection[Any], statement: str, params: tuple[Any, ...], wait_s: float = 60.0
) -> None:
    """Run a TimescaleDB refresh (`refresh_continuous_aggregate`, or `run_job` of a refresh
    policy), waiting out a concurrent refresh of the same aggregate.

    TimescaleDB refuses a refresh overlapping one in progress ("could not refresh continuous
    aggregate ... due to a concurrent refresh", LockNotAvailable) instead of waiting for it: its
    refresh policy's background job does that every few minutes, and a recompute in that moment
    failed (seen in CI). Retried with growing pauses for up to `wait_s`."""
    deadline = time.monotonic() + wait_s
    pause = 0.1
    while True:
        try:
            conn.execute(statement, params)
            return
        except psycopg.errors.LockNotAvailable:
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def flush(conn: psycopg.Connection[Any], budget_s: float = 10.0) -> int:
    """Rebuild the rollup buckets the ingest writer queued, slice by slice (each committed here).

    Each `rollup_flush()` call is one bounded slice of work in its own transaction (at most
    `FLUSH_RANGES` queued ranges, at most an hour of each, 0071_rollup_flush_bounded), so the
    rollup lock is never held for long; slices follow each other while work remains, up to
    `budget_s`, and the next call goes on where this one stopped (the queue is in the database).
    Returns the 1 minute buckets rebuilt, 0 when nothing was queued (always on TimescaleDB,
    whose continuous aggregates need no queue), -1 when another session was flushing.
    """
    deadline = time.monotonic() + budget_s
    total = 0
    while True:
        row = conn.execute(queries.FLUSH_ROLLUPS, (FLUSH_RANGES,)).fetchone()
        conn.commit()
        k = int(row[0]) if row else 0
        if k < 0:
            return total or -1
        total += k
        if time.monotonic() >= deadline:
            return total
        more = conn.execute(queries.FLUSH_PENDING).fetchone()
        conn.commit()
        if k == 0 or not more or not more[0]:
            return total
