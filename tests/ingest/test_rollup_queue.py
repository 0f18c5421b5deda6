"""Plain PostgreSQL rollups rebuilt from the writer's queue (sql/0060_rollup_queue.sql): exact
against a GROUP BY over the raw readings, for live data, late data in another hour and day,
bad-quality readings and ranges queued twice; one flusher at a time. TimescaleDB has no queue
(continuous aggregates): tests/ingest/test_timescaledb_rollups.py holds the equivalent."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import psycopg
import pytest

from ingest import queries
from ingest.rollups import FLUSH_RANGES, flush
from tests.ingest.conftest import T0, Registry

pytestmark = pytest.mark.postgresql_only

WIDTHS = {"readings_1m": "1 minute", "readings_1h": "1 hour", "readings_1d": "1 day"}


def _expected(conn: psycopg.Connection, view: str) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT sensor_id, date_bin(%s::interval, ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') b,"
        " (array_agg(value ORDER BY ts))[1], (array_agg(value ORDER BY ts DESC))[1],"
        " min(value), max(value), count(*)"
        " FROM readings WHERE quality = 0 AND value IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
        (WIDTHS[view],),
    ).fetchall()


def _actual(conn: psycopg.Connection, view: str) -> list[tuple[object, ...]]:
    return conn.execute(
        f"SELECT sensor_id, bucket, first_value, last_value, min_value, max_value, n FROM {view}"
        " ORDER BY 1, 2"
    ).fetchall()


def _store(conn: psycopg.Connection, sensor: int, rows: list[tuple[timedelta, float, int]]) -> None:
    """Insert readings as the writer does, queueing their range in the same transaction."""
    for offset, value, quality in rows:
        conn.execute(
            "INSERT INTO readings (sensor_id, ts, value, quality) VALUES (%s, %s, %s, %s)",
            (sensor, T0 + offset, value, quality),
        )
    lo = min(T0 + o for o, _, _ in rows)
    hi = max(T0 + o for o, _, _ in rows)
    conn.execute("INSERT INTO rollup_dirty VALUES (%s, %s, %s)", (sensor, lo, hi))


def _open_minute(conn: psycopg.Connection) -> datetime:
    """The minute open at the start of `conn`'s transaction (database clock).

    now() is the transaction's start time, so every rollup_flush() the test runs before it
    commits sees this same minute open, wherever the wall clock is in its minute: no wait for a
    fresh minute (up to 10 s before), and no race with the minute's end."""
    conn.commit()
    (now,) = conn.execute("SELECT date_bin('1 minute', now(), %s)", (T0,)).fetchone()
    return now


def _flush_in_transaction(conn: psycopg.Connection) -> int:
    """What `ingest.rollups.flush` does (slices until one rebuilds nothing; the sum), without
    its commits: the slices keep the open minute of `_open_minute` (a range running over an
    hour boundary takes two slices)."""
    total = 0
    while (k := conn.execute(queries.FLUSH_ROLLUPS, (FLUSH_RANGES,)).fetchone()[0]) > 0:
        total += k
    return total


def test_flush_rebuilds_exactly_what_the_readings_say(db_url: str, registry: Registry) -> None:
    dp, p = registry.sensors["T1-dp"], registry.sensors["T1-p"]
    with psycopg.connect(db_url) as conn:
        live = [(timedelta(seconds=s), float(s % 17), 0) for s in range(0, 600, 5)]
        _store(conn, dp, live)
        _store(conn, p, [(timedelta(seconds=s), 2.0 + s / 100, 0) for s in range(0, 90)])
        conn.commit()
        assert flush(conn) == 10 + 2  # 1 minute buckets: 10 of dp, 2 of p
        for view in WIDTHS:
            assert _actual(conn, view) == _expected(conn, view), view
        # Late data: the previous day, and earlier in the same minute (new first value), a
        # bad-quality reading (not counted) and the same range queued twice.
        late = [(timedelta(days=-1, minutes=3), 99.0, 0), (timedelta(seconds=-0.5), -5.0, 0)]
        _store(conn, dp, late)
        _store(conn, dp, [(timedelta(seconds=601), 1000.0, 3)])
        conn.execute("INSERT INTO rollup_dirty SELECT * FROM rollup_dirty")
        conn.commit()
        assert flush(conn) > 0
        for view in WIDTHS:
            assert _actual(conn, view) == _expected(conn, view), view
        assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone() == (0,)
        assert flush(conn) == 0  # nothing queued: nothing to do


def test_one_flusher_at_a_time_and_nothing_queued_is_lost(db_url: str, registry: Registry) -> None:
    dp = registry.sensors["T1-dp"]
    with psycopg.connect(db_url) as a, psycopg.connect(db_url) as b:
        _store(a, dp, [(timedelta(seconds=1), 1.0, 0)])
        a.commit()
        # `a` flushes without committing yet: `b` skips (-1), and what it would have taken stays.
        a.execute("SELECT rollup_flush()")
        _store(b, dp, [(timedelta(seconds=2), 2.0, 0)])
        b.commit()
        assert flush(b) == -1
        a.commit()
        assert flush(b) == 1
        assert _actual(b, "readings_1m") == _expected(b, "readings_1m")
        assert _actual(b, "readings_1m")[0][-1] == 2


def test_the_queue_refuses_an_inverted_range(db_url: str, registry: Registry) -> None:
    lo, hi = T0 + timedelta(seconds=1), T0
    with psycopg.connect(db_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO rollup_dirty VALUES (%s, %s, %s)", (registry.sensors["T1-dp"], lo, hi)
        )


def test_the_open_minute_waits_in_the_queue(db_url: str, registry: Registry) -> None:
    """Readings of the minute still open (database clock) are not rolled up yet: their range goes
    back into the queue, so a live minute is rebuilt once, after it closed, not at every flush."""
    dp = registry.sensors["T1-dp"]
    with psycopg.connect(db_url) as conn:
        now = _open_minute(conn)  # one transaction from here: rollup_flush() sees the same now()
        closed = [(timedelta(minutes=-2, seconds=s), float(s), 0) for s in range(0, 120, 10)]
        live = [(timedelta(seconds=s), 100.0 + s, 0) for s in (0, 1)]
        _store(conn, dp, [(now - T0 + o, v, q) for o, v, q in closed + live])
        assert _flush_in_transaction(conn) == 2  # the two closed minutes
        assert [b for _, b, *_ in _actual(conn, "readings_1m")] == [
            now - timedelta(minutes=2),
            now - timedelta(minutes=1),
        ]
        queued = conn.execute("SELECT sensor_id, lo, hi FROM rollup_dirty").fetchall()
        assert queued == [(dp, now, now + timedelta(seconds=1))]


def test_a_wide_queued_range_is_rebuilt_in_bounded_slices(db_url: str, registry: Registry) -> None:
    """A range queued from 1970 to now (as the writer did before issue 14, or any range over
    years) costs its readings, not its minutes: each rollup_flush() call rebuilds at most an
    hour of it and queues the rest from the next stored reading."""
    dp = registry.sensors["T1-dp"]
    with psycopg.connect(db_url) as conn:
        (now,) = conn.execute("SELECT date_bin('1 minute', now(), %s)", (T0,)).fetchone()
        old = T0.replace(year=1970)
        conn.execute(
            "INSERT INTO readings (sensor_id, ts, value, quality) VALUES (%s, %s, 1, 0),"
            " (%s, %s, 2, 0), (%s, %s, 3, 0)",
            (dp, old, dp, old + timedelta(days=400), dp, now - timedelta(minutes=2)),
        )
        conn.execute(
            "INSERT INTO rollup_dirty VALUES (%s, %s, %s)", (dp, old, now - timedelta(minutes=2))
        )
        conn.commit()
        started = time.monotonic()
        (first,) = conn.execute("SELECT rollup_flush()").fetchone()
        conn.commit()
        assert 1 <= first <= 60  # the 1970 hour only; the rest is queued from the next reading
        (queued,) = conn.execute("SELECT array_agg(lo) FROM rollup_dirty").fetchone()
        assert queued == [old + timedelta(days=400)]
        assert 2 <= flush(conn) <= 120  # the 1971 hour, then the live one
        assert time.monotonic() - started < 5  # ~30 M minutes took 6.5 min before
        for view in WIDTHS:
            assert _actual(conn, view) == _expected(conn, view), view
        assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone() == (0,)


def test_the_writer_queues_a_late_reading_as_its_own_hour(
    db_url: str, broker: object, registry: Registry
) -> None:
    """A 1970 reading (allowed here by a lowered OXY_INGEST_TS_FLOOR) in one message with a
    current one queues two small ranges, never 1970 → now."""
    from datetime import UTC

    from tests.ingest.conftest import Publisher, count, data_message, running_ingest, wait_for

    dp = registry.sensors["T1-dp"]
    live = (datetime.now(UTC) - timedelta(minutes=2)).replace(microsecond=0)
    old = datetime(1970, 1, 1, 0, 0, 30, tzinfo=UTC)
    pub = Publisher(broker.port)  # type: ignore[attr-defined]
    floor = datetime(1960, 1, 1, tzinfo=UTC)
    try:
        with running_ingest(
            db_url,
            broker.url,
            ts_floor=floor,
            rollup_every_s=3600.0,  # type: ignore[attr-defined]
        ):
            pub.publish(
                registry.data_topic(),
                data_message(registry.gateway, [("T1-dp", old, 1.0), ("T1-dp", live, 2.0)]),
            )
            wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") == 2, what="rows")
            with psycopg.connect(db_url) as conn:
                spans = conn.execute(
                    "SELECT lo, hi FROM rollup_dirty WHERE sensor_id = %s ORDER BY lo", (dp,)
                ).fetchall()
            assert spans == [(old, old), (live, live)]
            started = time.monotonic()
        assert time.monotonic() - started < 10  # the final flush at stop is small
    finally:
        pub.close()
    with psycopg.connect(db_url) as conn:
        assert _actual(conn, "readings_1m") == _expected(conn, "readings_1m")


def test_a_closed_minute_is_rebuilt_once_whatever_slices_the_queue_is_taken_in(
    db_url: str, registry: Registry
) -> None:
    """At a national rate the writer queues one row per sensor and batch: 12 rows a minute at one
    message every 5 s. A slice (rollup_flush(p_max_ranges)) takes all of a sensor's rows of an
    hour together, so each closed minute is rebuilt once, not once per slice holding one of its
    rows (2 sensors × 12 batches in slices of 4 rows rebuilt the two minutes 6 times each)."""
    dp, p = registry.sensors["T1-dp"], registry.sensors["T1-p"]
    with psycopg.connect(db_url) as conn:
        minute = _open_minute(conn) - timedelta(minutes=2)
        for batch in range(12):  # batch-major, as the writer commits them
            for sensor in (dp, p):
                rows = [(minute + timedelta(seconds=batch * 5 + s), float(s), 0) for s in range(5)]
                _store(conn, sensor, [(ts - T0, v, q) for ts, v, q in rows])
        conn.commit()
        rebuilt = []
        while (k := conn.execute("SELECT rollup_flush(4)").fetchone()[0]) > 0:
            conn.commit()
            rebuilt.append(k)
        assert rebuilt == [2]  # one slice, one rebuild of each sensor's minute
        assert _actual(conn, "readings_1m") == _expected(conn, "readings_1m")
        assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone() == (0,)


def test_the_open_minute_is_left_in_place_and_never_hides_closed_work(
    db_url: str, registry: Registry
) -> None:
    """Rows wholly in the minute still open stay in the queue untouched (not deleted and queued
    again at every flush), and a queue that starts with them still yields its closed minutes to
    the first slice: before, a slice of open rows only rebuilt nothing, returned 0, and
    ingest.rollups.flush() stopped there for the round."""
    dp, p = registry.sensors["T1-dp"], registry.sensors["T1-p"]
    with psycopg.connect(db_url) as conn:
        now = _open_minute(conn)
        old_queue_time = T0 - timedelta(days=1)
        for sensor in (dp, p):  # first in the table: the open minute, queued long "ago"
            for s in range(6):
                ts = now + timedelta(seconds=s)
                conn.execute(
                    "INSERT INTO readings (sensor_id, ts, value, quality) VALUES (%s, %s, 1, 0)",
                    (sensor, ts),
                )
                conn.execute(
                    "INSERT INTO rollup_dirty VALUES (%s, %s, %s, %s)",
                    (sensor, ts, ts, old_queue_time),
                )
        open_rows = conn.execute("SELECT * FROM rollup_dirty ORDER BY 1, 2").fetchall()
        closed = now - timedelta(minutes=1)
        _store(conn, dp, [(closed - T0 + timedelta(seconds=s), 2.0, 0) for s in (0, 30)])
        assert conn.execute("SELECT rollup_flush(4)").fetchone() == (1,)
        assert [b for _, b, *_ in _actual(conn, "readings_1m")] == [closed]
        assert conn.execute("SELECT * FROM rollup_dirty ORDER BY 1, 2").fetchall() == open_rows
        assert _flush_in_transaction(conn) == 0  # nothing closed is left
        assert conn.execute("SELECT * FROM rollup_dirty ORDER BY 1, 2").fetchall() == open_rows
