"""A running gateway: device pollers → outbox → MQTT, plus health in the status topic and file.

Several site configurations can run in one process (one :class:`Gateway` each, one event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import signal
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

from gateway.alarm import EdgeAlarm
from gateway.config import ConfigError, SiteConfig
from gateway.engineering import Row
from gateway.exception import ExceptionFilter
from gateway.mqtt_link import MqttLink
from gateway.outbox import Outbox
from gateway.poller import DevicePoller
from gateway.relay import RelayOutput
from oxy.contract import (
    QUALITY_CODE,
    ContractError,
    DeviceHealth,
    Quality,
    Reading,
    StatusMessage,
    TopicKind,
    ack_topic,
    decode_ack,
    decode_rebirth,
    encode,
    encode_data,
    encode_v2,
    rebirth_topic,
    topic,
)

logger = logging.getLogger(__name__)

FLUSH_DELAY_S = 0.02  # readings of devices polled on the same tick share one transaction
BOUND_CHECK_S = 60.0
REJECT_HOLD_S = 10.0
MAX_PENDING_ROWS = 100_000  # readings held in memory while the outbox cannot be written
EVICTION_ALARM_S = 3600.0  # the alarm stays up this long after the last eviction
ALARM_TICK_S = 0.5  # edge alarm hold times and silence are checked this often
ACK_GRACE_S = 3.0  # a gap below the centre's `high` older than this is re-sent at once
RESEND_AFTER_CONNECT_S = 1.0  # lets the retained watermark arrive before re-sending
ACK_WATCH_S = 1.0  # how often the acknowledgement timeout is checked


def release_memory() -> None:
    """Hand freed heap back to the OS (glibc): import-time and replay garbage otherwise stays
    resident, and a small box counts every megabyte."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, UTC)


class Gateway:
    """One site configuration at run time."""

    def __init__(self, cfg: SiteConfig) -> None:
        self.cfg = cfg
        self.data_topic = topic(cfg.site, cfg.gateway, TopicKind.DATA)
        self.status_topic = topic(cfg.site, cfg.gateway, TopicKind.STATUS)
        self.ack_topic = ack_topic(cfg.site, cfg.gateway)
        self.e2e = cfg.mqtt.end_to_end_ack
        # Contract v2 (docs/gateway.md): indices into the birth's declarations.
        self.v2 = cfg.mqtt.data_format == "v2"
        self.data_topic_v2 = topic(cfg.site, cfg.gateway, TopicKind.DATA_V2)
        self.rebirth_topic = rebirth_topic(cfg.site, cfg.gateway)
        self.declarations = cfg.declarations
        self.schema = cfg.schema
        self._index = {d.code: (i, d.unit) for i, d in enumerate(self.declarations)}
        self._qcode = {q.value: code for q, code in QUALITY_CODE.items()}
        self.v1_fallbacks = 0  # v2 gateway messages sent as v1 (a sensor no longer declared)
        self.rebirths = 0
        self.exception = ExceptionFilter(cfg.sensors)
        self.outbox: Outbox | None = None
        self.link: MqttLink | None = None
        self.pollers = [DevicePoller(d, self._on_rows) for d in cfg.devices]
        for p in self.pollers:
            p.on_transition = self._on_device_transition
        self.seq = 0
        self.cursor = 0
        # mid -> (seq, first row id, last row id, readings, first send?)
        self.inflight: dict[int, tuple[int, int, int, int, bool]] = {}
        self.acked_seq = 0  # the centre's watermark of this outbox stream
        self.resent_total = 0
        self._resend: list[int] = []  # seqs to send again, in order
        self._sent_at: dict[int, float] = {}  # seq -> when it last left (monotonic)
        self._rejected: list[int] = []
        self._ack_wait = cfg.mqtt.ack_timeout_s
        self._progress_at = time.monotonic()
        self._resend_handle: asyncio.TimerHandle | None = None
        self._ever_connected = False
        self._seq_at_connect = 0
        self._bad_ack_logged = False
        self.connected_since: datetime | None = None
        self.broker_error: str | None = None
        self.alarms: set[str] = set()
        self.started = time.time()
        self._pending: list[Row] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._fill_handle: asyncio.TimerHandle | None = None
        self._status_handle: asyncio.TimerHandle | None = None
        self._rejected_from: int | None = None
        self._hold_until = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.first_publish_after_connect: float | None = None
        self._connected_at_mono = 0.0
        self._stopping = False
        self._evicted_at: float | None = None
        self.edge_alarm: EdgeAlarm | None = None
        self.relay: RelayOutput | None = None
        if cfg.alarm is not None:
            self.edge_alarm = EdgeAlarm(cfg, self._on_alarm)
            if cfg.alarm.relay is not None:
                drive = cfg.alarm.relay.drive
                edge = self.edge_alarm
                self.relay = RelayOutput(
                    cfg.alarm.relay,
                    lambda: edge.any_active(drive),
                    lambda _relay: self._status_soon(),
                )

    # ---- lifecycle

    async def run(self) -> None:
        """Run until cancelled."""
        loop = self._loop = asyncio.get_running_loop()
        oc = self.cfg.outbox
        try:
            self.outbox = Outbox(oc.path, oc.max_readings, oc.max_age_s, oc.synchronous)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the outbox {oc.path}: {exc}") from None
        self.seq = int(self.outbox.get_meta("seq", "0"))
        self.acked_seq = int(self.outbox.get_meta("acked_seq", "0"))
        # Rows up to the last one recorded as sent belong to sent messages (re-sent with their
        # own seq); fresh messages start after them.
        self.cursor = self.outbox.sent_summary()[2]
        bd_seq = int(self.outbox.get_meta("bd_seq", "-1")) + 1
        self.link = MqttLink(
            cfg=self.cfg.mqtt,
            site=self.cfg.site,
            gateway=self.cfg.gateway,
            config_hash=self.cfg.config_hash,
            bd_seq=bd_seq,
            loop=loop,
            on_connected=self._on_connected,
            on_disconnected=self._on_disconnected,
            on_ack=self._on_ack,
            on_reset=self._on_session_reset,
            ack_topic=self.ack_topic if self.e2e else None,
            on_watermark=self._on_watermark,
            declarations=self.declarations if self.v2 else None,
            rebirth_topic=self.rebirth_topic if self.v2 else None,
            on_rebirth=self._on_rebirth,
        )
        logger.info(
            "gateway %s/%s starting: %d devices, %d sensors, outbox %s (%d waiting)",
            self.cfg.site,
            self.cfg.gateway,
            len(self.cfg.devices),
            len(self.cfg.sensors),
            oc.path,
            self.outbox.depth,
        )
        if self.outbox.enforce_bound():
            self._evicted_at = time.monotonic()
        self.link.start()
        tasks = [asyncio.create_task(p.run(), name=f"poll-{p.device.name}") for p in self.pollers]
        tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
        if self.e2e:
            tasks.append(asyncio.create_task(self._ack_watch(), name="ack-watch"))
        if self.edge_alarm is not None:
            # Local only: runs whether or not the broker or the centre can be reached.
            tasks.append(asyncio.create_task(self._alarm_ticks(), name="edge-alarm"))
        if self.relay is not None:
            tasks.append(asyncio.create_task(self.relay.run(), name="alarm-relay"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._flush()
            self._stopping = True
            self.write_status()
            await asyncio.get_running_loop().run_in_executor(None, self.link.stop)
            self.outbox.put_meta("published_total", self.outbox.published_total)
            self.outbox.close()
            logger.info("gateway %s stopped", self.cfg.gateway)

    async def _housekeeping(self) -> None:
        assert self.outbox is not None
        next_bound = time.monotonic() + BOUND_CHECK_S
        await asyncio.sleep(3.0)
        release_memory()  # after start-up: connections made, first polls done
        while True:
            self.publish_status()
            await asyncio.sleep(self.cfg.status_interval_s)
            release_memory()
            if time.monotonic() >= next_bound:
                if self.outbox.enforce_bound():
                    self._evicted_at = time.monotonic()
                next_bound = time.monotonic() + BOUND_CHECK_S

    async def _alarm_ticks(self) -> None:
        assert self.edge_alarm is not None
        while True:
            await asyncio.sleep(ALARM_TICK_S)
            self.edge_alarm.evaluate()

    def _on_alarm(self, key: str, active: bool, detail: str) -> None:
        if self.relay is not None:
            self.relay.wake()
        self._status_soon()

    # ---- readings in

    def _on_rows(self, rows: list[Row]) -> None:
        if self.edge_alarm is not None:
            self.edge_alarm.observe(rows)
        if self.exception.active:
            rows = self.exception.keep(rows)
            if not rows:
                return
        self._pending.extend(rows)
        if self._flush_handle is None and self._loop is not None:
            self._flush_handle = self._loop.call_later(FLUSH_DELAY_S, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        if not self._pending or self.outbox is None:
            return
        rows, self._pending = self._pending, []
        evicted_before = self.outbox.evicted_total
        try:
            self.outbox.add(rows)
        except sqlite3.Error as exc:
            # Disk full or I/O error: keep the readings in memory (bounded) and retry.
            if "outbox_write_failed" not in self.alarms:
                logger.error("gateway %s cannot write its outbox: %s", self.cfg.gateway, exc)
            self.alarms.add("outbox_write_failed")
            self._pending = rows + self._pending
            over = len(self._pending) - MAX_PENDING_ROWS
            if over > 0:
                del self._pending[:over]
                self.outbox.evicted_total += over  # counted, never silent
            if self._loop is not None:
                self._flush_handle = self._loop.call_later(1.0, self._flush)
            self._status_soon()
            return
        if "outbox_write_failed" in self.alarms:
            self.alarms.discard("outbox_write_failed")
            logger.info("gateway %s writes its outbox again", self.cfg.gateway)
            self.outbox.put_meta("evicted_total", self.outbox.evicted_total)
        if self.outbox.evicted_total != evicted_before:
            self._evicted_at = time.monotonic()
            self._status_soon()
        self._schedule_fill(self.cfg.mqtt.linger_s)

    # ---- publishing

    def _schedule_fill(self, delay: float) -> None:
        if self._fill_handle is None and self._loop is not None:
            self._fill_handle = self._loop.call_later(delay, self._fill)

    def _fill(self) -> None:
        """Publish re-sends first, then the oldest fresh readings, while the in-flight window has
        room. A fresh message gets the next `seq`, recorded with its rows before it leaves."""
        self._fill_handle = None
        link, outbox, m = self.link, self.outbox, self.cfg.mqtt
        if link is None or outbox is None or not link.connected:
            return
        now = time.monotonic()
        if now < self._hold_until:
            self._schedule_fill(self._hold_until - now)
            return
        flying = {e[0] for e in self.inflight.values()} if self._resend else set()
        while len(self.inflight) < m.inflight:
            if self._resend:
                seq = self._resend.pop(0)
                if seq in flying or (self.e2e and seq <= self.acked_seq):
                    continue
                rows = outbox.sent_rows(seq)
                if not rows:  # every reading of it was evicted (counted there)
                    outbox.forget_sent(seq)
                    continue
                fresh = False
                self.resent_total += 1
            else:
                rows = outbox.batch(self.cursor, m.batch_max_readings)
                if not rows:
                    break
                seq = self.seq + 1
                fresh = True
            epoch = floor = None
            if self.e2e:
                epoch, floor = outbox.epoch, outbox.sent_summary()[0]
                if floor is None or floor > seq:
                    floor = seq
            data_topic, payload, fits = self._encode(seq, rows, epoch, floor)
            if fresh:
                rows = rows[:fits]
                # Durable before the message leaves: a seq never repeats with other readings.
                outbox.assign(seq, rows[0][0], rows[-1][0])
                self.seq = seq
                self.cursor = rows[-1][0]
            mid = link.publish(data_topic, payload)
            self.inflight[mid] = (seq, rows[0][0], rows[-1][0], len(rows), fresh)
            self._sent_at[seq] = now
            if self.first_publish_after_connect is None:
                self.first_publish_after_connect = time.monotonic() - self._connected_at_mono

    def _encode(
        self, seq: int, rows: list[Any], epoch: int | None, floor: int | None
    ) -> tuple[str, bytes, int]:
        """(topic, payload, readings it holds) of a data message of `rows` (outbox rows)."""
        if self.v2:
            index, qcode = self._index, self._qcode
            items = []
            for r in rows:
                decl = index.get(r[1])
                if decl is None or decl[1] != r[4]:
                    break  # a sensor the birth does not declare (config changed): v1
                items.append((decl[0], r[2], r[3], qcode[r[5]]))
            else:
                payload, fits = encode_v2(
                    self.declarations,
                    self.schema,
                    seq,
                    round(time.time() * 1000),
                    items,
                    epoch=epoch,
                    floor=floor,
                    deflate=self.cfg.mqtt.deflate,
                )
                return self.data_topic_v2, payload, fits
            self.v1_fallbacks += 1
        readings = [
            Reading(sensor=r[1], ts=_utc(r[2]), value=r[3], unit=r[4], q=Quality(r[5]))
            for r in rows
        ]
        # Split by encoded size too: never a message the broker would drop (issue 14).
        payload, fits = encode_data(
            self.cfg.gateway, seq, datetime.now(UTC), readings, epoch=epoch, floor=floor
        )
        return self.data_topic, payload, fits

    def _on_rebirth(self, payload: bytes) -> None:
        """The centre has no birth for a v2 message's schema: publish the birth again, then
        re-send every unconfirmed message from the one it could not resolve."""
        if self.outbox is None or self.link is None:
            return
        try:
            req = decode_rebirth(self.rebirth_topic, payload)
        except ContractError as exc:
            logger.warning("gateway %s: unreadable rebirth request: %s", self.cfg.gateway, exc)
            return
        if req.epoch is not None and req.epoch != self.outbox.epoch:
            return
        self.rebirths += 1
        logger.info(
            "gateway %s: the centre asks for a birth (schema %d, seq %d); publishing it",
            self.cfg.gateway,
            req.schema_,
            req.seq,
        )
        self.link.publish_birth()
        flying = {e[0] for e in self.inflight.values()}
        todo = [q for q in self._unconfirmed() if q >= req.seq and q not in flying]
        now = time.monotonic()
        for q in todo:
            self._sent_at[q] = now
        self._queue_resend(todo)

    def _on_ack(self, mid: int, ok: bool, reason: str) -> None:
        """A PUBACK. With the end-to-end acknowledgement the rows stay until the centre's
        watermark covers them; without it the PUBACK confirms the message."""
        entry = self.inflight.pop(mid, None)
        if entry is None or self.outbox is None:
            return  # birth or status
        seq, first, last, n, fresh = entry
        if ok:
            if self.e2e:
                if fresh:
                    self.outbox.note_published(n)
            else:
                self.outbox.acked(first, last, n)
                self.outbox.forget_sent(seq)
                self._sent_at.pop(seq, None)
            if "broker_rejected" in self.alarms and not self._rejected:
                self.alarms.discard("broker_rejected")
                logger.info("broker accepts publishes again")
        else:
            # Rows stay in the outbox; retried in order after a pause (e.g. an ACL being fixed).
            if "broker_rejected" not in self.alarms:
                logger.error("broker rejected a data message: %s; keeping it", reason)
            self.alarms.add("broker_rejected")
            self._rejected.append(seq)
        if self._rejected and not self.inflight:
            self._queue_resend(self._rejected)
            self._rejected = []
            self._hold_until = time.monotonic() + REJECT_HOLD_S
        self._schedule_fill(0.0)

    def _queue_resend(self, seqs: list[int]) -> None:
        queued = set(self._resend)
        self._resend.extend(q for q in seqs if q not in queued)
        self._resend.sort()
        self._schedule_fill(0.0)

    def _unconfirmed(self) -> list[int]:
        assert self.outbox is not None
        after = self.acked_seq if self.e2e else 0
        return [q for q, _first, _last in self.outbox.sent_above(after)]

    def _resend_unconfirmed(self) -> None:
        """After a (re)connect: whatever the broker may have lost goes again (same seqs)."""
        self._resend_handle = None
        if self.link is None or not self.link.connected:
            return
        flying = {e[0] for e in self.inflight.values()}
        upto = self._seq_at_connect  # what this connection sent itself is not in doubt yet
        todo = [q for q in self._unconfirmed() if q <= upto and q not in flying]
        if todo:
            logger.info("gateway %s re-sends %d unconfirmed messages", self.cfg.gateway, len(todo))
            self._queue_resend(todo)

    def _on_watermark(self, payload: bytes) -> None:
        """The centre's watermark: trim what it committed, re-send a gap it shows."""
        outbox = self.outbox
        if outbox is None:
            return
        try:
            ack = decode_ack(self.ack_topic, payload)
        except ContractError as exc:
            if not self._bad_ack_logged:
                logger.warning("gateway %s: unreadable ack ignored: %s", self.cfg.gateway, exc)
                self._bad_ack_logged = True
            return
        if ack.epoch != outbox.epoch:
            return  # a watermark of an earlier outbox file (stream)
        if ack.seq > self.seq:
            if not self._bad_ack_logged:
                logger.warning(
                    "gateway %s: ack %d beyond the last seq sent %d ignored",
                    self.cfg.gateway,
                    ack.seq,
                    self.seq,
                )
                self._bad_ack_logged = True
            return
        now = time.monotonic()
        if ack.seq > self.acked_seq:
            outbox.confirm(ack.seq)
            self.acked_seq = ack.seq
            for q in [q for q in self._sent_at if q <= ack.seq]:
                del self._sent_at[q]
            self._ack_wait = self.cfg.mqtt.ack_timeout_s
            self._progress_at = now
        if ack.high > ack.seq:
            # Later messages are committed, these are not: lost on the way (e.g. by a broker
            # restart while ingest had no subscription), or still in another worker's batch.
            flying = {e[0] for e in self.inflight.values()}
            gap = [
                q
                for q, _first, _last in outbox.sent_above(ack.seq)
                if q < ack.high
                and q not in flying
                and now - self._sent_at.get(q, 0.0) > ACK_GRACE_S
            ]
            if gap:
                for q in gap:
                    self._sent_at[q] = now  # not again before the grace has passed
                self._queue_resend(gap)

    async def _ack_watch(self) -> None:
        """Re-send what the centre has not confirmed after the acknowledgement timeout (the
        timeout doubles while nothing progresses: a long centre outage costs few re-sends)."""
        while True:
            await asyncio.sleep(ACK_WATCH_S)
            if self.seq <= self.acked_seq or self.link is None or not self.link.connected:
                continue
            now = time.monotonic()
            wait = self._ack_wait
            if now - self._progress_at < wait:
                continue
            late = [q for q, t in self._sent_at.items() if q > self.acked_seq and now - t > wait]
            if not late and self._sent_at:
                continue
            flying = {e[0] for e in self.inflight.values()}
            todo = [q for q in self._unconfirmed() if q not in flying]
            if todo:
                logger.info(
                    "gateway %s: no acknowledgement for %.0f s; re-sending %d messages",
                    self.cfg.gateway,
                    wait,
                    len(todo),
                )
                for q in todo:
                    self._sent_at[q] = now
                self._queue_resend(todo)
            self._progress_at = now
            self._ack_wait = min(wait * 2, self.cfg.mqtt.ack_timeout_max_s)

    def _on_session_reset(self) -> None:
        """The MQTT client was replaced: its unacknowledged messages are gone, so replay them."""
        self.inflight.clear()
        self._queue_resend(self._unconfirmed())

    def _on_connected(self, bd_seq: int) -> None:
        assert self.outbox is not None
        self.outbox.put_meta("bd_seq", bd_seq)
        self.connected_since = datetime.now(UTC)
        self._connected_at_mono = time.monotonic()
        self.first_publish_after_connect = None
        self.broker_error = None
        logger.info(
            "gateway %s connected to %s:%d (bd_seq %d, %d readings waiting)",
            self.cfg.gateway,
            self.cfg.mqtt.host,
            self.cfg.mqtt.port,
            bd_seq,
            self.outbox.depth,
        )
        if self.e2e or not self._ever_connected:
            # Messages sent before are unconfirmed: the broker may have lost them (restart,
            # persistence off) although it acknowledged them. Without the end-to-end ack only
            # those of an earlier process (paho re-sends its own in-flight ones).
            if self._resend_handle is not None:
                self._resend_handle.cancel()
            assert self._loop is not None
            delay = RESEND_AFTER_CONNECT_S if self.e2e else 0.0
            self._seq_at_connect = self.seq
            self._resend_handle = self._loop.call_later(delay, self._resend_unconfirmed)
        self._ever_connected = True
        self._schedule_fill(0.0)
        self._status_soon()

    def _on_disconnected(self, why: str) -> None:
        if self._stopping:
            return
        if self.connected_since is not None:
            logger.warning("gateway %s lost the broker: %s", self.cfg.gateway, why)
        elif self.broker_error is None:
            logger.warning("gateway %s cannot reach the broker: %s", self.cfg.gateway, why)
        self.connected_since = None
        self.broker_error = why
        self._status_soon()

    # ---- health

    def _on_device_transition(self, poller: DevicePoller) -> None:
        self._status_soon()

    def _status_soon(self) -> None:
        if self._status_handle is None and self._loop is not None:
            self._status_handle = self._loop.call_later(1.0, self.publish_status)

    def status(self) -> StatusMessage:
        """The current health as the contract's status message."""
        assert self.outbox is not None
        oldest = self.outbox.oldest_ts_ms()
        alarms = set(self.alarms)
        if self._evicted_at is not None and time.monotonic() - self._evicted_at < EVICTION_ALARM_S:
            alarms.add("outbox_evicting")
        if any(p.state == "failing" for p in self.pollers):
            alarms.add("device_failing")
        if self.link is None or not self.link.connected:
            alarms.add("broker_unreachable")
        if self.edge_alarm is not None:
            alarms.update(self.edge_alarm.active)
        if self.relay is not None and self.relay.state == "failing":
            alarms.add("relay_failing")
        return StatusMessage(
            gw=self.cfg.gateway,
            ts=datetime.now(UTC),
            outbox_depth=self.outbox.depth,
            outbox_oldest=_utc(oldest) if oldest is not None else None,
            evicted_total=self.outbox.evicted_total,
            published_total=self.outbox.published_total,
            devices=[
                DeviceHealth(
                    device=p.device.name,
                    state=p.state,
                    last_good_poll=p.last_good_poll,
                    error=p.error,
                )
                for p in self.pollers
            ],
            alarms=sorted(alarms),
        )

    def write_status(self, msg: StatusMessage | None = None) -> None:
        """Write the status file (a row of the outbox database) that `oxy gateway status` reads."""
        if self.outbox is None:
            return
        msg = msg or self.status()
        doc: dict[str, Any] = msg.model_dump(mode="json")
        doc.update(
            site=self.cfg.site,
            pid=os.getpid(),
            broker={
                "host": self.cfg.mqtt.host,
                "port": self.cfg.mqtt.port,
                "connected_since": self.connected_since.isoformat()
                if self.connected_since
                else None,
                "error": self.broker_error,
            },
            seq=self.seq,
            ack={
                "end_to_end": self.e2e,
                "epoch": self.outbox.epoch,
                "acked_seq": self.acked_seq if self.e2e else None,
                "unconfirmed_messages": self.outbox.sent_summary()[1],
                "confirmed_total": self.outbox.confirmed_total,
                "resent_total": self.resent_total,
            },
            wire={
                "data_format": self.cfg.mqtt.data_format,
                "schema": self.schema if self.v2 else None,
                "v1_fallbacks": self.v1_fallbacks,
                "rebirths": self.rebirths,
                "held_by_deadband": self.exception.held_total,
            },
            requests={p.device.name: p.requests for p in self.pollers},
        )
        if self.relay is not None:
            doc["relay"] = {
                "output": self.relay.cfg.name,
                "state": self.relay.state,
                "error": self.relay.error,
                "alarm_written": self.relay.written,
            }
        self.outbox.put_json("status", doc)

    def publish_status(self) -> None:
        """Publish the status message (retained) and refresh the local status file."""
        self._status_handle = None
        if self.outbox is None:
            return
        msg = self.status()
        self.write_status(msg)
        if self.link is not None and self.link.connected:
            self.link.publish(self.status_topic, encode(msg), retain=True)


async def run_gateways(configs: list[SiteConfig]) -> None:
    """Run several gateways in this event loop until SIGTERM/SIGINT or cancellation."""
    paths = [c.outbox.path for c in configs]
    ids = [c.mqtt.client_id for c in configs]
    if len(set(paths)) != len(paths) or len(set(ids)) != len(ids):
        raise ConfigError("each site configuration needs its own outbox file and MQTT client id")
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, main.cancel if main else (lambda: None))
    gateways = [Gateway(c) for c in configs]
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*(g.run() for g in gateways))
