"""Chaos suite of issue 14: real processes, faults injected in turn, a table of what was lost.

    .venv/bin/python bench/chaos.py --db-admin-url postgresql://postgres@127.0.0.1:5432/postgres
        [--fault-s 10] [--replay 20000] [--json]

Runs a private Mosquitto (the product's configuration, persistence on), one ingest process
(`python -m ingest run`), three gateway processes, each polling its own simulated tank over
Modbus TCP every 0.1 s (2 sensors: 20 readings/s), the third starting with a long outbox to
replay, all through a TCP proxy this script controls, into a fresh database (created, migrated,
dropped at the end). Faults, one after the other, each lasting `--fault-s`:

  broker SIGKILL + restart (persistence on) · broker restart with its persistence wiped ·
  ingest SIGKILL + restart · ingest stopped while the broker restarts, then started ·
  network cut between gateways and broker (the proxy closes and refuses connections) ·
  gateway SIGKILL (mid outbox write: it polls every 0.1 s) + restart

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


def gateway_worker(config: str, journal: str, tank_code: str, modbus_port: int) -> None:
    """Run one simulated tank and the gateway polling it; journal each committed outbox write."""
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

    def add(ob: Outbox, rows: Any) -> int:
        rows = list(rows)
        n = original(ob, rows)  # committed (FULL sync) before it is journaled
        out.write("".join(f"{r[0]},{r[1]}\n" for r in rows))
        return n

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
    def __init__(self, work: Path, code: str, tank: str, proxy_port: int, e2e: bool) -> None:
        self.code, self.tank = code, tank
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

    def prefill(self, n: int) -> None:
        """A long outbox to replay: `n` readings of the last hours, journaled as published."""
        from gateway.engineering import Row
        from gateway.outbox import Outbox

        ob = Outbox(self.outbox)
        t0 = int(time.time() * 1000) - 6 * 3_600_000
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
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log,
            stderr=subprocess.STDOUT,
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
    def __init__(self, work: Path, db_url: str, mqtt_url: str) -> None:
        self.work, self.db_url, self.mqtt_url = work, db_url, mqtt_url
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.work / "ingest.log").open("ab")
        env = {**os.environ, "OXY_INGEST_BATCH_MS": "100", "OXY_LOG_LEVEL": "INFO"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ingest", "run", "--mqtt-url", self.mqtt_url,
             "--database-url", self.db_url, "--client-id", "chaos-ingest"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


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
    admin_url: str, fault_s: float, replay: int, settle_s: float = 60.0, e2e: bool = True
) -> list[dict[str, Any]]:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from oxy.migrate import migrate

    work = Path(tempfile.mkdtemp(prefix="oxy-chaos-"))
    os.chmod(work, 0o777)
    name = f"oxy_chaos_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # a generated identifier, not a value
    db_url = make_conninfo(**{**conninfo_to_dict(admin_url), "dbname": name})
    broker = Broker(work / "broker")
    proxy: Proxy | None = None
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
        gateways = [GatewayProc(work, c, t, proxy.port, e2e) for c, t in codes.items()]
        gateways[2].prefill(replay)
        for g in gateways:
            g.start()
        time.sleep(4.0)
        ing = ingest

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

        def ingest_away_broker_restart() -> None:
            ing.stop()
            time.sleep(fault_s / 2)
            broker.stop()
            broker.start()
            time.sleep(fault_s / 2)
            ing.start()

        def network_cut() -> None:
            assert proxy is not None
            proxy.cut(True)
            time.sleep(fault_s)
            proxy.cut(False)

        def gateway_kill() -> None:
            gateways[0].stop(signal.SIGKILL)
            time.sleep(fault_s)
            gateways[0].start()

        faults = [
            ("broker SIGKILL + restart (persistence on)", broker_kill),
            ("broker restart, persistence wiped", broker_wiped),
            ("ingest SIGKILL + restart", ingest_kill),
            ("ingest away while the broker restarts", ingest_away_broker_restart),
            (f"network cut gateways-broker {fault_s:g} s", network_cut),
            ("gateway SIGKILL mid outbox write + restart", gateway_kill),
        ]
        before: set[tuple[str, int]] = set()
        given_up: set[tuple[str, int]] = set()
        for label, inject in faults:
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
            row = {
                "fault": label,
                "published": len(phase),
                "stored": len(phase & have),
                "lost": len(missing),
                "duplicated": dups,
                "recovery_s": round(recovered, 1) if not missing else None,
            }
            results.append(row)
            print(_line(row), flush=True)
            before = published
    finally:
        for g in gateways:
            g.stop()
        if ingest is not None:
            ingest.stop()
        if proxy is not None:
            proxy.close()
        broker.stop(signal.SIGKILL)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)
    return results


HEADER = f"{'fault':<46} {'published':>9} {'stored':>7} {'lost':>5} {'dup':>4} {'recovery':>9}"


def _line(r: dict[str, Any]) -> str:
    rec = f"{r['recovery_s']:.1f} s" if r["recovery_s"] is not None else "—"
    return (
        f"{r['fault']:<46} {r['published']:>9} {r['stored']:>7} {r['lost']:>5} "
        f"{r['duplicated']:>4} {rec:>9}"
    )


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--gateway-worker":
        gateway_worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--db-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--fault-s", type=float, default=10.0, help="how long each fault lasts")
    ap.add_argument("--replay", type=int, default=20_000, help="readings in the long outbox")
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    ap.add_argument("--settle-s", type=float, default=60.0, help="longest wait for recovery")
    ap.add_argument(
        "--puback-only", action="store_true", help="gateways without the end-to-end ack"
    )
    args = ap.parse_args()
    mode = "PUBACK only" if args.puback_only else "end-to-end acknowledgement"
    print(f"chaos suite: 3 gateways x 20 readings/s, faults of {args.fault_s:g} s, {mode}")
    print(HEADER, flush=True)
    results = run(args.db_admin_url, args.fault_s, args.replay, args.settle_s, not args.puback_only)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
