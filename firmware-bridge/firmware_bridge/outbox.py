"""The bridge's end-to-end acknowledgement (docs/bridge.md, docs/ingest.md): every data message
the bridge builds is written to a durable SQLite outbox before it leaves, and stays there until
ingest's watermark for its stream covers it, not merely until the platform broker PUBACKs it.

One outbox file, one `epoch` (its creation time in ms), one stream per mapped gateway
`(site, gateway)` with its own `seq` from 1. A message is stored encoded, so a re-send repeats
the same `seq` with the same readings (the centre's contiguous watermark can always close a
gap). The design is the gateway's (gateway/outbox.py, gateway/service.py), reduced to what the
bridge needs: the bridge builds whole messages from foreign messages, so the outbox keeps
messages rather than rows. The bound (`outbox_max_messages`) evicts the oldest messages and
counts their readings in `evicted_total`; the next message's `floor` lets the watermark pass
them.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from oxy.contract import (
    QUALITY_CODE,
    V2_VERSION,
    ContractError,
    Reading,
    SensorDecl,
    TopicKind,
    decode_ack,
    encode_data,
    encode_v2,
    ms_of,
    parse_ack_topic,
    schema_id,
    topic,
)

logger = logging.getLogger(__name__)

ACK_GRACE_S = 3.0  # a gap below the centre's `high` older than this is re-sent at once
RESEND_AFTER_CONNECT_S = 1.0  # lets the retained watermark arrive before re-sending
WATCH_S = 0.5  # how often the sender looks at its timers
WINDOW = 100  # data messages handed to paho and not yet PUBACKed, at most

Key = tuple[str, str, int]  # (site, gateway, seq)


@dataclass(frozen=True, slots=True)
class V2Schema:
    """Contract v2 for one mapped gateway: the birth's declarations, their schema number and
    each sensor's (index, unit); deflate per message."""

    decls: list[SensorDecl]
    schema: int
    index: dict[str, tuple[int, str]]
    deflate: bool = False

    @classmethod
    def of(cls, decls: list[SensorDecl], deflate: bool = False) -> V2Schema:
        """The schema of a declaration list."""
        index = {d.code: (i, d.unit) for i, d in enumerate(decls)}
        return cls(decls, schema_id(decls), index, deflate)

    def items(self, readings: list[Reading]) -> list[tuple[int, int, float | None, int]] | None:
        """(index, ts_ms, value, quality code) of every reading, or None when one names a
        sensor or unit the birth does not declare (then the message goes as v1)."""
        out = []
        for r in readings:
            decl = self.index.get(r.sensor)
            if decl is None or decl[1] != r.unit:
                return None
            out.append((decl[0], ms_of(r.ts), r.value, QUALITY_CODE[r.q]))
        return out


def data_topic(key: Key, payload: bytes) -> str:
    """The topic of a stored message: v2 (first byte 2) on `data2`, v1 (JSON) on `data`."""
    v2 = payload[:1] == bytes((V2_VERSION,))
    return topic(key[0], key[1], TopicKind.DATA_V2 if v2 else TopicKind.DATA)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS streams (
    site TEXT NOT NULL,
    gateway TEXT NOT NULL,
    seq INTEGER NOT NULL,
    acked INTEGER NOT NULL,
    PRIMARY KEY (site, gateway)
);
CREATE TABLE IF NOT EXISTS msgs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site TEXT NOT NULL,
    gateway TEXT NOT NULL,
    seq INTEGER NOT NULL,
    readings INTEGER NOT NULL,
    payload BLOB NOT NULL,
    UNIQUE (site, gateway, seq)
);
"""


class BridgeOutbox:
    """Data messages per stream until confirmed. Thread-safe (one lock, one connection);
    `path=None` keeps it in memory (survives broker restarts, not a bridge restart)."""

    def __init__(self, path: Path | None, max_messages: int = 1_000_000) -> None:
        self.path = path
        self.max_messages = max_messages
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(path) if path is not None else ":memory:",
            isolation_level=None,
            check_same_thread=False,
        )
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a message stored before the foreign one is acknowledged survives power loss.
            self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self.depth = int(self._db.execute("SELECT count(*) FROM msgs").fetchone()[0])
        self.evicted_total = int(self._meta("evicted_total", "0"))
        self.confirmed_total = int(self._meta("confirmed_total", "0"))
        epoch = self._meta("epoch", "")
        if not epoch:  # a new file: a new stream for every gateway
            epoch = str(int(time.time() * 1000))
            self._db.execute("INSERT INTO meta VALUES ('epoch', ?)", (epoch,))
        self.epoch = int(epoch)
        self._streams: dict[tuple[str, str], list[int]] = {
            (site, gw): [int(seq), int(acked)]
            for site, gw, seq, acked in self._db.execute(
                "SELECT site, gateway, seq, acked FROM streams"
            )
        }

    def _meta(self, key: str, default: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def _put(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    def store(
        self,
        site: str,
        gateway: str,
        sent_at: datetime,
        readings: list[Reading],
        v2: V2Schema | None = None,
    ) -> list[tuple[Key, bytes, int]]:
        """Encode `readings` into data messages of the stream (split by count and size), each
        with the next seq, and write them durably in one transaction before anything leaves.
        With `v2`, contract v2 messages (v1 when a reading is not declared). Returns
        ((site, gateway, seq), payload, readings) per message."""
        out: list[tuple[Key, bytes, int]] = []
        items = v2.items(readings) if v2 is not None else None
        with self._lock:
            seq, acked = self._streams.get((site, gateway), [0, 0])
            low = self._db.execute(
                "SELECT min(seq) FROM msgs WHERE site = ? AND gateway = ?", (site, gateway)
            ).fetchone()[0]
            self._db.execute("BEGIN IMMEDIATE")
            try:
                i = 0
                while i < len(readings):
                    seq += 1
                    floor = int(low) if low is not None else seq
                    if v2 is not None and items is not None:
                        body, fits = encode_v2(
                            v2.decls,
                            v2.schema,
                            seq,
                            ms_of(sent_at),
                            items[i:],
                            epoch=self.epoch,
                            floor=floor,
                            deflate=v2.deflate,
                        )
                    else:
                        body, fits = encode_data(
                            gateway, seq, sent_at, readings[i:], epoch=self.epoch, floor=floor
                        )
                    self._db.execute(
                        "INSERT INTO msgs (site, gateway, seq, readings, payload)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (site, gateway, seq, fits, body),
                    )
                    out.append(((site, gateway, seq), body, fits))
                    i += fits
                self._db.execute(
                    "INSERT INTO streams VALUES (?, ?, ?, ?) ON CONFLICT (site, gateway)"
                    " DO UPDATE SET seq = excluded.seq",
                    (site, gateway, seq, acked),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._streams[(site, gateway)] = [seq, acked]
            self.depth += len(out)
            if self.depth > self.max_messages:
                self._evict()
        return out

    def _evict(self) -> None:
        over = self.depth - self.max_messages
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute(
                "SELECT count(*), coalesce(sum(readings), 0) FROM"
                " (SELECT readings FROM msgs ORDER BY id LIMIT ?)",
                (over,),
            ).fetchone()
            self._db.execute(
                "DELETE FROM msgs WHERE id IN (SELECT id FROM msgs ORDER BY id LIMIT ?)", (over,)
            )
            self.evicted_total += int(row[1])
            self._put("evicted_total", self.evicted_total)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self.depth -= int(row[0])
        logger.warning(
            "bridge outbox bound reached: evicted %d oldest messages (%d readings in total)",
            int(row[0]),
            self.evicted_total,
        )

    def confirm(self, site: str, gateway: str, watermark: int) -> int:
        """The centre committed the stream up to `watermark`: delete those messages; returns
        how many went. Watermarks not above the one known are ignored (several workers)."""
        with self._lock:
            state = self._streams.get((site, gateway))
            if state is None or watermark <= state[1] or watermark > state[0]:
                return 0
            self._db.execute("BEGIN IMMEDIATE")
            try:
                n, readings = self._db.execute(
                    "SELECT count(*), coalesce(sum(readings), 0) FROM msgs"
                    " WHERE site = ? AND gateway = ? AND seq <= ?",
                    (site, gateway, watermark),
                ).fetchone()
                self._db.execute(
                    "DELETE FROM msgs WHERE site = ? AND gateway = ? AND seq <= ?",
                    (site, gateway, watermark),
                )
                self._db.execute(
                    "UPDATE streams SET acked = ? WHERE site = ? AND gateway = ?",
                    (watermark, site, gateway),
                )
                self.confirmed_total += int(readings)
                self._put("confirmed_total", self.confirmed_total)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            state[1] = watermark
            self.depth -= int(n)
            return int(n)

    def stream(self, site: str, gateway: str) -> tuple[int, int]:
        """(last seq stored, watermark) of a stream; (0, 0) when it has none yet."""
        with self._lock:
            seq, acked = self._streams.get((site, gateway), [0, 0])
            return seq, acked

    def unconfirmed(self, site: str | None = None, gateway: str | None = None) -> list[Key]:
        """Keys of the messages waiting for the centre, oldest first (of one stream if given)."""
        with self._lock:
            if site is None:
                rows = self._db.execute("SELECT site, gateway, seq FROM msgs ORDER BY id")
            else:
                rows = self._db.execute(
                    "SELECT site, gateway, seq FROM msgs WHERE site = ? AND gateway = ?"
                    " ORDER BY seq",
                    (site, gateway),
                )
            return [(str(s), str(g), int(q)) for s, g, q in rows.fetchall()]

    def payload(self, key: Key) -> tuple[bytes, int] | None:
        """The stored message and its number of readings, or None once confirmed/evicted."""
        with self._lock:
            row = self._db.execute(
                "SELECT payload, readings FROM msgs WHERE site = ? AND gateway = ? AND seq = ?",
                key,
            ).fetchone()
        return (bytes(row[0]), int(row[1])) if row else None


Publish = Callable[[str, bytes, Callable[[bool, str], None]], None]


class AckSender:
    """Sends the outbox's messages onward and keeps them until confirmed: fresh messages and
    re-sends share a window of `WINDOW` messages waiting for a PUBACK; re-sends go first.

    Re-sends (same seq, same bytes): 1 s after every (re)connect, what was sent before it and
    is not confirmed (the broker may have lost it although it PUBACKed it; after a bridge
    restart, everything in the outbox); on a gap (an ack whose `high` is above its watermark)
    what was sent more than 3 s ago below `high`; on the timeout (nothing confirmed for
    `timeout_s`, doubling up to `timeout_max_s` while nothing progresses) everything.
    """

    def __init__(
        self,
        outbox: BridgeOutbox,
        publish: Publish,
        connected: Callable[[], bool],
        *,
        timeout_s: float = 30.0,
        timeout_max_s: float = 600.0,
        on_published: Callable[[int], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self._publish = publish
        self._connected = connected
        self._timeout_s = timeout_s
        self._timeout_max_s = timeout_max_s
        self._on_published = on_published
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._fresh: list[Key] = []
        self._first_ack: dict[Key, Callable[[bool, str], None]] = {}
        self._resend: list[Key] = []
        self._flying: set[Key] = set()
        self._sent_at: dict[Key, float] = {}
        # Per stream, the `high` of the last ack that showed a gap: what lies below it is
        # re-sent once its grace has passed, even if no further ack comes (a quiet source).
        self._gaps: dict[tuple[str, str], int] = {}
        self._resend_at: float | None = None
        self._connected_at = 0.0
        self._wait = timeout_s
        self._progress_at = time.monotonic()
        self._stopped = False
        self._bad_ack_logged = False
        self.resent_total = 0
        self._thread = threading.Thread(target=self._run, name="bridge-ack", daemon=True)

    def start(self) -> None:
        """Start the sender thread; whatever the outbox holds from before is re-sent on the
        first connect."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the sender thread (stored messages stay for the next start)."""
        self._stopped = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def submit(
        self, keys: list[Key], first_ack: Callable[[Key], Callable[[bool, str], None]] | None = None
    ) -> None:
        """Fresh messages just stored: send them when the window has room. `first_ack(key)`
        gives a callback for the first send's PUBACK (used when the outbox is not durable)."""
        with self._lock:
            self._fresh.extend(keys)
            if first_ack is not None:
                for k in keys:
                    self._first_ack[k] = first_ack(k)
        self._wake.set()

    def connected(self) -> None:
        """The platform link is up (again): re-send the unconfirmed a second later."""
        with self._lock:
            self._connected_at = time.monotonic()
            self._resend_at = self._connected_at + RESEND_AFTER_CONNECT_S
        self._wake.set()

    def ack(self, topic_name: str, payload: bytes) -> None:
        """A watermark from ingest: trim what it committed, re-send a gap it shows."""
        try:
            site, gateway = parse_ack_topic(topic_name)
            msg = decode_ack(topic_name, payload)
        except ContractError as exc:
            if not self._bad_ack_logged:
                logger.warning("bridge: unreadable ack on %s ignored: %s", topic_name, exc)
                self._bad_ack_logged = True
            return
        if msg.epoch != self.outbox.epoch:
            return  # a watermark of an earlier outbox file, or of a real gateway
        last, acked = self.outbox.stream(site, gateway)
        if msg.seq > last:
            if not self._bad_ack_logged:
                logger.warning(
                    "bridge: ack %d of %s/%s beyond the last seq %d ignored",
                    msg.seq, site, gateway, last,
                )  # fmt: skip
                self._bad_ack_logged = True
            return
        now = time.monotonic()
        if msg.seq > acked:
            self.outbox.confirm(site, gateway, msg.seq)
            with self._lock:
                for k in [k for k in self._sent_at if k[:2] == (site, gateway) and k[2] <= msg.seq]:
                    del self._sent_at[k]
                self._wait = self._timeout_s
                self._progress_at = now
        with self._lock:
            if msg.high > msg.seq:
                self._gaps[(site, gateway)] = max(msg.high, self._gaps.get((site, gateway), 0))
            else:
                self._gaps.pop((site, gateway), None)
        if msg.high > msg.seq:
            self._resend_gap(site, gateway, now)

    def rebirth(self, site: str, gateway: str, seq: int) -> int:
        """Ingest could not resolve message `seq` of a stream (no birth for its schema); the
        birth has just been published again: re-send every unconfirmed message of the stream
        from `seq` on (after the birth, on the same connection). Returns how many."""
        now = time.monotonic()
        keys = [k for k in self.outbox.unconfirmed(site, gateway) if k[2] >= seq]
        with self._lock:
            fresh = set(self._fresh)
            todo = [k for k in keys if k not in self._flying and k not in fresh]
            for k in todo:
                self._sent_at[k] = now
            self._queue(todo)
        if todo:
            self._wake.set()
        return len(todo)

    def _resend_gap(self, site: str, gateway: str, now: float) -> None:
        """Re-send what lies below the stream's known `high` and left more than the grace ago:
        lost on the way (a broker restart while ingest had no subscription)."""
        with self._lock:
            high = self._gaps.get((site, gateway), 0)
        gap = [k for k in self.outbox.unconfirmed(site, gateway) if k[2] < high]
        if not gap:
            with self._lock:
                self._gaps.pop((site, gateway), None)
            return
        with self._lock:
            todo = [
                k
                for k in gap
                if k not in self._flying
                and k in self._sent_at
                and now - self._sent_at[k] > ACK_GRACE_S
            ]
            for k in todo:
                self._sent_at[k] = now  # not again before the grace has passed
            self._queue(todo)
        if todo:
            self._wake.set()

    def _queue(self, keys: list[Key]) -> None:
        """Add re-sends (lock held)."""
        queued = set(self._resend)
        self._resend.extend(k for k in keys if k not in queued)

    def _done(self, key: Key, fresh: bool, readings: int) -> Callable[[bool, str], None]:
        def done(ok: bool, reason: str) -> None:
            with self._lock:
                self._flying.discard(key)
                first = self._first_ack.pop(key, None) if fresh else None
                if not ok:
                    # Stays in the outbox; the timeout sends it again (an ACL being fixed).
                    logger.error("platform broker refused data %s: %s; keeping it", key, reason)
            if ok and fresh and self._on_published is not None:
                self._on_published(readings)
            if first is not None:
                first(ok, reason)
            self._wake.set()

        return done

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(WATCH_S)
            self._wake.clear()
            if self._stopped:
                return
            try:
                self._timers()
                self._pump()
            except Exception:  # the sender must survive anything (a full disk, a bug)
                logger.exception("bridge: end-to-end sender failed; retrying")
                time.sleep(1.0)

    def _timers(self) -> None:
        now = time.monotonic()
        if not self._connected():
            return
        with self._lock:
            gaps = list(self._gaps)
        for site, gateway in gaps:
            self._resend_gap(site, gateway, now)
        with self._lock:
            after_connect = self._resend_at is not None and now >= self._resend_at
            if after_connect:
                self._resend_at = None
            since = self._connected_at
        if after_connect:
            # Sent before this connection (or by an earlier process) and not confirmed.
            keys = self.outbox.unconfirmed()
            with self._lock:
                fresh = set(self._fresh)
                todo = [
                    k
                    for k in keys
                    if k not in self._flying
                    and k not in fresh
                    and self._sent_at.get(k, 0.0) < since
                ]
                for k in todo:
                    self._sent_at[k] = now
                self._queue(todo)
            if todo:
                logger.info("bridge re-sends %d unconfirmed data messages", len(todo))
        with self._lock:
            waiting = bool(self._sent_at)
            late = now - self._progress_at >= self._wait
        if not waiting:
            with self._lock:
                self._progress_at = now
            return
        if late:
            keys = self.outbox.unconfirmed()
            with self._lock:
                waiting_now = set(keys)  # forget what was evicted meanwhile
                for k in [k for k in self._sent_at if k not in waiting_now]:
                    del self._sent_at[k]
                fresh = set(self._fresh)
                todo = [k for k in keys if k not in self._flying and k not in fresh]
                for k in todo:
                    self._sent_at[k] = now
                self._queue(todo)
                wait = self._wait
                self._progress_at = now
                self._wait = min(wait * 2, self._timeout_max_s)
            if todo:
                logger.info(
                    "bridge: no acknowledgement for %.0f s; re-sending %d messages",
                    wait,
                    len(todo),
                )

    def _pump(self) -> None:
        while self._connected() and not self._stopped:
            with self._lock:
                if len(self._flying) >= WINDOW:
                    return
                if self._resend:
                    key, fresh = self._resend.pop(0), False
                    if key in self._flying:
                        continue
                elif self._fresh:
                    key, fresh = self._fresh.pop(0), True
                else:
                    return
            stored = self.outbox.payload(key)
            if stored is None:  # confirmed or evicted meanwhile
                with self._lock:
                    self._sent_at.pop(key, None)
                    first = self._first_ack.pop(key, None)
                if first is not None:  # evicted before it ever left: its source is recorded
                    first(False, "evicted from the bridge outbox before it was sent")
                continue
            body, readings = stored
            with self._lock:
                self._flying.add(key)
                self._sent_at[key] = time.monotonic()
                if not fresh:
                    self.resent_total += 1
            # Not under our lock: paho calls the PUBACK callback with its own lock held.
            self._publish(data_topic(key, body), body, self._done(key, fresh, readings))

    def status(self) -> dict[str, int]:
        """Counters for /healthz."""
        with self._lock:
            flying, resent = len(self._flying), self.resent_total
        return {
            "epoch": self.outbox.epoch,
            "unconfirmed_messages": self.outbox.depth,
            "confirmed_total": self.outbox.confirmed_total,
            "evicted_total": self.outbox.evicted_total,
            "resent_total": resent,
            "in_flight": flying,
        }
