"""Benchmark of the reporting chain: SYT report and BYT national view, rollups vs raw readings.

Dataset: 2,000 facilities under the 34 provincial SYTs, 1,000 monitored LOX tanks, N days of
1-minute DP telemetry (COPY), hourly rollups, and a daily report per facility (a few missing or
late). Prints the p50/p95 of the SYT report and of the BYT national view computed from the
stored windows (rollups) next to the same computed from raw readings at query time.

    OXY_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \
        .venv/bin/python bench/reports.py --days 30

A database `oxy_bench` is created on that server (dropped at the end unless --keep). The load
drops the readings primary key during COPY and rebuilds it afterwards (faster than maintaining
it row by row); rollup_1h / rollup_1d are filled from the generated arrays, as ingest would.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.accounting.config import AccountingConfig
from api.accounting.telemetry import Source, ensure_windows
from api.accounting.windows import last_complete_day, window
from api.reports import national, syt
from api.reports.filters import SytFilters
from oxy.calibration import vertical_tank_table
from oxy.migrate import migrate

CFG = AccountingConfig.defaults()
ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)
COPY_REPORTS = """
COPY facility_reports (facility_id, report_day, revision, submitted_at, late, patients_current,
    patients_new, discharged_morning, discharged_evening, o2_mask, o2_hfnc, o2_niv, o2_invasive,
    o2_ecmo, refilled_gas_nm3, stock_liquid_kg, stock_gas_nm3, avg_need_nm3) FROM STDIN
"""
CLASSES = [(6000.0, 1.8), (10000.0, 2.0), (20000.0, 2.5), (30000.0, 2.8)]


def say(msg: str) -> None:
    print(msg, flush=True)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


REGISTRY = [
    # 2,000 facilities spread over the 34 provincial SYTs.
    """
    INSERT INTO organisations (code, kind, name, province_code, parent_id)
    SELECT 'F' || lpad(i::text, 5, '0'), 'facility', 'Bệnh viện ' || i, s.province_code, s.id
    FROM generate_series(1, %(n)s) i
    JOIN (SELECT id, province_code, row_number() OVER (ORDER BY code) - 1 AS k
          FROM organisations WHERE kind = 'syt') s ON s.k = i %% 34
    """,
    "INSERT INTO facilities (org_id, beds) "
    "SELECT id, 200 FROM organisations WHERE kind = 'facility'",
    # Monitored tanks (code T1) on the first facilities, four size classes.
    """
    INSERT INTO tanks (facility_id, code, name, capacity_kg, diameter_m, min_usable_kg)
    SELECT o.id, 'T1', 'T1', c.cap, c.dia, c.cap * 0.05
    FROM (SELECT id, row_number() OVER (ORDER BY code) AS k FROM organisations
          WHERE kind = 'facility') o
    JOIN (VALUES (0, 6000.0, 1.8), (1, 10000.0, 2.0), (2, 20000.0, 2.5), (3, 30000.0, 2.8))
         AS c (cls, cap, dia) ON c.cls = o.k %% 4
    WHERE o.k <= %(t)s
    """,
    # Unmonitored tanks (code U1) on a third of the others: capacity from the registry only.
    """
    INSERT INTO tanks (facility_id, code, name, capacity_kg, diameter_m)
    SELECT id, 'U1', 'U1', 8000, 2.0 FROM organisations o WHERE kind = 'facility'
      AND NOT EXISTS (SELECT 1 FROM tanks t WHERE t.facility_id = o.id) AND o.id %% 3 = 0
    """,
    """
    INSERT INTO cylinder_banks (facility_id, code, cylinder_count)
    SELECT id, 'C1', 40 FROM organisations WHERE kind = 'facility'
    """,
    "INSERT INTO gateways (facility_id, code) "
    "SELECT facility_id, 'gw-' || facility_id FROM tanks WHERE code = 'T1'",
    """
    INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit)
    SELECT g.id, 'T1-dp', t.id, 'dp', 'inH2O' FROM gateways g
    JOIN tanks t ON t.facility_id = g.facility_id AND t.code = 'T1'
    """,
]


def simulate(
    cap: float, minutes: int, rnd: np.random.Generator, start_hour_utc: float
) -> np.ndarray:
    """True contents (kg) per minute: diurnal draw, refill to 90 % when under 30 %."""
    per_day = cap * rnd.uniform(0.05, 0.15)
    t = np.arange(minutes)
    hours = (start_hour_utc + t / 60.0) % 24
    draw = per_day / 1440.0 * (1 + 0.3 * np.cos((hours - 7.0) / 24 * 2 * np.pi))
    kg = np.empty(minutes)
    level = cap * rnd.uniform(0.4, 0.9)
    i = 0
    cum = np.cumsum(draw)
    while i < minutes:
        base = cum[i - 1] if i > 0 else 0.0
        seg = level - (cum[i:] - base) + draw[i]
        low = np.nonzero(seg < 0.3 * cap)[0]
        end = i + (int(low[0]) if len(low) else minutes - i)
        kg[i:end] = seg[: end - i]
        if end >= minutes:
            break
        # Refill over 45 minutes to 90 % while the draw goes on.
        level_now = kg[end - 1] if end > i else level
        ramp = min(45, minutes - end)
        amount = 0.9 * cap - level_now
        kg[end : end + ramp] = (
            level_now + amount * (np.arange(1, ramp + 1) / 45) - np.cumsum(draw[end : end + ramp])
        )
        level = kg[end + ramp - 1]
        i = end + ramp
    return kg


async def load(url: str, days: int, n_fac: int, n_tanks: int, last: date) -> dict[str, float]:
    timings: dict[str, float] = {}
    first = last - timedelta(days=days - 1)
    start = window(first, CFG).start - timedelta(hours=3)
    end = window(last, CFG).end + timedelta(hours=3)
    minutes = int((end - start).total_seconds() // 60)
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        await conn.execute("SET synchronous_commit = off")
        t0 = time.perf_counter()
        for sql in REGISTRY:
            await conn.execute(sql, {"n": n_fac, "t": n_tanks})
        cur = await conn.execute(
            "SELECT t.id, t.capacity_kg, s.id FROM tanks t "
            "JOIN sensors s ON s.tank_id = t.id ORDER BY t.id"
        )
        tanks = [(int(a), float(b), int(c)) for a, b, c in await cur.fetchall()]
        tables = {cap: vertical_tank_table(cap, dia) for cap, dia in CLASSES}
        async with conn.cursor() as c:
            for tank_id, cap, _ in tanks:
                tb = tables[cap]
                k = await (
                    await conn.execute(
                        "INSERT INTO tank_calibrations (tank_id, version, valid_from) "
                        "VALUES (%s, 1, %s) RETURNING id",
                        (tank_id, start - timedelta(days=30)),
                    )
                ).fetchone()
                assert k
                await c.executemany(
                    "INSERT INTO calibration_points VALUES (%s, %s, %s)",
                    [(k[0], d, kg) for d, kg in zip(tb.dp, tb.kg, strict=True)],
                )
        timings["registry_s"] = time.perf_counter() - t0
        say(
            f"registry: {n_fac} facilities, {len(tanks)} monitored tanks "
            f"({timings['registry_s']:.1f} s)"
        )

        # Readings: COPY text, one chunk per tank; the primary key is rebuilt afterwards.
        t0 = time.perf_counter()
        await conn.execute("ALTER TABLE readings DROP CONSTRAINT readings_pkey")
        ts = [
            (start + timedelta(minutes=m)).strftime("%Y-%m-%d %H:%M:%S+00") for m in range(minutes)
        ]
        rnd = np.random.default_rng(42)
        hour_rows: list[str] = []
        day_rows: list[str] = []
        start_hour = start.hour + start.minute / 60
        rows_total = 0
        async with (
            conn.cursor() as cur2,
            cur2.copy("COPY readings (sensor_id, ts, value, quality) FROM STDIN") as cp,
        ):
            for n, (_tank_id, cap, sensor_id) in enumerate(tanks):
                kg = simulate(cap, minutes, rnd, start_hour)
                tb = tables[cap]
                dp = np.interp(kg, tb.kg, tb.dp) + rnd.normal(0, 0.05, minutes)
                dp = np.maximum(dp, 0.0)
                sid = str(sensor_id)
                vals = np.char.mod("%.3f", dp).tolist()
                await cp.write(
                    "".join(f"{sid}\t{t}\t{v}\t0\n" for t, v in zip(ts, vals, strict=True))
                )
                rows_total += minutes
                # Hourly and daily rollups exactly as ingest keeps them (good readings only).
                for width, out in ((timedelta(hours=1), hour_rows), (timedelta(days=1), day_rows)):
                    idx0 = 0
                    while idx0 < minutes:
                        bstart = start + timedelta(minutes=idx0)
                        b = ORIGIN + ((bstart - ORIGIN) // width) * width
                        bend = b + width
                        idx1 = min(minutes, int((bend - start).total_seconds() // 60))
                        seg = dp[idx0:idx1]
                        out.append(
                            f"{sid}\t{b.isoformat()}\t{ts[idx0]}\t{seg[0]:.3f}\t"
                            f"{ts[idx1 - 1]}\t{seg[-1]:.3f}\t"
                            f"{seg.min():.3f}\t{seg.max():.3f}\t{len(seg)}\n"
                        )
                        idx0 = idx1
                if n % 100 == 99:
                    say(
                        f"  {n + 1} tanks, {rows_total:,} readings "
                        f"({time.perf_counter() - t0:.0f} s)"
                    )
        timings["copy_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        await conn.execute("ALTER TABLE readings ADD PRIMARY KEY (sensor_id, ts)")
        timings["pkey_s"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        for table, rows in (("rollup_1h", hour_rows), ("rollup_1d", day_rows)):
            async with (
                conn.cursor() as cur3,
                cur3.copy(
                    f"COPY {table} (sensor_id, bucket, first_ts, first_value, last_ts, last_value, "
                    "min_value, max_value, n) FROM STDIN"
                ) as cp,
            ):
                await cp.write("".join(rows))
        timings["rollups_s"] = time.perf_counter() - t1
        await conn.execute("VACUUM ANALYZE readings")
        await conn.execute("ANALYZE")
        timings["readings"] = rows_total
        timings["readings_s"] = time.perf_counter() - t0
        say(
            f"readings: {rows_total:,} rows; COPY {timings['copy_s']:.0f} s, primary key "
            f"{timings['pkey_s']:.0f} s, rollups {timings['rollups_s']:.0f} s"
        )

        # Daily reports: ~95 % filed (10 % of those late), unmonitored ones type their figures.
        t0 = time.perf_counter()
        cur = await conn.execute(
            "SELECT o.id, EXISTS (SELECT 1 FROM tanks t JOIN sensors s ON s.tank_id = t.id "
            "WHERE t.facility_id = o.id) FROM organisations o WHERE kind = 'facility'"
        )
        facs = await cur.fetchall()
        r = random.Random(1)
        n_rep = 0
        async with (
            conn.cursor() as cur4,
            cur4.copy(COPY_REPORTS) as cp,
        ):
            for fid, monitored in facs:
                for k in range(days):
                    d = first + timedelta(days=k)
                    if r.random() < 0.05:
                        continue
                    late = r.random() < 0.1
                    sub = window(d, CFG).end + timedelta(
                        minutes=r.randint(61, 300) if late else r.randint(-120, 50)
                    )
                    p = r.randint(20, 200)
                    o2 = [r.randint(0, p // 5) for _ in range(5)]
                    await cp.write_row(
                        (
                            fid,
                            d,
                            1,
                            sub,
                            late,
                            p,
                            r.randint(0, 20),
                            r.randint(0, 5),
                            r.randint(0, 10),
                            *o2,
                            r.uniform(0, 120),
                            None if monitored else r.uniform(500, 4000),
                            r.uniform(0, 240),
                            None if monitored else r.uniform(300, 1500),
                        )
                    )
                    n_rep += 1
        timings["reports"] = n_rep
        timings["reports_s"] = time.perf_counter() - t0
        say(f"facility reports: {n_rep:,} ({timings['reports_s']:.1f} s)")

        # Materialise the per-tank report windows (what the first reads of a day do).
        t0 = time.perf_counter()
        ids = [t[0] for t in tanks]
        for i in range(0, len(ids), 100):
            await ensure_windows(conn, ids[i : i + 100], first, last, CFG)
        timings["windows_s"] = time.perf_counter() - t0
        say(f"tank windows: {len(ids)} tanks × {days} days ({timings['windows_s']:.0f} s)")
    return timings


async def measure(url: str, last: date, runs: int, raw_runs: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"syt": [], "syt_raw": [], "byt": [], "byt_raw": []}
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        cur = await conn.execute("SELECT id FROM organisations WHERE kind = 'syt' ORDER BY code")
        parents = [int(r[0]) for r in await cur.fetchall()]
        r = random.Random(7)
        filters = SytFilters()
        # One warm-up read of each (not counted): caches, and windows older than the dataset.
        await national.national_view(conn, last, visible=None, cfg=CFG)
        for source, key, n in ((Source.STORED, "syt", runs), (Source.RAW, "syt_raw", raw_runs)):
            for _ in range(n):
                org = r.choice(parents)
                t0 = time.perf_counter()
                rep = await syt.compute(
                    conn, org, last, filters, visible=None, cfg=CFG, source=source
                )
                out[key].append((time.perf_counter() - t0) * 1000)
                assert rep.fields.facilities > 0
        for source, key, n in (
            (Source.STORED, "byt", max(5, runs // 2)),
            (Source.RAW, "byt_raw", 1),
        ):
            for _ in range(n):
                t0 = time.perf_counter()
                view = await national.national_view(
                    conn, last, visible=None, cfg=CFG, source=source
                )
                out[key].append((time.perf_counter() - t0) * 1000)
                assert view.nation.expected > 0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--facilities", type=int, default=2000)
    ap.add_argument("--tanks", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--raw-runs", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the oxy_bench database")
    ap.add_argument("--measure-only", action="store_true", help="reuse a kept oxy_bench database")
    args = ap.parse_args()
    admin = os.environ.get("OXY_BENCH_DATABASE_URL") or os.environ.get("OXY_TEST_DATABASE_URL")
    if not admin:
        sys.exit("set OXY_TEST_DATABASE_URL (or OXY_BENCH_DATABASE_URL) to a PostgreSQL server")
    params = conninfo_to_dict(admin)
    params["dbname"] = "oxy_bench"
    url = make_conninfo(**params)
    if not args.measure_only:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute('DROP DATABASE IF EXISTS "oxy_bench" WITH (FORCE)')
            c.execute('CREATE DATABASE "oxy_bench"')
    try:
        t0 = time.perf_counter()
        last = last_complete_day(datetime.now(UTC), CFG) - timedelta(days=1)
        if args.measure_only:
            with psycopg.connect(url) as c:
                row = c.execute("SELECT max(report_day) FROM facility_reports").fetchone()
                n = c.execute("SELECT count(*) FROM facility_reports").fetchone()
            assert row and row[0] and n, "no kept dataset: run once with --keep"
            last = row[0]
            timings = {"readings": float("nan"), "reports": float(n[0])}
        else:
            migrate(url)
            timings = asyncio.run(load(url, args.days, args.facilities, args.tanks, last))
            say(f"dataset ready in {time.perf_counter() - t0:.0f} s")
        res = asyncio.run(measure(url, last, args.runs, args.raw_runs))
        say("")
        say(f"{'figure':<34}{'rollups (stored windows)':>26}{'raw readings':>22}{'target':>10}")
        for label, a, b, target in (
            ("SYT report p95 (one province)", "syt", "syt_raw", "100 ms"),
            ("BYT national view p95", "byt", "byt_raw", "300 ms"),
        ):
            sa = f"{pct(res[a], 95):.0f} ms (p50 {statistics.median(res[a]):.0f}, n={len(res[a])})"
            sb = f"{pct(res[b], 95):.0f} ms (n={len(res[b])})"
            say(f"{label:<34}{sa:>26}{sb:>22}{target:>10}")
        say(
            f"dataset: {args.facilities} facilities, {args.tanks} monitored tanks, "
            f"{args.days} days, "
            f"{timings['readings']:,.0f} readings, {int(timings['reports']):,} facility reports"
        )
    finally:
        if not (args.keep or args.measure_only):
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute('DROP DATABASE IF EXISTS "oxy_bench" WITH (FORCE)')


if __name__ == "__main__":
    main()
