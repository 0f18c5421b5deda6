"""Failure tests on private instances: rows stored == readings published, none lost, none
duplicated, after SIGKILL of the ingest process, a 30 s database outage and a broker restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from oxy.migrate import migrate
from tests.fix_db import PrivatePostgres, private_backend_server
from tests.ingest.conftest import (
    GATEWAY,
    T0,
    Publisher,
    Registry,
    count,
    data_message,
    running_ingest,
    seed_registry,
    series,
    wait_for,
)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def message(registry: Registry, k: int, per_message: int) -> tuple[str, bytes]:
    """Message k: `per_message` readings of T1-dp/T1-p at distinct times, value = index."""
    start = T0 + timedelta(seconds=k * per_message)
    half = per_message // 2
    readings = series("T1-dp", half, start, base=k * per_message) + series(
        "T1-p", per_message - half, start, base=k * per_message + half
    )
    return registry.data_topic(), data_message(GATEWAY, readings)


def check_exact(url: str, expected: int) -> None:
    """Every published reading stored exactly once, and the rollups agree with the raw rows."""
    with psycopg.connect(url) as conn:
        n, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT (sensor_id, ts)) FROM readings"
        ).fetchone()
        assert n == distinct == expected
    # The service rebuilds the rollups of stored readings every couple of seconds (queue in the
    # database, so a killed worker's share is rebuilt by the next flush).
    for rollup in ("readings_1m", "readings_1h", "readings_1d"):
        sql = f"SELECT coalesce(sum(n), 0) FROM {rollup}"
        wait_for(lambda sql=sql: count(url, sql) == expected, timeout=20, what=sql)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM reading_conflicts").fetchone() == (0,)


def stream(publisher: Publisher, items: list[tuple[str, bytes]], pause: float) -> threading.Thread:
    """Publish `items` in a thread, `pause` seconds apart (each waits for its PUBACK)."""

    def run() -> None:
        for t, p in items:
            publisher.publish(t, p)
            time.sleep(pause)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def start_ingest_process(
    db_url: str, mqtt_url: str, client_id: str, log: Path
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OXY_INGEST_BATCH_MS": "100", "OXY_LOG_LEVEL": "INFO"}
    return subprocess.Popen(
        [sys.executable, "-m", "ingest", "run", "--mqtt-url", mqtt_url, "--database-url", db_url,
         "--client-id", client_id],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def test_sigkill_mid_stream_loses_and_duplicates_nothing(
    db_url: str, broker: Any, tmp_path: Path
) -> None:
    registry = seed_registry(db_url)
    publisher = Publisher(broker.port)
    items = [message(registry, k, 20) for k in range(600)]
    log = tmp_path / "ingest.log"
    proc = start_ingest_process(db_url, broker.url, "ingest-kill-test", log)
    try:
        # Wait for the subscription before publishing (the session does not exist before).
        wait_for(lambda: b"connected to" in log.read_bytes(), timeout=20, what="ingest up")
        time.sleep(0.3)
        th = stream(publisher, items, 0.002)
        wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") >= 2000, timeout=30)
        proc.send_signal(signal.SIGKILL)  # mid-stream, very likely mid-batch
        proc.wait(10)
        killed_at = count(db_url, "SELECT count(*) FROM readings")
        assert killed_at < len(items) * 20
        proc = start_ingest_process(db_url, broker.url, "ingest-kill-test", log)
        th.join(60)
        wait_for(
            lambda: count(db_url, "SELECT count(*) FROM readings") >= len(items) * 20,
            timeout=60,
            what="every reading after restart",
        )
        time.sleep(0.5)  # a straggling redelivery would show as a duplicate now
        check_exact(db_url, len(items) * 20)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        publisher.close()


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A private server of the backend under test (plain PostgreSQL or TimescaleDB)."""
    pg = private_backend_server()
    pg.start()
    yield pg
    pg.destroy()


def test_database_down_30s_loses_nothing(private_pg: PrivatePostgres, broker: Any) -> None:
    url = private_pg.url
    migrate(url)
    registry = seed_registry(url)
    publisher = Publisher(broker.port)
    items = [message(registry, k, 10) for k in range(700)]  # ~35 s at 20 messages/s
    try:
        with running_ingest(url, broker.url, max_unacked=200) as svc:
            th = stream(publisher, items, 0.05)
            wait_for(lambda: count(url, "SELECT count(*) FROM readings") >= 500, timeout=30)
            private_pg.stop()
            down_at = time.monotonic()
            time.sleep(30)
            assert svc.metrics.db_up._value.get() == 0
            # Nothing was acked while the database was down: the broker holds the rest.
            assert svc.metrics.unacked._value.get() > 0
            private_pg.start()
            assert time.monotonic() - down_at >= 30
            th.join(60)
            wait_for(
                lambda: count(url, "SELECT count(*) FROM readings") >= len(items) * 10,
                timeout=60,
                what="every reading after the outage",
            )
            wait_for(lambda: svc.metrics.unacked._value.get() == 0, what="all acked")
        check_exact(url, len(items) * 10)
    finally:
        publisher.close()


def test_broker_restart_loses_nothing(db_url: str, broker: Any) -> None:
    registry = seed_registry(db_url)
    first = [message(registry, k, 10) for k in range(300)]
    second = [message(registry, k, 10) for k in range(300, 600)]
    with running_ingest(db_url, broker.url, client_id="ingest-broker-restart") as svc:
        publisher = Publisher(broker.port)
        publisher.publish_many(first)  # all PUBACKed by the broker: it owns them now
        publisher.close()
        broker.stop()  # SIGTERM: Mosquitto saves its persistence file
        broker.start()
        wait_for(svc.source.subscribed.is_set, timeout=30, what="reconnect")
        publisher = Publisher(broker.port)
        publisher.publish_many(second)
        publisher.close()
        wait_for(
            lambda: count(db_url, "SELECT count(*) FROM readings") >= 6000,
            timeout=60,
            what="every reading after the broker restart",
        )
        wait_for(lambda: svc.metrics.unacked._value.get() == 0, what="all acked")
    check_exact(db_url, 6000)
