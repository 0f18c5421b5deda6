"""Soak: a national day's telemetry through the real broker and ingest into the real database,
with the API serving pages and the alert and coordination jobs running (issue 22).

    # the documented form: 2,000 gateways, 3,000 tanks × 2 sensors at 1 Hz = 6,000 readings/s,
    # one hour, figures every 5 minutes (seeds the national country into a scratch database),
    # the gateways spread over 4 generator processes (one reached only 4,020 readings/s)
    OXY_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/soak.py --gateways 2000 --generators 4 --duration 3600 --interval 300

    # a short form (what tests/test_soak.py runs, at a reduced rate)
    .venv/bin/python bench/soak.py --gateways 40 --generators 2 --duration 60 --interval 20

The load generator is asyncio: every gateway is one coroutine with its own MQTT connection
(paho driven by the event loop's reader/writer callbacks, no thread per client). With
`--generators N` the gateways are dealt over N spawned processes (gateway k to process k mod N),
each with its own event loop (one process by default: never this process's loop, which runs
the alert rounds and the page loads, so their time is never counted as publish → commit);
every second each reports its latencies and counters to this process, which merges them into
the interval's figures. A latency is measured inside the process
that published the message and received its ack (time.monotonic, CLOCK_MONOTONIC: one clock for
the whole host, which also gives every process the same start), so none mixes clocks. Like a real
gateway it samples its sensors at `--hz`, publishes one QoS 1 message per `--batch-s` built with
the contract's encoder (`oxy.contract.encode_data`, with the end-to-end acknowledgement's epoch
and floor), keeps every message in its outbox until ingest's retained ack watermark covers it,
and re-sends what is not confirmed. `--outage-share` of the gateways lose their connection for
`--outage-s` and replay their outbox on reconnecting; `--skew-share` run with a clock off by up
to ±2 minutes. Publish → commit is measured by the gateway: from the first publish of a message
to the ack that confirms it (so it includes the ack's way back). The last three columns say
where that time goes on the ingest side: readings per committed batch, the mean write + commit
of a batch, and the mean rollup flush (plain PostgreSQL).

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
    TopicKind,
    ack_topic,
    decode_ack,
    encode_data,
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
    database_url: str | None = None
    drain_s: float = 60.0
    seed: int = 22
    generators: int = 1  # processes of the load generator (each a slice of the gateways)

    def __post_init__(self) -> None:
        if not 1 <= self.gateways <= MAX_GATEWAYS:
            raise ValueError(f"--gateways must be between 1 and {MAX_GATEWAYS}")
        if not 1 <= self.generators <= min(MAX_GENERATORS, self.gateways):
            raise ValueError(
                f"--generators must be between 1 and {MAX_GENERATORS} (and at most --gateways)"
            )
        if self.duration_s <= 0 or self.duration_s > 24 * 3600 or self.interval_s <= 0:
            raise ValueError("--duration must be in (0, 86400] s and --interval > 0")
        if not 0 < self.hz <= 10 or self.batch_s < 1 / self.hz:
            raise ValueError("--hz must be in (0, 10] and --batch-s at least one sample")


# --- one simulated gateway ----------------------------------------------------------------------


class LoopHelper:
    """Drive one paho client from the asyncio loop (paho's documented external-loop hooks)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: mqtt.Client) -> None:
        self.loop = loop
        self.client = client
        self.misc: asyncio.Task[None] | None = None
        client.on_socket_open = self._open
        client.on_socket_close = self._close
        client.on_socket_register_write = self._want_write
        client.on_socket_unregister_write = self._no_write

    def _open(self, client: mqtt.Client, _u: Any, sock: Any) -> None:
        self.loop.add_reader(sock, client.loop_read)
        self.misc = self.loop.create_task(self._misc())

    def _close(self, client: mqtt.Client, _u: Any, sock: Any) -> None:
        with suppress(Exception):
            self.loop.remove_reader(sock)
        if self.misc is not None:
            self.misc.cancel()

    def _want_write(self, client: mqtt.Client, _u: Any, sock: Any) -> None:
        self.loop.add_writer(sock, client.loop_write)

    def _no_write(self, client: mqtt.Client, _u: Any, sock: Any) -> None:
        with suppress(Exception):
            self.loop.remove_writer(sock)

    async def _misc(self) -> None:
        while self.client.loop_misc() == mqtt.MQTT_ERR_SUCCESS:
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                break


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


@dataclass
class SimGateway:
    """One gateway: its sensors, clock skew, outage window and outbox."""

    site: str
    gw: str
    sensors: list[tuple[str, str, float]]  # code, unit, base value
    skew: timedelta
    outage: tuple[float, float] | None  # seconds after start: (from, to)
    epoch: int
    seq: int = 0
    acked: int = -1
    # seq -> (payload, first publish (monotonic) or None when held back, readings, live)
    outbox: dict[int, tuple[bytes, float | None, int, bool]] = field(default_factory=dict)
    client: mqtt.Client | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    def readings(self, wall: datetime, samples: int, hz: float, rng: random.Random) -> list[Any]:
        """`samples` readings of every sensor ending at `wall` (the gateway's own clock)."""
        out = []
        for k in range(samples):
            ts = wall + self.skew - timedelta(seconds=(samples - 1 - k) / hz)
            for code, unit, base in self.sensors:
                out.append(
                    Reading(sensor=code, ts=ts, value=round(base + rng.gauss(0, 0.05), 3),
                            unit=unit)
                )  # fmt: skip
        return out


def _connect(gw: SimGateway, loop: asyncio.AbstractEventLoop, port: int, stats: Stats) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"soak-{gw.gw}",
                         protocol=mqtt.MQTTv5)  # fmt: skip
    client.max_inflight_messages_set(100)
    LoopHelper(loop, client)

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if not rc.is_failure:
            c.subscribe(ack_topic(gw.site, gw.gw), qos=1)
            gw.connected.set()

    def on_disconnect(c: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any = None) -> None:
        gw.connected.clear()

    def on_message(c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
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


def _publish(gw: SimGateway, seq: int, stats: Stats) -> None:
    payload, first, n, live = gw.outbox[seq]
    assert gw.client is not None
    gw.client.publish(topic(gw.site, gw.gw, TopicKind.DATA), payload, qos=1)
    if first is None:
        gw.outbox[seq] = (payload, time.monotonic(), n, live)
    stats.published_msgs += 1


async def run_gateway(
    gw: SimGateway, cfg: SoakConfig, port: int, t0: float, stats: Stats, rng: random.Random
) -> None:
    """Sample, batch, publish, ride out the outage, replay; until the run's end."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(rng.uniform(0, cfg.batch_s))  # gateways are not in step
    _connect(gw, loop, port, stats)
    with suppress(TimeoutError):
        await asyncio.wait_for(gw.connected.wait(), 10)
    samples = max(1, round(cfg.batch_s * cfg.hz))
    down = False
    while (elapsed := time.monotonic() - t0) < cfg.duration_s:
        in_outage = gw.outage is not None and gw.outage[0] <= elapsed < gw.outage[1]
        if in_outage and not down:
            assert gw.client is not None
            gw.client.disconnect()
            down = True
            # what was in flight is replayed after the outage: not a live message any more
            gw.outbox = {s: (p, f, n, False) for s, (p, f, n, _live) in gw.outbox.items()}
        elif not in_outage and down:
            assert gw.client is not None
            gw.client.reconnect()
            down = False
            with suppress(TimeoutError):
                await asyncio.wait_for(gw.connected.wait(), 10)
            for seq in sorted(gw.outbox):  # the outbox replays, oldest first
                _publish(gw, seq, stats)
        if not down and gw.connected.is_set():  # what waited for the connection goes first
            for seq in sorted(q for q, e in gw.outbox.items() if e[1] is None):
                _publish(gw, seq, stats)
        rs = gw.readings(datetime.now(UTC), samples, cfg.hz, rng)
        stats.generated += len(rs)
        while rs:
            floor = min(gw.outbox, default=gw.seq)
            payload, n = encode_data(gw.gw, gw.seq, datetime.now(UTC) + gw.skew, rs,
                                     epoch=gw.epoch, floor=floor)  # fmt: skip
            gw.outbox[gw.seq] = (payload, None, n, not down)
            if len(gw.outbox) > MAX_OUTBOX:
                raise RuntimeError(f"{gw.gw}: outbox over {MAX_OUTBOX} messages (ingest stalled?)")
            if not down and gw.connected.is_set():
                _publish(gw, gw.seq, stats)
            gw.seq += 1
            rs = rs[n:]
        await asyncio.sleep(cfg.batch_s)


async def drain(gws: list[SimGateway], stats: Stats, seconds: float) -> int:
    """Wait for the acks of everything sent; re-send what is still unconfirmed (as the gateway
    does after its ack timeout). Returns the messages still unconfirmed at the end."""
    deadline = time.monotonic() + seconds
    resent = False
    while time.monotonic() < deadline:
        left = sum(len(g.outbox) for g in gws)
        if not left:
            return 0
        if not resent and time.monotonic() > deadline - seconds / 2:
            for g in gws:
                for seq in sorted(g.outbox):
                    _publish(g, seq, stats)
                    stats.republished += 1
            resent = True
        await asyncio.sleep(0.5)
    return sum(len(g.outbox) for g in gws)


async def generate(
    gws: list[SimGateway], cfg: SoakConfig, port: int, t0: float, stats: Stats, rng: random.Random
) -> int:
    """Run these gateways until the end of the run, then drain their outboxes; returns the
    messages still unconfirmed."""
    tasks = [asyncio.create_task(run_gateway(g, cfg, port, t0, stats, rng)) for g in gws]
    for r in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(r, BaseException):
            raise r
    unconfirmed = await drain(gws, stats, cfg.drain_s)
    for g in gws:
        if g.client is not None:
            g.client.disconnect()
    await asyncio.sleep(0.2)
    return unconfirmed


GatewaySpec = tuple[str, str, list[tuple[str, str, float]], float, tuple[float, float] | None, int]


def _spec(g: SimGateway) -> GatewaySpec:
    return (g.site, g.gw, g.sensors, g.skew.total_seconds(), g.outage, g.epoch)


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
    gws = [SimGateway(site, gw, sensors, timedelta(seconds=skew), outage, epoch)
           for site, gw, sensors, skew, outage, epoch in specs]  # fmt: skip
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
        scale.facilities, scale.tanks, scale.suppliers, history_days=cfg.history_days
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
    by_gw: dict[str, SimGateway] = {}
    epoch = int(time.time() * 1000)
    for site, code, sensor, unit, vmax in rows:
        gw = by_gw.get(code)
        if gw is None:
            skew = (
                timedelta(seconds=rng.choice((-1, 1)) * rng.uniform(5, 120))
                if rng.random() < cfg.skew_share
                else timedelta(0)
            )
            outage = None
            if rng.random() < cfg.outage_share:
                start = rng.uniform(0.1, 0.6) * cfg.duration_s
                outage = (start, min(start + cfg.outage_s, cfg.duration_s * 0.8))
            gw = by_gw[code] = SimGateway(site, code, [], skew, outage, epoch)
        gw.sensors.append((sensor, unit, float(vmax) * 0.5 / 1.1))
    return list(by_gw.values())


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


_ROLLUP_LAG = """
SELECT coalesce(extract(epoch FROM now() - min(queued_at)), 0) FROM rollup_dirty
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


async def run_jobs(url: str, cfg: SoakConfig, t0: float, times: JobTimes) -> None:
    """The alert evaluation (whole country) and the coordination sync, as their services run
    them, every `cfg.alert_every_s`; each round timed."""
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
            await alerts_once(conn, datetime.now(UTC), alert_cfg, acc, {})
            await conn.commit()
            times.alerts.append(time.monotonic() - start)
            start = time.monotonic()
            await coordination_once(coord, acc, datetime.now(UTC))
            times.coordination.append(time.monotonic() - start)
            await asyncio.sleep(max(0.0, cfg.alert_every_s - (time.monotonic() - start)))


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
    tasks = [fleet, asyncio.create_task(run_jobs(platform.url, cfg, t0, times))]
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
                )
            )
            last_hist, last_cpu = hist, cpu
            print(intervals[-1].line(), file=out, flush=True)
            last_readings, last_t, last_size = readings, now, size
            stats.latencies.clear()
            times.alerts.clear()
            times.coordination.clear()
            api_requests += len(times.api)
            times.api.clear()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    unconfirmed = fleet.result()
    with psycopg.connect(platform.url) as conn:
        stored = _one(
            conn,
            "SELECT count(*) FROM readings r JOIN sensors s ON s.id = r.sensor_id "
            "JOIN gateways g ON g.id = s.gateway_id "
            "WHERE g.code = ANY(%s) AND r.received_at >= %s",
            ([g.gw for g in gws], since),
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
    )


def _one(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> float:
    row = conn.execute(sql, params).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def summary(res: SoakResult, out: Any) -> None:
    """The targets of issue 22, measured."""
    warm = res.intervals[1:] or res.intervals
    rss = [i.ingest_rss_mb for i in warm]
    growth = (rss[-1] - rss[0]) / rss[0] * 100 if rss and rss[0] else math.nan
    p99 = max((i.p99_s for i in res.intervals if not math.isnan(i.p99_s)), default=math.nan)
    lag = max(i.rollup_lag_s for i in res.intervals)
    alert = max((i.alert_eval_s for i in res.intervals if not math.isnan(i.alert_eval_s)),
                default=math.nan)  # fmt: skip
    print(
        f"readings generated {res.generated:,}, stored {res.stored:,}, "
        f"lost {res.generated - res.stored:,}; messages unconfirmed {res.unconfirmed}, "
        f"re-sent after the ack timeout {res.republished}; "
        f"{res.outage_gateways} gateways replayed {res.replayed} messages after an outage, "
        f"{res.skewed_gateways} ran with a skewed clock; API errors {res.api_errors}; "
        f"{res.generated / res.duration_s:,.0f} readings/s generated",
        file=out,
    )
    for why in res.error_samples:
        print(f"  API error: {why}", file=out)
    for name, value, target, ok in (
        ("ingest memory growth after warm-up", f"{growth:.1f} %", "< 5 %", growth < 5),
        ("worst interval p99 publish→commit", f"{p99 * 1000:.0f} ms", "< 1 s", p99 < 1),
        ("worst rollup lag", f"{lag:.1f} s", "≤ 60 s", lag <= 60),
        # "—": no evaluation of the whole country finished within the run
        (
            "slowest alert evaluation (country)",
            "—" if math.isnan(alert) else f"{alert:.2f} s",
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
    p.add_argument("--database-url", default=None, help="a fresh, empty database to use")
    p.add_argument("--generators", type=int, default=1,
                   help=f"load-generator processes (1–{MAX_GENERATORS}), each a slice of the "
                        "gateways")  # fmt: skip
    a = p.parse_args()
    try:
        cfg = SoakConfig(
            gateways=a.gateways, duration_s=a.duration, interval_s=a.interval,
            batch_s=a.batch_s, hz=a.hz, outage_share=a.outage_share, outage_s=a.outage_s,
            skew_share=a.skew_share, history_days=a.history_days, database_url=a.database_url,
            generators=a.generators,
        )  # fmt: skip
    except ValueError as exc:
        sys.exit(f"soak: {exc}")
    run(cfg)


if __name__ == "__main__":
    main()
