"""Login benchmark: does a burst of logins stall the API? (issue 19, "login under attack")

Serves the real app with uvicorn in a child process (loopback only) on a fresh database; this
process is the client, kept cheap so that it does not take the server's CPU: raw asyncio
sockets, one pre-built HTTP/1.1 request per login (the CSRF double-submit token is the client's
own, sent as cookie and header: no login page is fetched), every connection opened before the
burst. A probe requests /health every 10 ms on one keep-alive connection:

* baseline — the probe alone, no login (what /health costs on this machine now);
* attack   — N concurrent wrong passwords for `byt` from one address;
* users    — N different accounts logging in with the right password, each from its own
  address (X-Forwarded-For, trusted from loopback as behind the reverse proxy);
* retry    — the same N users, each retrying a 503 (hashing busy) after its Retry-After: the
  time until every one of them is in.

Bursts are repeated (--rounds) and the probe's samples pooled, so that /health p99 is not just
the slowest of a dozen samples. Prints, side by side, /health p50/p99, login p50/p95, how many
were told busy, and the CPU seconds the server and this client used (with the load average).
Bounded: every request has a 60 s timeout and the server is stopped at the end.
Run:
    OXY_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/login.py
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from api.auth import HASH_WAIT_BUDGET_S, HASH_WORKERS, PASSWORD_PARAMETERS, hash_password
from oxy.migrate import migrate

PASSWORD = "bench-password-1"
DB = "oxy_bench_login"
CSRF = "bench-csrf-token-0123456789abcdef"  # double-submit: any value, as cookie and header
TIMEOUT_S = 60.0


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank), in ms."""
    ordered = sorted(values) or [0.0]
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k] * 1000


def seed(url: str, n: int) -> None:
    """`byt` and n facility-less engineer accounts sharing one password hash."""
    h = hash_password(PASSWORD)
    with psycopg.connect(url) as conn:
        byt = conn.execute("SELECT id FROM organisations WHERE code = 'BYT'").fetchone()
        conn.execute(
            "INSERT INTO users (username, display_name, role, org_id, national, password_hash, "
            "must_change_password) VALUES ('byt', 'BYT', 'byt', %s, true, %s, false)",
            (byt[0] if byt else None, h),
        )
        for i in range(n):
            conn.execute(
                "INSERT INTO users (username, display_name, role, national, password_hash, "
                "must_change_password) VALUES (%s, %s, 'engineer', true, %s, false)",
                (f"user{i:02d}", f"User {i}", h),
            )


def login_request(port: int, username: str, password: str, address: str) -> bytes:
    """The bytes of one form login (the connection is closed after the answer)."""
    body = urllib.parse.urlencode({"username": username, "password": password}).encode()
    head = (
        f"POST /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nCookie: oxy_csrf={CSRF}\r\nX-CSRF-Token: {CSRF}\r\n"
        f"X-Forwarded-For: {address}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """Status and headers of one HTTP/1.1 answer; its body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers


@dataclass
class Login:
    """One client: who logs in, from where, whether it retries a busy answer."""

    username: str
    password: str
    address: str
    retry: bool = False
    took_s: float = 0.0
    status: int = 0
    busy: int = 0  # 503 answers received (retried or final)


async def one_login(port: int, login: Login, start: asyncio.Event) -> None:
    """Open the connection, wait for the start, send the login (again after Retry-After when it
    is told busy and retries); the time is until the final answer."""
    request = login_request(port, login.username, login.password, login.address)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await start.wait()
    t0 = time.perf_counter()
    while True:
        writer.write(request)
        status, headers = await asyncio.wait_for(read_answer(reader), TIMEOUT_S)
        writer.close()
        if status == 503:
            login.busy += 1
        if not (login.retry and status == 503):
            login.took_s, login.status = time.perf_counter() - t0, status
            return
        await asyncio.sleep(float(headers.get("retry-after", "1")))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)


@dataclass
class Probe:
    """GET /health every 10 ms on one keep-alive connection."""

    samples: list[float] = field(default_factory=list)
    codes: collections.Counter[int] = field(default_factory=collections.Counter)
    running: bool = True

    async def run(self, port: int) -> None:
        request = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while self.running:
                t0 = time.perf_counter()
                writer.write(request)
                status, _ = await asyncio.wait_for(read_answer(reader), TIMEOUT_S)
                self.samples.append(time.perf_counter() - t0)
                self.codes[status] += 1
                await asyncio.sleep(0.01)
        finally:
            writer.close()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """User + system CPU seconds of this (client) process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Row:
    """The figures of one scenario."""

    name: str
    logins: list[Login]
    probe: Probe
    wall_s: float
    server_cpu_s: float
    client_cpu_s: float
    load: float

    def line(self) -> str:
        health = self.probe.samples
        if not self.logins:
            answers, login = "—", f"{'—':>25}"
        else:
            times = [x.took_s for x in self.logins]
            codes = collections.Counter(x.status for x in self.logins)
            told_busy = sum(1 for x in self.logins if x.busy)
            answers = " ".join(f"{n}×{c}" for c, n in sorted(codes.items()))
            answers += f", {told_busy} told busy"
            login = f"{pct(times, 50):6.0f} / {pct(times, 95):6.0f} / {max(times) * 1000:6.0f}"
        return (
            f"| {self.name} | {answers} | {login} | {pct(health, 50):5.1f} / "
            f"{pct(health, 99):6.1f} / {max(health or [0]) * 1000:6.1f} ({len(health)}) | "
            f"{self.server_cpu_s:5.2f} / {self.client_cpu_s:5.2f} | {self.load:4.1f} |"
        )


async def burst(port: int, logins: list[Login]) -> tuple[Probe, float]:
    """One burst of logins with the probe running; (probe, wall seconds)."""
    start = asyncio.Event()
    tasks = [asyncio.create_task(one_login(port, x, start)) for x in logins]
    probe = Probe()
    prober = asyncio.create_task(probe.run(port))
    await asyncio.sleep(0.3)  # every connection is open, the probe is running
    t0 = time.perf_counter()
    start.set()
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    probe.running = False
    await prober
    return probe, wall


async def scenario(
    port: int, server_pid: int, name: str, rounds: list[list[Login]], idle_s: float = 0.0
) -> Row:
    """Rounds of bursts (or, with no logins, the probe alone for idle_s); pooled figures."""
    cpu0, own0 = cpu_s(server_pid), own_cpu_s()
    probe_all, wall = Probe(), 0.0
    if not rounds:
        probe = Probe()
        prober = asyncio.create_task(probe.run(port))
        await asyncio.sleep(idle_s)
        probe.running = False
        await prober
        probe_all, wall = probe, idle_s
    for logins in rounds:
        probe, took = await burst(port, logins)
        probe_all.samples += probe.samples
        probe_all.codes += probe.codes
        wall += took
        await asyncio.sleep(1.0)  # the server settles between rounds
    return Row(
        name,
        [x for logins in rounds for x in logins],
        probe_all,
        wall,
        cpu_s(server_pid) - cpu0,
        own_cpu_s() - own0,
        os.getloadavg()[0],
    )


async def run_all(port: int, server_pid: int, n: int, rounds: int) -> list[Row]:
    """Baseline, then the three scenarios."""
    rows = [await scenario(port, server_pid, "baseline (no login)", [], idle_s=3.0)]
    attack = [[Login("byt", f"wrong guess {i}", "198.51.100.66") for i in range(n)]]
    rows.append(await scenario(port, server_pid, f"attack: {n} wrong, one address", attack))

    def users(retry: bool) -> list[list[Login]]:
        return [
            [Login(f"user{i:02d}", PASSWORD, f"203.0.113.{i + 1}", retry) for i in range(n)]
            for _ in range(rounds)
        ]

    rows.append(await scenario(port, server_pid, f"users: {n} accounts × {rounds}", users(False)))
    rows.append(await scenario(port, server_pid, f"retry: {n} accounts × {rounds}", users(True)))
    return rows


def main() -> None:
    """Fresh database, child uvicorn, baseline and three scenarios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logins", type=int, default=50, help="concurrent logins per burst")
    parser.add_argument("--rounds", type=int, default=5, help="bursts of the users scenarios")
    args = parser.parse_args()
    admin = os.environ.get("OXY_BENCH_DATABASE_URL") or os.environ.get("OXY_TEST_DATABASE_URL")
    if not admin:
        sys.exit("set OXY_TEST_DATABASE_URL (or OXY_BENCH_DATABASE_URL) to a PostgreSQL server")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{DB}"')
    params = conninfo_to_dict(admin)
    params["dbname"] = DB
    url = make_conninfo(**params)
    server: subprocess.Popen[bytes] | None = None
    try:
        migrate(url)
        seed(url, args.logins)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1",
            ],
            env={**os.environ, "OXY_DATABASE_URL": url},
            cwd=Path(__file__).resolve().parents[1],
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("the server did not start")
            time.sleep(0.2)
        cost = PASSWORD_PARAMETERS
        print(
            f"argon2id m={cost.memory_cost} KiB t={cost.time_cost} p={cost.parallelism}, "
            f"{HASH_WORKERS} hashing workers, wait budget {HASH_WAIT_BUDGET_S * 1000:.0f} ms; "
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the start\n"
        )
        rows = asyncio.run(run_all(port, server.pid, args.logins, args.rounds))
        print(
            "| run | answers | login p50 / p95 / max, ms | /health p50 / p99 / max, ms "
            "(samples) | CPU s server / client | load |\n| --- | --- | --- | --- | --- | --- |"
        )
        for row in rows:
            print(row.line())
    finally:
        if server is not None:
            server.terminate()
            server.wait(15)
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


if __name__ == "__main__":
    main()
