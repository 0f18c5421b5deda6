"""The durable outbox: SQLite in WAL mode, written before publishing, deleted only after PUBACK.

Rows keep insertion order (AUTOINCREMENT ids are never reused, so a replay cursor stays valid even
when the table empties). The bound (row count and age) evicts the oldest rows first and counts
every evicted row in `evicted_total`, which the status message reports: never a silent drop.
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
"""

Q_INSERT = "INSERT INTO outbox (sensor, ts_ms, value, unit, q) VALUES (?, ?, ?, ?, ?)"
Q_BATCH = "SELECT id, sensor, ts_ms, value, unit, q FROM outbox WHERE id > ? ORDER BY id LIMIT ?"
Q_DELETE_RANGE = "DELETE FROM outbox WHERE id BETWEEN ? AND ?"
Q_COUNT = "SELECT count(*) FROM outbox"
Q_OLDEST = "SELECT ts_ms FROM outbox ORDER BY id LIMIT 1"
Q_NTH_ID = "SELECT id FROM outbox ORDER BY id LIMIT 1 OFFSET ?"
Q_DELETE_UPTO = "DELETE FROM outbox WHERE id <= ?"
Q_DELETE_OLDER = "DELETE FROM outbox WHERE ts_ms < ?"
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
