"""TimescaleDB storage for real (private cluster, OXY_TEST_BACKEND=timescaledb): the continuous
aggregates are exact (the equivalent of test_rollup_queue.py, which covers the plain queue),
real-time aggregation shows the live minute, the compression policy compresses what is older
than its horizon without changing any answer, and retention is off by default and drops only
whole chunks older than its setting while the rollups keep those days."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from ingest.rollups import flush, recompute
from tests.ingest.conftest import T0, Registry
from tests.ingest.test_rollup_queue import WIDTHS, _actual, _expected

pytestmark = pytest.mark.timescaledb_only


def _insert(conn: psycopg.Connection[Any], sensor: int, rows: list[tuple[datetime, float, int]]):
    conn.cursor().executemany(
        "INSERT INTO readings (sensor_id, ts, value, quality) VALUES (%s, %s, %s, %s)",
        [(sensor, ts, v, q) for ts, v, q in rows],
    )


def _refresh_all(conn: psycopg.Connection[Any]) -> None:
    for view in ("rollup_1m", "rollup_1h", "rollup_1d"):
        conn.execute("CALL refresh_continuous_aggregate(%s::regclass, NULL, NULL)", (view,))


def _materialized(conn: psycopg.Connection[Any], view: str) -> int:
    """Rows materialized so far in the continuous aggregate behind `view` (not real-time)."""
    (table,) = conn.execute(
        "SELECT format('%%I.%%I', materialization_hypertable_schema,"
        " materialization_hypertable_name) FROM timescaledb_information.continuous_aggregates"
        " WHERE view_name = %s",
        (view,),
    ).fetchone()
    (n,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(n)


def test_continuous_aggregates_are_exact_for_live_late_and_bad_readings(
    db_url: str, registry: Registry
) -> None:
    dp, p = registry.sensors["T1-dp"], registry.sensors["T1-p"]
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT value FROM platform_meta WHERE key = 'storage'").fetchone() == (
            "timescaledb",
        )
        _insert(conn, dp, [(T0 + timedelta(seconds=s), float(s % 17), 0) for s in range(0, 600, 5)])
        _insert(conn, p, [(T0 + timedelta(seconds=s), 2.0 + s / 100, 0) for s in range(90)])
        assert flush(conn) == 0  # no queue on TimescaleDB
        assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone() == (0,)
        # Nothing materialized yet: the views answer from the raw rows (real-time aggregation).
        assert _materialized(conn, "rollup_1m") == 0
        for view in WIDTHS:
            assert _actual(conn, view) == _expected(conn, view), view
        _refresh_all(conn)
        assert _materialized(conn, "rollup_1m") == 12
        for view in WIDTHS:
            assert _actual(conn, view) == _expected(conn, view), view
        # Late data into materialized buckets (the day before; earlier in a minute, a new first
        # value), and a bad-quality reading that must not count.
        late = [(T0 - timedelta(days=1) + timedelta(minutes=3), 99.0, 0)]
        late += [(T0 - timedelta(seconds=0.5), -5.0, 0), (T0 + timedelta(seconds=601), 1e3, 3)]
        _insert(conn, dp, late)
        # ingest.rollups.recompute refreshes the buckets of the window (what a correction or a new
        # calibration version calls); the refresh policies do the same on their schedule.
        assert recompute(conn, dp, T0 - timedelta(days=1), T0 + timedelta(minutes=11)) == 0
        for view in WIDTHS:
            assert _actual(conn, view) == _expected(conn, view), view


def test_real_time_aggregation_shows_the_live_minute(db_url: str, registry: Registry) -> None:
    dp = registry.sensors["T1-dp"]
    with psycopg.connect(db_url, autocommit=True) as conn:
        (now,) = conn.execute("SELECT now()").fetchone()
        minute = now.replace(second=0, microsecond=0)
        _insert(conn, dp, [(minute - timedelta(minutes=5) + timedelta(seconds=s), 1.0, 0)
                           for s in range(0, 240, 10)])  # fmt: skip
        _refresh_all(conn)  # materializes up to the last closed bucket
        (materialized,) = conn.execute(
            "SELECT count(*) FROM readings_1m WHERE sensor_id = %s", (dp,)
        ).fetchone()
        # Two readings in the minute still open: no refresh, yet the view shows them.
        _insert(conn, dp, [(minute, 7.0, 0), (minute + timedelta(milliseconds=1), 9.0, 0)])
        rows = conn.execute(
            "SELECT bucket, first_value, last_value, n FROM readings_1m"
            " WHERE sensor_id = %s ORDER BY bucket DESC LIMIT 1",
            (dp,),
        ).fetchall()
        assert rows == [(minute, 7.0, 9.0, 2)]
        assert conn.execute(
            "SELECT count(*) FROM readings_1m WHERE sensor_id = %s", (dp,)
        ).fetchone() == (materialized + 1,)


def _chunks(conn: psycopg.Connection[Any]) -> list[tuple[datetime, bool]]:
    return [
        (start, compressed)
        for start, compressed in conn.execute(
            "SELECT range_start, is_compressed FROM timescaledb_information.chunks"
            " WHERE hypertable_name = 'readings' ORDER BY range_start"
        ).fetchall()
    ]


def _answers(conn: psycopg.Connection[Any], dp: int) -> list[Any]:
    return [
        conn.execute(
            "SELECT date_bin('1 hour', ts, TIMESTAMPTZ '2000-01-03') h, count(*), min(value),"
            " max(value), sum(value) FROM readings WHERE sensor_id = %s GROUP BY 1 ORDER BY 1",
            (dp,),
        ).fetchall(),
        conn.execute(
            "SELECT * FROM readings WHERE sensor_id = %s AND ts >= now() - interval '12 days'"
            " AND ts < now() - interval '11 days' ORDER BY ts",
            (dp,),
        ).fetchall(),
        *(_actual(conn, view) for view in WIDTHS),
    ]


def _job(conn: psycopg.Connection[Any], proc: str) -> int:
    (job,) = conn.execute(
        "SELECT job_id FROM timescaledb_information.jobs"
        " WHERE proc_name = %s AND hypertable_name = 'readings'",
        (proc,),
    ).fetchone()
    return int(job)


def test_compression_policy_compresses_old_chunks_and_answers_stay_the_same(
    db_url: str, registry: Registry
) -> None:
    dp, p = registry.sensors["T1-dp"], registry.sensors["T1-p"]
    with psycopg.connect(db_url, autocommit=True) as conn:
        (now,) = conn.execute("SELECT now()").fetchone()
        start = (now - timedelta(days=14)).replace(minute=0, second=0, microsecond=0)
        rows = [(start + timedelta(minutes=7 * k), float(k % 101), int(k % 37 == 0))
                for k in range(14 * 24 * 60 // 7)]  # fmt: skip
        _insert(conn, dp, rows)
        _insert(conn, p, rows[::3])
        _refresh_all(conn)
        before = _answers(conn, dp)
        assert not any(c for _, c in _chunks(conn))
        conn.execute("CALL run_job(%s)", (_job(conn, "policy_compression"),))
        chunks = _chunks(conn)
        horizon = now - timedelta(days=7)
        # Every chunk that ends before the 7-day horizon is compressed, none after it.
        for begin, compressed in chunks:
            assert compressed == (begin + timedelta(days=1) <= horizon), (begin, compressed)
        assert sum(c for _, c in chunks) >= 6
        assert _answers(conn, dp) == before
        # A late reading and a redelivered duplicate into a compressed chunk: the writer's
        # idempotent insert keeps the first write and takes the new one.
        old = rows[10][0] + timedelta(seconds=1)
        conn.execute(
            "INSERT INTO readings (sensor_id, ts, value, quality) VALUES (%s, %s, 1.5, 0),"
            " (%s, %s, -1, 0) ON CONFLICT DO NOTHING",
            (dp, old, dp, rows[10][0]),
        )
        assert conn.execute(
            "SELECT value FROM readings WHERE sensor_id = %s AND ts IN (%s, %s) ORDER BY ts",
            (dp, rows[10][0], old),
        ).fetchall() == [(rows[10][1],), (1.5,)]
