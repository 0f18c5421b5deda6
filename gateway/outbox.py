"""The durable outbox: SQLite in WAL mode, written before publishing, deleted only once the
centre has committed the readings (end-to-end acknowledgement, docs/gateway.md), or after the
PUBACK when that is switched off.

Rows keep insertion order (AUTOINCREMENT ids are never reused, so a replay cursor stays valid even
when the table empties). Each data message sent is recorded in `sent` (its `seq` and the id range
of its rows), so a re-send repeats the same `seq` with the same readings: the centre's contiguous
watermark can always close a gap. The outbox stream is named by `epoch` (set when the file is
created): a new file starts a new stream whose sequence numbers begin again at 1.

The bound (row count and age) evicts the oldest rows first, always a prefix of ids (so a sent
message loses its rows from the front and the stream's floor moves up), and counts every evicted
row in `evicted_total`, which the status message reports: never a silent drop.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gateway.engineering import Row

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sensor TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    value REAL,
    unit TEXT NOT NULL,
    q TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sent (
    seq INTEGER PRIMARY KEY,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL
);
"""

Q_INSERT = "INSERT INTO outbox (sensor, ts_ms, value, unit, q) VALUES (?, ?, ?, ?, ?)"
Q_BATCH = "SELECT id, sensor, ts_ms, value, unit, q FROM outbox WHERE id > ? ORDER BY id LIMIT ?"
Q_DELETE_RANGE = "DELETE FROM outbox WHERE id BETWEEN ? AND ?"
Q_COUNT = "SELECT count(*) FROM outbox"
Q_OLDEST = "SELECT ts_ms FROM outbox ORDER BY id LIMIT 1"
Q_NTH_ID = "SELECT id FROM outbox ORDER BY id LIMIT 1 OFFSET ?"
Q_DELETE_UPTO = "DELETE FROM outbox WHERE id <= ?"
# By age, too, only a prefix of ids goes (a row with a wrong old clock further on waits for the
# size bound instead): evictions never open a hole in the middle of the sent messages.
Q_DELETE_OLDER = (
    "DELETE FROM outbox WHERE id < coalesce("
    "(SELECT min(id) FROM outbox WHERE ts_ms >= ?), (SELECT max(id) + 1 FROM outbox))"
)
Q_SENT_ADD = "INSERT OR REPLACE INTO sent (seq, first_id, last_id) VALUES (?, ?, ?)"
Q_SENT_ABOVE = "SELECT seq, first_id, last_id FROM sent WHERE seq > ? ORDER BY seq"
Q_SENT_ONE = "SELECT first_id, last_id FROM sent WHERE seq = ?"
Q_SENT_MIN = "SELECT min(seq), count(*), max(last_id) FROM sent"
Q_SENT_UPTO = "SELECT max(last_id) FROM sent WHERE seq <= ?"
Q_SENT_DELETE_UPTO = "DELETE FROM sent WHERE seq <= ?"
Q_SENT_DELETE_ONE = "DELETE FROM sent WHERE seq = ?"
Q_SENT_TRIM = "DELETE FROM sent WHERE last_id < coalesce((SELECT min(id) FROM outbox), 1 << 62)"
Q_ROWS_BETWEEN = (
    "SELECT id, sensor, ts_ms, value, unit, q FROM outbox WHERE id BETWEEN ? AND ? ORDER BY id"
)
Q_META_GET = "SELECT value FROM meta WHERE key = ?"
Q_META_PUT = (
    "INSERT INTO meta (key, value) VALUES (?, ?) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value"
)


class Outbox:
    """One gateway's outbox file; used from one thread (the gateway's event loop)."""

    def __init__(
        self,
        path: Path,
        max_readings: int = 10_000_000,
        max_age_s: float = 7 * 86400.0,
        synchronous: str = "full",
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_readings = max_readings
        self.max_age_s = max_age_s
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL survives power loss as well as a killed process; NORMAL only the latter.
        self._db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self.depth = int(self._db.execute(Q_COUNT).fetchone()[0])
        self.evicted_total = int(self.get_meta("evicted_total", "0"))
        self.published_total = int(self.get_meta("published_total", "0"))
        self.confirmed_total = int(self.get_meta("confirmed_total", "0"))
        epoch = self.get_meta("epoch", "")
        if not epoch:  # a new file: a new stream (milliseconds since 1970 name it)
            epoch = str(int(time.time() * 1000))
            self.put_meta("epoch", epoch)
        self.epoch = int(epoch)
        self.written_total = 0  # this process only (tests and the bench count with it)

    def close(self) -> None:
        """Checkpoint and close the database."""
        self._db.close()

    def get_meta(self, key: str, default: str) -> str:
        """A persisted gateway counter or document."""
        row = self._db.execute(Q_META_GET, (key,)).fetchone()
        return str(row[0]) if row else default

    def put_meta(self, key: str, value: str | int) -> None:
        """Persist a counter or document (its own transaction)."""
        self._db.execute(Q_META_PUT, (key, str(value)))

    def put_json(self, key: str, value: Any) -> None:
        """Persist a JSON document."""
        self.put_meta(key, json.dumps(value, separators=(",", ":")))

    def add(self, rows: Iterable[Row]) -> int:
        """Write readings durably (one transaction); returns how many were written."""
        rows = list(rows)
        if not rows:
            return 0
        with self._tx():
            self._db.executemany(Q_INSERT, rows)
        self.depth += len(rows)
        self.written_total += len(rows)
        if self.depth > self.max_readings:
            self.enforce_bound()
        return len(rows)

    def batch(
        self, after_id: int, limit: int
    ) -> list[tuple[int, str, int, float | None, str, str]]:
        """The oldest rows after `after_id`, in order."""
        return self._db.execute(Q_BATCH, (after_id, limit)).fetchall()

    def acked(self, first_id: int, last_id: int, readings: int) -> int:
        """Delete the rows of a message the broker acknowledged; returns rows deleted."""
        with self._tx():
            n = self._db.execute(Q_DELETE_RANGE, (first_id, last_id)).rowcount
            self.published_total += readings
            self._db.execute(Q_META_PUT, ("published_total", str(self.published_total)))
        self.depth -= n
        return n

    # ---- sent messages (end-to-end acknowledgement)

    def assign(self, seq: int, first_id: int, last_id: int) -> None:
        """Record data message `seq` (rows first_id..last_id) and make `seq` durable, before it
        is published: it is never reused, and a re-send repeats it."""
        with self._tx():
            self._db.execute(Q_SENT_ADD, (seq, first_id, last_id))
            self._db.execute(Q_META_PUT, ("seq", str(seq)))

    def sent_above(self, seq: int) -> list[tuple[int, int, int]]:
        """(seq, first_id, last_id) of every recorded message above `seq`, in order."""
        return self._db.execute(Q_SENT_ABOVE, (seq,)).fetchall()

    def sent_rows(self, seq: int) -> list[tuple[int, str, int, float | None, str, str]]:
        """The rows of sent message `seq` still in the outbox (fewer after an eviction)."""
        entry = self._db.execute(Q_SENT_ONE, (seq,)).fetchone()
        if entry is None:
            return []
        return self._db.execute(Q_ROWS_BETWEEN, entry).fetchall()

    def forget_sent(self, seq: int) -> None:
        """Drop a sent message whose rows are all gone (evicted)."""
        self._db.execute(Q_SENT_DELETE_ONE, (seq,))

    def sent_summary(self) -> tuple[int | None, int, int]:
        """(lowest seq waiting for confirmation or None, how many, highest row id assigned)."""
        low, n, last = self._db.execute(Q_SENT_MIN).fetchone()
        return (int(low) if low is not None else None, int(n), int(last or 0))

    def confirm(self, watermark: int) -> int:
        """The centre committed every message up to `watermark`: delete their rows and
        records (one transaction); returns how many readings went."""
        with self._tx():
            row = self._db.execute(Q_SENT_UPTO, (watermark,)).fetchone()
            n = 0
            if row and row[0] is not None:
                n = self._db.execute(Q_DELETE_UPTO, (row[0],)).rowcount
            self._db.execute(Q_SENT_DELETE_UPTO, (watermark,))
            self.confirmed_total += n
            self._db.execute(Q_META_PUT, ("confirmed_total", str(self.confirmed_total)))
            self._db.execute(Q_META_PUT, ("acked_seq", str(watermark)))
            self._db.execute(Q_META_PUT, ("published_total", str(self.published_total)))
        self.depth -= n
        return n

    def note_published(self, readings: int) -> None:
        """Count readings whose message the broker acknowledged (rows stay for the centre).
        Persisted with the next confirmation (no disk write per PUBACK)."""
        self.published_total += readings

    def enforce_bound(self, now: float | None = None) -> int:
        """Evict the oldest rows beyond the size and age bounds; count them; return how many."""
        evicted = 0
        with self._tx():
            over = self.depth - self.max_readings
            if over > 0:
                row = self._db.execute(Q_NTH_ID, (over - 1,)).fetchone()
                if row:
                    evicted += self._db.execute(Q_DELETE_UPTO, (row[0],)).rowcount
            cutoff = int(((now or time.time()) - self.max_age_s) * 1000)
            evicted += self._db.execute(Q_DELETE_OLDER, (cutoff,)).rowcount
            if evicted:
                self._db.execute(Q_SENT_TRIM)
                self.evicted_total += evicted
                self._db.execute(Q_META_PUT, ("evicted_total", str(self.evicted_total)))
        if evicted:
            self.depth -= evicted
            logger.warning(
                "outbox bound reached: evicted %d oldest readings (%d in total)",
                evicted,
                self.evicted_total,
            )
        return evicted

    def oldest_ts_ms(self) -> int | None:
        """Timestamp of the oldest waiting reading."""
        row = self._db.execute(Q_OLDEST).fetchone()
        return int(row[0]) if row else None

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
