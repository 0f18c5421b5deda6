"""Where the bridge records what it cannot bridge: dead letters (bad payloads, with the reason)
and quarantine (devices the mapping does not know). Nothing is silently dropped.

Preferred: the platform database's `dead_letters` and `quarantine` tables (sql/0003_ingest.sql),
so engineers see the bridge's rejects beside ingest's. Without a database (a bridge at a site),
a local SQLite file with the same columns.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

from firmware_bridge.model import Unknown

logger = logging.getLogger(__name__)

MAX_KEPT_BYTES: Final = 65536  # the first bytes of a payload; its full size is recorded too

INSERT_DEAD_LETTER: Final = """
INSERT INTO dead_letters (topic, payload, payload_size, reason) VALUES (%s, %s, %s, %s)
"""
INSERT_QUARANTINE: Final = """
INSERT INTO quarantine (topic, site, gateway, sensor, ts, reason, payload)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
"""

# Aggregated quarantine (Unknown.aggregate): one row per (source, foreign device, reason) whose
# payload is {"count", "first_seen", "last_seen", "first", "last"}.
UPDATE_QUARANTINE_SEEN: Final = """
UPDATE quarantine
SET payload = payload
    || jsonb_build_object('count', (payload->>'count')::bigint + 1, 'last_seen', %s::text,
                          'last', %s::jsonb)
WHERE gateway = %s AND sensor = %s AND reason = %s AND payload ? 'count'
"""
INSERT_QUARANTINE_SEEN: Final = """
INSERT INTO quarantine (topic, site, gateway, sensor, ts, reason, payload)
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""

_SQLITE_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    topic TEXT NOT NULL, payload BLOB NOT NULL, payload_size INTEGER NOT NULL, reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    topic TEXT NOT NULL, site TEXT NOT NULL, gateway TEXT NOT NULL, sensor TEXT, ts TEXT,
    reason TEXT NOT NULL, payload TEXT,
    UNIQUE (gateway, sensor, ts)
);
"""
_SQLITE_DEAD: Final = (
    "INSERT INTO dead_letters (topic, payload, payload_size, reason) VALUES (?, ?, ?, ?)"
)
_SQLITE_SEEN: Final = """
UPDATE quarantine
SET payload = json_set(payload, '$.count', json_extract(payload, '$.count') + 1,
                       '$.last_seen', ?, '$.last', json(?))
WHERE gateway = ? AND sensor = ? AND reason = ? AND json_extract(payload, '$.count') IS NOT NULL
"""
_SQLITE_QUARANTINE: Final = """
INSERT OR IGNORE INTO quarantine (topic, site, gateway, sensor, ts, reason, payload)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""


class RejectSink(Protocol):
    """Durable record of rejects; a call returns only once the record is committed."""

    def dead_letter(self, topic: str, payload: bytes, reason: str) -> None:
        """Record a payload that cannot be bridged, with the reason."""

    def quarantine(self, topic: str, source: str, item: Unknown) -> None:
        """Record a message from an unmapped device (site = source name)."""

    def close(self) -> None:
        """Release the connection."""


def _quarantine_gateway(source: str) -> str:
    # The foreign device has no platform gateway yet: quarantine rows are keyed by the source.
    return f"bridge:{source}"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _first_seen(item: Unknown, now: str) -> dict[str, object]:
    return {"count": 1, "first_seen": now, "last_seen": now, "first": item.detail,
            "last": item.detail}  # fmt: skip


class PostgresRejects:
    """Rejects in the platform database (autocommit: each record is durable when we return)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._conn: Any = None

    def _execute(self, query: str, params: tuple[object, ...]) -> int:
        import psycopg

        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=5)
                    return int(self._conn.execute(query, params).rowcount)
                except psycopg.OperationalError:
                    # A dropped connection is retried once on a fresh one; then the caller
                    # leaves the message unacknowledged so the broker redelivers it later.
                    self._conn = None
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

    def dead_letter(self, topic: str, payload: bytes, reason: str) -> None:
        """Insert into dead_letters."""
        self._execute(INSERT_DEAD_LETTER, (topic, payload[:MAX_KEPT_BYTES], len(payload), reason))

    def quarantine(self, topic: str, source: str, item: Unknown) -> None:
        """Insert into quarantine (a redelivered message is recorded once)."""
        from psycopg.types.json import Jsonb

        if item.aggregate:
            now = _now()
            last = json.dumps(item.detail, default=str)
            key = (_quarantine_gateway(source), item.device, item.reason)
            if self._execute(UPDATE_QUARANTINE_SEEN, (now, last, *key)) == 0:
                self._execute(
                    INSERT_QUARANTINE_SEEN,
                    (topic, source, key[0], item.device, item.ts, item.reason,
                     Jsonb(_first_seen(item, now))),
                )  # fmt: skip
            return
        self._execute(
            INSERT_QUARANTINE,
            (
                topic,
                source,
                _quarantine_gateway(source),
                item.device,
                item.ts,
                item.reason,
                Jsonb(item.detail),
            ),
        )

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class SqliteRejects:
    """Rejects in a local SQLite file (a site bridge without the platform database)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SQLITE_SCHEMA)

    def dead_letter(self, topic: str, payload: bytes, reason: str) -> None:
        """Insert into dead_letters."""
        with self._lock:
            self._db.execute(_SQLITE_DEAD, (topic, payload[:MAX_KEPT_BYTES], len(payload), reason))

    def quarantine(self, topic: str, source: str, item: Unknown) -> None:
        """Insert into quarantine."""
        ts = item.ts.isoformat() if item.ts else None
        detail = json.dumps(item.detail, default=str)
        with self._lock:
            if item.aggregate:
                now = _now()
                key = (_quarantine_gateway(source), item.device, item.reason)
                if self._db.execute(_SQLITE_SEEN, (now, detail, *key)).rowcount == 0:
                    first = json.dumps(_first_seen(item, now), default=str)
                    self._db.execute(
                        _SQLITE_QUARANTINE,
                        (topic, source, key[0], item.device, ts, item.reason, first),
                    )
                return
            self._db.execute(
                _SQLITE_QUARANTINE,
                (topic, source, _quarantine_gateway(source), item.device, ts, item.reason, detail),
            )

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()


def open_rejects(database_url: str | None, sqlite_path: Path | None) -> RejectSink:
    """The configured sink: the platform database when given, else the local SQLite file."""
    if database_url:
        return PostgresRejects(database_url)
    if sqlite_path is None:
        raise ValueError("rejects need a database_url or a sqlite_path")
    return SqliteRejects(sqlite_path)
