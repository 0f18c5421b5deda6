"""Soak: a national day's telemetry through the real broker and ingest into the real database,
with the API serving pages and the alert and coordination jobs running (issue 22).

    # the documented form: 2,000 gateways, 3,000 tanks × 2 sensors at 1 Hz = 6,000 readings/s,
    # one hour, figures every 5 minutes (seeds the national country into a scratch database)
    OXY_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/soak.py --gateways 2000 --duration 3600 --interval 300

    # a short form (what tests/test_soak.py runs, at a reduced rate)
    .venv/bin/python bench/soak.py --gateways 40 --generators 2 --duration 60 --interval 20

The load generator is asyncio: every gateway has its own MQTT connection (paho driven by the
event loop's reader/writer callbacks, no thread per client), and one scheduler coroutine per
process deals the gateways their ticks in time order (each its own phase): no task, timer or
sleep per gateway. With `--generators N` the gateways are dealt over N spawned processes
(gateway k to process k mod N), each with its own event loop (one process by default: never
this process's loop, which runs the alert rounds and the page loads, so their time is never
counted as publish → commit); every second each reports its latencies and counters to this
process, which merges them into the interval's figures. A latency is measured inside the process
that published the message and received its ack (time.monotonic, CLOCK_MONOTONIC: one clock for
the whole host, which also gives every process the same start), so none mixes clocks. Like a real
gateway it samples its sensors at `--hz` and publishes one QoS 1 message per `--batch-s` (the
linger period), built with the product's contract encoder: by default contract v2
(`oxy.contract.encode_v2`: MessagePack, one base time + offsets, sensor indices declared by the
retained birth each gateway publishes on connecting and again when ingest asks), `--wire v1`
for JSON (`encode_data`), both with the end-to-end acknowledgement's epoch and floor. What does
not change is built once per gateway (topics, birth, declarations); per reading there is one
addition (a value off a seeded noise table) and one tuple. It keeps every message in its outbox
until ingest's retained ack watermark covers it, and re-sends what is not confirmed.
`--outage-share` of the gateways lose their connection for `--outage-s` and replay their outbox
on reconnecting; `--skew-share` run with a clock off by up to ±2 minutes. Publish → commit is
measured by the gateway: from the first publish of a message to the ack that confirms it (so it
includes the ack's way back). The last columns say where that time goes on the ingest side:
readings per committed batch, the mean write + commit of a batch, the mean rollup flush (plain
PostgreSQL), and the CPU of ingest, the broker and the generator (`gen%`; the summary gives
the generator's CPU per 1,000 readings/s). The whole-country alert round still running at the
end is waited for (`--alert-wait`) or reported as unfinished; every round's time is printed.

Everything is bounded (gateways ≤ 5,000, the duration, each outbox) and loopback only: the broker
is a private Mosquitto on 127.0.0.1 with the product configuration, the API a private `oxy api
run`, ingest a private `oxy ingest run`; the database is a scratch one (or `--database-url`).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import queue
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psutil
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import Mosquitto, free_port  # noqa: E402
from oxy.contract import (  # noqa: E402
    ContractError,
    Reading,
    SensorDecl,
    StateMessage,
    TopicKind,
    ack_topic,
    decode_ack,
    encode,
    encode_data,
    encode_v2,
    rebirth_topic,
    schema_id,
    topic,
)

MAX_GATEWAYS = 5000
MAX_GENERATORS = 32  # load-generator processes
MAX_OUTBOX = 20_000  # messages per gateway; a real gateway's outbox evicts beyond its bound
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class SoakConfig:
    """One soak run."""

    gateways: int = 2000
    duration_s: float = 3600.0
    interval_s: float = 300.0
    batch_s: float = 5.0
    hz: float = 1.0
    outage_share: float = 0.05
    outage_s: float = 60.0
    skew_share: float = 0.1
    api_rps: float = 2.0
    alert_every_s: float = 60.0
    history_days: float = 1.0
    dense_hours: float = 0.0  # of 1 Hz DP history around the last cut-off (demo.national)
    database_url: str | None = None
    drain_s: float = 60.0
    seed: int = 22
    generators: int = 1  # processes of the load generator (each a slice of the gateways)
    wire: str = "v2"  # the gateways' data format: "v2" (compact, MessagePack) or "v1" (JSON)
    alert_wait_s: float = 300.0  # at the end, how long the alert round in progress may finish

    def __post_init__(self) -> None:
        if not 1 <= self.gateways <= MAX_GATEWAYS:
            raise ValueError(f"--gateways must be between 1 and {MAX_GATEWAYS}")
        if not 1 <= self.generators <= min(MAX_GENERATORS, self.gateways):
            raise ValueError(
                f"--generators must be between 1 and {MAX_GENERATORS} (and at most --gateways)"
            )
        if self.duration_s <= 0 or self.duration_s > 24 * 3600 or self.interval_s <= 0:
            raise ValueError("--duration must be in (0, 86400] s and --interval > 0")
        if self.wire not in ("v1", "v2"):
            raise ValueError("--wire must be v1 or v2")
        if not 0 <= self.alert_wait_s <= 3600:
            raise ValueError("--alert-wait must be in [0, 3600] s")
        if not 0 < self.hz <= 10 or self.batch_s < 1 / self.hz:
            raise ValueError("--hz must be in (0, 10] and --batch-s at least one sample")
        if abs(self.batch_s * self.hz - round(self.batch_s * self.hz)) > 1e-9:
            raise ValueError("--batch-s must hold a whole number of samples at --hz")


# --- the simulated gateways ---------------------------------------------------------------------


class LoopHelper:
    """Drive one paho client from the asyncio loop (paho's documented external-loop hooks); its
    housekeeping (`loop_misc`: keepalive pings) is called by the scheduler at the gateway's tick,
    not by a task of its own."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: mqtt.Client) -> None:
        self.loop = loop
        self.watching = False  # the socket is watched for room to write
        client.on_socket_open = self._open
        client.on_socket_close = self._close
        client.on_socket_register_write = self._want_write
        client.on_socket_unregister_write = self._no_write

    def _open(self, client: mqtt.Client, _u: Any, sock: Any) -> None:
        self.loop.add_reader(sock, client.loop_read)

    def _close(self, client: mqtt.Client, _u: Any, sock: Any) -> None:
        with suppress(Exception):
            self.loop.remove_reader(sock)

    def _want_write(self, client: mqtt.Client, _u: Any, sock: Any) -> None:
        # Written once the current callbacks are done (every packet queued meanwhile goes in
        # the same write); the socket is watched for room only when that write left some.
        self.loop.call_soon(self._write, client, sock)

    def _write(self, client: mqtt.Client, sock: Any) -> None:
        client.loop_write()
        if client.want_write() and not self.watching:
            self.loop.add_writer(sock, client.loop_write)
            self.watching = True

    def _no_write(self, client: mqtt.Client, _u: Any, sock: Any) -> None:
        if self.watching:
            self.watching = False
            with suppress(Exception):
                self.loop.remove_writer(sock)


@dataclass
class Stats:
    """What the gateways saw, per interval and in total."""

    latencies: list[float] = field(default_factory=list)  # live messages, this interval
    replayed: int = 0
    generated: int = 0  # readings
    published_msgs: int = 0
    acked_msgs: int = 0
    republished: int = 0
    generator_pids: list[int] = field(default_factory=list)

    _COUNTS = ("replayed", "generated", "published_msgs", "acked_msgs", "republished")

    def take(self, since: dict[str, int]) -> StatsDelta:
        """What happened since the last take (`since` holds the counts then; updated): the
        latencies measured meanwhile (and cleared) and the counters' increments."""
        counts = {k: getattr(self, k) - since.get(k, 0) for k in self._COUNTS}
        since.update({k: getattr(self, k) for k in self._COUNTS})
        lat, self.latencies = self.latencies, []
        return StatsDelta(lat, counts)

    def add(self, d: StatsDelta) -> None:
        """Merge another process's delta."""
        self.latencies.extend(d.latencies)
        for k, v in d.counts.items():
            setattr(self, k, getattr(self, k) + v)


@dataclass
class StatsDelta:
    """A generator process's report: latencies (seconds, each measured inside that process
    from the message's first publish to the ack that confirmed it) and counter increments."""

    latencies: list[float]
    counts: dict[str, int]


# A table of noise (seeded) the readings' values are drawn from in turn: one addition per
# reading instead of a Gaussian draw and a rounding.
NOISE_LEN = 4099  # prime: no gateway's readings fall into step with the table
RESOLUTION = 0.001  # the quantum a simulated sensor declares (an integer count on the v2 wire)


@dataclass
class SimGateway:
    """One gateway: its sensors, clock skew, outage window and outbox; what does not change
    during the run (topics, birth, the v2 declaration) is built once."""

    site: str
    gw: str
    sensors: list[tuple[str, str, float]]  # code, unit, base value
    skew: timedelta
    outage: tuple[float, float] | None  # seconds after start: (from, to)
    epoch: int
    wire: str = "v2"
    seq: int = 0
    acked: int = -1
    # seq -> (payload, first publish (monotonic) or None when held back, readings, live)
    outbox: dict[int, tuple[bytes, float | None, int, bool]] = field(default_factory=dict)
    client: mqtt.Client | None = None
    connected: bool = False
    down: bool = False  # in its outage (disconnected on purpose)
    noise_at: int = 0

    def __post_init__(self) -> None:
        self.skew_ms = round(self.skew.total_seconds() * 1000)
        self.decls = [SensorDecl(code=c, unit=u, res=RESOLUTION) for c, u, _b in self.sensors]
        self.schema = schema_id(self.decls)
        birth = StateMessage(gw=self.gw, online=True, bd_seq=0, version="soak",
                             schema=self.schema, sensors=self.decls)  # fmt: skip
        # A v1 gateway's birth declares nothing (exactly the v1 birth).
        self.birth = encode(
            birth if self.wire == "v2" else StateMessage(gw=self.gw, online=True, bd_seq=0)
        )
        self.state_topic = topic(self.site, self.gw, TopicKind.STATE)
        kind = TopicKind.DATA_V2 if self.wire == "v2" else TopicKind.DATA
        self.data_topic = topic(self.site, self.gw, kind)
        self.ack_topic = ack_topic(self.site, self.gw)
        self.rebirth_topic = rebirth_topic(self.site, self.gw)
        self.bases = list(enumerate(b for _c, _u, b in self.sensors))

    def batch(self, now_ms: int, samples: int, period_ms: int, noise: list[float]) -> list[Any]:
        """`samples` readings of every sensor ending at `now_ms` (the centre's clock), taken by
        the gateway's own clock: (sensor index, ts ms, value, quality code) items for
        `oxy.contract.encode_v2`. Per reading: one addition and one tuple."""
        first = now_ms + self.skew_ms - (samples - 1) * period_ms
        n = samples * len(self.bases)
        j = self.noise_at
        if j + n > len(noise):
            j = 0
        self.noise_at = j + n
        it = iter(noise[j : j + n])
        return [
            (i, first + k * period_ms, b + e, 0)
            for k in range(samples)
            for (i, b), e in zip(self.bases, it, strict=False)
        ]

    def encode(self, items: list[Any], floor: int) -> tuple[bytes, int]:
        """One data message of `items` (from the first) with the contract's own encoder: v2
        (`encode_v2`) or v1 (`encode_data`, one `Reading` model per reading); returns the payload
        and how many items it holds."""
        sent_ms = round(time.time() * 1000) + self.skew_ms
        if self.wire == "v2":
            return encode_v2(self.decls, self.schema, self.seq, sent_ms, items,
                             epoch=self.epoch, floor=floor)  # fmt: skip
        codes, units = [c for c, _u, _b in self.sensors], [u for _c, u, _b in self.sensors]
        readings = [
            Reading(sensor=codes[i], ts=_UNIX + timedelta(milliseconds=ts),
                    value=round(v, 3), unit=units[i])
            for i, ts, v, _q in items
        ]  # fmt: skip
        return encode_data(self.gw, self.seq, _UNIX + timedelta(milliseconds=sent_ms), readings,
                           epoch=self.epoch, floor=floor)  # fmt: skip


_UNIX = datetime(1970, 1, 1, tzinfo=UTC)


def _connect(gw: SimGateway, loop: asyncio.AbstractEventLoop, port: int, stats: Stats) -> None:
    # MQTT 3.1.1, which a gateway may speak (`[mqtt] protocol`): paho builds v5 properties
    # for every packet, a cost per message of the generator's, not of the platform's.
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"soak-{gw.gw}",
                         protocol=mqtt.MQTTv311)  # fmt: skip
    client.max_inflight_messages_set(100)
    LoopHelper(loop, client)

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if rc.is_failure:
            return
        c.subscribe([(gw.ack_topic, 1), (gw.rebirth_topic, 1)])
        gw.connected = True
        _birth_and_outbox(gw, stats)  # the birth first, then the outbox, oldest first

    def on_disconnect(c: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any = None) -> None:
        gw.connected = False

    def on_message(c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == gw.rebirth_topic:  # the centre lacks our birth: again, and re-send
            if gw.connected:
                _birth_and_outbox(gw, stats)
            return
        try:
            ack = decode_ack(msg.topic, msg.payload)
        except ContractError:
            return
        if ack.epoch != gw.epoch or ack.seq <= gw.acked:
            return
        now = time.monotonic()
        for seq in range(gw.acked + 1, ack.seq + 1):
            entry = gw.outbox.pop(seq, None)
            if entry is None:
                continue
            stats.acked_msgs += 1
            _payload, first, _n, live = entry
            if live and first is not None:
                stats.latencies.append(now - first)
            elif not live:
                stats.replayed += 1
        gw.acked = ack.seq

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_message = on_message
    client.connect(LOOPBACK, port, keepalive=30)
    gw.client = client


def _birth_and_outbox(gw: SimGateway, stats: Stats) -> None:
    """Publish the retained birth, then everything unconfirmed, oldest first (on connecting,
    after an outage, and when ingest asks for the birth)."""
    assert gw.client is not None
    gw.client.publish(gw.state_topic, gw.birth, qos=1, retain=True)
    for seq in sorted(gw.outbox):
        _publish(gw, seq, stats)


def _publish(gw: SimGateway, seq: int, stats: Stats) -> None:
    payload, first, n, live = gw.outbox[seq]
    assert gw.client is not None
    gw.client.publish(gw.data_topic, payload, qos=1)
    if first is None:
        gw.outbox[seq] = (payload, time.monotonic(), n, live)
    stats.published_msgs += 1


@dataclass
class Scheduler:
    """One process's gateways on one loop: a single coroutine deals each gateway its tick (one
    message per `batch_s`, at its own phase) in time order; no task, timer or sleep per
    gateway."""

    gws: list[SimGateway]
    cfg: SoakConfig
    port: int
    t0: float
    stats: Stats
    rng: random.Random
    noise: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.noise = [self.rng.gauss(0, 0.05) for _ in range(NOISE_LEN)]
        self.samples = max(1, round(self.cfg.batch_s * self.cfg.hz))
        self.period_ms = round(1000 / self.cfg.hz)

    async def run(self) -> None:
        """Tick every gateway (gateways are not in step: each has its own phase) until the end
        of the run."""
        loop = asyncio.get_running_loop()
        cfg = self.cfg
        phases = sorted((self.rng.uniform(0, cfg.batch_s), k) for k in range(len(self.gws)))
        order = [self.gws[k] for _p, k in phases]
        offsets = [p for p, _k in phases]
        # The centre's wall clock at t0: a tick's samples end at its due time on it, so a
        # gateway's readings stay one period apart from batch to batch however late a tick is
        # dealt (the wall clock at the tick would make a late tick and the next overlap, and a
        # repeated (sensor, ts) is stored once).
        wall0 = time.time() - (time.monotonic() - self.t0)
        rnd, k = 0, 0
        while True:
            due = self.t0 + offsets[k] + rnd * cfg.batch_s
            now = time.monotonic()
            if due - self.t0 >= cfg.duration_s:
                return
            if due > now:
                await asyncio.sleep(max(due - now, 0.01))  # ticks dealt in slices of ≥ 10 ms
                continue
            self.tick(order[k], loop, now - self.t0, round((wall0 + due - self.t0) * 1000))
            k += 1
            if k == len(order):
                rnd, k = rnd + 1, 0

    def tick(
        self, gw: SimGateway, loop: asyncio.AbstractEventLoop, elapsed: float, end_ms: int
    ) -> None:
        """One gateway's period, whose samples end at `end_ms` (Unix ms, the centre's clock):
        connect (first tick), ride out its outage, sample, encode, publish or hold back."""
        if gw.client is None:
            _connect(gw, loop, self.port, self.stats)
        assert gw.client is not None
        in_outage = gw.outage is not None and gw.outage[0] <= elapsed < gw.outage[1]
        if in_outage and not gw.down:
            gw.client.disconnect()
            gw.down, gw.connected = True, False
            # what was in flight is replayed after the outage: not a live message any more
            gw.outbox = {s: (p, f, n, False) for s, (p, f, n, _live) in gw.outbox.items()}
        elif not in_outage and gw.down:
            gw.down = False
            gw.client.reconnect()  # on_connect replays the outbox, oldest first
        elif not gw.down:
            gw.client.loop_misc()  # keepalive
        items = gw.batch(end_ms, self.samples, self.period_ms, self.noise)
        self.stats.generated += len(items)
        live = not gw.down
        while items:
            floor = min(gw.outbox, default=gw.seq)
            payload, n = gw.encode(items, floor)
            gw.outbox[gw.seq] = (payload, None, n, live)
            if len(gw.outbox) > MAX_OUTBOX:
                raise RuntimeError(f"{gw.gw}: outbox over {MAX_OUTBOX} messages (ingest stalled?)")
            if gw.connected:
                _publish(gw, gw.seq, self.stats)
            # else held back: on_connect publishes the outbox
            gw.seq += 1
            items = items[n:]


async def drain(gws: list[SimGateway], stats: Stats, seconds: float) -> int:
    """Wait for the acks of everything sent; re-send what is still unconfirmed (as the gateway
    does after its ack timeout). Returns the messages still unconfirmed at the end."""
    deadline = time.monotonic() + seconds
    resent = False
    misc_at = 0.0
    while time.monotonic() < deadline:
        left = sum(len(g.outbox) for g in gws)
        if not left:
            return 0
        if time.monotonic() - misc_at >= 5:  # keepalive while waiting
            misc_at = time.monotonic()
            for g in gws:
                if g.client is not None:
                    g.client.loop_misc()
        if not resent and time.monotonic() > deadline - seconds / 2:
            for g in gws:
                if g.client is None or not g.connected:
                    continue
                for seq in sorted(g.outbox):
                    _publish(g, seq, stats)
                    stats.republished += 1
            resent = True
        await asyncio.sleep(0.5)
    return sum(len(g.outbox) for g in gws)


async def generate(
    gws: list[SimGateway], cfg: SoakConfig, port: int, t0: float, stats: Stats, rng: random.Random
) -> int:
    """Run these gateways until the end of the run (one scheduler), then drain their outboxes;
    returns the messages still unconfirmed."""
    await Scheduler(gws, cfg, port, t0, stats, rng).run()
    for g in gws:  # a gateway whose outage runs to the end of the run comes back to drain
        if g.down and g.client is not None:
            g.down = False
            g.client.reconnect()
    unconfirmed = await drain(gws, stats, cfg.drain_s)
    for g in gws:
        if g.client is not None:
            g.client.disconnect()
    await asyncio.sleep(0.2)
    return unconfirmed


GatewaySpec = tuple[
    str, str, list[tuple[str, str, float]], float, tuple[float, float] | None, int, str
]


def _spec(g: SimGateway) -> GatewaySpec:
    return (g.site, g.gw, g.sensors, g.skew.total_seconds(), g.outage, g.epoch, g.wire)


def _generator_process(
    specs: list[GatewaySpec], cfg: SoakConfig, port: int, start: Any, seed: int, q: Any
) -> None:
    """One load-generator process (spawned): its slice of the gateways on its own event loop,
    reporting "ready" once loaded, then a StatsDelta every second and ("done", unconfirmed) at
    the end.

    `start` (a shared double, 0 until then) receives the parent's time.monotonic() at the start
    of the run, once every process is ready (a spawned process takes seconds to import on a
    busy machine: none of that is counted in the run). CLOCK_MONOTONIC is one clock for every
    process of the host, so all slices keep the same schedule; each latency is measured inside
    the process that sent the message and got its ack, so none crosses processes."""
    gws = [SimGateway(site, gw, sensors, timedelta(seconds=skew), outage, epoch, wire)
           for site, gw, sensors, skew, outage, epoch, wire in specs]  # fmt: skip
    stats = Stats()
    q.put(("ready", os.getpid()))
    deadline = time.monotonic() + 300
    while start.value == 0.0:  # bounded: the parent gives up on us well before
        if time.monotonic() > deadline:
            return
        time.sleep(0.01)
    t0 = float(start.value)

    async def main() -> int:
        since: dict[str, int] = {}
        job = asyncio.create_task(generate(gws, cfg, port, t0, stats, random.Random(seed)))
        while not job.done():
            await asyncio.wait({job}, timeout=1.0)
            q.put(stats.take(since))
        q.put(stats.take(since))
        return job.result()

    try:
        q.put(("done", asyncio.run(main())))
    except BaseException as exc:
        q.put(("failed", repr(exc)))
        raise


@dataclass
class Generators:
    """The load-generator processes, loaded and waiting for the start."""

    procs: list[Any]
    q: Any
    start: Any

    @classmethod
    def spawn(cls, gws: list[SimGateway], cfg: SoakConfig, port: int, stats: Stats) -> Generators:
        """`cfg.generators` processes, gateway k in process k mod n; returns once every one has
        loaded its gateways (bounded: 120 s)."""
        ctx = multiprocessing.get_context("spawn")  # no fork of a process with an event loop
        q, start = ctx.Queue(), ctx.Value("d", 0.0)
        n = cfg.generators
        procs = [
            ctx.Process(target=_generator_process, daemon=True, name=f"soak-gen-{k}",
                        args=([_spec(g) for g in gws[k::n]], cfg, port, start, cfg.seed + k, q))
            for k in range(n)
        ]  # fmt: skip
        for p in procs:
            p.start()
        stats.generator_pids = [p.pid for p in procs if p.pid is not None]
        self = cls(procs, q, start)
        ready, limit = 0, time.monotonic() + 120
        try:
            while ready < n:
                item = self._next(limit, "did not load its gateways")
                if item is not None and item[0] == "ready":
                    ready += 1
        except BaseException:
            self.stop()
            raise
        return self

    def _next(self, limit: float, what: str) -> Any:
        if time.monotonic() > limit:
            raise RuntimeError(f"a load-generator process {what}")
        try:
            return self.q.get(True, 1.0)
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in self.procs):
                raise RuntimeError("a load-generator process died") from None
            return None

    def go(self, t0: float) -> None:
        """Start every process's schedule at `t0` (this process's time.monotonic())."""
        self.start.value = t0

    async def collect(self, cfg: SoakConfig, t0: float, stats: Stats) -> int:
        """Merge the processes' reports into `stats` as they come (so the intervals' figures are
        the whole fleet's) until all have drained; returns the messages still unconfirmed."""
        unconfirmed, done = 0, 0
        limit = t0 + cfg.duration_s + cfg.drain_s + 120  # bounded: a stuck process is an error
        try:
            while done < len(self.procs):
                item = await asyncio.to_thread(self._next, limit, "did not finish")
                if item is None:
                    continue
                if isinstance(item, StatsDelta):
                    stats.add(item)
                elif item[0] == "done":
                    unconfirmed += int(item[1])
                    done += 1
                else:
                    raise RuntimeError(f"a load-generator process failed: {item[1]}")
        finally:
            self.stop()
        return unconfirmed

    def stop(self) -> None:
        """Wait for the processes briefly; kill what is left."""
        for p in self.procs:
            p.join(10)
            if p.is_alive():
                p.kill()


# --- the platform under test --------------------------------------------------------------------


def _admin_url() -> str:
    url = os.environ.get("OXY_BENCH_DATABASE_URL") or os.environ.get("OXY_TEST_DATABASE_URL")
    return url or "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def scratch_database() -> Iterator[str]:
    """A fresh database on the bench server, dropped afterwards."""
    admin = _admin_url()
    name = f"oxy_soak_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        if conn.execute("SHOW autovacuum").fetchone() != ("on",):
            # A test server may run without it; production never should: the queue tables
            # (rollup_dirty, tank_windows, sensor_latest) bloat with dead rows and every
            # rollup flush and page read slows down hour by hour (docs/scaling.md).
            print("WARNING: autovacuum is off on the bench server: not production-shaped, "
                  "queue tables bloat over a long run", file=sys.stderr)  # fmt: skip
    params = conninfo_to_dict(admin)
    params["dbname"] = name
    try:
        yield make_conninfo(**params)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(url: str, cfg: SoakConfig) -> str:
    """Migrate and seed a national country with at least `cfg.gateways` facilities; returns the
    accounts' password."""
    from demo.national import NATIONAL, NationalScale, seed_national
    from oxy.migrate import migrate

    migrate(url)
    n = max(34, cfg.gateways)
    scale = (
        NATIONAL
        if n == NATIONAL.facilities
        else NationalScale(facilities=n, tanks=n * 3 // 2, suppliers=max(3, n // 30))
    )
    scale = NationalScale(
        scale.facilities,
        scale.tanks,
        scale.suppliers,
        history_days=cfg.history_days,
        dense_hours=cfg.dense_hours,
    )
    password = "soak-" + uuid.uuid4().hex[:12]
    summary = seed_national(url, scale, password=password)
    if summary.password is None:
        raise SystemExit("the database already holds a national country: give a fresh one")
    return password


def load_gateways(url: str, cfg: SoakConfig, rng: random.Random) -> list[SimGateway]:
    """The first `cfg.gateways` national gateways with their sensors."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT o.code, g.code, s.code, s.unit, coalesce(s.valid_max, 20) "
            "FROM gateways g JOIN organisations o ON o.id = g.facility_id "
            "JOIN sensors s ON s.gateway_id = g.id "
            "WHERE g.code IN (SELECT code FROM gateways WHERE code LIKE 'gw-nat-%%' "
            "                 ORDER BY code LIMIT %s) ORDER BY g.code, s.code",
            (cfg.gateways,),
        ).fetchall()
        # A sensor with history goes on from its last seeded value: a jump at the run's start
        # would be a refill candidate in every tank, refitted at every windows round while the
        # live minutes reach into its context (hours of CPU no real day has).
        last = {
            (sensor, gateway): value
            for sensor, gateway, value in conn.execute(
                "SELECT s.code, g.code, l.value FROM gateways g "
                "JOIN sensors s ON s.gateway_id = g.id "
                "CROSS JOIN LATERAL (SELECT r.value FROM readings r WHERE r.sensor_id = s.id "
                "                    ORDER BY r.ts DESC LIMIT 1) l "
                "WHERE g.code LIKE 'gw-nat-%%'"
            ).fetchall()
        }
    sensors: dict[tuple[str, str], list[tuple[str, str, float]]] = {}
    for site, code, sensor, unit, vmax in rows:
        base = last.get((sensor, code))
        base = float(vmax) * 0.5 / 1.1 if base is None else float(base)
        sensors.setdefault((site, code), []).append((sensor, unit, base))
    epoch = int(time.time() * 1000)
    gws = []
    for (site, code), decl in sensors.items():
        skew = (
            timedelta(seconds=rng.choice((-1, 1)) * rng.uniform(5, 120))
            if rng.random() < cfg.skew_share
            else timedelta(0)
        )
        outage = None
        if rng.random() < cfg.outage_share:
            start = rng.uniform(0.1, 0.6) * cfg.duration_s
            outage = (start, min(start + cfg.outage_s, cfg.duration_s * 0.8))
        gws.append(SimGateway(site, code, decl, skew, outage, epoch, cfg.wire))
    return gws


@dataclass
class Platform:
    """The processes under test."""

    url: str
    broker: Mosquitto
    ingest: subprocess.Popen[bytes]
    ingest_metrics: int
    api: subprocess.Popen[bytes]
    api_port: int
    logs: Path

    def stop(self) -> None:
        """Stop what was started, newest first."""
        for p in (self.api, self.ingest):
            p.terminate()
        for p in (self.api, self.ingest):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        self.broker.close()


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {LOOPBACK}:{port} after {timeout:.0f} s")


def start_platform(url: str) -> Platform:
    """A private broker, one ingest worker and the API, on loopback."""
    broker = Mosquitto()
    logs = Path(tempfile.mkdtemp(prefix="oxy-soak-logs-"))  # kept: read them after a bad run
    metrics, api_port = free_port(), free_port()
    env = {**os.environ, "OXY_DATABASE_URL": url, "OXY_MQTT_URL": broker.url,
           "OXY_METRICS_PORT": str(metrics), "OXY_LOG_LEVEL": "WARNING",
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    oxy = [sys.executable, "-m", "oxy"]
    ingest = subprocess.Popen(
        [*oxy, "ingest", "run", "--client-id", "soak-ingest"], cwd=ROOT, env=env,
        stdout=(logs / "ingest.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    api = subprocess.Popen(
        [*oxy, "api", "run", "--host", LOOPBACK, "--port", str(api_port)], cwd=ROOT, env=env,
        stdout=(logs / "api.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    platform = Platform(url, broker, ingest, metrics, api, api_port, logs)
    try:
        # Generous: on a busy machine the API's start (imports, pool, warm-up) took over 60 s.
        _wait_port(metrics, 180)
        _wait_port(api_port, 180)
        # Ingest's session must hold its subscription before the first gateway publishes.
        deadline = time.monotonic() + 30
        while scrape(metrics, "oxy_ingest_mqtt_connected") < 1:
            if time.monotonic() > deadline:
                raise RuntimeError("ingest did not connect to the broker")
            time.sleep(0.2)
        time.sleep(1.0)
    except RuntimeError:
        platform.stop()
        raise
    return platform


def scrape(port: int, name: str) -> float:
    """One counter/gauge from a /metrics page (0 when absent)."""
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


_HISTOGRAMS = ("oxy_ingest_batch_readings", "oxy_ingest_commit_seconds",
               "oxy_ingest_rollup_flush_seconds")  # fmt: skip


def scrape_histograms(port: int) -> dict[str, tuple[float, float]]:
    """(sum, count) of ingest's histograms that say where the time goes."""
    return {h: (scrape(port, h + "_sum"), scrape(port, h + "_count")) for h in _HISTOGRAMS}


def _mean_since(now: dict[str, tuple[float, float]], then: dict[str, tuple[float, float]],
                name: str) -> float:  # fmt: skip
    ds = now[name][0] - then.get(name, (0.0, 0.0))[0]
    dn = now[name][1] - then.get(name, (0.0, 0.0))[1]
    return ds / dn if dn > 0 else math.nan


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and their children (0 for one gone)."""
    total = 0.0
    for pid in pids:
        with suppress(psutil.NoSuchProcess):
            p = psutil.Process(pid)
            for q in (p, *p.children(recursive=True)):
                with suppress(psutil.NoSuchProcess):
                    t = q.cpu_times()
                    total += t.user + t.system
    return total


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, MB."""
    p = psutil.Process(pid)
    return sum(q.memory_info().rss for q in (p, *p.children(recursive=True))) / 2**20


# How long the oldest rollup work a flush could do has waited: since its minute closed, or since
# it was queued when that was later (a late reading). The open minute's rows are not lag.
_ROLLUP_LAG = """
SELECT coalesce(extract(epoch FROM now() - min(greatest(
    queued_at,
    date_bin(INTERVAL '1 minute', lo, TIMESTAMPTZ '2000-01-03 00:00:00+00') + INTERVAL '1 minute'
))), 0) FROM rollup_dirty
WHERE lo < date_bin(INTERVAL '1 minute', now(), TIMESTAMPTZ '2000-01-03 00:00:00+00')
"""


# --- the jobs and the pages ---------------------------------------------------------------------


@dataclass
class JobTimes:
    """Seconds of each run of the periodic jobs, per interval."""

    alerts: list[float] = field(default_factory=list)
    coordination: list[float] = field(default_factory=list)
    api: list[float] = field(default_factory=list)
    api_errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    # Every whole-country alert round of the run: (started, s after the start; seconds), the
    # one in progress (its start) and the rounds that failed (why).
    alert_rounds: list[tuple[float, float]] = field(default_factory=list)
    # Per round, before it ran: the stored windows of the open day and the 7 before it, by day
    # and `computed_at` stamp (day, age in s, count), newest first: which rounds of the API's job
    # stored them, and how long ago.
    alert_stamps: list[list[tuple[Any, float, int]]] = field(default_factory=list)
    # Per finished round: the accounting windows it computed and stored itself (rows stamped with
    # its `now`), by day (day, count): what the API's windows-ahead job had not kept fresh for it.
    alert_days: list[list[tuple[Any, int]]] = field(default_factory=list)
    alert_running: float | None = None
    alert_failures: list[str] = field(default_factory=list)


async def run_jobs(url: str, cfg: SoakConfig, t0: float, times: JobTimes) -> None:
    """The alert evaluation (whole country) and the coordination sync, as their services run
    them, every `cfg.alert_every_s`; each round timed."""
    from api.accounting.windows import report_day_of
    from api.alerts.service import run_once as alerts_once
    from api.coordination.service import run_once as coordination_once
    from api.settings import load_centre_settings
    from oxy.settings import Settings

    centre = load_centre_settings(Settings(database_url=url))
    acc, alert_cfg = centre.accounting, centre.alerts
    async with (
        await AsyncConnection.connect(url) as conn,
        await AsyncConnection.connect(url, autocommit=True) as coord,
    ):
        await coord.execute("SET TIME ZONE 'UTC'")
        while time.monotonic() - t0 < cfg.duration_s:
            start = time.monotonic()
            times.alert_running = start - t0
            try:
                now = datetime.now(UTC)
                cur = await conn.execute(
                    "SELECT report_day, computed_at, count(*) FROM tank_windows"
                    " WHERE report_day >= %s GROUP BY 1, 2 ORDER BY 1 DESC, 2 DESC",
                    (report_day_of(now, acc) - timedelta(days=7),),
                )
                times.alert_stamps.append(
                    [(d, (now - at).total_seconds(), int(n)) for d, at, n in await cur.fetchall()]
                )
                await conn.commit()
                await alerts_once(conn, now, alert_cfg, acc, {})
                await conn.commit()
                cur = await conn.execute(
                    "SELECT report_day, count(*) FROM tank_windows WHERE computed_at = %s"
                    " GROUP BY 1 ORDER BY 1",
                    (now,),
                )
                times.alert_days.append([(d, int(n)) for d, n in await cur.fetchall()])
                await conn.commit()
            except psycopg.Error as exc:  # reported with the figures, never hidden
                await conn.rollback()
                times.alert_failures.append(f"round started at {start - t0:.0f} s: {exc!r}"[:300])
            else:
                times.alerts.append(time.monotonic() - start)
                times.alert_rounds.append((start - t0, time.monotonic() - start))
            times.alert_running = None
            start = time.monotonic()
            await coordination_once(coord, acc, datetime.now(UTC))
            times.coordination.append(time.monotonic() - start)
            wait = cfg.alert_every_s - (time.monotonic() - start)
            await asyncio.sleep(max(0.0, min(wait, cfg.duration_s - (time.monotonic() - t0))))


async def _login(client: httpx.AsyncClient, username: str, password: str) -> None:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if token is None:
        raise RuntimeError("no CSRF token on /login")
    r = await client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token.group(1)}
    )
    if r.url.path == "/login":
        raise RuntimeError(f"login of {username} failed")


async def run_pages(
    base: str, url: str, password: str, cfg: SoakConfig, t0: float, times: JobTimes
) -> None:
    """BYT's national view, an SYT's province and a facility's tanks, `cfg.api_rps` a second."""
    with psycopg.connect(url) as conn:
        syt = conn.execute("SELECT id FROM organisations WHERE code = 'SYT-79'").fetchone()
        fac = conn.execute(
            "SELECT id, code FROM organisations WHERE code LIKE 'NAT-79-%%' ORDER BY code LIMIT 1"
        ).fetchone()
    assert syt is not None and fac is not None
    who = {"nat-byt": ["/byt", "/coordination"],
           "nat-syt-79": [f"/provinces/{syt[0]}/facilities", f"/provinces/{syt[0]}/report"],
           str(fac[1]).lower(): [f"/facilities/{fac[0]}/tanks"]}  # fmt: skip
    clients = {u: httpx.AsyncClient(base_url=base, follow_redirects=True, timeout=60) for u in who}
    logged_in: set[str] = set()
    pages = [(u, p) for u, ps in who.items() for p in ps]
    k = 0
    try:
        while time.monotonic() - t0 < cfg.duration_s:
            user, path = pages[k % len(pages)]
            k += 1
            start = time.monotonic()
            try:
                if user not in logged_in:  # a failed login is an error, tried again next time
                    await _login(clients[user], user, password)
                    logged_in.add(user)
                r = await clients[user].get(path)
                ok = r.status_code == 200 and r.url.path == path
                why = f"GET {path} as {user}: {r.status_code} at {r.url.path}"
            except (httpx.HTTPError, RuntimeError) as exc:
                ok, why = False, f"GET {path} as {user}: {exc!r}"
            times.api.append(time.monotonic() - start)
            if not ok:
                times.api_errors += 1
                if len(times.error_samples) < 5:
                    times.error_samples.append(why)
            await asyncio.sleep(max(0.0, 1 / cfg.api_rps - (time.monotonic() - start)))
    finally:
        for c in clients.values():
            await c.aclose()


# --- the run ------------------------------------------------------------------------------------


def _pct(xs: list[float], q: int) -> float:
    if not xs:
        return math.nan
    if len(xs) == 1:
        return xs[0]
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1]


@dataclass
class Interval:
    """The figures of one reporting interval."""

    t: float
    readings_per_s: float
    ingest_rss_mb: float
    broker_rss_mb: float
    db_growth_mb: float
    p50_s: float
    p99_s: float
    rollup_lag_s: float
    alert_eval_s: float
    coordination_s: float
    api_p95_s: float
    api_errors: int
    replayed: int
    # Where publish → commit goes, seen from ingest (means over the interval): readings per
    # committed batch, write + commit of one batch, one rollup flush (plain PostgreSQL).
    batch_readings: float = math.nan
    commit_ms: float = math.nan
    rollup_flush_s: float = math.nan
    # CPU used (all cores: 100 % = one core) by ingest, the broker and the load generator.
    ingest_cpu_pct: float = math.nan
    broker_cpu_pct: float = math.nan
    generator_cpu_pct: float = math.nan
    seconds: float = math.nan  # the interval's length
    generated: int = 0  # readings the gateways generated in it

    def line(self) -> str:
        """One printed row; a figure not measured in the interval shows as "—"."""
        cells = (
            (self.t, 7, 1), (self.readings_per_s, 9, 1), (self.ingest_rss_mb, 9, 1),
            (self.broker_rss_mb, 9, 1), (self.db_growth_mb, 9, 1), (self.p50_s, 8, 1000),
            (self.p99_s, 8, 1000), (self.rollup_lag_s, 8, 1), (self.alert_eval_s, 8, 1),
            (self.coordination_s, 7, 1), (self.api_p95_s, 8, 1000),
        )  # fmt: skip
        text = " ".join(
            f"{'—':>{w}}" if math.isnan(v) else f"{v * k:>{w}.{2 if k == 1 and v < 10 else 0}f}"
            for v, w, k in cells
        )
        ingest = " ".join(
            f"{'—':>{w}}" if math.isnan(v) else f"{v:>{w}.{d}f}"
            for v, w, d in ((self.batch_readings, 7, 0), (self.commit_ms, 7, 1),
                            (self.rollup_flush_s, 7, 2), (self.ingest_cpu_pct, 6, 0),
                            (self.broker_cpu_pct, 6, 0), (self.generator_cpu_pct, 6, 0))
        )  # fmt: skip
        return f"{text} {self.api_errors:>4} {self.replayed:>6} {ingest}"


HEADER = (
    f"{'t s':>7} {'rdg/s':>9} {'ingestMB':>9} {'brokerMB':>9} {'dbΔ MB':>9} {'p50 ms':>8} "
    f"{'p99 ms':>8} {'rollup s':>8} {'alert s':>8} {'coord s':>7} {'api95ms':>8} {'err':>4} "
    f"{'replay':>6} {'batch':>7} {'commitms':>7} {'flush s':>7} {'ing%':>6} {'brk%':>6} "
    f"{'gen%':>6}"
)


@dataclass
class SoakResult:
    """Everything a caller (the test, the docs) needs from a run."""

    intervals: list[Interval]
    generated: int
    stored: int
    unconfirmed: int
    gateways: int
    outage_gateways: int
    skewed_gateways: int
    replayed: int
    republished: int
    api_requests: int
    api_errors: int
    error_samples: list[str]
    duration_s: float
    # Every whole-country alert round: (started, s after the start; seconds), including the one
    # that finished after the end; the one still unfinished at the end (started; ran for), the
    # rounds that failed.
    alert_rounds: list[tuple[float, float]] = field(default_factory=list)
    alert_unfinished: tuple[float, float] | None = None
    alert_failures: list[str] = field(default_factory=list)
    # The load generator's CPU seconds over the intervals and the readings it generated then.
    generator_cpu_s: float = math.nan
    generator_readings: int = 0
    wire: str = "v2"
    not_stored: list[str] = field(default_factory=list)  # received, not stored: why
    alert_stamps: list[list[tuple[Any, float, int]]] = field(default_factory=list)  # see JobTimes
    alert_days: list[list[tuple[Any, int]]] = field(default_factory=list)  # see JobTimes


async def _soak(platform: Platform, cfg: SoakConfig, password: str, out: Any) -> SoakResult:
    rng = random.Random(cfg.seed)
    gws = load_gateways(platform.url, cfg, rng)
    stats, times = Stats(), JobTimes()
    with psycopg.connect(platform.url, autocommit=True) as conn:
        size0 = _one(conn, "SELECT pg_database_size(current_database())")
        row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        since = row[0]  # the seeded history was received before this
    # Always in processes of their own, even one: the alert rounds and the page loads below run
    # on this event loop, and a gateway sharing it would count their time as publish → commit.
    gens = await asyncio.to_thread(Generators.spawn, gws, cfg, platform.broker.port, stats)
    t0 = time.monotonic()
    gens.go(t0)
    fleet = asyncio.create_task(gens.collect(cfg, t0, stats))
    jobs = asyncio.create_task(run_jobs(platform.url, cfg, t0, times))
    tasks = [fleet, jobs]
    base = f"http://{LOOPBACK}:{platform.api_port}"
    tasks.append(asyncio.create_task(run_pages(base, platform.url, password, cfg, t0, times)))
    print(
        f"soak: {len(gws)} gateways, {sum(len(g.sensors) for g in gws)} sensors at {cfg.hz} Hz "
        f"(≈{sum(len(g.sensors) for g in gws) * cfg.hz:,.0f} readings/s), {cfg.duration_s:.0f} s"
        f", {cfg.generators} generator process(es)",
        file=out,
    )
    print(HEADER, file=out, flush=True)
    intervals: list[Interval] = []
    api_requests = 0
    last_readings, last_t, last_size = 0.0, t0, size0
    last_generated = 0
    last_hist = scrape_histograms(platform.ingest_metrics)
    cpu_of = {"ingest": [platform.ingest.pid], "broker": [platform.broker.proc.pid]}
    last_cpu = {k: cpu_s(v) for k, v in cpu_of.items()}
    last_cpu["gen"] = cpu_s(stats.generator_pids)  # their imports are not the run's
    with psycopg.connect(platform.url, autocommit=True) as conn:
        while time.monotonic() - t0 < cfg.duration_s:
            await asyncio.sleep(min(cfg.interval_s, cfg.duration_s - (time.monotonic() - t0)))
            for t in tasks:
                if t.done() and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
            now = time.monotonic()
            readings = scrape(platform.ingest_metrics, "oxy_ingest_readings_total")
            size = _one(conn, "SELECT pg_database_size(current_database())")
            hist = scrape_histograms(platform.ingest_metrics)
            cpu = {k: cpu_s(v) for k, v in cpu_of.items()}
            cpu["gen"] = cpu_s(stats.generator_pids)
            pct = {k: (cpu[k] - last_cpu[k]) / (now - last_t) * 100 for k in cpu}
            intervals.append(
                Interval(
                    t=now - t0,
                    readings_per_s=(readings - last_readings) / (now - last_t),
                    ingest_rss_mb=rss_mb(platform.ingest.pid),
                    broker_rss_mb=rss_mb(platform.broker.proc.pid),
                    db_growth_mb=(size - last_size) / 2**20,
                    p50_s=_pct(stats.latencies, 50),
                    p99_s=_pct(stats.latencies, 99),
                    rollup_lag_s=_one(conn, _ROLLUP_LAG),
                    alert_eval_s=max(times.alerts, default=math.nan),
                    coordination_s=max(times.coordination, default=math.nan),
                    api_p95_s=_pct(times.api, 95),
                    api_errors=times.api_errors,
                    replayed=stats.replayed,
                    batch_readings=_mean_since(hist, last_hist, "oxy_ingest_batch_readings"),
                    commit_ms=_mean_since(hist, last_hist, "oxy_ingest_commit_seconds") * 1000,
                    rollup_flush_s=_mean_since(hist, last_hist, "oxy_ingest_rollup_flush_seconds"),
                    ingest_cpu_pct=pct["ingest"],
                    broker_cpu_pct=pct["broker"],
                    generator_cpu_pct=pct["gen"],
                    seconds=now - last_t,
                    generated=stats.generated - last_generated,
                )
            )
            last_hist, last_cpu = hist, cpu
            print(intervals[-1].line(), file=out, flush=True)
            last_readings, last_t, last_size = readings, now, size
            last_generated = stats.generated
            stats.latencies.clear()
            times.alerts.clear()
            times.coordination.clear()
            api_requests += len(times.api)
            times.api.clear()
    # The whole-country alert round in progress at the end is waited for (at most
    # cfg.alert_wait_s, while the gateways drain), or reported as unfinished: never left out.
    alert_unfinished = None
    await asyncio.wait({jobs}, timeout=cfg.alert_wait_s)
    if not jobs.done():
        if times.alert_running is not None:
            ran = time.monotonic() - t0 - times.alert_running
            alert_unfinished = (times.alert_running, ran)
        jobs.cancel()
        with suppress(asyncio.CancelledError):
            await jobs
    elif jobs.exception() is not None:
        raise jobs.exception()  # type: ignore[misc]
    results = await asyncio.gather(*(t for t in tasks if t is not jobs), return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    unconfirmed = fleet.result()
    gen_cpu = sum(i.generator_cpu_pct / 100 * i.seconds for i in intervals)
    gen_readings = sum(i.generated for i in intervals)
    with psycopg.connect(platform.url) as conn:
        stored = _one(
            conn,
            "SELECT count(*) FROM readings r JOIN sensors s ON s.id = r.sensor_id "
            "JOIN gateways g ON g.id = s.gateway_id "
            "WHERE g.code = ANY(%s) AND r.received_at >= %s",
            ([g.gw for g in gws], since),
        )
        # What was received and not stored as a new reading, by why (accounting for a loss).
        not_stored = (
            [
                f"{n} in conflict with a stored reading ({old} of them with the seeded history)"
                for n, old in conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM readings r"
                    " WHERE r.sensor_id = c.sensor_id AND r.ts = c.ts AND r.received_at < %s))"
                    " FROM reading_conflicts c WHERE c.received_at >= %s",
                    (since, since),
                ).fetchall()
                if n
            ]
            + [
                f"{n} readings or messages quarantined: {reason[:160]}"
                for reason, n in conn.execute(
                    "SELECT reason, count(*) FROM quarantine WHERE received_at >= %s"
                    " GROUP BY reason ORDER BY count(*) DESC LIMIT 5",
                    (since,),
                ).fetchall()
            ]
            + [
                f"{n} dead-lettered messages: {reason[:160]}"
                for reason, n in conn.execute(
                    "SELECT reason, count(*) FROM dead_letters WHERE received_at >= %s"
                    " GROUP BY reason ORDER BY count(*) DESC LIMIT 5",
                    (since,),
                ).fetchall()
            ]
        )
    return SoakResult(
        intervals,
        stats.generated,
        int(stored),
        unconfirmed,
        len(gws),
        sum(g.outage is not None for g in gws),
        sum(bool(g.skew) for g in gws),
        stats.replayed,
        stats.republished,
        api_requests,
        times.api_errors,
        times.error_samples,
        cfg.duration_s,
        times.alert_rounds,
        alert_unfinished,
        times.alert_failures,
        gen_cpu,
        gen_readings,
        cfg.wire,
        not_stored,
        times.alert_stamps,
        times.alert_days,
    )


def _one(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> float:
    row = conn.execute(sql, params).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def _alert_text(seconds: float, unfinished: bool) -> str:
    """The slowest round: "—" none finished, "unfinished" the only one did not, "N s +" at least."""
    if math.isnan(seconds):
        return "—"
    if math.isinf(seconds):
        return "unfinished"
    return f"{seconds:.2f} s" + (" +" if unfinished else "")


def summary(res: SoakResult, out: Any) -> None:
    """The targets of issue 22, measured."""
    warm = res.intervals[1:] or res.intervals
    rss = [i.ingest_rss_mb for i in warm]
    growth = (rss[-1] - rss[0]) / rss[0] * 100 if rss and rss[0] else math.nan
    p99 = max((i.p99_s for i in res.intervals if not math.isnan(i.p99_s)), default=math.nan)
    lag = max(i.rollup_lag_s for i in res.intervals)
    # Every round, including one that finished after the last interval; one still unfinished
    # at the end counts as at least the time it had run.
    alert = max((secs for _at, secs in res.alert_rounds), default=math.nan)
    if res.alert_unfinished is not None:
        alert = max(alert, res.alert_unfinished[1]) if not math.isnan(alert) else math.inf
    print(
        f"readings generated {res.generated:,}, stored {res.stored:,}, "
        f"lost {res.generated - res.stored:,}; messages unconfirmed {res.unconfirmed}, "
        f"re-sent after the ack timeout {res.republished}; "
        f"{res.outage_gateways} gateways replayed {res.replayed} messages after an outage, "
        f"{res.skewed_gateways} ran with a skewed clock; API errors {res.api_errors}; "
        f"{res.generated / res.duration_s:,.0f} readings/s generated",
        file=out,
    )
    for why in res.not_stored:
        print(f"  not stored: {why}", file=out)
    for why in res.error_samples:
        print(f"  API error: {why}", file=out)
    rounds = ", ".join(f"{secs:.1f} s (at {at:.0f} s)" for at, secs in res.alert_rounds)
    print(f"alert evaluation of the whole country, per round: {rounds or 'none finished'}",
          file=out)  # fmt: skip
    if res.alert_days:
        print("  accounting windows each round computed itself (not kept fresh by the API's job): "
              + ", ".join(f"{sum(n for _d, n in got):,}" for got in res.alert_days),
              file=out)  # fmt: skip
    for i, stamps in enumerate(res.alert_stamps):
        ages = "; ".join(f"{d:%m-%d} {n:,} at {age:.0f} s" for d, age, n in stamps[:12])
        print(f"  round {i + 1} stored before (day count age): {ages or 'none'}", file=out)
        if i < len(res.alert_days):
            mine = ", ".join(f"{d:%m-%d} {n:,}" for d, n in res.alert_days[i])
            print(f"  round {i + 1} computed: {mine or 'none'}", file=out)
    if res.alert_unfinished is not None:
        at, ran = res.alert_unfinished
        print(f"  a round started at {at:.0f} s was still running {ran:.0f} s later and was "
              "stopped (--alert-wait)", file=out)  # fmt: skip
    for why in res.alert_failures:
        print(f"  alert round failed: {why}", file=out)
    if res.generator_readings:
        per_k = res.generator_cpu_s / (res.generator_readings / 1000) * 100
        print(f"load generator (wire {res.wire}): {res.generator_cpu_s:.1f} CPU s for "
              f"{res.generator_readings:,} readings = {per_k:.2f} % of a core per 1,000 "
              "readings/s", file=out)  # fmt: skip
    for name, value, target, ok in (
        ("ingest memory growth after warm-up", f"{growth:.1f} %", "< 5 %", growth < 5),
        ("worst interval p99 publish→commit", f"{p99 * 1000:.0f} ms", "< 1 s", p99 < 1),
        ("worst rollup lag", f"{lag:.1f} s", "≤ 60 s", lag <= 60),
        # "—": no evaluation of the whole country finished within the run
        (
            "slowest alert evaluation (country)",
            _alert_text(alert, res.alert_unfinished is not None),
            "< 5 s",
            alert < 5,
        ),
    ):
        print(f"  {name:<38} {value:>10}  target {target:<7} {'met' if ok else 'NOT MET'}",
              file=out)  # fmt: skip


def run(cfg: SoakConfig, out: Any = sys.stdout) -> SoakResult:
    """Seed (unless a database is given), start the platform, soak, stop; return the figures."""
    with scratch_database() if cfg.database_url is None else _given(cfg.database_url) as url:
        t = time.monotonic()
        password = seed(url, cfg)
        print(f"seeded the national country in {time.monotonic() - t:.0f} s", file=out)
        platform = start_platform(url)
        try:
            res = asyncio.run(_soak(platform, cfg, password, out))
        finally:
            platform.stop()
        summary(res, out)
        print(f"logs of ingest and the API: {platform.logs}", file=out)
        return res


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


def main() -> None:
    """Parse the arguments and run."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gateways", type=int, default=2000)
    p.add_argument("--duration", type=float, default=3600.0, help="seconds")
    p.add_argument("--interval", type=float, default=300.0, help="seconds between rows")
    p.add_argument("--batch-s", type=float, default=5.0)
    p.add_argument("--hz", type=float, default=1.0)
    p.add_argument("--outage-share", type=float, default=0.05)
    p.add_argument("--outage-s", type=float, default=60.0)
    p.add_argument("--skew-share", type=float, default=0.1)
    p.add_argument("--history-days", type=float, default=1.0)
    p.add_argument(
        "--dense-hours",
        type=float,
        default=0.0,
        help="hours of 1 Hz DP history around the last 16:00 cut-off",
    )
    p.add_argument("--database-url", default=None, help="a fresh, empty database to use")
    p.add_argument("--wire", choices=("v2", "v1"), default="v2",
                   help="the gateways' data format: v2 (MessagePack, one base time + offsets, "
                        "sensor indices declared by the birth) or v1 (JSON)")  # fmt: skip
    p.add_argument("--alert-wait", type=float, default=300.0,
                   help="seconds the last alert round may take after the end")  # fmt: skip
    p.add_argument("--generators", type=int, default=1,
                   help=f"load-generator processes (1–{MAX_GENERATORS}), each a slice of the "
                        "gateways")  # fmt: skip
    a = p.parse_args()
    try:
        cfg = SoakConfig(
            gateways=a.gateways, duration_s=a.duration, interval_s=a.interval,
            batch_s=a.batch_s, hz=a.hz, outage_share=a.outage_share, outage_s=a.outage_s,
            skew_share=a.skew_share, history_days=a.history_days, dense_hours=a.dense_hours,
            database_url=a.database_url,
            generators=a.generators, wire=a.wire, alert_wait_s=a.alert_wait,
        )  # fmt: skip
    except ValueError as exc:
        sys.exit(f"soak: {exc}")
    run(cfg)


if __name__ == "__main__":
    main()
