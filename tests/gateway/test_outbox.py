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


def test_sent_messages_keep_their_rows_until_the_watermark(tmp_path: Path) -> None:
    """End-to-end acknowledgement: rows stay after PUBACK, go with the centre's watermark;
    a re-send finds the same rows under the same seq."""
    ob = Outbox(tmp_path / "o.sqlite")
    epoch = ob.epoch
    ob.add(rows(10))
    first, second = ob.batch(0, 4), ob.batch(4, 100)
    ob.assign(1, first[0][0], first[-1][0])
    ob.assign(2, second[0][0], second[-1][0])
    ob.note_published(10)
    assert ob.depth == 10 and ob.sent_summary() == (1, 2, second[-1][0])
    assert [r[0] for r in ob.sent_rows(2)] == [r[0] for r in second]
    assert ob.confirm(1) == 4
    assert ob.depth == 6 and ob.sent_summary()[0] == 2 and ob.confirmed_total == 4
    ob.close()
    again = Outbox(tmp_path / "o.sqlite")  # the stream, its seq and the counters survive
    assert again.epoch == epoch and again.get_meta("seq", "0") == "2"
    assert again.get_meta("acked_seq", "0") == "1" and again.confirmed_total == 4
    assert again.published_total == 10
    assert [r[0] for r in again.sent_above(1)] == [2]
    again.close()
    fresh = Outbox(tmp_path / "other.sqlite")  # a new file is a new stream
    assert fresh.epoch >= epoch and fresh.get_meta("epoch", "") == str(fresh.epoch)
    assert fresh.get_meta("seq", "0") == "0" and fresh.sent_summary() == (None, 0, 0)
    fresh.close()


def test_eviction_takes_sent_messages_from_the_front_and_counts(tmp_path: Path) -> None:
    """A full outbox evicts the oldest rows (a prefix of ids): a message left without rows
    leaves `sent`, so the stream's floor moves past it; every reading is counted."""
    ob = Outbox(tmp_path / "o.sqlite", max_readings=10)
    ob.add(rows(8))
    a, b = ob.batch(0, 4), ob.batch(4, 4)
    ob.assign(1, a[0][0], a[-1][0])
    ob.assign(2, b[0][0], b[-1][0])
    ob.add(rows(5, start_ms=int(time.time() * 1000) + 10**6))  # 13 > 10: the 3 oldest go
    assert ob.evicted_total == 3 and ob.depth == 10
    assert [r[0] for r in ob.sent_rows(1)] == [a[-1][0]]  # seq 1 keeps its last row
    ob.add(rows(2, start_ms=int(time.time() * 1000) + 2 * 10**6))  # 2 more go: seq 1 is empty
    assert ob.evicted_total == 5
    assert ob.sent_summary()[0] == 2  # the floor the next message carries
    # by age, too, only a prefix goes: an old row behind newer ones waits for the size bound
    old = Outbox(tmp_path / "age.sqlite", max_age_s=3600)
    now = time.time()
    old.add(rows(3, start_ms=int((now - 7200) * 1000)))
    old.add(rows(2, start_ms=int(now * 1000)))
    old.add(rows(1, start_ms=int((now - 7200) * 1000) + 10**5))
    assert old.enforce_bound(now) == 3 and old.depth == 3
    ob.close()
    old.close()
