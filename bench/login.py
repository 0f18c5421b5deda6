"""Login benchmark: does a burst of logins stall the API? (issue 19, "login under attack")

Serves the real app with uvicorn in a child process (loopback only) on a fresh database, then
for each scenario fires 50 concurrent logins while a probe requests /health every 10 ms:

* attack — 50 concurrent wrong passwords for `byt` from one address;
* users  — 50 different accounts logging in with the right password, each from its own address
  (X-Forwarded-For, trusted from loopback as behind the reverse proxy);
* retry  — the same 50 users, each retrying a 503 (hashing busy) after its Retry-After: the
  time until every one of them is in.

Prints /health p50/p99 during the burst and the login p50/p95 and status codes. Bounded: every
request has a 60 s timeout and the server is stopped at the end.
Run:
    OXY_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/login.py
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from api.auth import HASH_WAIT_BUDGET_S, HASH_WORKERS, PASSWORD_PARAMETERS, hash_password
from oxy.migrate import migrate

PASSWORD = "bench-password-1"
N = 50
DB = "oxy_bench_login"


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank), in ms."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k] * 1000


def seed(url: str) -> None:
    """`byt` and N facility-less engineer accounts sharing one password hash."""
    h = hash_password(PASSWORD)
    with psycopg.connect(url) as conn:
        byt = conn.execute("SELECT id FROM organisations WHERE code = 'BYT'").fetchone()
        conn.execute(
            "INSERT INTO users (username, display_name, role, org_id, national, password_hash, "
            "must_change_password) VALUES ('byt', 'BYT', 'byt', %s, true, %s, false)",
            (byt[0] if byt else None, h),
        )
        for i in range(N):
            conn.execute(
                "INSERT INTO users (username, display_name, role, national, password_hash, "
                "must_change_password) VALUES (%s, %s, 'engineer', true, %s, false)",
                (f"user{i:02d}", f"User {i}", h),
            )


async def one_login(
    base: str, username: str, password: str, address: str, retry: bool = False
) -> tuple[float, int]:
    """(seconds, status) of a form login with its own cookie jar and CSRF token; with `retry`,
    a 503 (hashing busy) is retried after its Retry-After, as a browser user would, and the time
    is until the final answer."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        headers = {"x-forwarded-for": address}
        page = await client.get("/login", headers=headers)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        await ready.wait()
        t0 = time.perf_counter()
        while True:
            r = await client.post(
                "/login",
                data={"username": username, "password": password, "csrf_token": token.group(1)},
                headers=headers,
            )
            if not (retry and r.status_code == 503):
                return time.perf_counter() - t0, r.status_code
            await asyncio.sleep(float(r.headers.get("retry-after", "1")))


ready: asyncio.Event


async def scenario(base: str, name: str, logins: list[tuple[Any, ...]]) -> None:
    """Run one burst with the /health probe; print the figures."""
    global ready
    ready = asyncio.Event()
    health: list[float] = []
    health_codes: collections.Counter[int] = collections.Counter()
    done = False

    async def probe() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            while not done:
                t0 = time.perf_counter()
                r = await client.get("/health")
                health.append(time.perf_counter() - t0)
                health_codes[r.status_code] += 1
                await asyncio.sleep(0.01)

    tasks = [asyncio.create_task(one_login(base, *args)) for args in logins]
    await asyncio.sleep(1.0)  # every client has its form and token
    prober = asyncio.create_task(probe())
    await asyncio.sleep(0.2)
    t0 = time.perf_counter()
    ready.set()
    results = await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    done = True
    await prober
    times = [t for t, _ in results]
    answered = [t for t, code in results if code != 503] or [0.0]  # checked, or locked out
    codes = collections.Counter(code for _, code in results)
    print(
        f"{name:<7} {N} logins in {wall:5.2f} s | login p50 {pct(times, 50):6.0f} ms "
        f"p95 {pct(times, 95):6.0f} ms p99 {pct(times, 99):6.0f} ms "
        f"(not busy: p95 {pct(answered, 95):6.0f} ms), status {dict(sorted(codes.items()))} | "
        f"/health p50 {pct(health, 50):5.1f} ms p99 {pct(health, 99):6.1f} ms "
        f"max {max(health) * 1000:6.1f} ms (n={len(health)}, {dict(health_codes)})"
    )


def main() -> None:
    """Fresh database, child uvicorn, two scenarios."""
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
        seed(url)
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
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("the server did not start")
            time.sleep(0.2)
        cost = PASSWORD_PARAMETERS
        print(
            f"argon2 {cost.memory_cost // 1024} MiB t={cost.time_cost} p={cost.parallelism}, "
            f"{HASH_WORKERS} workers, wait budget "
            f"{HASH_WAIT_BUDGET_S * 1000:.0f} ms; {os.cpu_count()} CPUs, "
            f"load {os.getloadavg()[0]:.1f}"
        )
        attack = [("byt", f"wrong guess {i}", "198.51.100.66") for i in range(N)]
        asyncio.run(scenario(base, "attack", attack))
        users = [(f"user{i:02d}", PASSWORD, f"203.0.113.{i + 1}") for i in range(N)]
        asyncio.run(scenario(base, "users", users))
        # The same users again, retrying a busy answer after its Retry-After: time to get in.
        retrying = [(f"user{i:02d}", PASSWORD, f"203.0.113.{i + 1}", True) for i in range(N)]
        asyncio.run(scenario(base, "retry", retrying))
    finally:
        if server is not None:
            server.terminate()
            server.wait(15)
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


if __name__ == "__main__":
    main()
