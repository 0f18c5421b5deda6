"""The ingest service: receive → decode → batch → resolve → write → commit → ack.

Two threads besides paho's network loop: this one decodes messages (pure CPU) and cuts batches
by size and time; the writer thread resolves a batch against the registry, writes it in one
transaction and only then acknowledges its messages. While the database is down the writer
retries the same batch and acks nothing, so the broker keeps every later message (its
in-flight window fills and it queues the rest in the persistent session).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import os
import queue
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg

from ingest import queries, rollups
from ingest.batch import RETAINED_DATA, Batch, Rows, decode_inbound
from ingest.consumer import IngestError, MqttSource, Protocol
from ingest.metrics import Metrics
from ingest.registry import BirthCache, SensorCache
from ingest.resolve import ack_handled, resolve
from ingest.writer import LoadMethod, Writer, WriteResult
from oxy.broker import MAX_PACKET_BYTES, OVERSIZE_LOG_TEXT
from oxy.contract import (
    TS_FLOOR_DEFAULT,
    AckMessage,
    ContractError,
    Domain,
    RebirthRequest,
    StateMessage,
    StatusMessage,
    V2Data,
    ack_topic,
    encode_ack,
    encode_rebirth,
    rebirth_topic,
)
from oxy.database import connect

logger = logging.getLogger(__name__)

_OVERSIZE_CLIENT = re.compile(r"Client (\S+) " + re.escape(OVERSIZE_LOG_TEXT))
REBIRTH_EVERY_S = 5.0  # a gateway is asked for the same birth at most this often


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """Everything one ingest worker needs (built from Settings by the CLI)."""

    mqtt_url: str
    database_url: str
    client_id: str = "oxy-ingest-1"
    group: str = "oxy-ingest"
    protocol: Protocol | Literal["auto"] = "auto"
    batch_size: int = 20000  # readings
    batch_ms: int = 200
    max_unacked: int = 1000  # messages in flight from the broker (MQTT v5 Receive Maximum)
    max_future_s: int = 300
    ts_floor: datetime = TS_FLOOR_DEFAULT  # readings before it are dead-lettered
    # A message delivered this many times without ever being committed (each delivery killed
    # the worker that held it) is dead-lettered as a poison pill on its next delivery.
    poison_after: int = 3
    # The CLI process exits at once when the writer thread dies (a supervisor restarts it and
    # the broker redelivers what was not acked); in a test thread the service only stops.
    exit_on_writer_death: bool = False
    metrics_port: int = 0
    load_method: LoadMethod = "copy"
    retention_every_s: float = 3600.0
    rollup_every_s: float = 5.0
    # `oxy ingest drain`: take over a retired worker's session (client_id), store what the
    # broker queued for it, leave the group and end the session once nothing has arrived for
    # drain_idle_s and everything received is committed and acked.
    drain: bool = False
    drain_idle_s: float = 5.0


def tune_gc() -> None:
    """Set the garbage collector for a process that holds whole batches of decoded messages.

    With CPython's default thresholds (a collection every 700 container allocations) every
    young collection walks the thousands of readings a batch keeps alive, so decoding cost four
    times what it costs alone (measured: 3.4 vs 0.9 us per reading). Readings form no reference
    cycles; collections every 100,000 allocations, with the start-up objects frozen out of them,
    bring decoding back to its own cost. Call it once, in the process that runs the service.
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)


def _isolate_redeliveries(batch: Batch) -> list[Batch]:
    """The batch, with every redelivered message (DUP) in a transaction of its own first: if one
    of them kills the worker again, only it is counted towards a poison-pill verdict, and the
    innocent messages that shared its batch are committed on their own."""
    suspects = [d for d in batch.items if d.inbound.dup]
    if not suspects or len(batch.items) == 1:
        return [batch]
    rest = Batch(batch_id=batch.batch_id, opened=batch.opened)
    for d in batch.items:
        if not d.inbound.dup:
            rest.add(d)
    parts = []
    for d in suspects:
        one = Batch(batch_id=batch.batch_id, opened=batch.opened)
        one.add(d)
        parts.append(one)
    return [*parts, rest] if rest.items else parts


def _message_key(topic: str, payload: bytes) -> bytes:
    """What identifies one message across deliveries (ingest_attempts.key)."""
    return hashlib.blake2b(topic.encode() + b"\0" + payload, digest_size=16).digest()


def v2_sent_at(msg: V2Data | None) -> datetime:
    """When a v2 data message was sent (its sent_ms)."""
    assert msg is not None
    return datetime.fromtimestamp(msg.sent_ms / 1000, UTC)


def _kind(message: object) -> str:
    if isinstance(message, StateMessage):
        return "state"
    if isinstance(message, StatusMessage):
        return "status"
    return "invalid" if message is None else "data"


class IngestService:
    """One ingest worker. `run()` blocks until `stop()` (from a signal handler or a thread)."""

    def __init__(self, cfg: IngestConfig, metrics: Metrics | None = None) -> None:
        self.cfg = cfg
        self.metrics = metrics or Metrics()
        self.cache = SensorCache()
        self.births = BirthCache()  # contract v2 declarations (gateway_births, sql/0135)
        self.writer = Writer(cfg.database_url, cfg.load_method)
        self.source = MqttSource(
            cfg.mqtt_url,
            cfg.client_id,
            cfg.group,
            protocol=cfg.protocol,
            max_unacked=cfg.max_unacked,
            on_state=lambda up: self.metrics.mqtt_connected.set(1 if up else 0),
            drain=cfg.drain,
            on_broker_log=None if cfg.drain else self._broker_log,
        )
        if cfg.drain and cfg.protocol == "3.1.1":
            raise IngestError(
                "draining a retired session needs an MQTT v5 broker (a 3.1.1 broker has one "
                "worker and no shared group to leave)"
            )
        self._stop = threading.Event()
        self._batches: queue.Queue[Batch | None] = queue.Queue(maxsize=2)
        self._writer_thread = threading.Thread(target=self._write_loop, name="ingest-writer")
        self._rollup_thread = threading.Thread(target=self._rollup_loop, name="ingest-rollups")
        self._writer_done = threading.Event()
        self._db_ok = True
        self._unacked = 0
        self._unacked_lock = threading.Lock()
        self.committed_batches = 0
        self.failure: Exception | None = None
        self.drained = False  # drain mode: the session's queue was stored and acked
        self._rebirth_asked: dict[tuple[str, str, int], float] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the service to finish: the open batch is committed (if the database is up)."""
        self._stop.set()

    def run(self) -> None:
        """Consume until stopped."""
        if self.cfg.metrics_port:
            self.metrics.serve(self.cfg.metrics_port)
        self._writer_thread.start()
        self._rollup_thread.start()
        self.source.start(self._stop)
        logger.info(
            "ingest running: client id %s, filter %s, batches of %d readings / %d ms",
            self.cfg.client_id,
            self.source.topic_filter,
            self.cfg.batch_size,
            self.cfg.batch_ms,
        )
        try:
            self._decode_loop()
        finally:
            self._hand_off(None, force=True)
            self._writer_thread.join()
            self._writer_done.set()
            self._rollup_thread.join()
            with self._unacked_lock:
                nothing_held = self._unacked == 0
            if self.drained and nothing_held and self.failure is None:
                self.source.end_session()
                logger.info("drained session %s ended", self.cfg.client_id)
            else:
                self.source.stop()
            self.writer.close()
            logger.info("ingest stopped")
        if self.failure is not None:
            raise IngestError(f"ingest writer failed: {self.failure!r}") from self.failure

    # -- decoding and batching (this thread) -------------------------------------------------

    def _decode_loop(self) -> None:
        inbox = self.source.inbox
        batch = Batch()
        deadline = float("inf")
        flush_messages = max(1, self.cfg.max_unacked // 2)
        window = self.cfg.batch_ms / 1000.0
        last_arrival = time.monotonic()
        while not self._stop.is_set():
            timeout = min(0.25, max(0.0, deadline - time.monotonic()))
            try:
                item = inbox.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is not None:
                last_arrival = item.monotonic
                if not batch.items:
                    deadline = item.monotonic + window
                batch.add(decode_inbound(item))
                self._count_unacked(1)
            full = batch.readings >= self.cfg.batch_size or len(batch.items) >= flush_messages
            # The time limit bounds how long a message waits here; when more are already
            # waiting in the inbox we are behind, and small batches would only fall further back.
            due = time.monotonic() >= deadline and inbox.empty()
            if batch.items and (full or due):
                self._hand_off(batch)  # waits while the writer is behind: backpressure
                batch = Batch()
                deadline = float("inf")
            if self.cfg.drain and not batch.items and self._drain_done(last_arrival):
                self.drained = True
                break
        if batch.items:
            self._hand_off(batch, force=True)

    def _broker_log(self, line: str) -> None:
        """A notice line of the broker's log: count and report a packet it dropped as oversize
        (the publisher's connection was closed; its outbox keeps the readings)."""
        if OVERSIZE_LOG_TEXT in line:
            self.metrics.oversize_drops.inc()
            found = _OVERSIZE_CLIENT.search(line)
            logger.warning(
                "the broker dropped an oversize packet from client %s (over %d bytes)",
                found.group(1) if found else "?",
                MAX_PACKET_BYTES,
            )

    def _drain_done(self, last_arrival: float) -> bool:
        """Drain mode: out of the group, nothing arrived for drain_idle_s, all of it acked."""
        if not self.source.left_group.is_set() or not self.source.connected.is_set():
            return False
        with self._unacked_lock:
            if self._unacked:
                return False
        quiet = time.monotonic() - last_arrival
        return quiet >= self.cfg.drain_idle_s and self.source.inbox.empty()

    def _hand_off(self, batch: Batch | None, force: bool = False) -> None:
        # Checks for a stop (or a dead writer) while waiting, so neither can wedge this thread.
        while force or not self._stop.is_set():
            if not self._writer_thread.is_alive() and self._writer_thread.ident is not None:
                return
            try:
                self._batches.put(batch, timeout=0.5)
                return
            except queue.Full:
                continue

    def _count_unacked(self, n: int) -> None:
        with self._unacked_lock:
            self._unacked += n
            self.metrics.unacked.set(self._unacked)

    # -- writing (writer thread) -------------------------------------------------------------

    def _write_loop(self) -> None:
        try:
            self._write_batches()
        except BaseException as exc:
            # A bug, not an outage (every message's own faults are caught where it is resolved):
            # nothing of the batch was acked, so the broker redelivers it to the next worker.
            if self.cfg.exit_on_writer_death:
                logger.critical(
                    "ingest writer thread died (%s: %s); exiting now (exit status 70) so that "
                    "the supervisor restarts ingest and the broker redelivers the unacked "
                    "messages",
                    type(exc).__name__,
                    exc,
                    exc_info=exc,
                )
                for handler in logging.getLogger().handlers:
                    with contextlib.suppress(Exception):
                        handler.flush()
                os._exit(70)
            logger.exception("ingest writer failed; stopping")
            self.failure = exc if isinstance(exc, Exception) else RuntimeError(repr(exc))
            self._stop.set()

    def _write_batches(self) -> None:
        next_retention = time.monotonic() + 60.0
        while True:
            whole = self._batches.get()
            if whole is None:
                return
            for batch in _isolate_redeliveries(whole):
                result = self._commit(batch)
                if result is None:  # stopping while the database is down: the broker keeps it
                    break
                sent = self.source.ack([d.inbound for d in batch.items])
                self._count_unacked(-len(batch.items))
                if result.acks:  # after the commit, never before
                    self._publish_acks(result.acks)
                if result.rebirths:
                    self._request_births(result.rebirths)
                self._after_commit(batch)
                self._observe(batch, result, sent)
            if time.monotonic() >= next_retention:
                next_retention = time.monotonic() + self.cfg.retention_every_s
                self._retention()

    def _domain(self) -> Domain:
        return Domain(
            ts_floor=self.cfg.ts_floor, max_future=timedelta(seconds=self.cfg.max_future_s)
        )

    def _screen_redeliveries(self, batch: Batch) -> None:
        """Count the deliveries of redelivered messages (the broker's DUP flag: a worker got
        them before and never acked them, most often because it died holding them); one that
        has now been delivered `poison_after` times without a commit is dead-lettered.

        First deliveries cost nothing here; the count is kept in the database (ingest_attempts),
        so it survives the crashes it counts, and is deleted once the message is committed."""
        suspects = [d for d in batch.items if d.inbound.dup and d.inbound.qos > 0]
        if not suspects:
            return
        keys = [_message_key(d.inbound.topic, d.inbound.payload) for d in suspects]
        unique = dict(zip(keys, (d.inbound.topic for d in suspects), strict=True))
        conn = self.writer.conn
        earlier = dict(
            conn.execute(queries.COUNT_ATTEMPT, (list(unique), list(unique.values()))).fetchall()
        )
        conn.commit()
        for key, d in zip(keys, suspects, strict=True):
            # The first delivery (no DUP flag) was not counted; every later one was, and a
            # commit deletes the count: so each delivery before this one crashed its worker.
            crashed = int(earlier.get(key, 0)) + 1
            if crashed >= self.cfg.poison_after:
                logger.error(
                    "poison pill on %s: %d deliveries, none committed; dead-lettered",
                    d.inbound.topic,
                    crashed + 1,
                )
                d.error = (
                    f"poison pill: delivered {crashed + 1} times; each of the {crashed} earlier "
                    "deliveries ended without a commit (the worker holding it died)"
                )
                d.topic = d.message = None

    def _after_commit(self, batch: Batch) -> None:
        done = [
            _message_key(d.inbound.topic, d.inbound.payload) for d in batch.items if d.inbound.dup
        ]
        for d in batch.items:
            if d.error == RETAINED_DATA:
                self.source.clear_retained(d.inbound.topic)
        if done:
            try:
                self.writer.conn.execute(queries.FORGET_ATTEMPTS, (done,))
                self.writer.conn.commit()
            except psycopg.Error as exc:  # a stale count only delays a later poison verdict
                self.writer.rollback()
                logger.warning("could not clear delivery counts: %s", exc)

    def _request_births(self, missing: list[tuple[str, str, int | None, int, int]]) -> None:
        """Ask each gateway whose v2 data named an unknown schema for its birth (at most once
        per gateway and schema every REBIRTH_EVERY_S: a backlog of such messages asks once)."""
        now = time.monotonic()
        items = []
        for site, gw, epoch, seq, schema in missing:
            key = (site, gw, schema)
            if now - self._rebirth_asked.get(key, -REBIRTH_EVERY_S) < REBIRTH_EVERY_S:
                continue
            self._rebirth_asked[key] = now
            try:
                msg = RebirthRequest(
                    gw=gw, epoch=epoch, seq=seq, schema_=schema, ts=datetime.now(UTC)
                )
                items.append((rebirth_topic(site, gw), encode_rebirth(msg)))
            except (ContractError, ValueError) as exc:  # codes came from the topic: defensive
                logger.warning("no rebirth request for %s/%s: %s", site, gw, exc)
        if items:
            logger.info("asking %d gateways for their birth (v2 schema unknown)", len(items))
            self.source.publish_requests(items)

    def _publish_acks(self, acks: list[tuple[str, str, int, int, int]]) -> None:
        """One watermark per stream per committed batch (after the commit, never before)."""
        latest: dict[tuple[str, str, int], tuple[int, int]] = {}
        for site, gw, epoch, watermark, high in acks:  # one-by-one commits: the last one wins
            latest[(site, gw, epoch)] = (watermark, high)
        now = datetime.now(UTC)
        items = []
        for (site, gw, epoch), (watermark, high) in latest.items():
            try:
                msg = AckMessage(gw=gw, epoch=epoch, seq=watermark, high=high, ts=now)
                items.append((ack_topic(site, gw), encode_ack(msg)))
            except (ContractError, ValueError) as exc:  # codes came from the topic: defensive
                logger.warning("no ack for %s/%s: %s", site, gw, exc)
        self.metrics.acks_published.inc(self.source.publish_retained(items))

    def _commit(self, batch: Batch) -> WriteResult | None:
        delay = 0.5
        max_future = self._domain()
        while True:
            try:
                self._screen_redeliveries(batch)
                rows = resolve(batch, self.cache, self.writer.conn, max_future, births=self.births)
                try:
                    result = self.writer.write(rows)
                except psycopg.OperationalError:
                    raise
                except Exception as exc:
                    # Telegraf drops such a batch; we isolate the message the database refuses
                    # (or, for anything else that fails while writing, the message it fails on).
                    self.metrics.db_errors.labels("rejected").inc()
                    logger.warning(
                        "batch %d refused by the database (%s); writing message by message",
                        batch.batch_id,
                        exc,
                        extra={"batch_id": batch.batch_id},
                    )
                    result = self._commit_one_by_one(batch, max_future)
            except psycopg.OperationalError as exc:
                self.writer.close()
                self.metrics.db_errors.labels("unavailable").inc()
                self.metrics.db_up.set(0)
                if self._db_ok:
                    logger.error(
                        "database unavailable (%s); holding %d messages unacked, retrying",
                        str(exc).strip().splitlines()[0] if str(exc).strip() else exc,
                        len(batch.items),
                        extra={"batch_id": batch.batch_id},
                    )
                    self._db_ok = False
                if self._stop.wait(delay):
                    return None
                delay = min(delay * 2, 5.0)
                continue
            if not self._db_ok:
                logger.info(
                    "database available again; resuming", extra={"batch_id": batch.batch_id}
                )
                self._db_ok = True
            self.metrics.db_up.set(1)
            return result

    def _commit_one_by_one(self, batch: Batch, max_future: Domain) -> WriteResult:
        total = WriteResult(0, 0, 0, 0, 0, 0.0)
        for d in batch.items:
            one = Batch(items=[d])
            try:
                r = self.writer.write(
                    resolve(one, self.cache, self.writer.conn, max_future, births=self.births)
                )
            except psycopg.OperationalError:
                raise
            except Exception as exc:
                rows = Rows()
                rows.dead_letter(
                    d.inbound,
                    f"database rejected the message: {exc}"
                    if isinstance(exc, psycopg.Error)
                    else f"ingest failed on this message: {type(exc).__name__}: {exc}",
                )
                ack_handled(d, rows)
                r = self.writer.write(rows)
            total = WriteResult(
                total.staged + r.staged,
                total.inserted + r.inserted,
                total.conflicts + r.conflicts,
                total.dead_letters + r.dead_letters,
                total.quarantined + r.quarantined,
                total.commit_s + r.commit_s,
                total.acks + r.acks,
            )
        return total

    def _observe(self, batch: Batch, result: WriteResult, acked: int) -> None:
        m = self.metrics
        kinds: dict[str, int] = {}
        now = datetime.now(UTC)
        worst_lag = 0.0
        for d in batch.items:
            k = _kind(d.message)
            kinds[k] = kinds.get(k, 0) + 1
            data, v2 = d.data, d.v2
            if data is not None or v2 is not None:
                sent = data["sent_at"] if data is not None else v2_sent_at(v2)
                lag = (now - sent).total_seconds()
                m.lag_seconds.observe(max(lag, 0.0))
                worst_lag = max(worst_lag, lag)
        for k, n in kinds.items():
            m.messages.labels(k).inc(n)
        m.readings.inc(result.inserted)
        m.duplicates.inc(max(result.staged - result.inserted - result.conflicts, 0))
        m.dead_letters.inc(result.dead_letters)
        m.quarantined.inc(result.quarantined)
        m.conflicts.inc(result.conflicts)
        m.batch_readings.observe(batch.readings)
        m.commit_seconds.observe(result.commit_s)
        m.last_lag.set(worst_lag)
        self.committed_batches += 1
        logger.debug(
            "batch committed",
            extra={
                "batch_id": batch.batch_id,
                "messages": len(batch.items),
                "readings": result.inserted,
                "staged": result.staged,
                "conflicts": result.conflicts,
                "dead_letters": result.dead_letters,
                "quarantined": result.quarantined,
                "commit_ms": round(result.commit_s * 1000, 2),
                "acked": acked,
            },
        )

    # -- rollups (own thread and connection, plain PostgreSQL) -------------------------------

    def _rollup_loop(self) -> None:
        """Rebuild the queued rollup buckets every `rollup_every_s`, and once more at the end so
        that a stopped worker leaves none of its readings out of the rollups."""
        conn: psycopg.Connection[Any] | None = None
        failing = False
        while True:
            last = self._writer_done.wait(self.cfg.rollup_every_s)
            try:
                if conn is None or conn.closed or conn.broken:
                    conn = connect(self.cfg.database_url, connect_timeout=5)
                started = time.perf_counter()
                buckets = rollups.flush(conn)
                if buckets > 0:
                    self.metrics.rollup_seconds.observe(time.perf_counter() - started)
                    self.metrics.rollup_buckets.inc(buckets)
                self.metrics.rollup_ok_at.set_to_current_time()
                if buckets == 0 and self.writer.storage == "timescaledb":
                    last = True  # continuous aggregates: nothing is ever queued
                if failing:
                    logger.info("rollup maintenance resumed")
                failing = False
            except psycopg.Error as exc:
                if conn is not None and not conn.closed:
                    with contextlib.suppress(psycopg.Error):
                        conn.rollback()
                if not failing:  # the queue waits in the database: nothing is lost
                    logger.warning("rollup maintenance failed (%s); retrying", exc)
                failing = True
            if last:
                break
        if conn is not None:
            conn.close()

    def _retention(self) -> None:
        try:
            conn = self.writer.conn
            row = conn.execute(queries.RETENTION).fetchone()
            conn.commit()
            if row and row[0]:
                logger.info("retention removed %s chunks/rows of raw readings", row[0])
        except psycopg.Error as exc:
            self.writer.rollback()
            logger.warning("retention run failed: %s", exc)
