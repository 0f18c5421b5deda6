"""Ingest benchmark: raw binary COPY vs a naive consumer vs our ingest end to end, side by side.

    .venv/bin/python bench/ingest.py            # OXY_BENCH_DATABASE_URL, default local postgres
    BENCH_ONLY=v2 OXY_BENCH_BACKENDS=postgresql .venv/bin/python bench/ingest.py   # v1 vs v2

Runs on plain PostgreSQL, then on TimescaleDB (a private cluster from scripts/timescaledb.sh's
build), each against its own raw COPY; OXY_BENCH_BACKENDS=postgresql (or timescaledb) runs one.

Workloads: 50 readings per message (a gateway with 10 sensors batching 5 s at 1 Hz) and the
worst case of 1 reading per message. Throughput runs pre-load the broker (the worker's
persistent session queues everything), then time the drain, so the publisher is not what is
measured. Latency: publish → commit of each message at a steady 10,000 readings/s.
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.batch import Batch, Decoded
from ingest.service import IngestConfig, IngestService, tune_gc
from ingest.writer import Writer, WriteResult
from oxy.broker import BrokerConfig, render
from oxy.contract import (
    DataMessage,
    Reading,
    SensorDecl,
    StateMessage,
    TopicKind,
    encode,
    encode_v2,
    schema_id,
    topic,
)
from oxy.migrate import migrate

ADMIN = os.environ.get("OXY_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SITE, GW = "BV-BENCH", "gw-bv-bench"
TANKS = 50  # 100 sensors
WATERMARKS = os.environ.get("BENCH_WATERMARKS", "1") != "0"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """A private broker with the product configuration."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="oxy-bench-mqtt-"))
        (self.dir / "data").mkdir()
        os.chmod(self.dir, 0o777)
        os.chmod(self.dir / "data", 0o777)
        self.port = free_port()
        conf = self.dir / "mosquitto.conf"
        conf.write_text(render(BrokerConfig(port=self.port, data_dir=self.dir / "data")))
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        log = (self.dir / "log").open("wb")
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
        time.sleep(0.5)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def make_db() -> tuple[str, str]:
    name = f"oxy_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = psycopg.conninfo.conninfo_to_dict(ADMIN)
    params["dbname"] = name
    url = psycopg.conninfo.make_conninfo(**params)
    migrate(url)
    with psycopg.connect(url) as conn:
        org = conn.execute(
            "INSERT INTO organisations (code, kind, name, province_code, parent_id) VALUES "
            "(%s, 'facility', 'Bench', '01', (SELECT id FROM organisations WHERE code='SYT-01'))"
            " RETURNING id",
            (SITE,),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute("INSERT INTO facilities (org_id) VALUES (%s)", (org,))
        gw = conn.execute(
            "INSERT INTO gateways (facility_id, code) VALUES (%s, %s) RETURNING id", (org, GW)
        ).fetchone()[0]  # type: ignore[index]
        for n in range(TANKS):
            for suffix, q, u in (("dp", "dp", "inH2O"), ("p", "head_pressure", "bar")):
                conn.execute(
                    "INSERT INTO sensors (gateway_id, code, quantity, unit) VALUES (%s,%s,%s,%s)",
                    (gw, f"T{n}-{suffix}", q, u),
                )
    return name, url


def drop_db(name: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reset(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "TRUNCATE readings, sensor_latest, rollup_1m, rollup_1h, rollup_1d, dead_letters,"
            " quarantine, reading_conflicts, ack_streams, ack_ranges"
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE readings")


def sensors() -> list[str]:
    return [f"T{n}-{s}" for n in range(TANKS) for s in ("dp", "p")]


def messages(
    total: int, per_message: int, offset_s: int = 0, watermarks: bool | None = None
) -> list[bytes]:
    """`total` readings as messages of `per_message`; each reading a distinct (sensor, ts)."""
    watermarks = WATERMARKS if watermarks is None else watermarks
    names = sensors()
    out = []
    now = datetime.now(UTC)
    for seq, start in enumerate(range(0, total, per_message)):
        rs = []
        for i in range(start, min(start + per_message, total)):
            s = names[i % len(names)]
            ts = T0 + timedelta(seconds=offset_s + i // len(names))
            unit = "bar" if s.endswith("-p") else "inH2O"
            rs.append(Reading(sensor=s, ts=ts, value=float(i % 1000), unit=unit))
        # With the end-to-end acknowledgement (the gateway's default): every batch then also
        # records its seqs and publishes one watermark (BENCH_WATERMARKS=0: without).
        ack = {"epoch": 1, "floor": 0} if watermarks else {}
        out.append(encode(DataMessage(gw=GW, seq=seq, sent_at=now, readings=rs, **ack)))
    return out


def declarations() -> list[SensorDecl]:
    """The bench gateway's sensors as a contract v2 birth declares them."""
    return [
        SensorDecl(code=s, unit="bar" if s.endswith("-p") else "inH2O",
                   res=0.001 if s.endswith("-p") else 0.01)
        for s in sensors()
    ]  # fmt: skip


def messages_v2(total: int, per_message: int) -> list[bytes]:
    """The readings of :func:`messages` as contract v2 data messages (the birth first)."""
    decls = declarations()
    schema = schema_id(decls)
    n = len(decls)
    t0 = int(T0.timestamp() * 1000)
    now = int(time.time() * 1000)
    out = []
    for seq, start in enumerate(range(0, total, per_message)):
        items = [
            (i % n, t0 + (i // n) * 1000, float(i % 1000), 0)
            for i in range(start, min(start + per_message, total))
        ]
        ack = {"epoch": 1, "floor": 0} if WATERMARKS else {}
        out.append(encode_v2(decls, schema, seq, now, items, **ack)[0])
    return out


def cpu_per_reading(url: str, v1: list[bytes], v2: list[bytes], rounds: int = 5) -> None:
    """CPU (this thread's) of decoding and resolving the same readings as v1 and as v2, without
    the broker or the write: what the format changes in ingest, less sensitive to a busy
    machine than the end-to-end rate."""
    from ingest.batch import Inbound, decode_inbound
    from ingest.registry import BirthCache, SensorCache
    from ingest.resolve import resolve

    now = datetime.now(UTC)
    births = BirthCache()
    best: dict[str, float] = {}
    with psycopg.connect(url) as conn:
        cache = SensorCache()
        state = Inbound(topic(SITE, GW, TopicKind.STATE), birth_v2(), 1, 1, now, 0)
        resolve(Batch(items=[decode_inbound(state)]), cache, conn, timedelta(days=3650),
                births=births)  # fmt: skip
        for label, payloads, kind in (("v1", v1, TopicKind.DATA), ("v2", v2, TopicKind.DATA_V2)):
            t = topic(SITE, GW, kind)
            n = 0
            for _ in range(rounds):
                c0 = time.thread_time()
                batch = Batch()
                for p in payloads:
                    batch.add(decode_inbound(Inbound(t, p, 1, 1, now, 0)))
                rows = resolve(batch, cache, conn, timedelta(days=3650), births=births)
                spent = time.thread_time() - c0
                n = len(rows.readings)
                best[label] = min(best.get(label, spent), spent)
            print(f"decode + resolve, contract {label}  {best[label] / n * 1e6:>10.2f} us/reading "
                  f"CPU (best of {rounds}, {n:,} readings)")  # fmt: skip
    print(f"decode + resolve CPU, v2 / v1          {best['v2'] / best['v1']:>10.0%}")


def birth_v2() -> bytes:
    decls = declarations()
    return encode(
        StateMessage(gw=GW, online=True, bd_seq=1, schema_=schema_id(decls), sensors=decls)
    )


def v2_ab(url: str, broker: Mosquitto, total: int, runs: int) -> None:
    """Contract v1 against v2: the same readings, 50 per message, one worker, alternating."""
    v1 = messages(total, 50)
    v2 = messages_v2(total, 50)
    print(f"payload bytes per reading: v1 {sum(map(len, v1)) / total:.1f}, "
          f"v2 {sum(map(len, v2)) / total:.1f}")  # fmt: skip
    cpu_per_reading(url, v1[:2000], v2[:2000])
    rates: dict[str, list[float]] = {"v1": [], "v2": []}
    for _ in range(runs):
        for label, payloads in (("v1", v1), ("v2", v2)):
            birth = [(topic(SITE, GW, TopicKind.STATE), birth_v2())] if label == "v2" else []
            rate, _lag = ours(url, broker, payloads, total, kind=label, before=birth)
            rates[label].append(rate)
            print(f"ours, contract {label}, 50/message      {rate:>10,.0f} readings/s")
    a, b = statistics.median(rates["v1"]), statistics.median(rates["v2"])
    print(f"median of {runs}: v1 {a:,.0f}, v2 {b:,.0f} readings/s; v2 / v1 {b / a:.0%}")


def publish_all(
    port: int,
    payloads: list[bytes],
    kind: str = "v1",
    before: list[tuple[str, bytes]] | None = None,
) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}",
                    protocol=mqtt.MQTTv5)  # fmt: skip
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    for bt, bp in before or []:
        c.publish(bt, bp, qos=1).wait_for_publish(30)
    t = topic(SITE, GW, TopicKind.DATA_V2 if kind == "v2" else TopicKind.DATA)
    infos = [c.publish(t, p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(120)
    c.disconnect()
    c.loop_stop()


def drop_session(port: int, client_id: str) -> None:
    """Remove a persistent session: a left-over subscriber would keep a copy of (or, in a shared
    group, take its share of) every later message and skew the next measurement."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", port, clean_start=True)
    c.loop_start()
    time.sleep(0.2)
    c.disconnect()
    c.loop_stop()


def rollup_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT coalesce(sum(n), 0) FROM rollup_1d").fetchone()
    return int(row[0]) if row else 0


# -- 1. raw binary COPY ------------------------------------------------------------------------


def raw_copy(url: str, total: int) -> float:
    """rows/s of COPY ... FROM STDIN (FORMAT BINARY) of pre-encoded rows into readings."""
    reset(url)
    with psycopg.connect(url) as conn:
        conn.execute(
            "CREATE TEMP TABLE src AS SELECT s.id AS sensor_id,"
            " TIMESTAMPTZ '2026-01-01' + (g / 100) * INTERVAL '1 second' AS ts,"
            " (g %% 1000)::float8 AS value, 0::int2 AS quality, now() AS received_at"
            " FROM generate_series(0, %s - 1) g"
            " JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM sensors) s"
            "   ON s.k = g %% 100",
            (total,),
        )
        buf = io.BytesIO()
        with conn.cursor().copy("COPY src TO STDOUT (FORMAT BINARY)") as cp:
            for chunk in cp:
                buf.write(chunk)
        data = buf.getvalue()
        conn.commit()
        t = time.perf_counter()
        with conn.cursor().copy(
            "COPY readings (sensor_id, ts, value, quality, received_at) FROM STDIN (FORMAT BINARY)"
        ) as cp:
            view = memoryview(data)
            for i in range(0, len(data), 1 << 20):
                cp.write(view[i : i + (1 << 20)])
        conn.commit()
        return total / (time.perf_counter() - t)


# -- 2. naive consumer: paho, auto-ack, one INSERT (and commit) per reading ------------------


def naive(url: str, broker: Mosquitto, payloads: list[bytes], seconds: float) -> float:
    """readings/s of the tutorial consumer over `seconds` of a pre-loaded queue."""
    import json

    reset(url)
    ids = dict(psycopg.connect(url).execute("SELECT code, id FROM sensors").fetchall())
    conn = psycopg.connect(url, autocommit=True)
    done = [0]

    def on_message(c: Any, u: Any, msg: Any) -> None:
        body = json.loads(msg.payload)
        for r in body["readings"]:
            conn.execute(
                "INSERT INTO readings (sensor_id, ts, value, quality) VALUES (%s, %s, %s, 0)"
                " ON CONFLICT DO NOTHING",
                (ids[r["sensor"]], r["ts"], r["value"]),
            )
            done[0] += 1

    cid = f"naive-{uuid.uuid4().hex[:6]}"
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    c.on_message = on_message
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 600
    c.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    c.subscribe(f"oxy/v1/{SITE}/{GW}/data", qos=1)
    c.loop_start()
    time.sleep(0.5)
    c.disconnect()
    c.loop_stop()
    publish_all(broker.port, payloads)
    c.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    c.loop_start()
    time.sleep(1.0)  # warm up
    n0, t0 = done[0], time.perf_counter()
    time.sleep(seconds)
    rate = (done[0] - n0) / (time.perf_counter() - t0)
    c.disconnect()
    c.loop_stop()
    conn.close()
    drop_session(broker.port, cid)
    return rate


# -- 3. bare paho subscriber that only counts --------------------------------------------------


def bare(broker: Mosquitto, payloads: list[bytes]) -> float:
    """messages/s a paho subscriber (auto-ack) can receive from a pre-loaded session."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    got = [0]
    first = [0.0]
    last = [0.0]
    done = threading.Event()

    def on_message(c: Any, u: Any, msg: Any) -> None:
        if got[0] == 0:
            first[0] = time.perf_counter()
        got[0] += 1
        if got[0] == len(payloads):
            last[0] = time.perf_counter()
            done.set()

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 600
    cid = f"bare-{uuid.uuid4().hex[:6]}"
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    c.on_message = on_message
    c.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    c.subscribe(f"oxy/v1/{SITE}/{GW}/data", qos=1)
    c.loop_start()
    time.sleep(0.5)
    c.disconnect()
    c.loop_stop()
    publish_all(broker.port, payloads)
    c.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    c.loop_start()
    done.wait(120)
    c.disconnect()
    c.loop_stop()
    drop_session(broker.port, cid)
    return len(payloads) / (last[0] - first[0])


# -- 4. our ingest, end to end -----------------------------------------------------------------


class TimedService(IngestService):
    """Our service, recording publish(sent_at) → commit latency of every message."""

    latencies: list[float]

    def _observe(self, batch: Batch, result: WriteResult, acked: int) -> None:
        now = datetime.now(UTC)
        for d in batch.items:
            data = d.data
            if data is not None:
                self.latencies.append((now - data["sent_at"]).total_seconds())
        super()._observe(batch, result, acked)


def start_service(
    url: str, broker: Mosquitto, cid: str, **kw: Any
) -> tuple[TimedService, threading.Thread]:
    tune_gc()  # as `oxy ingest run` does for its process
    svc = TimedService(IngestConfig(mqtt_url=broker.url, database_url=url, client_id=cid, **kw))
    svc.latencies = []
    th = threading.Thread(target=svc.run, daemon=True)
    th.start()
    svc.source.subscribed.wait(10)
    return svc, th


def wait_rollups(url: str, total: int, since: float) -> float:
    """Seconds from `since` until the rollups (rebuilt by the workers' flush) count `total`."""
    while (n := rollup_count(url)) < total:
        time.sleep(0.05)
    assert n == total, (n, total)
    return time.perf_counter() - since


def ours(
    url: str,
    broker: Mosquitto,
    payloads: list[bytes],
    total: int,
    kind: str = "v1",
    before: list[tuple[str, bytes]] | None = None,
    **kw: Any,
) -> tuple[float, float]:
    """readings/s of our ingest draining a pre-loaded persistent session into the database, and
    the seconds after the last commit until the rollups had caught up."""
    reset(url)
    cid = f"ingest-bench-{uuid.uuid4().hex[:6]}"
    svc, th = start_service(url, broker, cid, **kw)
    svc.stop()
    th.join()
    publish_all(broker.port, payloads, kind, before)
    svc, th = start_service(url, broker, cid, **kw)
    t0 = time.perf_counter()
    while svc.metrics.readings._value.get() < total:
        time.sleep(0.02)
    done = time.perf_counter()
    rate = total / (done - t0)
    catch_up = wait_rollups(url, total, done)
    svc.stop()
    th.join()
    drop_session(broker.port, cid)
    return rate, catch_up


def scrape_readings(ports: list[int]) -> float:
    """oxy_ingest_readings_total summed over the workers' /metrics."""
    import urllib.request

    total = 0.0
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("oxy_ingest_readings_total "):
                total += float(line.split()[1])
    return total


def ours_processes(
    url: str, broker: Mosquitto, payloads: list[bytes], total: int, workers: int
) -> tuple[float, float]:
    """readings/s of `workers` ingest processes on one shared subscription (the scale-out path),
    timed from the first committed reading to the last (from the workers' /metrics), and the
    seconds after that until the rollups had caught up."""
    reset(url)
    base = f"ingest-proc-{uuid.uuid4().hex[:6]}"
    root = Path(__file__).resolve().parents[1]
    logs = [Path(tempfile.mkstemp(prefix="oxy-bench-ingest-")[1]) for _ in range(workers)]
    ports = [free_port() for _ in range(workers)]

    def spawn() -> list[subprocess.Popen[bytes]]:
        return [
            subprocess.Popen(
                [sys.executable, "-m", "ingest", "run", "--mqtt-url", broker.url,
                 "--database-url", url, "--client-id", f"{base}-{k}"],
                cwd=root, stdout=logs[k].open("ab"), stderr=subprocess.STDOUT,
                env={**os.environ, "OXY_LOG_LEVEL": "INFO", "OXY_METRICS_PORT": str(ports[k])},
            )
            for k in range(workers)
        ]  # fmt: skip

    def stop(procs: list[subprocess.Popen[bytes]]) -> None:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)

    procs = spawn()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(b"connected to" in p.read_bytes() for p in logs):
        time.sleep(0.1)
    time.sleep(0.5)
    stop(procs)
    publish_all(broker.port, payloads)
    procs = spawn()
    while scrape_readings(ports) == 0:
        time.sleep(0.01)
    t0 = time.perf_counter()
    while (n := scrape_readings(ports)) < total:
        time.sleep(0.02)
    done = time.perf_counter()
    rate = (total - 0) / (done - t0)
    catch_up = wait_rollups(url, total, done)
    stop(procs)
    for k in range(workers):
        drop_session(broker.port, f"{base}-{k}")
        logs[k].unlink()
    assert n == total
    return rate, catch_up


def latency(url: str, broker: Mosquitto, rate: int, seconds: float) -> tuple[float, float]:
    """p50/p99 publish → commit (s) at `rate` readings/s in messages of 50."""
    reset(url)
    cid = f"ingest-lat-{uuid.uuid4().hex[:6]}"
    svc, th = start_service(url, broker, cid)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-lat-pub", protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    t = topic(SITE, GW, TopicKind.DATA)
    names = sensors()
    per_s = rate // 50
    start = time.perf_counter()
    k = 0
    while time.perf_counter() - start < seconds:
        due = start + k / per_s
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        ts = T0 + timedelta(days=10, milliseconds=k * 10)
        rs = [Reading(sensor=names[(k * 50 + i) % 100], ts=ts, value=1.0,
                      unit="bar" if names[(k * 50 + i) % 100].endswith("-p") else "inH2O")
              for i in range(50)]  # fmt: skip
        c.publish(
            t, encode(DataMessage(gw=GW, seq=k, sent_at=datetime.now(UTC), readings=rs)), qos=1
        )
        k += 1
    expected = k * 50
    deadline = time.monotonic() + 30
    while svc.metrics.readings._value.get() < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    svc.stop()
    th.join()
    c.disconnect()
    c.loop_stop()
    drop_session(broker.port, cid)
    lat = sorted(svc.latencies)
    return statistics.quantiles(lat, n=100)[49], statistics.quantiles(lat, n=100)[98]


def load_methods(url: str, batches: int = 20, size: int = 5000) -> dict[str, float]:
    """Writer-only rows/s with the staging table loaded by binary COPY vs by unnest arrays."""
    from ingest.batch import Inbound
    from ingest.registry import SensorCache
    from ingest.resolve import resolve
    from ingest.rollups import flush
    from oxy.contract import decode_record

    out: dict[str, float] = {}
    t = topic(SITE, GW, TopicKind.DATA)
    for method in ("copy", "unnest"):
        reset(url)
        w = Writer(url, method)  # type: ignore[arg-type]
        cache = SensorCache()
        rows_list = []
        for b in range(batches):
            batch = Batch()
            for j, p in enumerate(messages(size, 50, offset_s=b * 1000)):
                item = Inbound(t, p, j, 1, datetime.now(UTC), 0)
                parsed, msg = decode_record(t, p)
                batch.add(Decoded(item, parsed, msg, None))
            rows_list.append(resolve(batch, cache, w.conn, timedelta(minutes=5)))
        t0 = time.perf_counter()
        for rows in rows_list:
            w.write(rows)
        out[method] = batches * size / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        flush(w.conn)
        out[f"{method}_flush"] = batches * size / (time.perf_counter() - t0)
        w.close()
    return out


def watermarks_ab(url: str, broker: Mosquitto, total: int, runs: int) -> None:
    """`BENCH_ONLY=watermarks`: two worker processes with and without the end-to-end
    acknowledgement, alternately, each against raw COPY measured in the same run."""
    with_wm, without = messages(total, 50, watermarks=True), messages(total, 50, watermarks=False)
    copies = [raw_copy(url, total)]
    print(f"raw binary COPY                      {copies[0]:>10,.0f} rows/s")
    rates: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(runs):
        for wm, payloads in ((True, with_wm), (False, without)):
            rate, lag = ours_processes(url, broker, payloads, total, 2)
            rates[wm].append(rate)
            label = "watermarks on " if wm else "watermarks off"
            print(f"2 workers, {label}, 50/msg    {rate:>10,.0f} readings/s"
                  f"  ({rate / copies[0]:.0%} of raw COPY;"
                  f" rollups complete {lag:.1f} s later)")  # fmt: skip
    copies.append(raw_copy(url, total))
    print(f"raw binary COPY again                {copies[1]:>10,.0f} rows/s")
    copy = statistics.mean(copies)
    for wm in (True, False):
        mid = statistics.median(rates[wm])
        label = "on " if wm else "off"
        print(f"median of {runs}, watermarks {label}         {mid:>10,.0f} readings/s"
              f"  ({mid / copy:.0%} of the mean raw COPY)")  # fmt: skip
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    print(f"watermarks on / off                  {on / off:>10.0%}")


def main() -> None:
    """Run every measurement on each backend (OXY_BENCH_BACKENDS, default both): plain
    PostgreSQL at OXY_BENCH_DATABASE_URL, then TimescaleDB in a private cluster started from
    scripts/timescaledb.sh's build; each against its own raw COPY."""
    import faulthandler
    import logging
    import signal

    global ADMIN
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` shows where a run is stuck
    logging.basicConfig(level=logging.WARNING)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    backends = os.environ.get("OXY_BENCH_BACKENDS", "postgresql,timescaledb").split(",")
    for backend in backends:
        print(f"== {backend} ==")
        if backend == "postgresql":
            run()
            continue
        from tests.fix_db import TIMESCALEDB_SETTINGS, PrivatePostgres, timescaledb_pg_bin

        bin_dir = timescaledb_pg_bin()
        if bin_dir is None:
            print("TimescaleDB is not built (scripts/timescaledb.sh): skipped")
            continue
        # Same durability as the machine's cluster (PrivatePostgres turns fsync off for tests).
        server = PrivatePostgres(bin_dir, {**TIMESCALEDB_SETTINGS, "fsync": "on"})
        server.start()
        plain, ADMIN = ADMIN, server.url
        try:
            run()
        finally:
            ADMIN = plain
            server.destroy()


def run() -> None:
    """Every measurement once against the server at ADMIN, printed side by side."""
    name, url = make_db()
    broker = Mosquitto()
    total50 = int(os.environ.get("BENCH_READINGS_50", "2000000"))
    total1 = int(os.environ.get("BENCH_READINGS_1", "40000"))
    try:
        print(f"database {name}; broker {broker.url}; cpus {os.cpu_count()}")
        if os.environ.get("BENCH_ONLY") == "watermarks":
            watermarks_ab(url, broker, total50, int(os.environ.get("BENCH_RUNS", "3")))
            return
        if os.environ.get("BENCH_ONLY") == "v2":
            v2_ab(url, broker, total50, int(os.environ.get("BENCH_RUNS", "3")))
            return
        m50 = messages(total50, 50)
        m1 = messages(total1, 1)
        res: dict[str, float] = {}
        res["raw_copy"] = raw_copy(url, total50)
        print(f"raw binary COPY                      {res['raw_copy']:>10,.0f} rows/s")
        lm = load_methods(url)
        print(f"writer only, COPY into readings      {lm['copy']:>10,.0f} rows/s"
              f"  (then the rollup rebuild: {lm['copy_flush']:,.0f} rows/s)")  # fmt: skip
        print(f"writer only, INSERT ... unnest        {lm['unnest']:>10,.0f} rows/s")
        res["naive"] = naive(url, broker, m1[: min(len(m1), 30000)], 5.0)
        print(f"naive consumer (INSERT per reading)  {res['naive']:>10,.0f} readings/s")
        res["ours50"], lag = ours(url, broker, m50, total50)
        print(f"ours, 50 readings/message            {res['ours50']:>10,.0f} readings/s"
              f"  ({res['ours50'] / res['raw_copy']:.0%} of raw COPY,"
              f" {res['ours50'] / res['naive']:.0f}x naive;"
              f" rollups complete {lag:.1f} s later)")  # fmt: skip
        # Several processes start with some skew and share two cores with PostgreSQL and
        # Mosquitto: the figure moves from run to run, so two workers run three times.
        for workers, runs in ((2, 3), (3, 1)):
            rates = []
            for _ in range(runs):
                rate, lag = ours_processes(url, broker, m50, total50, workers)
                rates.append(rate)
                print(f"ours, {workers} worker processes, 50/msg  {rate:>10,.0f} readings/s"
                      f"  ({rate / res['raw_copy']:.0%} of raw COPY;"
                      f" rollups complete {lag:.1f} s later)")  # fmt: skip
            if runs > 1:
                mid = statistics.median(rates)
                print(f"ours, {workers} workers, median of {runs}     {mid:>10,.0f} readings/s"
                      f"  ({mid / res['raw_copy']:.0%} of raw COPY)")  # fmt: skip
        res["bare50"] = bare(broker, m50)
        print(f"bare paho subscriber, 50/message     {res['bare50'] * 50:>10,.0f} readings/s"
              f" ({res['bare50']:,.0f} msg/s)")  # fmt: skip
        res["ours1"], _ = ours(url, broker, m1, total1)
        print(f"ours, 1 reading/message              {res['ours1']:>10,.0f} readings/s")
        res["bare1"] = bare(broker, m1)
        print(f"bare paho subscriber, 1/message      {res['bare1']:>10,.0f} msg/s")
        v2_ab(url, broker, total50, 1)
        p50, p99 = latency(url, broker, 10_000, 10.0)
        print(
            f"publish→commit at 10,000 readings/s  p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
        )
    finally:
        broker.close()
        drop_db(name)


if __name__ == "__main__":
    main()
