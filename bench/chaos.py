"""Chaos suite of issue 14: real processes, faults injected in turn, a table of what was lost.

    .venv/bin/python bench/chaos.py [--fault-s 10] [--pg-s 30] [--ingest-away-s 120]
        [--cut-s 60] [--long] [--replay 20000] [--json]

Runs a private PostgreSQL (initdb + pg_ctl in a temporary directory, its own port: the suite
stops it), a private Mosquitto (the product's configuration, persistence on), one ingest
process (`python -m ingest run`), three gateway processes, each polling its own simulated tank
over Modbus TCP every 0.1 s (2 sensors: 20 readings/s), the third starting with a long outbox
to replay, all through a TCP proxy this script controls, into a freshly migrated database.
Faults, one after the other, each lasting `--fault-s` unless said otherwise:

  broker SIGKILL + restart (persistence on) · broker restart with its persistence wiped ·
  ingest SIGKILL + restart · PostgreSQL stopped (`--pg-s`) ·
  ingest stopped (`--ingest-away-s`), then started while the broker restarts ·
  network cut between gateways and broker (`--cut-s`; the proxy closes and refuses
  connections) · gateway SIGKILL (mid outbox write: it polls every 0.1 s) + restart ·
  a hostile message of each class (year 1, year 9999, 1.7e308 MPa, value true, an integer
  epoch as ts, a retained data message, over the payload limit, over the broker's packet
  limit, garbage bytes) published among the gateways' readings ·
  combined: broker SIGKILL while gw-c3 replays a new long outbox (`--replay`) and PostgreSQL
  is stopped (`--pg-s`; the broker is back first) · ingest SIGKILL during a network cut
  (`--cut-s`; ingest is back before the link)

`--long` gives the issue's durations (PostgreSQL 30 s, ingest away 2 min, network cut 60 s).
Besides the hostile row, one hostile message (the classes in turn) is published every second
during the whole run, straight to the broker on a gateway's data topic; the suite watches the
ingest process: it must never exit on its own (`ingest exits`), and its pid changes only when
the suite restarts it. Every hostile message carries a unique `seq` (garbage: a unique text), so
the suite finds each one's dead letter. Gateway gw-c2 also mixes one hostile reading a second
into its OWN batches (IN_BATCH_KINDS: year 1, year 9999, a day ahead, 1.7e308 MPa; a bench-only
hook in its outbox writes, so its encoder, topic, seq and epoch carry them): each must be in the
dead letter of its message with its reason, and every good reading that shared a message with
one must be stored (columns in-batch, dead-l., beside = stored/carried). `--db-admin-url` uses
an existing server instead of a private one (and skips the two faults that stop PostgreSQL:
never stop a shared server).

"Published" is every reading a gateway wrote into its outbox: the gateway processes journal
each committed outbox write (`--gateway-worker` mode below). After each fault the suite waits
until every reading published before the fault ended, or up to 3 s after it (the recovery tail),
is stored (at most `--settle-s`, 60 s): lost = those still missing then, duplicated = rows stored
twice or as conflicts, recovery = time from the end of the fault until nothing was missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SITE = "CHAOS"
TAIL_S = 3.0  # readings published this long after a fault ends count for that fault
PG_BIN = Path("/usr/lib/postgresql/15/bin")
HOSTILE_TOPIC = f"oxy/v1/{SITE}/gw-c1/data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, up: bool = True, timeout: float = 15.0) -> None:
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
    raise TimeoutError(f"port {port}")


# ------------------------------------------------------------------------------------------
# The gateway worker: simulator + gateway in one process, journaling every outbox write


# Hostile readings a gateway can itself put into its own batches (its encoder builds them: the
# contract's types hold, the domain does not), and the reason their message's dead letter gives.
# value true / an integer epoch cannot be built by a gateway (oxy.contract.Reading is strict):
# those come from the separate hostile publisher only.
IN_BATCH_KINDS: dict[str, str] = {
    "year 1": "before",
    "year 9999": "in the future",
    "a day ahead": "in the future",
    "1.7e308 MPa": "not finite",
}
_YEAR1_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z
_YEAR9999_MS = 253_402_297_199_000  # 9999-12-31T23:59:59Z
IN_BATCH_ENV = "OXY_CHAOS_IN_BATCH_EVERY_S"


def in_batch_row(kind: str, k: int, tank: str, now_ms: int) -> tuple[str, int, float, str, str]:
    """Hostile outbox row number `k` of class `kind` (sensor, ts ms, value, unit, quality); each
    one's timestamp is unique, so its message's dead letter can be found by it."""
    if kind == "year 1":
        return f"{tank}-dp", _YEAR1_MS + k * 1000, 1.0, "inH2O", "good"
    if kind == "year 9999":
        return f"{tank}-dp", _YEAR9999_MS - k * 1000, 1.0, "inH2O", "good"
    if kind == "a day ahead":
        return f"{tank}-dp", now_ms + 86_400_000 + k, 1.0, "inH2O", "good"
    if kind == "1.7e308 MPa":  # finite on the wire, infinite in kPa; two days ago, unique
        return f"{tank}-p", now_ms - 2 * 86_400_000 + k, 1.7e308, "MPa", "good"
    raise ValueError(kind)


def gateway_worker(config: str, journal: str, tank_code: str, modbus_port: int) -> None:
    """Run one simulated tank and the gateway polling it; journal each committed outbox write.

    With OXY_CHAOS_IN_BATCH_EVERY_S set (the bench's injection hook, nowhere in the product),
    one hostile reading (IN_BATCH_KINDS in turn) joins the rows of an outbox write that often:
    the gateway publishes it inside its own batch, on its own topic, with its own seq and epoch.
    Those rows go to `<journal>.hostile`, not into the journal of published good readings."""
    from gateway.config import load
    from gateway.outbox import Outbox
    from gateway.service import run_gateways
    from gateway.sim.config import SimConfig
    from gateway.sim.model import TankSpec
    from gateway.sim.server import Simulator
    from oxy.logs import setup_logging

    setup_logging("WARNING")
    out = open(journal, "a", buffering=1)  # noqa: SIM115  (line-buffered, lives as long as we do)
    original = Outbox.add

    every = float(os.environ.get(IN_BATCH_ENV, "0") or 0)
    hostile = open(journal + ".hostile", "a", buffering=1) if every else None  # noqa: SIM115
    kinds = list(IN_BATCH_KINDS)
    state = {"next": time.monotonic() + every, "k": 0}

    def add(ob: Outbox, rows: Any) -> int:
        rows = list(rows)
        bad = []
        if hostile is not None and rows and time.monotonic() >= state["next"]:
            state["next"] = time.monotonic() + every
            k = int(state["k"])
            state["k"] = k + 1
            kind = kinds[k % len(kinds)]
            bad = [(kind, in_batch_row(kind, k, tank_code, int(time.time() * 1000)))]
        n = original(ob, [*rows, *(b for _, b in bad)])  # committed before it is journaled
        out.write("".join(f"{r[0]},{r[1]}\n" for r in rows))
        if hostile is not None and bad:
            hostile.write("".join(f"{r[0]},{r[1]},{kind}\n" for kind, r in bad))
        return n - len(bad)

    Outbox.add = add  # type: ignore[method-assign]

    async def main() -> None:
        spec = TankSpec(tank_code, 10000.0, 2.4, port=modbus_port)
        sim = Simulator(SimConfig(tanks=(spec,), speed=1.0, update_interval_s=0.1))
        await sim.start()
        try:
            await run_gateways([load(Path(config))])
        finally:
            await sim.stop()

    asyncio.run(main())


# ------------------------------------------------------------------------------------------
# Pieces the suite controls


class Broker:
    def __init__(self, work: Path) -> None:
        from oxy.broker import BrokerConfig, render

        self.work = work
        self.data = work / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        os.chmod(work, 0o777)
        os.chmod(self.data, 0o777)
        self.cfg = BrokerConfig(port=free_port(), data_dir=self.data)
        (work / "mosquitto.conf").write_text(render(self.cfg))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        log = (self.work / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.work / "mosquitto.conf")], stdout=log, stderr=log
        )
        wait_port(self.cfg.port)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(15)
        self.proc = None
        wait_port(self.cfg.port, up=False)

    def wipe(self) -> None:
        for f in self.data.iterdir():
            f.unlink()


class Proxy:
    """A TCP proxy gateways → broker; `cut(True)` closes every connection and refuses new ones."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self._cut = False
        self._writers: set[asyncio.StreamWriter] = set()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(5)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        ready.set()
        self.loop.run_forever()
        server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.close()
            return
        try:
            r2, w2 = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, w2}

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (OSError, ConnectionError):
                pass
            finally:
                w.close()
                self._writers.discard(w)

        await asyncio.gather(pipe(reader, w2), pipe(r2, writer))

    def cut(self, on: bool) -> None:
        def apply() -> None:
            self._cut = on
            if on:
                for w in list(self._writers):
                    with contextlib.suppress(Exception):
                        w.transport.abort()
                self._writers.clear()

        self.loop.call_soon_threadsafe(apply)

    def close(self) -> None:
        self.cut(True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class PrivatePostgres:
    """A throwaway PostgreSQL server (initdb + pg_ctl), run as `postgres` when we are root."""

    def __init__(self, work: Path) -> None:
        self.dir = work
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o777)
        self.port = free_port()
        self.data = self.dir / "data"
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")  # fmt: skip

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", opts, "-w", "-l",
                  str(self.dir / "log"), "start")  # fmt: skip
        wait_port(self.port)

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()


def hostile_payload(kind: str, mark: int) -> tuple[bytes, bool]:
    """One hostile message of class `kind`, marked by `mark` (its seq, or a text): (payload,
    retain)."""
    now = time.time()
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))

    def msg(ts: Any, value: Any, unit: str = "inH2O", sensor: str = "C1-dp") -> bytes:
        reading = {"sensor": sensor, "ts": ts, "value": value, "unit": unit}
        body = {"v": 1, "gw": "gw-c1", "seq": mark, "sent_at": iso, "readings": [reading]}
        return json.dumps(body).encode()

    from oxy.broker import MAX_PACKET_BYTES
    from oxy.contract import MAX_PAYLOAD_BYTES

    if kind == "year 1":
        return msg("0001-01-01T00:00:00+05:00", 1.0), False
    if kind == "year 9999":
        return msg("9999-12-31T23:00:00-05:00", 1.0), False
    if kind == "1.7e308 MPa":
        return msg(iso, 1.7e308, "MPa", "C1-p"), False
    if kind == "value true":
        return msg(iso, True), False
    if kind == "integer epoch ts":
        return msg(int(now), 1.0), False
    if kind == "retained data":  # an otherwise good reading, of 2025 (no gateway wrote it)
        return msg(f"2025-01-01T00:00:{mark % 60:02d}Z", 1.0), True
    if kind == "over the payload limit":
        head = f'{{"seq": {mark}, "pad": "'.encode()
        return head + b"x" * (MAX_PAYLOAD_BYTES + 1000) + b'"}', False
    if kind == "over the broker's packet limit":
        return f'{{"seq": {mark}, "pad": "'.encode() + b"x" * MAX_PACKET_BYTES + b'"}', False
    if kind == "garbage bytes":
        return b"\x00\xff\xfe{garbage " + f'"seq": {mark}'.encode() + bytes(range(256)), False
    raise ValueError(kind)


# Each class, and the reason its dead letter must give (over the broker's limit: none, the
# broker drops it and logs it).
HOSTILE_KINDS: dict[str, str] = {
    "year 1": "before",
    "year 9999": "in the future",
    "1.7e308 MPa": "not finite",
    "value true": "readings.0.value",
    "integer epoch ts": "readings.0.ts",
    "retained data": "retained",
    "over the payload limit": "",
    "garbage bytes": "",
}
BACKGROUND_KINDS = [k for k in HOSTILE_KINDS if k != "over the payload limit"]


class Hostile:
    """Publishes hostile messages straight to the broker (QoS 1), each with a unique mark;
    `sent` holds (mark, kind, monotonic time) of each one the broker acknowledged."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.port = port
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"chaos-hostile-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        self.client.reconnect_delay_set(0.2, 1.0)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        self.sent: list[tuple[int, str, float]] = []
        self.next_mark = 900_000_000
        self.oversize_dropped = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def publish(self, kind: str) -> bool:
        with self._lock:
            mark = self.next_mark
            self.next_mark += 1
        payload, retain = hostile_payload(kind, mark)
        if not self.client.is_connected():
            return False
        info = self.client.publish(HOSTILE_TOPIC, payload, qos=1, retain=retain)
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(3.0)
        if info.is_published():
            with self._lock:
                self.sent.append((mark, kind, time.monotonic()))
            return True
        return False

    def oversize_packet(self) -> None:
        """One message over the broker's packet limit, from a client of its own (the broker
        closes that client's connection)."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="chaos-oversize",
                        protocol=mqtt.MQTTv311)  # fmt: skip
        c.connect("127.0.0.1", self.port)
        c.loop_start()
        payload, _ = hostile_payload("over the broker's packet limit", 0)
        info = c.publish(HOSTILE_TOPIC, payload, qos=1)
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(3.0)
        c.disconnect()
        c.loop_stop()

    def background(self, every_s: float) -> None:
        def run() -> None:
            k = 0
            while not self._stop.wait(every_s):
                with contextlib.suppress(Exception):
                    self.publish(BACKGROUND_KINDS[k % len(BACKGROUND_KINDS)])
                k += 1

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.client.disconnect()
        self.client.loop_stop()


def dead_lettered(url: str, marks: list[tuple[int, str, float]]) -> dict[int, str]:
    """mark → reason of the dead letter whose payload carries it."""
    import psycopg

    out: dict[int, str] = {}
    with psycopg.connect(url) as conn:
        for mark, _kind, _t in marks:
            row = conn.execute(
                "SELECT reason FROM dead_letters WHERE position(%s::bytea IN payload) > 0 LIMIT 1",
                (f'"seq": {mark}'.encode(),),
            ).fetchone()
            if row is not None:
                out[mark] = str(row[0])
    return out


def in_batch_letters(
    url: str, rows: list[tuple[str, int, str]]
) -> tuple[dict[tuple[str, int], str], int, int]:
    """For hostile readings inside a gateway's batches: (sensor, ts) → reason of the dead
    letter of the message that carried it; and, over those messages, how many good readings
    they carried and how many of those are stored (all of them: a hostile reading costs its
    message nothing else)."""
    from datetime import UTC, datetime, timedelta

    import psycopg

    from oxy.contract import format_ts

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    hostile = {(sensor, ms) for sensor, ms, _ in rows}
    found: dict[tuple[str, int], str] = {}
    letters: dict[int, bytes] = {}
    with psycopg.connect(url) as conn:
        for sensor, ms, _kind in rows:
            ts = epoch + timedelta(milliseconds=ms)
            # by the reading in the payload, or (past a long payload's first 16 KiB, which is
            # all a dead letter keeps) by the timestamp its reason names
            row = conn.execute(
                "SELECT id, reason, payload FROM dead_letters "
                "WHERE position(%s::bytea IN payload) > 0 OR position(%s IN reason) > 0 LIMIT 1",
                (
                    f'"sensor":"{sensor}","ts":"{format_ts(ts)}"'.encode(),
                    f"({sensor}): timestamp {ts.isoformat()} ",
                ),
            ).fetchone()
            if row is not None:
                found[(sensor, ms)] = str(row[1])
                letters[int(row[0])] = bytes(row[2])
    # read after the dead letters: a message's good readings commit with its dead letter
    have, _ = stored(url)
    good = stored_good = 0
    # Dead letters keep the first 16 KiB of a payload: the readings are read with a pattern, so
    # a long message's cut tail is skipped, not an error (what is visible is checked).
    pattern = re.compile(rb'"sensor":"([^"]+)","ts":"([0-9]{4}-[^"]+)"')
    for payload in letters.values():
        for sensor_b, ts_b in pattern.findall(payload):
            ts = datetime.fromisoformat(ts_b.decode().replace("Z", "+00:00"))
            key = (sensor_b.decode(), round((ts - epoch).total_seconds() * 1000))
            if key not in hostile:
                good += 1
                stored_good += key in have
    return found, good, stored_good


def in_batch_reconcile(url: str, topic_name: str) -> int:
    """Readings refused in the dead letters of a gateway's data messages, each message (seq)
    counted once: the per-reading lookup cannot see past the 16 KiB a dead letter keeps of a
    long catch-up message, nor past the 5 readings its reason names; this count can."""
    import psycopg

    refused: dict[int, int] = {}
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT reason, substring(payload FROM 1 FOR 200) FROM dead_letters WHERE topic = %s",
            (topic_name,),
        ).fetchall()
    for reason, head in rows:
        n = re.match(r"(\d+) of \d+ readings rejected", str(reason))
        seq = re.search(rb'"seq":(\d+)', bytes(head))
        if n and seq:  # a re-sent message may have lost an evicted reading since: the most
            key = int(seq.group(1))
            refused[key] = max(refused.get(key, 0), int(n.group(1)))
    return sum(refused.values())


def outbox_evicted(path: Path) -> int:
    """The outbox's own count of evicted readings (meta evicted_total)."""
    import sqlite3

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'evicted_total'").fetchone()
    finally:
        db.close()
    return int(row[0]) if row else 0


def seed(url: str, gateways: dict[str, str]) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        org = conn.execute(
            "INSERT INTO organisations (code, kind, name, province_code, parent_id) "
            "VALUES (%s, 'facility', 'Chaos', '01', "
            "        (SELECT id FROM organisations WHERE code = 'SYT-01')) RETURNING id",
            (SITE,),
        ).fetchone()[0]
        conn.execute("INSERT INTO facilities (org_id) VALUES (%s)", (org,))
        for gw_code, tank_code in gateways.items():
            gw = conn.execute(
                "INSERT INTO gateways (facility_id, code) VALUES (%s, %s) RETURNING id",
                (org, gw_code),
            ).fetchone()[0]
            tank = conn.execute(
                "INSERT INTO tanks (facility_id, code, name, capacity_kg) "
                "VALUES (%s, %s, %s, 10000) RETURNING id",
                (org, tank_code, tank_code),
            ).fetchone()[0]
            for suffix, quantity, unit in (("dp", "dp", "inH2O"), ("p", "head_pressure", "bar")):
                conn.execute(
                    "INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (gw, f"{tank_code}-{suffix}", tank, quantity, unit),
                )


GATEWAY_TOML = """
[gateway]
site = "{site}"
code = "{code}"
state_dir = "{state}"
status_interval_s = 5

[mqtt]
url = "mqtt://127.0.0.1:{port}"
reconnect_max_s = 1.0
end_to_end_ack = {e2e}

[outbox]
synchronous = "full"

[profiles.dp]
type = "float32"
unit = "inH2O"
valid_min = -2.0
valid_max = 2000.0

[profiles.p]
type = "uint16"
scale = 0.01
unit = "bar"
valid_max = 25.0
invalid_raw = [65535]

[[devices]]
name = "tank-{tank}"
host = "127.0.0.1"
port = {modbus}
poll_interval_s = 0.1
timeout_s = 0.5
reconnect_max_s = 1.0
sensors = [
  {{ code = "{tank}-dp", tank = "{tank}", quantity = "dp", profile = "dp", address = 0 }},
  {{ code = "{tank}-p", tank = "{tank}", quantity = "head_pressure", profile = "p", address = 2 }},
]
"""


class GatewayProc:
    def __init__(
        self,
        work: Path,
        code: str,
        tank: str,
        proxy_port: int,
        e2e: bool,
        in_batch_every_s: float = 0.0,
    ) -> None:
        self.code, self.tank = code, tank
        self.in_batch_every_s = in_batch_every_s
        self.work = work
        self.modbus = free_port()
        self.journal = work / f"{code}.journal"
        self.config = work / f"{code}.toml"
        self.config.write_text(
            GATEWAY_TOML.format(
                site=SITE,
                code=code,
                state=work,
                port=proxy_port,
                tank=tank,
                modbus=self.modbus,
                e2e="true" if e2e else "false",
            )
        )
        self.outbox = work / f"{code}.outbox.sqlite"
        self.proc: subprocess.Popen[bytes] | None = None

    def prefill(self, n: int, hours_ago: float = 6.0) -> None:
        """A long outbox to replay: `n` readings from `hours_ago` on (one per sensor every
        0.5 s), journaled as published. The gateway must be stopped."""
        from gateway.engineering import Row
        from gateway.outbox import Outbox

        ob = Outbox(self.outbox)
        t0 = int(time.time() * 1000) - int(hours_ago * 3_600_000)
        rows = [
            Row(f"{self.tank}-{'dp' if i % 2 == 0 else 'p'}", t0 + (i // 2) * 500,
                float(i % 97), "inH2O" if i % 2 == 0 else "bar", "good")
            for i in range(n)
        ]  # fmt: skip
        for k in range(0, n, 5000):
            ob.add(rows[k : k + 5000])
        ob.close()
        with self.journal.open("a") as f:
            f.write("".join(f"{r[0]},{r[1]}\n" for r in rows))

    def start(self) -> None:
        log = (self.work / f"{self.code}.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--gateway-worker", str(self.config),
             str(self.journal), self.tank, str(self.modbus)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT), IN_BATCH_ENV: str(self.in_batch_every_s)},
        )  # fmt: skip

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def hostile_rows(self) -> list[tuple[str, int, str]]:
        """(sensor, ts ms, kind) of each hostile reading written into this gateway's outbox."""
        path = Path(str(self.journal) + ".hostile")
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            sensor, ms, kind = line.split(",", 2)
            out.append((sensor, int(ms), kind))
        return out

    def published(self) -> set[tuple[str, int]]:
        out: set[tuple[str, int]] = set()
        if not self.journal.exists():
            return out
        for line in self.journal.read_text().splitlines():
            sensor, _, ms = line.partition(",")
            if ms.isdigit():
                out.add((sensor, int(ms)))
        return out


class IngestProc:
    """The ingest process; a watcher thread counts every exit the suite did not cause."""

    def __init__(self, work: Path, db_url: str, mqtt_url: str) -> None:
        self.work, self.db_url, self.mqtt_url = work, db_url, mqtt_url
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port = free_port()
        self.exits: list[str] = []  # exits the suite did not cause: "pid N: status S"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            with self._lock:
                if self.proc is not None and self.proc.poll() is not None:
                    self.exits.append(f"pid {self.proc.pid}: status {self.proc.returncode}")
                    self.proc = None

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self) -> None:
        log = (self.work / "ingest.log").open("ab")
        env = {**os.environ, "OXY_INGEST_BATCH_MS": "100", "OXY_LOG_LEVEL": "INFO",
               "OXY_METRICS_PORT": str(self.metrics_port)}  # fmt: skip
        with self._lock:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ingest", "run", "--mqtt-url", self.mqtt_url,
                 "--database-url", self.db_url, "--client-id", "chaos-ingest"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def metric(self, name: str) -> float | None:
        """One unlabelled sample from the running ingest's /metrics, or None."""
        import urllib.request

        try:
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as resp:
                text = resp.read().decode()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        with self._lock:
            proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def close(self) -> None:
        self.stop()
        self._stop.set()
        self._watcher.join(5)


def stored(url: str) -> tuple[set[tuple[str, int]], int]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT s.code, round(extract(epoch FROM r.ts) * 1000)::bigint "
            "FROM readings r JOIN sensors s ON s.id = r.sensor_id"
        ).fetchall()
        conflicts = conn.execute("SELECT count(*) FROM reading_conflicts").fetchone()
    have = {(c, int(ms)) for c, ms in rows}
    return have, len(rows) - len(have) + int(conflicts[0] if conflicts else 0)


def wait_stored(
    url: str, want: set[tuple[str, int]], given_up: set[tuple[str, int]], deadline: float
) -> tuple[set[tuple[str, int]], int, set[tuple[str, int]]]:
    """Wait until `want` is stored (earlier faults' losses aside) or the deadline passes;
    returns (still missing, duplicates, stored)."""
    while True:
        have, dups = stored(url)
        missing = want - have - given_up
        if not missing or time.monotonic() > deadline:
            return missing, dups, have
        time.sleep(0.25)


# ------------------------------------------------------------------------------------------
# The run


def run(
    admin_url: str | None,
    fault_s: float,
    replay: int,
    settle_s: float = 60.0,
    e2e: bool = True,
    pg_s: float | None = None,
    ingest_away_s: float | None = None,
    cut_s: float | None = None,
    hostile_every_s: float = 1.0,
) -> list[dict[str, Any]]:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from oxy.migrate import migrate

    pg_s = fault_s if pg_s is None else pg_s
    ingest_away_s = fault_s if ingest_away_s is None else ingest_away_s
    cut_s = fault_s if cut_s is None else cut_s
    work = Path(tempfile.mkdtemp(prefix="oxy-chaos-"))
    os.chmod(work, 0o777)
    pg: PrivatePostgres | None = None
    if admin_url is None:
        pg = PrivatePostgres(work / "pg")
        pg.start()
        admin_url = pg.url
    name = f"oxy_chaos_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # a generated identifier, not a value
    db_url = make_conninfo(**{**conninfo_to_dict(admin_url), "dbname": name})
    broker = Broker(work / "broker")
    proxy: Proxy | None = None
    hostile: Hostile | None = None
    gateways: list[GatewayProc] = []
    ingest: IngestProc | None = None
    results: list[dict[str, Any]] = []
    try:
        migrate(db_url)
        codes = {"gw-c1": "C1", "gw-c2": "C2", "gw-c3": "C3"}
        seed(db_url, codes)
        broker.start()
        proxy = Proxy(broker.cfg.port)
        ingest = IngestProc(work, db_url, f"mqtt://127.0.0.1:{broker.cfg.port}")
        ingest.start()
        time.sleep(3.0)  # its session and subscription exist before the gateways publish
        # gw-c2 mixes one hostile reading a second into its own batches (IN_BATCH_KINDS)
        gateways = [
            GatewayProc(work, c, t, proxy.port, e2e, hostile_every_s if c == "gw-c2" else 0.0)
            for c, t in codes.items()
        ]
        gateways[2].prefill(replay)
        for g in gateways:
            g.start()
        hostile = Hostile(broker.cfg.port)
        hostile.background(hostile_every_s)
        time.sleep(4.0)
        ing, hos = ingest, hostile

        def broker_kill() -> None:
            broker.stop(signal.SIGKILL)
            time.sleep(fault_s)
            broker.start()

        def broker_wiped() -> None:
            broker.stop()
            broker.wipe()
            time.sleep(fault_s)
            broker.start()

        def ingest_kill() -> None:
            ing.stop(signal.SIGKILL)
            time.sleep(fault_s)
            ing.start()

        def postgres_stopped() -> None:
            assert pg is not None
            pg.stop()
            time.sleep(pg_s)
            pg.start()

        def ingest_away_broker_restart() -> None:
            ing.stop()
            time.sleep(ingest_away_s)
            broker.stop()
            ing.start()  # while the broker is down: it retries until the broker is back
            time.sleep(1.0)
            broker.start()

        def network_cut() -> None:
            assert proxy is not None
            proxy.cut(True)
            time.sleep(cut_s)
            proxy.cut(False)

        def gateway_kill() -> None:
            gateways[0].stop(signal.SIGKILL)
            time.sleep(fault_s)
            gateways[0].start()

        def broker_kill_pg_down_replaying() -> None:
            # gw-c3 gets a new long outbox (hours old: no overlap with the first) and starts
            # replaying it; then PostgreSQL stops and the broker is SIGKILLed mid-replay; the
            # broker comes back while PostgreSQL is still down.
            assert pg is not None
            gateways[2].stop()
            gateways[2].prefill(replay, hours_ago=3.0)
            gateways[2].start()
            time.sleep(2.0)
            pg.stop()
            time.sleep(0.5)
            broker.stop(signal.SIGKILL)
            time.sleep(fault_s)
            broker.start()
            time.sleep(max(0.0, pg_s - fault_s - 0.5))
            pg.start()

        def ingest_kill_during_cut() -> None:
            assert proxy is not None
            proxy.cut(True)
            time.sleep(cut_s / 3)
            ing.stop(signal.SIGKILL)
            time.sleep(cut_s / 3)
            ing.start()  # back while the gateways are still cut off
            time.sleep(cut_s / 3)
            proxy.cut(False)

        oversize_metric: list[float | None] = []

        def hostile_burst() -> None:
            pid = ing.pid
            for kind in HOSTILE_KINDS:
                hos.publish(kind)
            hos.oversize_packet()
            time.sleep(fault_s)
            # the drop, counted by ingest from the broker's $SYS log (docs/ingest.md)
            oversize_metric.append(ing.metric("oxy_broker_oversize_drops_total"))
            if ing.pid != pid:
                ing.exits.append(f"pid {pid} replaced by {ing.pid} during the hostile burst")

        # (label, inject, the broker restarts: what it acknowledged to the hostile publisher,
        # which has no end-to-end ack, may be lost; the gateways lose their link: a year-1
        # reading waiting in gw-c2's outbox may be evicted there as too old, never sent)
        faults: list[tuple[str, Any, bool, bool]] = [
            ("broker SIGKILL + restart (persistence on)", broker_kill, True, True),
            ("broker restart, persistence wiped", broker_wiped, True, True),
            ("ingest SIGKILL + restart", ingest_kill, False, False),
        ]
        if pg is not None:
            faults.append((f"PostgreSQL stopped {pg_s:g} s", postgres_stopped, False, False))
        faults += [
            (f"ingest away {ingest_away_s:g} s, back as the broker restarts",
             ingest_away_broker_restart, True, True),
            (f"network cut gateways-broker {cut_s:g} s", network_cut, False, True),
            ("gateway SIGKILL mid outbox write + restart", gateway_kill, False, False),
            ("hostile message of each class", hostile_burst, False, False),
        ]  # fmt: skip
        if pg is not None:
            faults.append((f"broker SIGKILL, PostgreSQL down {pg_s:g} s, gw-c3 replaying "
                           f"{replay}", broker_kill_pg_down_replaying, True, True))  # fmt: skip
        faults.append(
            (f"ingest SIGKILL during a network cut of {cut_s:g} s", ingest_kill_during_cut,
             False, True)
        )  # fmt: skip
        before: set[tuple[str, int]] = set()
        given_up: set[tuple[str, int]] = set()
        hostile_seen = 0
        in_batch_seen = 0
        for label, inject, broker_restarts, link_lost in faults:
            exits_before = len(ing.exits)
            inject()
            ended = time.monotonic()
            deadline = ended + settle_s
            # recovery: until what was published before the fault ended is stored
            before_end = set().union(*(g.published() for g in gateways))
            missing, dups, have = wait_stored(db_url, before_end, given_up, deadline)
            recovered = time.monotonic() - ended
            # and what is published while the system recovers belongs to this fault too
            time.sleep(max(0.0, ended + TAIL_S - time.monotonic()))
            published = set().union(*(g.published() for g in gateways))
            phase = published - before
            missing, dups, have = wait_stored(db_url, published, given_up, deadline)
            given_up |= missing
            # the hostile messages of this phase: each one dead-lettered (or, where the broker
            # restarted, lost by it at worst), none of them took ingest down
            sent = hos.sent[hostile_seen:]
            hostile_seen += len(sent)
            # (a restarted broker may have lost some: the good readings' wait was the grace)
            until = time.monotonic() + 2.0 if broker_restarts else deadline
            while True:
                letters = dead_lettered(db_url, sent)
                if len(letters) == len(sent) or time.monotonic() > until:
                    break
                time.sleep(0.5)
            wrong = [
                f"{kind}: {letters[m]}"
                for m, kind, _ in sent
                if m in letters and HOSTILE_KINDS[kind] not in letters[m]
            ]
            # the hostile readings gw-c2 put into its own batches in this phase
            inside = gateways[1].hostile_rows()
            mixed, in_batch_seen = inside[in_batch_seen:], len(inside)
            until = time.monotonic() + 10.0
            while True:
                found, alongside, alongside_stored = in_batch_letters(db_url, mixed)
                if len(found) == len(mixed) or time.monotonic() > until:
                    break
                time.sleep(0.5)
            wrong += [
                f"in batch, {kind}: {found[(sensor, ms)]}"
                for sensor, ms, kind in mixed
                if (sensor, ms) in found and IN_BATCH_KINDS[kind] not in found[(sensor, ms)]
            ]
            in_batch_missing = sorted(
                {kind for sensor, ms, kind in mixed if (sensor, ms) not in found}
            )
            row = {
                "fault": label,
                "published": len(phase),
                "stored": len(phase & have),
                "lost": len(missing),
                "duplicated": dups,
                "recovery_s": round(recovered, 1) if not missing else None,
                "hostile_sent": len(sent),
                "hostile_dead_lettered": len(letters),
                "hostile_kinds": sorted({k for _, k, _ in sent}),
                "hostile_wrong_reason": wrong,
                "in_batch_sent": len(mixed),
                "in_batch_dead_lettered": len(found),
                "in_batch_missing_kinds": in_batch_missing,
                "in_batch_kinds": sorted({k for sn, ms, k in mixed if (sn, ms) in found}),
                "in_batch_good_alongside": alongside,
                "in_batch_good_alongside_stored": alongside_stored,
                "broker_restarts": broker_restarts,
                "link_lost": link_lost,
                "ingest_exits": ing.exits[exits_before:],
            }
            results.append(row)
            print(_line(row), flush=True)
            before = published
        log = (broker.work / "mosquitto.log").read_text(errors="replace")
        # the whole run's hostile readings inside gw-c2's batches: each refused in a dead
        # letter, or evicted by the gateway as too old (year 1, while its link was down)
        in_batch_written = len(gateways[1].hostile_rows())
        in_batch_refused = 0
        deadline = time.monotonic() + 15.0
        while in_batch_refused < in_batch_written and time.monotonic() < deadline:
            in_batch_refused = in_batch_reconcile(db_url, f"oxy/v1/{SITE}/gw-c2/data")
            time.sleep(0.5)
        results.append({
            "in_batch_written": in_batch_written,
            "in_batch_refused": in_batch_refused,
            "in_batch_evicted": outbox_evicted(gateways[1].outbox),
            "broker_log_oversize": log.count("oversize packet"),
            "ingest_metric_oversize": oversize_metric[0] if oversize_metric else None,
        })  # fmt: skip
    finally:
        if hostile is not None:
            hostile.close()
        for g in gateways:
            g.stop()
        if ingest is not None:
            ingest.close()
        if proxy is not None:
            proxy.close()
        broker.stop(signal.SIGKILL)
        if pg is not None:
            pg.destroy()
        else:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)
    return results


HEADER = (
    f"{'fault':<62} {'published':>9} {'stored':>7} {'lost':>5} {'dup':>4} {'recovery':>9}"
    f" {'hostile':>7} {'dead-l.':>7} {'in-batch':>8} {'dead-l.':>7} {'beside':>6}"
    f" {'exits':>5}"
)


def _line(r: dict[str, Any]) -> str:
    rec = f"{r['recovery_s']:.1f} s" if r["recovery_s"] is not None else "—"
    return (
        f"{r['fault']:<62} {r['published']:>9} {r['stored']:>7} {r['lost']:>5} "
        f"{r['duplicated']:>4} {rec:>9} {r['hostile_sent']:>7} "
        f"{r['hostile_dead_lettered']:>7} {r['in_batch_sent']:>8} "
        f"{r['in_batch_dead_lettered']:>7} "
        f"{r['in_batch_good_alongside_stored']:>3}/{r['in_batch_good_alongside']:<3}"
        f"{len(r['ingest_exits']):>5}"
    )


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--gateway-worker":
        gateway_worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--db-admin-url",
        help="an existing server instead of a private one (the PostgreSQL fault is skipped)",
    )
    ap.add_argument("--fault-s", type=float, default=10.0, help="how long each fault lasts")
    ap.add_argument("--pg-s", type=float, help="PostgreSQL stopped this long (--fault-s)")
    ap.add_argument("--ingest-away-s", type=float, help="ingest stopped this long (--fault-s)")
    ap.add_argument("--cut-s", type=float, help="network cut this long (--fault-s)")
    ap.add_argument(
        "--long", action="store_true", help="the issue's durations: --pg-s 30 "
        "--ingest-away-s 120 --cut-s 60 (unless given)"
    )  # fmt: skip
    ap.add_argument("--replay", type=int, default=20_000, help="readings in the long outbox")
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    ap.add_argument("--settle-s", type=float, default=60.0, help="longest wait for recovery")
    ap.add_argument(
        "--puback-only", action="store_true", help="gateways without the end-to-end ack"
    )
    args = ap.parse_args()
    if args.long:
        args.pg_s = 30.0 if args.pg_s is None else args.pg_s
        args.ingest_away_s = 120.0 if args.ingest_away_s is None else args.ingest_away_s
        args.cut_s = 60.0 if args.cut_s is None else args.cut_s
    if args.db_admin_url is None and not (PG_BIN / "initdb").exists():
        sys.exit(f"no {PG_BIN}/initdb: PostgreSQL 15 server binaries run the private server")
    mode = "PUBACK only" if args.puback_only else "end-to-end acknowledgement"
    print(f"chaos suite: 3 gateways x 20 readings/s, faults of {args.fault_s:g} s, {mode}; "
          "one hostile message a second throughout, and one hostile reading a second inside "
          "gw-c2's own batches")  # fmt: skip
    print(HEADER, flush=True)
    results = run(
        args.db_admin_url, args.fault_s, args.replay, args.settle_s, not args.puback_only,
        args.pg_s, args.ingest_away_s, args.cut_s,
    )  # fmt: skip
    rows = [r for r in results if "fault" in r]
    oversize = sum(r.get("broker_log_oversize", 0) for r in results)
    counted = results[-1].get("ingest_metric_oversize")
    exits = [e for r in rows for e in r["ingest_exits"]]
    sent = sum(r["hostile_sent"] for r in rows)
    print(f"hostile messages acknowledged by the broker: {sent}, dead-lettered: "
          f"{sum(r['hostile_dead_lettered'] for r in rows)}; over the broker's packet limit: "
          f"{oversize} drop(s) in its log, {counted if counted is not None else '—'} in "
          "ingest's oxy_broker_oversize_drops_total; ingest exits not caused by the suite: "
          f"{len(exits)} {exits or ''}")  # fmt: skip
    end = results[-1]
    print(f"hostile readings inside gw-c2's batches: {end['in_batch_written']} written, "
          f"{end['in_batch_refused']} refused in dead letters (counted per message), "
          f"{end['in_batch_evicted']} evicted by the gateway; found one by one: "
          f"{sum(r['in_batch_dead_lettered'] for r in rows)}; good readings sharing their "
          f"messages (as far as the dead letters show them): "
          f"{sum(r['in_batch_good_alongside'] for r in rows)}, stored: "
          f"{sum(r['in_batch_good_alongside_stored'] for r in rows)}")  # fmt: skip
    for r in rows:
        for w in r["hostile_wrong_reason"]:
            print(f"  unexpected dead-letter reason, {r['fault']}: {w}")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
