"""The database side: one transaction per batch (binary COPY straight into readings, or on a
duplicate, COPY into a staging table and one merge statement), reconnecting when the database
goes away."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg

from ingest import queries
from ingest.batch import RETAINED_DATA, Rows
from oxy.database import connect

logger = logging.getLogger(__name__)

LoadMethod = Literal["copy", "unnest"]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one committed batch did."""

    staged: int
    inserted: int
    conflicts: int
    dead_letters: int
    quarantined: int
    commit_s: float
    # (site, gateway, epoch, watermark, high) per stream this batch advanced (sql/0075).
    acks: list[tuple[str, str, int, int, int]] = field(default_factory=list)
    # Contract v2 messages without a stored birth: (site, gateway, epoch, seq, schema).
    rebirths: list[tuple[str, str, int | None, int, int]] = field(default_factory=list)


class Writer:
    """Writes resolved batches; `conn` is (re)opened lazily so a database outage is survivable."""

    def __init__(self, url: str, method: LoadMethod = "copy") -> None:
        self.url = url
        self.method = method
        self._conn: psycopg.Connection[Any] | None = None
        self._safe = queries.MERGE_SAFE_POSTGRES
        self.storage = "unknown"

    @property
    def conn(self) -> psycopg.Connection[Any]:
        """The open connection, connecting (and preparing the session) if needed."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.close()
            conn = connect(self.url, connect_timeout=5)
            row = conn.execute(queries.STORAGE_KIND).fetchone()
            self.storage = str(row[0]) if row else "postgresql"
            # Continuous aggregates maintain the rollups on TimescaleDB; here the writer queues
            # the ranges that rollup_flush() rebuilds.
            if self.storage == "timescaledb":
                self._safe = queries.MERGE_SAFE_TIMESCALE
            conn.execute(queries.CREATE_STAGE)
            conn.commit()
            self._conn = conn
        return self._conn

    def close(self) -> None:
        """Close the connection (ignoring errors: it may already be gone)."""
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None

    def write(self, rows: Rows) -> WriteResult:
        """Write everything of one batch in one transaction and commit it."""
        conn = self.conn
        started = time.perf_counter()
        inserted = conflicts = 0
        acks: list[tuple[str, str, int, int, int]] = []
        try:
            with conn.cursor() as cur:
                if rows.readings:
                    inserted = self._insert(cur, rows)
                    if inserted < len(rows.readings):
                        cur.execute(queries.RECORD_CONFLICTS, (rows.topics,))
                        conflicts = max(cur.rowcount, 0)
                if rows.dead_letters:
                    once = [r for r in rows.dead_letters if r[4] == RETAINED_DATA]
                    other = [r for r in rows.dead_letters if r[4] != RETAINED_DATA]
                    if other:
                        cur.executemany(queries.INSERT_DEAD_LETTER, other)
                    for at, topic, payload, size, reason in once:
                        cur.execute(
                            queries.INSERT_DEAD_LETTER_ONCE,
                            {"at": at, "topic": topic, "payload": payload, "size": size,
                             "reason": reason},
                        )  # fmt: skip
                if rows.quarantine:
                    cur.executemany(queries.INSERT_QUARANTINE, rows.quarantine)
                if rows.touches:
                    cur.executemany(
                        queries.TOUCH_GATEWAY,
                        [(gw, at, seq) for gw, (at, seq) in sorted(rows.touches.items())],
                    )
                if rows.births:
                    cur.executemany(
                        queries.STORE_BIRTH, [(g, sc, js, at, at) for g, sc, js, at in rows.births]
                    )
                for state in rows.states:  # in arrival order: births and deaths must not swap
                    cur.execute(queries.APPLY_STATE, state)
                if rows.statuses:
                    cur.executemany(queries.APPLY_STATUS, rows.statuses)
                if rows.history:
                    cur.executemany(queries.INSERT_HISTORY, rows.history)
                if rows.acks:  # last: it locks the streams' rows until the commit just below
                    cur.execute(queries.ACK_ADVANCE, rows.ack_arrays())
                    acks = [(r[0], r[1], int(r[2]), int(r[3]), int(r[4])) for r in cur]
            conn.commit()
        except BaseException:
            self.rollback()
            raise
        return WriteResult(
            staged=len(rows.readings),
            inserted=inserted,
            conflicts=conflicts,
            dead_letters=len(rows.dead_letters),
            quarantined=len(rows.quarantine),
            commit_s=time.perf_counter() - started,
            acks=acks,
            rebirths=list(rows.rebirths),
        )

    def _insert(self, cur: psycopg.Cursor[Any], rows: Rows) -> int:
        """Store the readings; return how many were new (the rest were already stored)."""
        cur.execute("SAVEPOINT fast_path")
        try:
            if self.method == "copy":
                with cur.copy(queries.COPY_READINGS) as copy:
                    copy.set_types(list(queries.READING_COLUMNS))
                    write = copy.write_row
                    for r in rows.readings:
                        write(r)
            else:
                columns = zip(*rows.readings, strict=True)
                cur.execute(queries.UNNEST_READINGS, [list(c) for c in columns])
        except psycopg.errors.UniqueViolation:
            cur.execute("ROLLBACK TO SAVEPOINT fast_path")
            self._stage(cur, rows)
            cur.execute(self._safe)
            got = cur.fetchone()
            return int(got[0]) if got else 0
        latest = list(zip(*rows.latest.values(), strict=True))
        cur.execute(queries.UPSERT_LATEST, [list(column) for column in latest], binary=True)
        if self.storage != "timescaledb":
            cur.execute(queries.QUEUE_DIRTY, rows.dirty(), binary=True)
        return len(rows.readings)

    def _stage(self, cur: psycopg.Cursor[Any], rows: Rows) -> None:
        if self.method == "copy":
            with cur.copy(queries.COPY_STAGE) as copy:
                copy.set_types(list(queries.STAGE_COLUMNS))
                write = copy.write_row
                for r in rows.staged():
                    write(r)
        else:
            cols = list(zip(*rows.staged(), strict=True))
            cur.execute(queries.UNNEST_STAGE, [list(c) for c in cols])

    def rollback(self) -> None:
        """Roll back the open transaction; a broken connection is dropped instead."""
        if self._conn is None:
            return
        try:
            self._conn.rollback()
        except psycopg.Error:
            self.close()
