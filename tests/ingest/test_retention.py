"""Retention of raw readings (sql/0095_retention_floor.sql), on both stores: off by default, a
setting shorter than what reports still need is refused, and a valid one drops only readings
older than its horizon (whole chunks on TimescaleDB) while the daily rollups keep those days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ingest.rollups import call_refresh, recompute
from oxy.database import storage_kind
from tests.ingest.conftest import Registry


def _refresh(conn: psycopg.Connection, sensor: int, lo: datetime, hi: datetime) -> None:
    """What a correction does (ingest.rollups.recompute), then on TimescaleDB the policies."""
    recompute(conn, sensor, lo, hi)
    if storage_kind(conn) == "timescaledb":
        for (job,) in conn.execute(
            "SELECT job_id FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_refresh_continuous_aggregate'"
        ).fetchall():
            # The scheduler may be running the same policy now: it refuses, rather than waits.
            call_refresh(conn, "CALL run_job(%s)", (job,))


def _days(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    return conn.execute("SELECT * FROM readings_1d ORDER BY sensor_id, bucket").fetchall()


def test_retention_is_off_by_default_refuses_too_short_and_keeps_the_rollups(
    db_url: str, registry: Registry
) -> None:
    dp = registry.sensors["T1-dp"]
    with psycopg.connect(db_url, autocommit=True) as conn:
        (now,) = conn.execute("SELECT now()").fetchone()
        day0 = datetime(now.year, now.month, now.day, tzinfo=UTC)
        rows = [(day0 - timedelta(days=d, hours=h), float(d), 0)
                for d in range(0, 60) for h in range(0, 24, 6)]  # fmt: skip
        conn.cursor().executemany(
            "INSERT INTO readings (sensor_id, ts, value, quality) VALUES (%s, %s, %s, %s)",
            [(dp, ts, v, q) for ts, v, q in rows],
        )
        _refresh(conn, dp, rows[-1][0], now)
        days = _days(conn)
        assert len(days) == 61  # readings reach back into a 61st UTC day
        # Off by default.
        assert conn.execute("SELECT apply_readings_retention()").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (len(rows),)
        # Shorter than the floor (a correction inside the reports' edit window would recompute
        # from raw readings that are gone): refused, nothing dropped.
        conn.execute("INSERT INTO platform_meta VALUES ('readings_retention', '20 days')")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="set at least 40 days"):
            conn.execute("SELECT apply_readings_retention()")
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (len(rows),)
        conn.execute("UPDATE platform_meta SET value = '45 days' WHERE key = 'readings_retention'")
        (dropped,) = conn.execute("SELECT apply_readings_retention()").fetchone()
        assert dropped > 0
        (horizon,) = conn.execute("SELECT readings_retained_from()").fetchone()
        # Whole UTC days before now − 45 days went, nothing after.
        assert horizon == day0 - timedelta(days=45)
        (oldest,) = conn.execute("SELECT min(ts) FROM readings").fetchone()
        assert horizon <= oldest < horizon + timedelta(days=1)
        assert conn.execute(
            "SELECT count(*) FROM readings WHERE ts >= %s", (horizon,)
        ).fetchone() == (sum(1 for ts, _, _ in rows if ts >= horizon),)
        # The daily rollups keep every day, also after a correction's recompute reaching back
        # before the horizon and (TimescaleDB) the refresh policies' next runs.
        assert _days(conn) == days
        _refresh(conn, dp, horizon - timedelta(days=10), now)
        assert _days(conn) == days
