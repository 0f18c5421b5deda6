"""Login benchmark: does a burst of logins stall the API? (issue 19, "login under attack")

The target: **50 concurrent logins keep `/health` p99 < 100 ms; login p95 < 500 ms.**

Serves the real app with uvicorn in a child process (loopback only) on a fresh database; this
process is the client, kept cheap so that it does not take the server's CPU: raw asyncio
sockets, one pre-built HTTP/1.1 request per login, sent as a browser sends it (form body,
`Accept: text/html`; the CSRF double-submit token is the client's own, sent as cookie and
header: no login page is fetched), every connection opened before the burst.

`/health` is probed **open-loop**: one request every --probe-ms (10 ms) from the burst's start
until its last login is answered, on a set of keep-alive connections, each sample timed from the
moment it was *due* (a stalled server delays every sample due meanwhile, so a stall counts for
its whole length, not as one slow sample). Only samples due during a burst are counted; the
bursts are repeated (--rounds) and pooled, so that p99 rests on hundreds of samples.

* warm-up  — one small unmeasured burst of wrong and right passwords (a server that has run);
* baseline — the probe alone, no login (what /health costs on this machine now);
* attack   — N concurrent wrong passwords for one account from one address (a new account and
  address each round; its bursts are short, so more rounds, up to 3 × --rounds, are run until
  the probe has 100 samples);
* users    — N different accounts logging in with the right password, each from its own
  address (X-Forwarded-For, trusted from loopback as behind the reverse proxy); the time is
  until the first answer, and a "busy" 503 is an answer;
* retry    — the same N users, each retrying a 503 (hashing busy) after its Retry-After: the
  time until every one of them is in. This is the row the login target is judged on.

Besides wall times (inflated on a shared machine) it prints the server's CPU: the event loop's
thread (what delays /health) per login request — the probe's share, measured in the baseline,
deducted — and the rest (the hashing threads); then, on the same server after the bursts, the CPU
of each kind of request sent one at a time (event loop, hashing, PostgreSQL backends: the
figures to compare between machines and builds; the busy answer on a second server whose hashing
queue refuses every check). Ends with met / NOT MET per target.
--profile PATH writes a cProfile (CPU time) of the event loop's thread during the scenarios.
Bounded: every request has a 60 s timeout and the server is stopped at the end.
Run:
    OXY_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \
        .venv/bin/python bench/login.py --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable
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
HEALTH_P99_MS = 100.0  # the targets of issue 19
LOGIN_P95_MS = 500.0
MIN_P99_SAMPLES = 100  # below this a p99 is little more than the slowest sample
PROBE_CONNECTIONS = 8
ATTACK_ROUNDS_FACTOR = 3  # attack bursts are short: up to 3 × --rounds until p99 has its samples


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank), in ms."""
    ordered = sorted(values) or [0.0]
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k] * 1000


def seed(url: str, n: int, rounds: int) -> None:
    """One attacked account per round (`target0`…) and n facility-less engineer accounts, all
    sharing one password hash."""
    h = hash_password(PASSWORD)
    with psycopg.connect(url) as conn:
        names = (
            ["warm"]
            + [f"target{r}" for r in range(ATTACK_ROUNDS_FACTOR * rounds)]
            + [f"user{i:02d}" for i in range(n)]
        )
        for name in names:
            conn.execute(
                "INSERT INTO users (username, display_name, role, national, password_hash, "
                "must_change_password) VALUES (%s, %s, 'engineer', true, %s, false)",
                (name, name, h),
            )


def login_request(port: int, username: str, password: str, address: str) -> bytes:
    """The bytes of one form login as a browser sends it (the connection is closed after)."""
    body = urllib.parse.urlencode({"username": username, "password": password}).encode()
    head = (
        f"POST /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Accept: text/html,application/xhtml+xml\r\n"
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
    took_s: float = 0.0  # until the final answer (after retries)
    first_s: float = 0.0  # until the first answer
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
        if not login.first_s:
            login.first_s = time.perf_counter() - t0
        if status == 503:
            login.busy += 1
        if not (login.retry and status == 503):
            login.took_s, login.status = time.perf_counter() - t0, status
            return
        await asyncio.sleep(float(headers.get("retry-after", "1")))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)


@dataclass
class Probe:
    """GET /health due every `interval_s`, open-loop, on a few keep-alive connections; each
    sample is timed from the moment it was due."""

    interval_s: float
    samples: list[float] = field(default_factory=list)
    codes: collections.Counter[int] = field(default_factory=collections.Counter)
    running: bool = True

    async def run(self, port: int) -> None:
        request = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        for _ in range(PROBE_CONNECTIONS):
            free.put_nowait(await asyncio.open_connection("127.0.0.1", port))

        async def one(due: float) -> None:
            reader, writer = await free.get()  # none free: the wait counts (from `due`)
            try:
                writer.write(request)
                status, _ = await asyncio.wait_for(read_answer(reader), TIMEOUT_S)
                self.samples.append(time.perf_counter() - due)
                self.codes[status] += 1
            finally:
                free.put_nowait((reader, writer))

        pending: set[asyncio.Task[None]] = set()
        due = time.perf_counter()
        while self.running:
            task = asyncio.create_task(one(due))
            pending.add(task)
            task.add_done_callback(pending.discard)
            due += self.interval_s
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await asyncio.gather(*pending)
        while not free.empty():
            free.get_nowait()[1].close()


def cpu_s(pid: int, tid: int | None = None) -> float:
    """User + system CPU seconds of a process, or of one of its threads (Linux /proc)."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_processes(pid: int) -> list[int]:
    """The processes serving requests: uvicorn's own, or its workers (--workers > 1)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [int(c) for c in children] or [pid]


@dataclass(frozen=True)
class Cpu:
    """CPU seconds of the server: its event loops' threads, and all of it."""

    loop_s: float
    total_s: float

    @staticmethod
    def now(pid: int) -> Cpu:
        workers = server_processes(pid)
        total = cpu_s(pid) + (sum(cpu_s(w) for w in workers) if workers != [pid] else 0.0)
        return Cpu(sum(cpu_s(w, w) for w in workers), total)  # a loop runs in its main thread

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.loop_s - other.loop_s, self.total_s - other.total_s)


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
    cpu: Cpu
    client_cpu_s: float
    load: float

    @property
    def requests(self) -> int:
        """Login requests sent, retries included."""
        return sum(1 + (x.busy if x.retry else 0) for x in self.logins)

    def loop_ms_per_login(self, health_loop_s: float) -> float | None:
        """The event loop's CPU per login request, the probe's share deducted."""
        if not self.requests:
            return None
        own = self.cpu.loop_s - health_loop_s * len(self.probe.samples)
        return max(0.0, own) / self.requests * 1000

    def line(self, health_loop_s: float) -> str:
        health = self.probe.samples
        if not self.logins:
            answers, login, until = "—", "—", "—"
        else:
            codes = collections.Counter(x.status for x in self.logins)
            told_busy = sum(1 for x in self.logins if x.busy)
            answers = " ".join(f"{n}×{c}" for c, n in sorted(codes.items()))
            answers += f"; {told_busy} told busy"
            first = [x.first_s for x in self.logins]
            login = f"{pct(first, 50):.0f} / {pct(first, 95):.0f} / {max(first) * 1000:.0f}"
            if self.logins[0].retry:
                final = [x.took_s for x in self.logins]
                until = f"{pct(final, 50):.0f} / {pct(final, 95):.0f} / {max(final) * 1000:.0f}"
            else:
                until = "—"
        loop = self.loop_ms_per_login(health_loop_s)
        return (
            f"| {self.name} | {answers} | {login} | {until} | {pct(health, 50):.1f} / "
            f"{pct(health, 95):.1f} / {pct(health, 99):.1f} / {max(health or [0]) * 1000:.1f} "
            f"({len(health)}) | {'—' if loop is None else f'{loop:.2f}'} | "
            f"{self.cpu.loop_s:.2f} / {self.cpu.total_s - self.cpu.loop_s:.2f} | "
            f"{self.client_cpu_s:.2f} | {self.load:.1f} |"
        )


async def burst(port: int, logins: list[Login], probe_s: float) -> tuple[Probe, float]:
    """One burst of logins with the probe running from the start to the last answer."""
    start = asyncio.Event()
    tasks = [asyncio.create_task(one_login(port, x, start)) for x in logins]
    await asyncio.sleep(0.3)  # every connection is open
    probe = Probe(probe_s)
    prober = asyncio.create_task(probe.run(port))
    await asyncio.sleep(0.05)  # the probe's connections are open, its first sample sent
    t0 = time.perf_counter()
    start.set()
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    probe.running = False
    await prober
    return probe, wall


async def scenario(
    port: int,
    server_pid: int,
    name: str,
    rounds: list[list[Login]],
    probe_s: float,
    idle_s: float = 0.0,
    spare: list[list[Login]] | None = None,
) -> Row:
    """Rounds of bursts (or, with no logins, the probe alone for idle_s); pooled figures. Spare
    rounds are run after them while the probe has fewer than MIN_P99_SAMPLES samples (short
    bursts, as the attack's)."""
    cpu0, own0 = Cpu.now(server_pid), own_cpu_s()
    probe_all, wall = Probe(probe_s), 0.0
    if not rounds:
        probe = Probe(probe_s)
        prober = asyncio.create_task(probe.run(port))
        await asyncio.sleep(idle_s)
        probe.running = False
        await prober
        probe_all, wall = probe, idle_s
    queue, spare, used = list(rounds), list(spare or []), []
    while queue:
        logins = queue.pop(0)
        probe, took = await burst(port, logins, probe_s)
        probe_all.samples += probe.samples
        probe_all.codes += probe.codes
        wall += took
        used.append(logins)
        await asyncio.sleep(1.0)  # the server settles between rounds
        if not queue and spare and len(probe_all.samples) < MIN_P99_SAMPLES:
            queue.append(spare.pop(0))
    return Row(
        f"{name} × {len(used)}" if used else name,
        [x for logins in used for x in logins],
        probe_all,
        wall,
        Cpu.now(server_pid) - cpu0,
        own_cpu_s() - own0,
        os.getloadavg()[0],
    )


async def warm_up(port: int, n: int) -> None:
    """One small unmeasured burst of each kind (wrong, locked, right password), so that the
    figures are of a server that has run, not of its first requests (first-time code paths, the
    PostgreSQL backends' catalog caches): a server is not restarted before each login storm."""
    k = max(1, min(10, n))
    start = asyncio.Event()
    logins = [Login("warm", "a wrong guess", "192.0.2.250") for _ in range(k)]
    logins += [Login(f"user{i:02d}", PASSWORD, f"192.0.2.{i + 1}", retry=True) for i in range(k)]
    tasks = [asyncio.create_task(one_login(port, x, start)) for x in logins]
    await asyncio.sleep(0.1)
    start.set()
    await asyncio.gather(*tasks)
    await asyncio.sleep(1.0)


async def run_all(port: int, server_pid: int, n: int, rounds: int, probe_s: float) -> list[Row]:
    """Warm-up, baseline, then the three scenarios."""
    await warm_up(port, n)
    rows = [await scenario(port, server_pid, "baseline (no login)", [], probe_s, idle_s=3.0)]
    attack = [
        [Login(f"target{r}", f"wrong guess {i}", f"198.51.100.{r + 1}") for i in range(n)]
        for r in range(ATTACK_ROUNDS_FACTOR * rounds)
    ]
    label = f"attack: {n} wrong, one address"
    rows.append(
        await scenario(port, server_pid, label, attack[:rounds], probe_s, spare=attack[rounds:])
    )

    def users(retry: bool) -> list[list[Login]]:
        return [
            [Login(f"user{i:02d}", PASSWORD, f"203.0.113.{i + 1}", retry) for i in range(n)]
            for _ in range(rounds)
        ]

    for name, retry in (("users", False), ("retry", True)):
        label = f"{name}: {n} accounts"
        rows.append(await scenario(port, server_pid, label, users(retry), probe_s))
    return rows


def verdict(rows: list[Row], n: int) -> list[str]:
    """met / NOT MET per target, with the figure it rests on."""
    out = [f"Targets (issue 19, {n} concurrent logins):"]
    for row in rows[1:]:
        health = row.probe.samples
        p99 = pct(health, 99)
        few = len(health) < MIN_P99_SAMPLES
        ok = "met" if p99 < HEALTH_P99_MS else "NOT MET"
        note = f" — fewer than {MIN_P99_SAMPLES} samples, raise --rounds" if few else ""
        out.append(
            f"  /health p99 < {HEALTH_P99_MS:.0f} ms during {row.name.split(':')[0]}: "
            f"{p99:.1f} ms over {len(health)} samples — {ok}{note}"
        )
    retry = rows[-1]
    until = pct([x.took_s for x in retry.logins], 95)
    busy = sum(1 for x in retry.logins if x.busy)
    out.append(
        f"  login p95 < {LOGIN_P95_MS:.0f} ms, until logged in (retry: every user gets in, "
        f"{busy} of {len(retry.logins)} told busy first): {until:.0f} ms — "
        f"{'met' if until < LOGIN_P95_MS else 'NOT MET'}"
    )
    users = rows[-2]
    first = pct([x.first_s for x in users.logins], 95)
    busy = sum(1 for x in users.logins if x.busy)
    out.append(
        f"  (for information: first answer p95 in the users bursts, a busy 503 counting as an "
        f"answer: {first:.0f} ms, {busy} of {len(users.logins)} told busy)"
    )
    return out


async def _one_by_one(port: int, requests: list[bytes]) -> None:
    for request in requests:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await asyncio.wait_for(read_answer(reader), TIMEOUT_S)
        writer.close()


async def _health_in_a_row(port: int, n: int) -> None:
    request = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(n):
        writer.write(request)
        await asyncio.wait_for(read_answer(reader), TIMEOUT_S)
    writer.close()


def postgres_cpu_s(admin: str) -> float | None:
    """CPU seconds of the bench database's PostgreSQL backends (None: not on this machine)."""
    with psycopg.connect(admin, autocommit=True) as conn:
        pids = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (DB,))
        try:
            return sum(cpu_s(pid) for (pid,) in pids.fetchall())
        except OSError:
            return None


@dataclass(frozen=True)
class Cost:
    """CPU per request of one kind, requests sent one at a time (load affects it far less than
    wall time: the comparable figure on a shared machine)."""

    name: str
    loop_ms: float
    rest_ms: float
    postgres_ms: float | None

    def line(self) -> str:
        pg = "—" if self.postgres_ms is None else f"{self.postgres_ms:.2f}"
        rest = max(0.0, self.rest_ms)  # clock ticks: -0.00 is 0
        return f"| {self.name} | {self.loop_ms:.2f} | {rest:.2f} | {pg} |"


async def _run(send: Callable[[], Awaitable[None]]) -> None:
    await send()


def measure_cost(
    admin: str, pid: int, name: str, n: int, send: Callable[[], Awaitable[None]]
) -> Cost:
    """Send the requests twice (the first pass warms up) and measure the second."""
    asyncio.run(_run(send))
    cpu0, pg0 = Cpu.now(pid), postgres_cpu_s(admin)
    asyncio.run(_run(send))
    cpu, pg1 = Cpu.now(pid) - cpu0, postgres_cpu_s(admin)
    pg = None if pg0 is None or pg1 is None else (pg1 - pg0) / n * 1000
    return Cost(name, cpu.loop_s / n * 1000, (cpu.total_s - cpu.loop_s) / n * 1000, pg)


def costs(admin: str, port: int, pid: int, n: int) -> list[Cost]:
    """/health and each kind of login answer but the busy one, one request at a time."""
    users = [f"user{i % n:02d}" for i in range(100)]
    wrong = [login_request(port, u, "a wrong guess", f"10.1.{i}.1") for i, u in enumerate(users)]
    again = [login_request(port, u, "a wrong guess", f"10.2.{i}.1") for i, u in enumerate(users)]
    locked = [login_request(port, "target0", "a wrong guess", "198.51.100.250")] * 100
    good = [login_request(port, u, PASSWORD, f"203.0.113.{i % n + 1}") for i, u in enumerate(users)]
    out = [measure_cost(admin, pid, "GET /health", 300, lambda: _health_in_a_row(port, 300))]
    batches = iter([wrong, again])
    out.append(
        measure_cost(admin, pid, "login 401 (wrong password, hashed)", 100,
                     lambda: _one_by_one(port, next(batches)))
    )  # fmt: skip
    out.append(
        measure_cost(admin, pid, "login 429 (locked, not hashed)", 100,
                     lambda: _one_by_one(port, locked))
    )  # fmt: skip
    out.append(
        measure_cost(admin, pid, "login 303 (right password, session started)", 100,
                     lambda: _one_by_one(port, good))
    )  # fmt: skip
    return out


def busy_cost(admin: str, url: str, port: int, n: int) -> Cost:
    """The busy answer (503), on a server whose hashing queue refuses every check."""
    server = start_server(port, url, 1, None, {"OXY_HASH_WAIT_BUDGET_MS": "-1"})
    try:
        users = [f"user{i % n:02d}" for i in range(200)]
        busy = [
            login_request(port, u, PASSWORD, f"203.0.113.{i % n + 1}") for i, u in enumerate(users)
        ]
        return measure_cost(admin, server.pid, "login 503 (busy, not hashed)", 200,
                            lambda: _one_by_one(port, busy))  # fmt: skip
    finally:
        server.terminate()
        server.wait(15)


def serve_profiled(port: int, path: str) -> None:
    """uvicorn with cProfile (CPU time) on its event loop's thread, started by SIGUSR1 and
    written to `path` at exit (the --profile child)."""
    import cProfile

    import uvicorn

    profile = cProfile.Profile(time.thread_time)
    signal.signal(signal.SIGUSR1, lambda *_: profile.enable())
    signal.raise_signal = lambda _: None  # uvicorn re-raises SIGTERM after shutdown: dump first
    try:
        uvicorn.run(
            "api.app:create_app", factory=True, host="127.0.0.1", port=port,
            log_level="warning", proxy_headers=True, forwarded_allow_ips="127.0.0.1",
        )  # fmt: skip
    finally:
        profile.disable()
        profile.dump_stats(path)


def start_server(
    port: int, url: str, workers: int, profile: str | None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """The child uvicorn (one process, or a supervisor and `workers` worker processes)."""
    if profile:
        command = [sys.executable, __file__, "--serve-profiled", str(port), profile]
    else:
        command = [
            sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1", "--workers", str(workers),
        ]  # fmt: skip
    root = Path(__file__).resolve().parents[1]
    server = subprocess.Popen(
        command,
        env={**os.environ, "OXY_DATABASE_URL": url, "PYTHONPATH": str(root), **(env or {})},
        cwd=root,
    )
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
    if workers > 1:  # every worker up (each answers; the kernel spreads connections)
        time.sleep(3)
    if profile:
        os.kill(server.pid, signal.SIGUSR1)
    return server


def main() -> None:
    """Fresh database, child uvicorn, baseline and three scenarios, the verdict."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--logins", type=int, default=50, help="concurrent logins per burst")
    parser.add_argument("--rounds", type=int, default=5, help="bursts per scenario")
    parser.add_argument("--probe-ms", type=float, default=10.0, help="/health probe interval")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--profile", metavar="PATH", help="cProfile the event loop to PATH")
    parser.add_argument("--serve-profiled", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_profiled:
        serve_profiled(int(args.serve_profiled[0]), args.serve_profiled[1])
        return
    if args.profile and args.workers != 1:
        sys.exit("--profile profiles one process: use it with --workers 1")
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
        seed(url, args.logins, args.rounds)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = start_server(port, url, args.workers, args.profile)
        cost = PASSWORD_PARAMETERS
        load0 = os.getloadavg()[0]
        print(
            f"argon2id m={cost.memory_cost} KiB t={cost.time_cost} p={cost.parallelism}, "
            f"{HASH_WORKERS} hashing workers per process, wait budget "
            f"{HASH_WAIT_BUDGET_S * 1000:.0f} ms; {args.workers} uvicorn worker(s); "
            f"{os.cpu_count()} CPUs, load {load0:.1f} at the start; /health probed every "
            f"{args.probe_ms:g} ms (open-loop, timed from when each sample was due, only "
            "during the bursts); after one unmeasured warm-up burst\n"
        )
        probe_s = args.probe_ms / 1000
        rows = asyncio.run(run_all(port, server.pid, args.logins, args.rounds, probe_s))
        base = rows[0]
        health_loop_s = base.cpu.loop_s / max(1, len(base.probe.samples))
        print(
            "| run | answers | login p50 / p95 / max, ms (first answer) | until in p50 / p95 / "
            "max, ms | /health p50 / p95 / p99 / max, ms (samples) | loop CPU ms per login "
            "request | server CPU s: loop / rest | client CPU s | load |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        )
        for row in rows:
            print(row.line(health_loop_s))
        cost_rows: list[Cost] = []
        if args.workers == 1 and not args.profile:
            cost_rows = costs(admin, port, server.pid, args.logins)
            server.terminate()
            server.wait(15)
            server = None
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                busy_port = s.getsockname()[1]
            cost_rows.append(busy_cost(admin, url, busy_port, args.logins))
        print(
            f"\nloop CPU per /health request (baseline): {health_loop_s * 1000:.2f} ms; "
            "loop = the event loops' threads (HTTP, routing, form, CSRF, database round trips, "
            "answers), rest = the hashing threads and the server's other threads; the loop CPU "
            "per login request deducts the probe's share at that cost (rough where the probe "
            "dominates, as in retry: see the one-at-a-time figures below)."
        )
        load = max(load0, *(r.load for r in rows))
        if load > 0.5 * (os.cpu_count() or 1):
            print(
                f"The machine was busy (load up to {load:.1f} on {os.cpu_count()} CPUs): wall "
                "times are inflated; the CPU columns are the comparable figures."
            )
        if cost_rows:
            print(
                "\nCPU per request, one request at a time (the comparable figure on a shared "
                "machine), ms:\n| request | event loop | rest (hashing) | PostgreSQL backends |\n"
                "| --- | --- | --- | --- |"
            )
            for cost in cost_rows:
                print(cost.line())
        print()
        print("\n".join(verdict(rows, args.logins)))
    finally:
        if server is not None:
            server.terminate()
            server.wait(15)
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


if __name__ == "__main__":
    main()
