"""Gateway figures: CPU and RSS at 50 sensors × 1 Hz, Modbus requests per poll, time to publish
after the broker returns from an outage, and outbox replay rate for 180,000 readings; the wire
formats (issue 24): bytes per reading of contract v1 and v2 side by side, with and without the
deadband, at 10 and 50 sensors × 1 Hz, with the gateway's CPU, and the encoding candidates.

Run: .venv/bin/python bench/gateway.py [--seconds 60] [--outage 60] [--wire-seconds 30]
     .venv/bin/python bench/gateway.py --only-wire --wire-seconds 30   # the wire figures alone
Needs mosquitto. The gateway runs as a real process (`python -m gateway run`); the Modbus servers,
the broker and the subscriber run beside it and are not counted in its CPU or memory.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from gateway.engineering import Row  # noqa: E402
from gateway.outbox import Outbox  # noqa: E402
from oxy.broker import BrokerConfig, render  # noqa: E402
from oxy.contract import AckMessage, decode_v2, encode_ack  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")
DP_AT_0 = 'profile = "dp", address = 0'
P_AT_2 = 'profile = "p", address = 2'


def publish_bytes(topic_name: str, payload_len: int) -> int:
    """Bytes of an MQTT 5 QoS 1 PUBLISH packet: fixed header (type byte and the remaining length
    as a variable-length integer), topic (2-byte length + UTF-8), packet id, an empty property
    length, then the payload."""
    remaining = 2 + len(topic_name.encode()) + 2 + 1 + payload_len
    varint = (
        1 if remaining < 128 else 2 if remaining < 16_384 else 3 if remaining < 2_097_152 else 4
    )
    return 1 + varint + remaining


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, up: bool = True, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.02)
    raise TimeoutError(port)


class Broker:
    def __init__(self, work: Path) -> None:
        self.work = work
        (work / "data").mkdir(parents=True, exist_ok=True)
        self.cfg = BrokerConfig(port=free_port(), data_dir=work / "data")
        (work / "m.conf").write_text(render(self.cfg))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        log = (self.work / "m.log").open("ab")
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.work / "m.conf")], stdout=log, stderr=log
        )
        wait_port(self.cfg.port)

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
            wait_port(self.cfg.port, up=False)


class Sub:
    """Counts data messages and readings; reconnects fast (it must not be the slow part)."""

    def __init__(self, port: int, client_id: str, gw: str) -> None:
        self.port = port
        self.gw = gw
        self.lock = threading.Lock()
        self.data: list[tuple[float, dict[str, Any]]] = []
        # Every data message (v1 or v2): (received, bytes of its MQTT PUBLISH packet, readings).
        self.wire: list[tuple[float, int, int]] = []
        self.seqs: dict[int, set[int]] = {}
        self.wm: dict[int, int] = {}
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.reconnect_delay_set(0.05, 0.1)
        props = mqtt.Properties(mqtt.PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        c.connect("127.0.0.1", port, clean_start=False, properties=props)
        c.loop_start()
        self.c = c

    def _on_connect(self, cl: Any, u: Any, f: Any, rc: Any, p: Any) -> None:
        cl.subscribe([("oxy/+/+/+/data", 1), ("oxy/+/+/+/data2", 1)])

    def _on_message(self, cl: Any, u: Any, msg: mqtt.MQTTMessage) -> None:
        size = publish_bytes(msg.topic, len(msg.payload))
        if msg.topic.endswith("/data2"):
            t, v2 = decode_v2(msg.topic, bytes(msg.payload))
            if t.gateway != self.gw:
                return
            with self.lock:
                self.wire.append((time.time(), size, v2.readings))
            doc = {"seq": v2.seq, "epoch": v2.epoch, "floor": v2.floor}
            self._confirm(cl, msg.topic[: -len("2")], doc)
            return
        doc = json.loads(msg.payload)
        if doc["gw"] != self.gw:
            return
        with self.lock:
            self.data.append((time.time(), doc))
            self.wire.append((time.time(), size, len(doc["readings"])))
        if doc.get("epoch") is not None:
            self._confirm(cl, msg.topic, doc)

    def _confirm(self, cl: Any, topic_name: str, doc: dict[str, Any]) -> None:
        """Stand in for ingest's end-to-end acknowledgement: one watermark per message (ingest
        sends one per batch), so the gateway's cost of trimming is in the figure."""
        seqs = self.seqs.setdefault(doc["epoch"], set())
        seqs.add(doc["seq"])
        wm = max(self.wm.get(doc["epoch"], doc.get("floor", 1) - 1), doc.get("floor", 1) - 1)
        while wm + 1 in seqs:
            wm += 1
        self.wm[doc["epoch"]] = wm
        ack = AckMessage(
            gw=self.gw, epoch=doc["epoch"], seq=wm, high=max(seqs), ts=datetime.now(UTC)
        )
        cl.publish(topic_name + "/ack", encode_ack(ack), qos=1, retain=True)

    def readings(self) -> int:
        with self.lock:
            return sum(len(d["readings"]) for _, d in self.data)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


class Servers:
    """Modbus servers on a background loop: one device with 50 registers, or simulated tanks."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.requests = 0

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    async def _register_device(self, port: int) -> Any:
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        async def action(
            fc: int, start: int, addr: int, count: int, regs: list[int], values: Any
        ) -> None:
            self.requests += 1
            t = int(time.time() * 10)
            for i in range(50):
                regs[i] = (t + i * 7) % 1000  # values move, like live transmitters
            return None

        dev = SimDevice(
            id=1,
            simdata=[SimData(0, count=50, values=0, datatype=DataType.REGISTERS)],
            action=action,
        )
        server = ModbusTcpServer(dev, address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        return server

    def register_device(self) -> int:
        port = free_port()
        self.run(self._register_device(port))
        return port

    def tanks(self, n: int) -> list[Any]:
        from gateway.sim.config import SimConfig
        from gateway.sim.model import TankSpec
        from gateway.sim.server import Simulator

        specs = tuple(
            TankSpec(f"T{i}", 10000.0, 2.2, 0.6, 1500.0, port=free_port()) for i in range(1, n + 1)
        )

        async def start() -> Simulator:
            s = Simulator(SimConfig(specs, update_interval_s=1.0))
            await s.start()
            return s

        self.run(start())
        return list(specs)


def gateway_config(
    work: Path, name: str, mqtt_port: int, devices: str, extra: str = "", deadbands: str = ""
) -> Path:
    band = dict(item.split(":") for item in deadbands.split(",") if item)
    dp = f"deadband = {band['dp']}\nheartbeat_s = 300" if "dp" in band else ""
    p = f"deadband = {band['p']}\nheartbeat_s = 300" if "p" in band else ""
    text = f"""
[gateway]
site = "BENCH"
code = "{name}"
state_dir = "."
status_interval_s = 30
[mqtt]
url = "mqtt://127.0.0.1:{mqtt_port}"
{extra}
[profiles.u16]
type = "uint16"
scale = 0.1
unit = "inH2O"
{dp}
[profiles.dp]
type = "float32"
unit = "inH2O"
{dp}
[profiles.p]
type = "uint16"
scale = 0.01
unit = "bar"
invalid_raw = [65535]
{p}
{devices}
"""
    path = work / f"{name}.toml"
    path.write_text(text)
    return path


def one_device_50_registers(port: int) -> str:
    sensors = ",\n".join(
        f'  {{ code = "S{i:02d}", quantity = "dp", profile = "u16", address = {i} }}'
        for i in range(50)
    )
    return f"""
[[devices]]
name = "plc"
host = "127.0.0.1"
port = {port}
poll_interval_s = 1.0
sensors = [
{sensors}
]
"""


def tank_devices(specs: list[Any]) -> str:
    out = []
    for t in specs:
        out.append(
            f"""
[[devices]]
name = "tank-{t.code}"
host = "127.0.0.1"
port = {t.port}
poll_interval_s = 1.0
sensors = [
  {{ code = "{t.code}-dp", tank = "{t.code}", quantity = "dp", {DP_AT_0} }},
  {{ code = "{t.code}-p", tank = "{t.code}", quantity = "head_pressure", {P_AT_2} }},
]"""
        )
    return "\n".join(out)


def start_gateway(cfg: Path, work: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MALLOC_ARENA_MAX": "2"}
    log = (work / "gateway.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(cfg), "--log-level", "WARNING"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def measure(proc: subprocess.Popen[bytes], seconds: float, warmup: float = 5.0) -> dict[str, float]:
    time.sleep(warmup)
    c0, t0 = cpu_seconds(proc.pid), time.monotonic()
    peak = 0.0
    while time.monotonic() - t0 < seconds:
        time.sleep(1.0)
        peak = max(peak, rss_mb(proc.pid))
    cpu = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0) * 100
    return {
        "cpu_pct": cpu,
        "rss_mb": rss_mb(proc.pid),
        "rss_peak_mb": peak,
        "threads": threads(proc.pid),
    }


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# Report by exception in the wire runs: the recommended deadbands (docs/gateway.md), dp in
# inH2O and head pressure in bar, heartbeat 300 s.
MONTH_READINGS_PER_SENSOR = 86_400 * 30  # 1 Hz for 30 days
V12 = ("v1", "v2")


def wire_runs(work: Path, broker: Broker, servers: Servers, seconds: float) -> None:
    """Contract v1 and v2 side by side on real gateway processes: bytes of the data PUBLISH
    packets per reading polled (MQTT framing included), readings sent, gateway CPU."""
    print(
        "\nwire formats (bytes of the data PUBLISH packets per reading polled, MQTT framing "
        f"included; {seconds:.0f} s windows; one gateway process at a time)"
    )
    print(
        f"{'setup':<34} {'format':<6} {'deadband':<9} {'B/reading':>9} {'sent':>6} "
        f"{'B/msg':>6} {'CPU %':>6} {'GB/month':>9}"
    )
    port = servers.register_device()
    tanks5, tanks25 = servers.tanks(5), servers.tanks(25)
    # (label, devices, sensors, with deadband runs, [mqtt] lines, formats)
    setups = [
        ("50 registers, one device (issue 3)", one_device_50_registers(port), 50, False, "", V12),
        ("10 sensors: 5 tank devices", tank_devices(tanks5), 10, True, "", V12),
        # A small gateway fills its messages by waiting longer (a reading waits up to 5 s).
        ("10 sensors, linger_s = 5", tank_devices(tanks5), 10, True, "linger_s = 5", ("v2",)),
        ("50 sensors: 25 tank devices", tank_devices(tanks25), 50, True, "", V12),
    ]
    n = 0
    for label, devices, sensors, deadbands, mqtt_extra, formats in setups:
        for fmt in formats:
            for band in (False, True) if deadbands else (False,):
                n += 1
                name = f"gw-w{n}"
                profiles = ""
                if band:
                    profiles = "dp:0.05,p:0.02"
                cfg = gateway_config(
                    work, name, broker.cfg.port, devices, f'data_format = "{fmt}"\n{mqtt_extra}',
                    deadbands=profiles,
                )  # fmt: skip
                sub = Sub(broker.cfg.port, f"bench-sub-{name}", name)
                proc = start_gateway(cfg, work)
                time.sleep(5.0)
                t0, c0 = time.time(), cpu_seconds(proc.pid)
                time.sleep(seconds)
                t1, c1 = time.time(), cpu_seconds(proc.pid)
                stop(proc)
                sub.close()
                with sub.lock:
                    window = [(b, r) for t, b, r in sub.wire if t0 <= t < t1]
                total = sum(b for b, _ in window)
                sent = sum(r for _, r in window)
                polled = sensors * (t1 - t0)
                per = total / polled
                gb = per * sensors * MONTH_READINGS_PER_SENSOR / 1e9
                print(
                    f"{label:<34} {fmt:<6} {'on' if band else 'off':<9} {per:>9.2f} "
                    f"{sent / polled:>6.1%} {total / max(len(window), 1):>6.0f} "
                    f"{(c1 - c0) / (t1 - t0) * 100:>6.2f} {gb:>9.2f}"
                )


def encoding_table(rounds: int = 2000) -> None:
    """The v2 candidates on one message of a 1 Hz tick (10 and 50 sensors): bytes of the MQTT
    PUBLISH packet per reading, encode (gateway) and decode (ingest) CPU per message."""
    import random
    import zlib

    import cbor2
    import msgpack

    from oxy.contract import (
        MAX_READINGS_PER_MESSAGE,
        Quality,
        Reading,
        SensorDecl,
        decode_record,
        encode_data,
        encode_v2,
        expand_v2,
        schema_id,
    )

    def clock(fn: Any) -> float:
        t = time.perf_counter()
        for _ in range(rounds):
            fn()
        return (time.perf_counter() - t) / rounds * 1e6

    rnd = random.Random(1)
    topic_v1, topic_v2 = "oxy/v1/BV-CHORAY/gw-bv-choray/data", "oxy/v1/BV-CHORAY/gw-bv-choray/data2"
    print(
        "\nencoding candidates (one 1 Hz tick per message; B/reading = PUBLISH packet / "
        f"readings; CPU per message, in-process, {rounds} rounds)"
    )
    print(f"{'sensors':>7} {'candidate':<28} {'B/reading':>9} {'encode us':>10} {'decode us':>10}")

    def one(n: int) -> None:
        decls = [
            SensorDecl(code=f"T{i // 2 + 1}-{'dp' if i % 2 == 0 else 'p'}",
                       unit="inH2O" if i % 2 == 0 else "bar", res=0.01 if i % 2 == 0 else 0.001)
            for i in range(n)
        ]  # fmt: skip
        schema = schema_id(decls)
        now = int(time.time() * 1000)
        values = [
            rnd.uniform(40, 180) + rnd.gauss(0, 0.02)
            if i % 2 == 0
            else round(rnd.uniform(8, 12), 2)
            for i in range(n)
        ]
        items = [(i, now, v, 0) for i, v in enumerate(values)]
        rows = [(decls[i].code, now, v, decls[i].unit, "good") for i, v in enumerate(values)]
        sent_at = datetime.now(UTC)

        def v1() -> bytes:
            readings = [
                Reading(sensor=c, ts=datetime.fromtimestamp(t / 1000, UTC), value=v, unit=u,
                        q=Quality(q))
                for c, t, v, u, q in rows
            ]  # fmt: skip
            return encode_data("gw-bv-choray", 123456, sent_at, readings, epoch=17, floor=123400)[0]

        def doc() -> list[Any]:
            groups = [0]
            for i, _t, v, _q in items:
                groups += (i, round(v / decls[i].res))
            return [123456, 17, 123400, schema, now, now, [groups], []]

        def mp(deflate: bool) -> bytes:
            return encode_v2(decls, schema, 123456, now, items, epoch=17, floor=123400,
                             deflate=deflate)[0]  # fmt: skip

        cands: list[tuple[str, Any, Any, str]] = [
            ("v1 JSON (today)", v1, lambda p: decode_record(topic_v1, p), topic_v1),
            ("v1 JSON + deflate", lambda: zlib.compress(v1(), 6),
             lambda p: decode_record(topic_v1, zlib.decompress(p)), topic_v1),
            ("v2 compact JSON", lambda: json.dumps(doc(), separators=(",", ":")).encode(),
             json.loads, topic_v2),
            ("v2 compact JSON + deflate",
             lambda: zlib.compress(json.dumps(doc(), separators=(",", ":")).encode(), 6),
             lambda p: json.loads(zlib.decompress(p)), topic_v2),
            ("v2 CBOR", lambda: cbor2.dumps(doc()), cbor2.loads, topic_v2),
            ("v2 CBOR + deflate", lambda: zlib.compress(cbor2.dumps(doc()), 6),
             lambda p: cbor2.loads(zlib.decompress(p)), topic_v2),
            ("v2 MessagePack (parse only)", lambda: mp(False), lambda p: msgpack.unpackb(p[2:]),
             topic_v2),
            ("v2 MessagePack (decode+expand)", lambda: mp(False),
             lambda p: expand_v2("gw-bv-choray", decode_v2(topic_v2, p)[1], decls), topic_v2),
            ("v2 MessagePack+deflate (d+e)", lambda: mp(True),
             lambda p: expand_v2("gw-bv-choray", decode_v2(topic_v2, p)[1], decls), topic_v2),
        ]  # fmt: skip
        assert n <= MAX_READINGS_PER_MESSAGE
        for label, enc, dec, t in cands:
            payload = enc()
            per = publish_bytes(t, len(payload)) / n
            print(f"{n:>7} {label:<28} {per:>9.2f} {clock(enc):>10.1f} "
                  f"{clock(lambda p=payload, d=dec: d(p)):>10.1f}")  # fmt: skip

    for n in (10, 50):
        one(n)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0, help="CPU/RSS window")
    ap.add_argument("--outage", type=float, default=60.0, help="broker outage length")
    ap.add_argument("--replay", type=int, default=180_000, help="pre-filled readings")
    ap.add_argument("--wire-seconds", type=float, default=30.0, help="window of each wire run")
    ap.add_argument("--only-wire", action="store_true", help="only the wire-format figures")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="oxy-bench-gw-"))
    broker = Broker(work / "broker")
    broker.start()
    servers = Servers()
    print(f"gateway bench ({os.cpu_count()} cores, Python {sys.version.split()[0]})")
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    encoding_table()
    wire_runs(work, broker, servers, args.wire_seconds)
    if args.only_wire:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
        return

    # 1. the peer's setup: one device, 50 holding registers, 1 Hz
    port = servers.register_device()
    cfg = gateway_config(work, "gw-a", broker.cfg.port, one_device_50_registers(port))
    sub = Sub(broker.cfg.port, "bench-sub-a", "gw-a")
    proc = start_gateway(cfg, work)
    req0 = servers.requests
    m = measure(proc, args.seconds)
    polls = max(1, round(args.seconds + 5))
    print(
        f"50 sensors x 1 Hz, one device: CPU {m['cpu_pct']:.2f}% of one core, "
        f"RSS {m['rss_mb']:.1f} MB (peak {m['rss_peak_mb']:.1f}), {m['threads']:.0f} threads"
    )
    print(
        f"Modbus requests per poll: {(servers.requests - req0) / polls:.2f} "
        f"(per-register baseline: 50; per-value: 50)"
    )

    # 2. broker outage, then time until data flows again
    last_seq = max((d["seq"] for _, d in sub.data), default=0)
    broker.stop()
    time.sleep(args.outage)
    back = time.time()
    broker.start()
    deadline = time.time() + 60
    first = None
    while time.time() < deadline and first is None:
        with sub.lock:
            new = [t for t, d in sub.data if d["seq"] > last_seq and d["sent_at"] >= _iso(back)]
        first = min(new) if new else None
        time.sleep(0.02)
    # drain the outage backlog and check it arrived
    time.sleep(3)
    print(
        f"publishing again {((first or deadline) - back):.2f} s after the broker returned "
        f"from a {args.outage:.0f} s outage"
    )
    stop(proc)
    time.sleep(1)
    received = {(r["sensor"], r["ts"]) for _, d in sub.data for r in d["readings"]}
    ob = Outbox(work / "gw-a.outbox.sqlite")
    print(
        f"no loss over the run: {len(received)} unique readings received, "
        f"{ob.published_total} acknowledged by the broker, {ob.depth} still waiting, "
        f"{ob.evicted_total} evicted"
    )
    ob.close()
    sub.close()

    # 3. 25 simulated tanks (25 devices, 50 sensors) at 1 Hz
    specs = servers.tanks(25)
    cfg_b = gateway_config(work, "gw-b", broker.cfg.port, tank_devices(specs))
    proc = start_gateway(cfg_b, work)
    m = measure(proc, min(args.seconds, 30.0))
    stop(proc)
    print(
        f"50 sensors x 1 Hz, 25 tank devices: CPU {m['cpu_pct']:.2f}% of one core, "
        f"RSS {m['rss_mb']:.1f} MB (peak {m['rss_peak_mb']:.1f}), {m['threads']:.0f} threads"
    )

    # 4. replay of a pre-filled outbox (a 1-hour outage at 50 sensors x 1 Hz)
    cfg_c = gateway_config(
        work, "gw-c", broker.cfg.port, one_device_50_registers(port).replace("1.0", "60.0")
    )
    ob = Outbox(work / "gw-c.outbox.sqlite")
    t0 = int(time.time() * 1000) - 3_600_000
    rows = [
        Row(f"S{i % 50:02d}", t0 + (i // 50) * 1000, float(i % 997), "inH2O", "good")
        for i in range(args.replay)
    ]
    fill0 = time.monotonic()
    for k in range(0, len(rows), 10_000):
        ob.add(rows[k : k + 10_000])
    fill_s = time.monotonic() - fill0
    ob.close()
    sub = Sub(broker.cfg.port, "bench-sub-c", "gw-c")
    start = time.time()
    proc = start_gateway(cfg_c, work)
    while sub.readings() < args.replay and time.time() - start < 300:
        time.sleep(0.02)
    with sub.lock:
        t_first = sub.data[0][0] if sub.data else time.time()
        t_last = sub.data[-1][0] if sub.data else time.time()
        readings = [r for _, d in sub.data for r in d["readings"]]
    stop(proc)
    sub.close()
    replayed = [r for r in readings if r["ts"] < _iso(t0 / 1000 + 3600)]
    in_order = all(
        a <= b
        for s in {r["sensor"] for r in replayed}
        for a, b in _pairs([r["ts"] for r in replayed if r["sensor"] == s])
    )
    span = max(t_last - t_first, 1e-6)
    print(
        f"outbox replay: {len(replayed)} of {args.replay} readings in {span:.2f} s "
        f"= {len(replayed) / span:,.0f} readings/s; first message {t_first - start:.2f} s after "
        f"process start; in order per sensor: {in_order}; "
        f"pre-fill {args.replay / fill_s:,.0f} rows/s"
    )
    broker.stop()
    shutil.rmtree(work, ignore_errors=True)


def _iso(t: float) -> str:
    from datetime import UTC, datetime

    from oxy.contract import format_ts

    return format_ts(datetime.fromtimestamp(t, UTC))


def _pairs(xs: list[str]) -> list[tuple[str, str]]:
    return list(itertools.pairwise(xs))


if __name__ == "__main__":
    main()
