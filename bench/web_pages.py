"""Web page benchmark: server-side response times of the role pages on the demo country.

Seeds a fresh database (demo country, one account per role, 8 days of 1-minute readings on every
demo tank), serves the real app with uvicorn and times each key page: the first request (cold:
accounting windows computed and stored) and the median of the next ones (warm).
Run:
    OXY_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/web_pages.py
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from oxy.demo_seed import seed_demo
from oxy.migrate import migrate

PASSWORD = "bench-password-1"
ACCOUNTS = (
    ("admin", "admin", None),
    ("byt", "byt", "BYT"),
    ("syt79", "syt", "SYT-79"),
    ("choray", "facility", "BV-CHORAY"),
    ("ncc", "supplier", "NCC-KHIMIENNAM"),
)
WARM_RUNS = 5


async def seed(url: str) -> int:
    """Accounts and readings; returns how many readings were written."""
    from psycopg import AsyncConnection

    from api.accounting.simulate import TankPlan, copy_readings, readings, refresh_rollups
    from api.scope import Role
    from api.users import NewUser, create_user

    n = 0
    async with await AsyncConnection.connect(url) as conn:
        for username, role, org in ACCOUNTS:
            await create_user(conn, "bench", NewUser(username, username, Role(role), PASSWORD, org))
        await conn.execute("UPDATE users SET must_change_password = false")
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        start = now - timedelta(days=8)
        cur = await conn.execute(
            "SELECT t.capacity_kg, t.diameter_m, s.id FROM tanks t "
            "JOIN sensors s ON s.tank_id = t.id AND s.quantity = 'dp'"
        )
        for cap, diameter, sensor in await cur.fetchall():
            plan = TankPlan(cap, diameter, cap * 0.6, cap * 0.06)
            n += await copy_readings(conn, readings(plan, sensor, start, now, seed=sensor))
            await refresh_rollups(conn, sensor, start, now)
        await conn.commit()
    return n


def timed(client: httpx.Client, path: str) -> float:
    """Seconds for one GET (must succeed)."""
    t0 = time.perf_counter()
    r = client.get(path)
    elapsed = time.perf_counter() - t0
    if r.status_code != 200 or r.url.path != path.split("?", maxsplit=1)[0]:
        sys.exit(f"GET {path}: {r.status_code} at {r.url.path}")
    return elapsed


def login(base: str, username: str) -> httpx.Client:
    """A client with a session for `username`."""
    client = httpx.Client(base_url=base, follow_redirects=True, timeout=60)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    time.sleep(0.2)  # the session commit may trail the redirect (see the report on api.deps)
    return client


def main() -> None:
    """Seed, serve, time, print."""
    admin = os.environ.get("OXY_BENCH_DATABASE_URL") or os.environ.get("OXY_TEST_DATABASE_URL")
    if not admin:
        sys.exit("set OXY_TEST_DATABASE_URL (or OXY_BENCH_DATABASE_URL) to a PostgreSQL server")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute('DROP DATABASE IF EXISTS "oxy_bench_web" WITH (FORCE)')
        c.execute('CREATE DATABASE "oxy_bench_web"')
    params = conninfo_to_dict(admin)
    params["dbname"] = "oxy_bench_web"
    url = make_conninfo(**params)
    try:
        migrate(url)
        seed_demo(url)
        n = asyncio.run(seed(url))
        print(f"seeded: demo country, {n:,} readings (8 days, 1 per minute per tank)")
        run(url)
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute('DROP DATABASE IF EXISTS "oxy_bench_web" WITH (FORCE)')


def run(url: str) -> None:
    """Serve the app and time the pages."""
    import socket

    import uvicorn

    from api.app import create_app
    from oxy.settings import Settings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(Settings(database_url=url)),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    with psycopg.connect(url) as c:
        ids = dict(c.execute("SELECT code, id FROM organisations").fetchall())
        tank = c.execute(
            "SELECT id FROM tanks WHERE facility_id = %s AND code = 'T1'", (ids["BV-CHORAY"],)
        ).fetchone()
    assert tank is not None
    pages = (
        ("choray", f"/facilities/{ids['BV-CHORAY']}/tanks"),
        ("choray", f"/facilities/{ids['BV-CHORAY']}/tanks/{tank[0]}"),
        ("choray", f"/facilities/{ids['BV-CHORAY']}/report"),
        ("syt79", f"/provinces/{ids['SYT-79']}/report"),
        ("syt79", f"/provinces/{ids['SYT-79']}/facilities"),
        ("byt", "/byt"),
        ("ncc", f"/suppliers/{ids['NCC-KHIMIENNAM']}/report"),
        ("admin", "/admin/gateways"),
    )
    clients = {u: login(base, u) for u, _, _ in ACCOUNTS}
    print(f"{'page':<44} {'cold ms':>8} {'warm ms (median of 5)':>22}")
    for user, path in pages:
        cold = timed(clients[user], path)
        warm = statistics.median(timed(clients[user], path) for _ in range(WARM_RUNS))
        print(f"{path:<44} {cold * 1000:>8.0f} {warm * 1000:>22.0f}")
    server.should_exit = True
    thread.join(timeout=10)


if __name__ == "__main__":
    main()
