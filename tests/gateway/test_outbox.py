"""The SQLite outbox: order, delete-after-ack only, bounded with counted evictions, durable."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from gateway.engineering import Row
from gateway.outbox import Outbox


def rows(n: int, start_ms: int | None = None, sensor: str = "T1-dp") -> list[Row]:
    base = start_ms if start_ms is not None else int(time.time() * 1000)
    return [Row(sensor, base + i * 1000, float(i), "inH2O", "good") for i in range(n)]


def test_order_ack_and_cursor(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    ob.add(rows(10))
    first = ob.batch(0, 4)
    assert [r[3] for r in first] == [0.0, 1.0, 2.0, 3.0]
    second = ob.batch(first[-1][0], 100)
    assert [r[3] for r in second] == [float(i) for i in range(4, 10)]
    # ack the second message first: only its rows go; the first stays until its own ack
    assert ob.acked(second[0][0], second[-1][0], len(second)) == 6
    assert ob.depth == 4 and [r[3] for r in ob.batch(0, 100)] == [0.0, 1.0, 2.0, 3.0]
    ob.acked(first[0][0], first[-1][0], 4)
    assert ob.depth == 0 and ob.published_total == 10
    # ids never go back, so a cursor from before the table emptied still sees new rows
    ob.add(rows(1))
    assert ob.batch(second[-1][0], 10)[0][0] > second[-1][0]
    ob.close()


def test_survives_reopen(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    ob.add(rows(5))
    ob.put_meta("seq", 42)
    ob.close()
    again = Outbox(tmp_path / "o.sqlite")
    assert again.depth == 5 and again.get_meta("seq", "0") == "42"
    assert (
        sqlite3.connect(tmp_path / "o.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    )


def test_size_bound_evicts_oldest_and_counts(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", max_readings=100)
    ob.add(rows(80))
    ob.add(rows(50, start_ms=int(time.time() * 1000) + 10**6))
    assert ob.depth == 100
    assert ob.evicted_total == 30
    left = ob.batch(0, 1000)
    assert left[0][3] == 30.0  # the 30 oldest went
    ob.close()
    assert Outbox(tmp_path / "o.sqlite").evicted_total == 30  # the count is durable


def test_age_bound_evicts_and_counts(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", max_age_s=3600)
    now = time.time()
    ob.add(rows(10, start_ms=int((now - 7200) * 1000)))  # two hours old
    ob.add(rows(5, start_ms=int(now * 1000)))
    assert ob.enforce_bound(now) == 10
    assert ob.depth == 5 and ob.evicted_total == 10
