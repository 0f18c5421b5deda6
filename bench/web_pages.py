"""Web page benchmark: server-side response times of the role pages on the demo country.

Seeds a fresh database (demo country, one account per role, 8 days of 1-minute readings on every
demo tank), serves the real app with uvicorn as `oxy api run` does — with the periodic job that
computes the tanks' accounting windows ahead, whose first round runs before the server answers
(its time is printed: the start) — and times each key page: the first request after the start
(cold) and the median of the next ones (warm), with the server thread's CPU time and the number
of accounting windows the request computed (rows of tank_windows it wrote).
`--without-ahead` serves the app without the job (the previous behaviour: the first page computes
the windows), for comparison.
`--facilities N` adds N generated facilities (registry, coordinates, 8 days of filed reports for
most of them) to the demo country, to time the national pages at the size of the country.
Run:
    OXY_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/web_pages.py [--facilities 2000]
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from psycopg import sql
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
    ("kysu", "engineer", None),  # national engineer
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
            national = role == "engineer"
            await create_user(
                conn,
                "bench",
                NewUser(username, username, Role(role), PASSWORD, org, national=national),
            )
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


# Generated facilities: spread over the departments (SYT), scattered over the country, each with
# a filed report on most of the last 8 days (some late, some missing).
_GEN_ORGS = """
INSERT INTO organisations (code, kind, name, province_code, parent_id)
SELECT 'GEN-' || lpad(i::text, 5, '0'), 'facility', 'Cơ sở sinh ' || i, p.province_code, p.id
FROM generate_series(1, %(n)s) AS i
CROSS JOIN LATERAL (
    SELECT id, province_code FROM organisations WHERE kind = 'syt'
    ORDER BY md5(i::text || id::text) LIMIT 1
) p
"""
_GEN_FACILITIES = """
INSERT INTO facilities (org_id, latitude, longitude, beds)
SELECT id, 8.6 + random() * 14.7, 102.2 + random() * 7.2, 100 + (random() * 900)::int
FROM organisations WHERE code LIKE 'GEN-%%'
"""
_GEN_REPORTS = """
INSERT INTO facility_reports (facility_id, report_day, submitted_at, late, patients_current,
    patients_new, stock_gas_nm3, avg_need_nm3, capacity_nm3)
SELECT o.id, d::date, d + interval '16 hours', random() < 0.1, (random() * 200)::int,
       (random() * 20)::int, 2000 + random() * 8000, 500 + random() * 1500, 12000
FROM organisations o CROSS JOIN generate_series(%(first)s::date, %(last)s::date, '1 day') d
WHERE o.code LIKE 'GEN-%%' AND random() < 0.85
"""


def generate(url: str, n: int) -> None:
    """Add `n` facilities with 8 days of reports to the seeded database."""
    today = datetime.now(UTC).date()
    with psycopg.connect(url) as c:
        c.execute(_GEN_ORGS, {"n": n})
        c.execute(_GEN_FACILITIES)
        c.execute(_GEN_REPORTS, {"first": today - timedelta(days=8), "last": today})


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


def _without_ahead() -> bool:
    return "--without-ahead" in sys.argv[1:]


def _facilities_arg() -> int:
    args = sys.argv[1:]
    if "--facilities" in args:
        return int(args[args.index("--facilities") + 1])
    return 0


def main() -> None:
    """Seed, serve, time, print."""
    admin = os.environ.get("OXY_BENCH_DATABASE_URL") or os.environ.get("OXY_TEST_DATABASE_URL")
    if not admin:
        sys.exit("set OXY_TEST_DATABASE_URL (or OXY_BENCH_DATABASE_URL) to a PostgreSQL server")
    name = os.environ.get("OXY_BENCH_DB", "oxy_bench_web")  # another name: runs side by side
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(admin)
    params["dbname"] = name
    url = make_conninfo(**params)
    try:
        migrate(url)
        seed_demo(url)
        n = asyncio.run(seed(url))
        print(f"seeded: demo country, {n:,} readings (8 days, 1 per minute per tank)")
        extra = _facilities_arg()
        if extra:
            generate(url, extra)
            print(f"generated: {extra:,} more facilities with 8 days of reports")
        run(url)
    finally:
        if not os.environ.get("OXY_BENCH_KEEP"):  # keep it to profile a page afterwards
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def run(url: str) -> None:
    """Serve the app and time the pages."""
    import socket

    import uvicorn

    from api.app import create_app
    from oxy.settings import Settings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ahead = not _without_ahead()
    app = create_app(Settings(database_url=url), windows_ahead=ahead)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
    )
    t_start, cpu_start = time.perf_counter(), time.process_time()
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    started = time.perf_counter() - t_start
    started_cpu = time.process_time() - cpu_start
    base = f"http://127.0.0.1:{port}"
    state = app.state.windows_ahead
    if state is not None and state.last is not None:
        r = state.last
        print(
            f"start: {started * 1000:,.0f} ms until the server answered (process CPU "
            f"{started_cpu * 1000:,.0f} ms), of which the windows' first round "
            f"{r.seconds * 1000:,.0f} ms ({r.tanks} tanks, report days {r.first}..{r.last}, "
            f"{r.windows} windows)"
        )
    else:
        print(
            f"start: {started * 1000:,.0f} ms until the server answered (process CPU "
            f"{started_cpu * 1000:,.0f} ms; no windows job)"
        )
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
        ("byt", "/map/data"),
        ("byt", "/byt/supply-chart"),
        ("byt", "/byt/reporting-rate"),
        ("byt", f"/provinces/{ids['SYT-79']}/reporting-rate"),
        ("byt", "/coordination"),
        ("syt79", "/coordination"),
        ("syt79", "/map/data"),
        ("kysu", "/gateways"),
        ("kysu", f"/facilities/{ids['BV-CHORAY']}/tanks/{tank[0]}/diagnostics"),
        ("ncc", f"/suppliers/{ids['NCC-KHIMIENNAM']}/report"),
        ("admin", "/admin/gateways"),
    )
    clients = {u: login(base, u) for u, _, _ in ACCOUNTS}
    # The server thread's own CPU time per request: unlike the wall clock, it hardly moves when
    # other work shares the machine (the database server's CPU is not in it).
    assert thread.ident is not None
    server_cpu = time.pthread_getcpuclockid(thread.ident)

    written = psycopg.connect(url, autocommit=True)

    def computed_since(t0: datetime) -> int:
        """Windows (tank, day) computed and stored since t0: what a request computed."""
        row = written.execute(
            "SELECT count(*) FROM tank_windows WHERE computed_at >= %s", (t0,)
        ).fetchone()
        return int(row[0]) if row else 0

    # The BYT map page as a browser loads it: the page, then its map points and its chart at
    # once (map.js and charts.js fetch them after the first paint).
    byt = clients["byt"]
    after = ("/map/data", "/byt/supply-chart")

    def browser_load() -> tuple[float, float, int]:
        c0, t0, ts0 = time.clock_gettime(server_cpu), time.perf_counter(), datetime.now(UTC)
        timed(byt, "/byt")
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda p: timed(byt, p), after))
        return (
            time.perf_counter() - t0,
            time.clock_gettime(server_cpu) - c0,
            computed_since(ts0),
        )

    # The first page load after the start (only the logins before it): what the analyst who
    # opens the national map after a restart waits for.
    first_wall, first_cpu, first_n = browser_load()
    print(
        f"first load after the start, byt /byt + its map points and chart (browser order): "
        f"{first_wall * 1000:,.0f} ms (server CPU {first_cpu * 1000:,.0f} ms, "
        f"{first_n} windows computed)"
    )

    def cpu_timed(client: httpx.Client, path: str) -> tuple[float, float, int]:
        c0 = time.clock_gettime(server_cpu)
        t0 = datetime.now(UTC)
        wall = timed(client, path)
        return wall, time.clock_gettime(server_cpu) - c0, computed_since(t0)

    # The table: the first request of each page (cold; the BYT three came once before, above)
    # and the next five; windows computed: rows of tank_windows written during the request (the
    # periodic job's, should one of its rounds fall in it, included).
    print(
        f"{'page':<52} {'cold ms':>8} {'warm ms (median of 5)':>22} "
        f"{'server CPU ms cold / warm':>26} {'windows computed cold / warm':>29}"
    )
    cold_of: dict[tuple[str, str], float] = {}
    for user, path in pages:
        cold, cold_cpu, cold_n = cpu_timed(clients[user], path)
        cold_of[user, path] = cold
        runs = [cpu_timed(clients[user], path) for _ in range(WARM_RUNS)]
        warm = statistics.median(r[0] for r in runs)
        warm_cpu = statistics.median(r[1] for r in runs)
        warm_n = max(r[2] for r in runs)
        cpu = f"{cold_cpu * 1000:.0f} / {warm_cpu * 1000:.0f}"
        n = f"{cold_n} / {warm_n}"
        print(f"{user + ' ' + path:<52} {cold * 1000:>8.0f} {warm * 1000:>22.0f} {cpu:>26} {n:>29}")
    cold_full = cold_of["byt", "/byt"] + max(cold_of["byt", p] for p in after)
    fulls = [browser_load() for _ in range(WARM_RUNS)]
    cpu = f"{statistics.median(f[1] for f in fulls) * 1000:.0f}"
    n = f"{max(f[2] for f in fulls)}"
    print(
        f"{'byt /byt + its map points and chart (browser order)':<52} "
        f"{cold_full * 1000:>8.0f} {statistics.median(f[0] for f in fulls) * 1000:>22.0f} "
        f"{cpu:>26} {n:>29}"
    )
    print(
        "  warm browser-order loads (ms): "
        + ", ".join(f"{f[0] * 1000:.0f}" for f in fulls)
        + "; cold here = /byt's first + the slower of the two's first (sequential)"
    )
    written.close()
    server.should_exit = True
    thread.join(timeout=10)


if __name__ == "__main__":
    main()
