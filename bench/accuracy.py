"""Accuracy of the accounting figures against the truth of simulated tanks.

Randomised tanks (sizes, heads, gauge noise, day/night draw with a wandering patient load, data
gaps) are driven minute by minute by the project's tank model (gateway/sim/model.py via
gateway/sim/trace.py), with tanker deliveries at every minute of the hour, across 16:00,
back-to-back and partial. Their DP readings travel the real path: gateway-contract data
messages (oxy.contract.encode_data, as every gateway builds them) published with QoS 1 to
Mosquitto under each facility's topic, consumed by the real ingest service (ingest.service:
decode, registry resolution, COPY into `readings`, rollup flush), and then the real accounting
code (api.accounting.telemetry: stored windows over the rollups, minute refinement, 7-day
average; api.accounting.stock: days of supply, leak check) computes the figures.

    OXY_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \
        .venv/bin/python bench/accuracy.py --tanks 30 --days 12

A database `oxy_bench_accuracy` is created on that server and dropped at the end. The broker is
a private Mosquitto with the product configuration (oxy.broker), started and stopped by the
benchmark; `--mqtt-url` uses an existing one instead (readings of other ingest workers
subscribed there would see the benchmark's messages too).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from psycopg.conninfo import conninfo_to_dict, make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.accounting.config import AccountingConfig
from api.accounting.simulate import (
    TankPlan,
    add_facility,
    add_tank,
)
from api.accounting.stock import days_of_supply, is_leak
from api.accounting.telemetry import ensure_windows, facility_telemetry
from api.accounting.windows import window
from gateway.sim.model import TankSpec
from gateway.sim.trace import Delivery, Trace, simulate
from ingest.service import IngestConfig, IngestService
from oxy.contract import Reading, TopicKind, encode_data, topic

CFG = AccountingConfig.defaults()
DAY0 = date(2026, 3, 2)  # first report day measured; the window opens 09:00 UTC on 1 March
SIZES = [(6000.0, 1.8), (10000.0, 2.0), (20000.0, 2.5), (30000.0, 2.8)]
DOS_HORIZON = 60.0  # days of supply compared up to this horizon (beyond it: "> 60")


@dataclass
class Tank:
    """One simulated tank of the benchmark and what it is for."""

    code: str
    spec: TankSpec
    trace: Trace
    steady: bool = False
    leak_day: date | None = None
    min_usable_kg: float = 0.0
    tank_id: int = 0
    facility_id: int = 0


@dataclass
class Results:
    """Errors (relative, %) per figure, and the refill and leak counts."""

    refill: list[float] = field(default_factory=list)
    plain: list[float] = field(default_factory=list)
    refill_day: list[float] = field(default_factory=list)
    avg7: list[float] = field(default_factory=list)
    close: list[float] = field(default_factory=list)
    dos: list[float] = field(default_factory=list)
    missed: int = 0
    merged_in_gap: int = 0
    phantom: int = 0
    true_refills: int = 0
    tank_days: int = 0
    steady_days: int = 0
    false_leaks: int = 0
    varying_days: int = 0
    varying_flags: int = 0
    leaks: int = 0
    leaks_found: int = 0
    worst: dict[str, Any] = field(default_factory=dict)
    outliers: list[tuple[Any, ...]] = field(default_factory=list)


def _deliveries(
    rnd: random.Random, spec: TankSpec, start: datetime, days: int, k: int
) -> tuple[Delivery, ...]:
    """Deliveries every 2–4 days when the tank is low, each of a hard kind in turn."""
    out: list[Delivery] = []
    level = spec.fill * spec.capacity_kg
    t = start
    end = start + timedelta(days=days)
    kind = k
    while True:
        # Draw down to 25-45 % before a tanker comes.
        target = spec.capacity_kg * rnd.uniform(0.25, 0.45)
        hours = max(6.0, (level - target) / spec.daily_kg * 24.0)
        t = t + timedelta(hours=hours)
        if t > end - timedelta(hours=6):
            break
        kind += 1
        minute = (kind * 7) % 60  # every minute of the hour over the run
        at = t.replace(minute=minute, second=0, microsecond=0)
        minutes = rnd.choice([25, 35, 45, 60, 75])
        frac = rnd.uniform(0.85, 0.93)
        if kind % 4 == 1:  # across 16:00 local (09:00 UTC)
            at = t.replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(
                minutes=rnd.randint(5, minutes - 5)
            )
            if at < t - timedelta(hours=12):
                at += timedelta(days=1)
        if kind % 4 == 2:  # partial: the tanker leaves a third of the ullage
            frac = (target / spec.capacity_kg + 0.9) / 2 + rnd.uniform(-0.03, 0.03)
        out.append(Delivery(at, minutes, frac))
        level = frac * spec.capacity_kg
        t = at + timedelta(minutes=minutes)
        if kind % 4 == 3:  # back-to-back: a second tanker 30-90 minutes later tops up
            first = Delivery(at, minutes, frac - 0.15)
            out[-1] = first
            at2 = at + timedelta(minutes=minutes + rnd.randint(30, 90))
            out.append(Delivery(at2, rnd.choice([20, 30]), frac))
            t = at2 + timedelta(minutes=30)
    return tuple(out)


def make_tanks(n: int, days: int, seed: int, steady: int) -> list[Tank]:
    """`n` randomised tanks and `steady` steady ones (half of them leaking on one day)."""
    rnd = random.Random(seed)
    start = window(DAY0, CFG).start - timedelta(days=7, hours=4)
    end = window(DAY0 + timedelta(days=days - 1), CFG).end + timedelta(hours=4)
    span_days = (end - start).days + 1
    tanks = []
    for k in range(n + steady):
        cap, dia = rnd.choice(SIZES)
        is_steady = k >= n
        spec = TankSpec(
            code=f"T{k:03d}",
            capacity_kg=cap,
            diameter_m=dia * rnd.uniform(0.95, 1.05),
            fill=rnd.uniform(0.55, 0.9),
            daily_kg=cap * rnd.uniform(0.05, 0.12),
            dp_noise=rnd.uniform(0.02, 0.3),
        )
        gaps: list[tuple[datetime, datetime]] = []
        if not is_steady and rnd.random() < 0.5:
            for _ in range(rnd.randint(1, 3)):
                g0 = start + timedelta(minutes=rnd.randint(600, span_days * 1440 - 600))
                gaps.append((g0, g0 + timedelta(minutes=rnd.randint(20, 240))))
        deliveries = _deliveries(rnd, spec, start, span_days, k)
        leak_day = None
        leak = None
        if is_steady and (k - n) % 2 == 0:
            leak_day = DAY0 + timedelta(days=rnd.randint(days // 2, days - 1))
            w = window(leak_day, CFG)
            leak = (w.start, w.end, 0.25 * spec.daily_kg)
        trace = simulate(
            spec,
            start,
            end,
            deliveries,
            seed=seed * 1000 + k,
            gaps=tuple(gaps),
            leak=leak,
            steady=is_steady,
        )
        tanks.append(Tank(spec.code, spec, trace, is_steady, leak_day, 0.05 * cap))
    return tanks


@dataclass(frozen=True)
class Feed:
    """Where one tank's readings are published: its facility's site, gateway and DP sensor."""

    site: str
    gateway: str
    sensor: str
    readings: list[tuple[datetime, float]]


async def register(url: str, tanks: Sequence[Tank]) -> list[Feed]:
    """Registry rows of the tanks (one facility, gateway and DP sensor per tank)."""
    feeds = []
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        cur = await conn.execute("SELECT id FROM organisations WHERE kind = 'syt' LIMIT 1")
        row = await cur.fetchone()
        if row is None:
            cur = await conn.execute(
                "INSERT INTO organisations (code, kind, name, province_code) "
                "VALUES ('SYT-BENCH', 'syt', 'Sở Y tế', '01') RETURNING id"
            )
            row = await cur.fetchone()
        assert row is not None
        for t in tanks:
            site = f"BV-{t.code}"
            t.facility_id = await add_facility(conn, site, int(row[0]), "01")
            plan = TankPlan(t.spec.capacity_kg, t.spec.diameter_m, 0.0, 0.0)
            first = t.trace.readings[0][0]
            tank, sensor = await add_tank(
                conn,
                t.facility_id,
                t.code,
                plan,
                valid_from=first - timedelta(days=30),
                min_usable_kg=t.min_usable_kg,
            )
            assert sensor is not None
            t.tank_id = tank
            cur = await conn.execute(
                "SELECT g.code, s.code FROM sensors s JOIN gateways g ON g.id = s.gateway_id "
                "WHERE s.id = %s",
                (sensor,),
            )
            codes = await cur.fetchone()
            assert codes is not None
            feeds.append(Feed(site, str(codes[0]), str(codes[1]), t.trace.readings))
    return feeds


def messages(feed: Feed, per_message: int = 2000) -> list[tuple[str, bytes]]:
    """The tank's readings as the gateway sends them: data messages of consecutive seqs."""
    out = []
    rows = [Reading(sensor=feed.sensor, ts=ts, value=dp, unit="inH2O") for ts, dp in feed.readings]
    name = topic(feed.site, feed.gateway, TopicKind.DATA)
    seq = 0
    while rows:
        payload, n = encode_data(feed.gateway, seq, datetime.now(UTC), rows[:per_message])
        out.append((name, payload))
        rows = rows[n:]
        seq += 1
    return out


LOST = "SELECT (SELECT count(*) FROM dead_letters) + (SELECT count(*) FROM quarantine)"


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def ingest(url: str, mqtt_url: str, feeds: Sequence[Feed], timeout_s: float = 600.0) -> int:
    """Publish every feed's messages to the broker and run the real ingest service until all
    readings are stored and rolled up; return how many. Anything ingest dead-letters or
    quarantines fails the run (the comparison would be meaningless)."""
    total = sum(len(f.readings) for f in feeds)
    tag = uuid.uuid4().hex[:8]
    cfg = IngestConfig(
        mqtt_url=mqtt_url,
        database_url=url,
        client_id=f"accuracy-{tag}",
        group=f"accuracy-{tag}",  # its own shared subscription on a shared broker
        rollup_every_s=1.0,
    )
    service = IngestService(cfg)
    worker = threading.Thread(target=service.run, name="accuracy-ingest", daemon=True)
    worker.start()
    try:
        if not service.source.subscribed.wait(30):
            raise RuntimeError(f"ingest did not subscribe at {mqtt_url}")
        host, port = mqtt_url.removeprefix("mqtt://").rsplit(":", 1)
        pub = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"accuracy-pub-{tag}", protocol=mqtt.MQTTv5
        )
        pub.max_inflight_messages_set(100)
        pub.max_queued_messages_set(0)
        pub.connect(host, int(port))
        pub.loop_start()
        try:
            for feed in feeds:
                infos = [pub.publish(name, payload, qos=1) for name, payload in messages(feed)]
                for info in infos:
                    info.wait_for_publish(120)
        finally:
            pub.disconnect()
            pub.loop_stop()
        deadline = time.monotonic() + timeout_s
        while (stored := _count(url, "SELECT count(*) FROM readings")) < total:
            lost = _count(url, LOST)
            if lost or time.monotonic() > deadline or not worker.is_alive():
                raise RuntimeError(
                    f"ingest stored {stored} of {total} readings ({lost} dead-lettered or "
                    "quarantined)"
                )
            time.sleep(0.5)
    finally:
        service.stop()  # its last rollup flush covers every committed reading
        worker.join(120)
    rolled = _count(url, "SELECT coalesce(sum(n), 0) FROM rollup_1m")
    if stored != total or rolled != total:
        raise RuntimeError(f"{stored} readings stored, {rolled} rolled up, of {total}")
    return total


async def load(url: str, tanks: Sequence[Tank], mqtt_url: str) -> int:
    """Registry rows of the tanks, then their readings through MQTT and ingest."""
    feeds = await register(url, tanks)
    return await asyncio.to_thread(ingest, url, mqtt_url, feeds)


def _err(got: float, want: float) -> float:
    return 100.0 * (got - want) / want if want else 0.0


async def measure(url: str, tanks: Sequence[Tank], days: int) -> Results:
    """Every figure of every tank and day against the truth."""
    res = Results()
    last = DAY0 + timedelta(days=days - 1)
    first = DAY0 - timedelta(days=7)
    now = window(last, CFG).end + timedelta(days=1)
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        figs = await ensure_windows(conn, [t.tank_id for t in tanks], first, last, CFG, now=now)
        cur = await conn.execute(
            "SELECT tank_id, started_at, ended_at, amount_kg FROM refill_events "
            "WHERE report_day >= %s AND report_day <= %s",
            (first, last),
        )
        found: dict[int, list[tuple[datetime, datetime, float]]] = {}
        for tank_id, s, e, amount in await cur.fetchall():
            found.setdefault(int(tank_id), []).append((s, e, float(amount)))
        for t in tanks:
            _refills(
                res, t, found.get(t.tank_id, []), window(first, CFG).start, window(last, CFG).end
            )
            for i in range(days):
                day = DAY0 + timedelta(days=i)
                w = window(day, CFG)
                f = figs.get((t.tank_id, day))
                want = t.trace.consumption(w.start, w.end)
                refill_day = any(
                    r.started_at < w.end and r.ended_at > w.start for r in t.trace.refills
                )
                res.tank_days += 1
                if f is None or f.consumption_kg is None or f.close_kg is None:
                    res.worst.setdefault("unknown_days", 0)
                    res.worst["unknown_days"] += 1
                    continue
                e = _err(f.consumption_kg, want)
                (res.refill_day if refill_day else res.plain).append(e)
                if abs(e) > (3.0 if refill_day else 2.0):
                    res.outliers.append(("day", t.code, day, round(e, 2), f, round(want)))
                res.close.append(_err(f.close_kg, t.trace.contents[w.end]))
                hist = []
                for d in range(1, 7):
                    g = figs.get((t.tank_id, day - timedelta(days=d)))
                    if g and g.consumption_kg is not None and g.coverage >= 0.95:
                        hist.append(g.consumption_kg)
                flag = is_leak(f.consumption_kg, hist, CFG)
                if t.steady and day == t.leak_day:
                    res.leaks += 1
                    res.leaks_found += flag
                elif t.steady:
                    res.steady_days += 1
                    res.false_leaks += flag
                elif t.leak_day is None:
                    res.varying_days += 1
                    res.varying_flags += flag
            for i in range(days):
                day = DAY0 + timedelta(days=i)
                tele = (await facility_telemetry(conn, [t.facility_id], day, CFG, now=now))[
                    t.facility_id
                ]
                week = [window(day - timedelta(days=d), CFG) for d in range(7)]
                true_avg = sum(t.trace.consumption(w.start, w.end) for w in week) / 7
                if tele.avg_daily_kg is not None:
                    res.avg7.append(_err(tele.avg_daily_kg, true_avg))
                end = window(day, CFG).end
                true_usable = max(0.0, t.trace.contents[end] - t.min_usable_kg)
                true_dos = days_of_supply(true_usable, true_avg)
                got_dos = (
                    days_of_supply(tele.usable_kg, tele.avg_daily_kg)
                    if tele.usable_kg is not None
                    else None
                )
                if true_dos is not None and got_dos is not None and true_dos < DOS_HORIZON:
                    res.dos.append(_err(got_dos, true_dos))
    return res


def _refills(
    res: Results,
    t: Tank,
    found: list[tuple[datetime, datetime, float]],
    lo: datetime,
    hi: datetime,
) -> None:
    """Match true and detected refills by overlap. Deliveries that fall inside one data gap
    cannot be told apart: they are compared, summed, with the one refill seen across the gap."""
    truths = [r for r in t.trace.refills if lo <= r.started_at < hi and r.amount_kg >= 200]
    slack = timedelta(minutes=30)
    matched: set[int] = set()
    for s, e, amount in found:
        mine = [
            k
            for k, r in enumerate(truths)
            if s <= r.ended_at + slack and e >= r.started_at - slack and k not in matched
        ]
        if not mine:
            if amount >= 200 and lo <= s < hi:
                res.phantom += 1
            continue
        if len(mine) > 1 and not _hidden_by_gap(t, [truths[k] for k in mine]):
            mine = mine[:1]
        matched.update(mine)
        res.merged_in_gap += len(mine) - 1
        want = sum(truths[k].amount_kg for k in mine)
        err = _err(amount, want)
        res.refill.append(err)
        if abs(err) > 1.5:
            res.outliers.append(("refill", t.code, [truths[k] for k in mine], (s, e, amount)))
        if abs(err) >= max((abs(x) for x in res.refill), default=0.0):
            res.worst["refill"] = (t.code, s.isoformat(), round(err, 2))
    res.true_refills += len(truths)
    res.missed += len(truths) - len(matched)
    for k, r in enumerate(truths):
        if k not in matched:
            res.outliers.append(("missed", t.code, r, found))


def _hidden_by_gap(t: Tank, refills: list[Any]) -> bool:
    """Whether a data gap covers the pause between consecutive deliveries."""
    readings = {ts for ts, _dp in t.trace.readings}
    for a, b in itertools.pairwise(refills):
        ts = a.ended_at
        while ts <= b.started_at:
            if ts in readings:
                return False
            ts += timedelta(minutes=1)
    return True


def pct(values: list[float], p: float) -> float:
    """The p-th percentile of the absolute values."""
    s = sorted(abs(v) for v in values)
    if not s:
        return float("nan")
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def table(res: Results) -> list[str]:
    """The printed table."""
    lines = [f"{'figure (abs. error, %)':<34}{'n':>6}{'p50':>8}{'p95':>8}{'max':>8}{'target':>16}"]
    for label, vals, target in (
        ("refill amount", res.refill, "max <= 1.5"),
        ("daily consumption, plain days", res.plain, "p95 <= 2"),
        ("daily consumption, refill days", res.refill_day, "p95 <= 3"),
        ("7-day average", res.avg7, "max <= 1"),
        ("contents at 16:00", res.close, ""),
        (f"days of supply (< {DOS_HORIZON:.0f} d)", res.dos, ""),
    ):
        p50 = statistics.median(abs(v) for v in vals) if vals else float("nan")
        lines.append(
            f"{label:<34}{len(vals):>6}{p50:>8.2f}"
            f"{pct(vals, 95):>8.2f}{pct(vals, 100):>8.2f}{target:>16}"
        )
    lines.append(
        f"refills: {res.true_refills} true, {res.missed} missed, {res.phantom} phantom "
        f"(target 0 and 0); {res.merged_in_gap} seen together with the previous one "
        "(both inside one data gap)"
    )
    per_k = 1000.0 * res.false_leaks / res.steady_days if res.steady_days else float("nan")
    lines.append(
        f"leak flags on steady tank-days: {res.false_leaks} of {res.steady_days} "
        f"({per_k:.1f} per 1,000; target 0); +25 % leaks found in their window: "
        f"{res.leaks_found} of {res.leaks}"
    )
    lines.append(
        f"leak flags on tank-days with a wandering patient load (no leak): "
        f"{res.varying_flags} of {res.varying_days}"
    )
    lines.append(f"tank-days: {res.tank_days}; worst: {res.worst}")
    if os.environ.get("OXY_BENCH_VERBOSE"):
        lines += [repr(o) for o in res.outliers]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tanks", type=int, default=30)
    ap.add_argument("--steady", type=int, default=8)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mqtt-url", help="an existing broker (default: a private Mosquitto)")
    args = ap.parse_args()
    admin = os.environ.get("OXY_BENCH_DATABASE_URL") or os.environ.get("OXY_TEST_DATABASE_URL")
    if not admin:
        sys.exit("set OXY_TEST_DATABASE_URL (or OXY_BENCH_DATABASE_URL) to a PostgreSQL server")
    from bench.ingest import Mosquitto
    from oxy.migrate import migrate

    params = conninfo_to_dict(admin)
    params["dbname"] = "oxy_bench_accuracy"
    url = make_conninfo(**params)
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute('DROP DATABASE IF EXISTS "oxy_bench_accuracy" WITH (FORCE)')
        c.execute('CREATE DATABASE "oxy_bench_accuracy"')
    broker = None if args.mqtt_url else Mosquitto()
    try:
        t0 = time.perf_counter()
        migrate(url)
        tanks = make_tanks(args.tanks, args.days, args.seed, args.steady)
        print(f"simulated {len(tanks)} tanks in {time.perf_counter() - t0:.0f} s", flush=True)
        mqtt_url = args.mqtt_url or (broker.url if broker else "")
        n = asyncio.run(load(url, tanks, mqtt_url))
        print(
            f"{n} readings through MQTT ({mqtt_url}) and ingest in "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        res = asyncio.run(measure(url, tanks, args.days))
        print(f"measured in {time.perf_counter() - t0:.0f} s\n", flush=True)
        print("\n".join(table(res)))
    finally:
        if broker is not None:
            broker.close()
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute('DROP DATABASE IF EXISTS "oxy_bench_accuracy" WITH (FORCE)')


if __name__ == "__main__":
    main()
