"""The whole-country alert round, timed per part (issue 22: "alert evaluation of the whole
country < 5 s" with 3,000 tanks at 2,000 facilities).

    # seeds a national country into a scratch database (kept with --keep, reused with --reuse)
    .venv/bin/python bench/alert_round.py --admin-url postgresql://postgres@127.0.0.1/postgres \
        --db alert_bench --history-days 2 --runs 3 --keep

Each run times three states of the stored accounting windows (`tank_windows`):

* `cold`: none stored (the first round after a fresh database);
* `stale`: every unsettled window (the open day and the last closed one) computed more than
  `open_window_fresh_seconds` ago, as when the API's windows-ahead job has not run for a while;
* `fresh`: right after a round stored them;
* `cutoff`: 5 s after the last 16:00 cut-off, before the windows-ahead job's next round: the day
  that has just closed was last computed while open (the job's round 30 s before) and the new
  open day not at all: the round computes the new day (3,000 windows) and, within its
  `closing_grace`, reads the closed day's rows (without it, 6,000 windows: 5.0-5.5 s). On a
  country seeded now, the readings stored since that cut-off are there already, so the new open
  day holds more data than at 16:00: an upper bound of the work. `--until-cutoff` seeds a
  country whose history ends 5 s after that cut-off (with `--dense-hours 4`, its last two hours
  at 1 Hz), as the first round after 16:00 finds it; time only `cutoff` on it;
* `midnight`: 5 s after the coming 00:00 UTC, when the last closed day settles (its data's last
  UTC day has ended): its windows, computed a minute before by the job (with the open day's),
  are checked afresh (3,000 windows).

`cutoff` and `midnight` evaluate at those moments, not now (a clock the rules are given).

For each it prints every rule's time; for the `supply` rule (the accounting windows) also the
time spent in SQL (by query with --queries: the first words of its text), what remains (Python,
and waiting for a core on a busy machine) and this process's CPU time; then the whole
`evaluate_rules` and the full `run_once` (evaluate, apply, dispatch with no sender). The figures
are comparable across commits on the same data: give `--reuse` to time another commit on the
database kept by --keep (`--code DIR`: the platform's code from DIR, e.g. a `git archive` of the
commit to compare with).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import AsyncConnection, AsyncCursor, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

_code = sys.argv[sys.argv.index("--code") + 1] if "--code" in sys.argv else None
sys.path.insert(0, _code or str(Path(__file__).resolve().parent.parent))

from api.accounting.ahead import windows_round  # noqa: E402
from api.accounting.config import AccountingConfig  # noqa: E402
from api.accounting.windows import last_complete_day, window  # noqa: E402
from api.alerts.config import AlertSettings  # noqa: E402
from api.alerts.rules import Rule, evaluate_rules  # noqa: E402
from api.alerts.service import run_once  # noqa: E402

# Time spent in SQL, by query label, while `_sql_times` is active.
_SQL: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
_orig_execute = AsyncCursor.execute
_orig_executemany = AsyncCursor.executemany


def _label(query: Any) -> str:
    text = query if isinstance(query, str) else repr(query)
    words = re.sub(r"\s+", " ", text).strip()
    return words[:60]


async def _timed_execute(self: AsyncCursor[Any], query: Any, *a: Any, **kw: Any) -> Any:
    t = time.perf_counter()
    try:
        return await _orig_execute(self, query, *a, **kw)
    finally:
        entry = _SQL[_label(query)]
        entry[0] += time.perf_counter() - t
        entry[1] += 1


async def _timed_executemany(self: AsyncCursor[Any], query: Any, *a: Any, **kw: Any) -> Any:
    t = time.perf_counter()
    try:
        return await _orig_executemany(self, query, *a, **kw)
    finally:
        entry = _SQL[_label(query)]
        entry[0] += time.perf_counter() - t
        entry[1] += 1


@contextmanager
def _sql_times() -> Iterator[dict[str, list[float]]]:
    _SQL.clear()
    AsyncCursor.execute = _timed_execute  # type: ignore[method-assign,assignment]
    AsyncCursor.executemany = _timed_executemany  # type: ignore[method-assign,assignment]
    try:
        yield _SQL
    finally:
        AsyncCursor.execute = _orig_execute  # type: ignore[method-assign]
        AsyncCursor.executemany = _orig_executemany  # type: ignore[method-assign]


def _db_url(admin: str, name: str) -> str:
    params = conninfo_to_dict(admin)
    params["dbname"] = name
    return make_conninfo(**params)


def prepare(admin: str, name: str, args: argparse.Namespace) -> str:
    """Create and seed the database (or reuse it); its URL."""
    from demo.national import NationalScale, seed_national
    from oxy.migrate import migrate

    url = _db_url(admin, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and not args.reuse:
            raise SystemExit(f"database {name} exists: give --reuse or drop it")
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    if not exists:
        t = time.monotonic()
        migrate(url)
        scale = NationalScale(
            args.facilities,
            args.tanks,
            max(3, args.facilities // 30),
            history_days=args.history_days,
            dense_hours=args.dense_hours,
        )
        now = None
        if args.until_cutoff:  # the country as it stands 5 s after the last 16:00 cut-off
            acc = AccountingConfig.defaults()
            now = window(last_complete_day(datetime.now(UTC), acc), acc).end
            now += timedelta(seconds=5)
        print(seed_national(url, scale, now=now), f"({time.monotonic() - t:.0f} s)")
    return url


def drop(admin: str, name: str) -> None:
    """Drop the scratch database."""
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


async def _state(conn: AsyncConnection[Any], state: str, acc: AccountingConfig) -> datetime:
    """Put the stored windows in `state`; the time to evaluate at."""
    now = datetime.now(UTC)
    done = last_complete_day(now, acc)
    if state == "cold":
        await conn.execute("DELETE FROM refill_events")
        await conn.execute("DELETE FROM tank_windows")
    elif state == "stale":
        await conn.execute(
            "UPDATE tank_windows SET computed_at = computed_at - make_interval(secs => %s) "
            "WHERE report_day >= %s",
            (acc.open_window_fresh_seconds + 60, done),
        )
    elif state == "cutoff":
        end = window(done, acc).end
        await conn.execute(
            "DELETE FROM tank_windows WHERE report_day = %s", (done + timedelta(days=1),)
        )
        await conn.commit()
        # the job's last round before the cut-off: day D computed open, 30 s before it closed
        # (its rows then hold the fingerprint of the hours past at that moment, as live)
        await windows_round(conn, acc, now=end - timedelta(seconds=30))
        now = end + timedelta(seconds=5)
    elif state == "midnight":
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        done = last_complete_day(midnight, acc)
        await conn.execute("DELETE FROM tank_windows WHERE report_day = %s", (done,))
        await conn.commit()
        # the job's last round before midnight: day D computed unsettled, D+1 kept fresh
        await windows_round(conn, acc, now=midnight - timedelta(seconds=60))
        now = midnight + timedelta(seconds=5)
    await conn.commit()
    return now


_GROUPS: tuple[tuple[str, tuple[Rule, ...]], ...] = (
    ("contents_low", (Rule.CONTENTS_LOW,)),
    ("head_pressure", (Rule.HEAD_PRESSURE,)),
    ("sensors", (Rule.SENSOR_STALE, Rule.SENSOR_BAD)),
    ("gateways", (Rule.GATEWAY_OFFLINE,)),
    ("missing_reports", (Rule.REPORT_MISSING,)),
    ("overdue_deliveries", (Rule.DELIVERY_OVERDUE,)),
)


async def one_state(url: str, state: str, args: argparse.Namespace) -> dict[str, float]:
    """Time the rules (the supply rule's SQL, the rest of its wall time and this process's CPU
    apart), the whole evaluation and run_once in one state; print them."""
    cfg, acc = AlertSettings(), AccountingConfig.defaults()
    out: dict[str, float] = {}
    async with await AsyncConnection.connect(url) as conn:
        now = await _state(conn, state, acc)
        for name, rules in _GROUPS:
            t = time.perf_counter()
            await evaluate_rules(conn, now, cfg, acc, only=rules)
            out[name] = time.perf_counter() - t
        await conn.commit()
        with _sql_times() as sql_t:
            t, cpu = time.perf_counter(), time.process_time()
            await evaluate_rules(
                conn, now, cfg, acc, only=(Rule.DAYS_OF_SUPPLY, Rule.ABNORMAL_CONSUMPTION)
            )
            out["supply"] = time.perf_counter() - t
            out["supply.cpu"] = time.process_time() - cpu
            queries = {k: (v[0], int(v[1])) for k, v in sql_t.items()}
        await conn.commit()
        # the windows the round computed (stored with its time) by report day
        cur = await conn.execute(
            "SELECT report_day, count(*) FROM tank_windows WHERE computed_at = %s "
            "GROUP BY 1 ORDER BY 1",
            (now,),
        )
        computed = ", ".join(f"{d:%m-%d} {n:,}" for d, n in await cur.fetchall()) or "none"
        out["supply.sql"] = sum(v[0] for v in queries.values())
        out["supply.not_sql"] = out["supply"] - out["supply.sql"]
        # the whole evaluation, then the full round (evaluate, apply, dispatch), same state
        now = await _state(conn, state, acc)
        t = time.perf_counter()
        await evaluate_rules(conn, now, cfg, acc)
        out["evaluate_rules"] = time.perf_counter() - t
        await conn.commit()
        now = await _state(conn, state, acc)
        t = time.perf_counter()
        await run_once(conn, now, cfg, acc, {})
        await conn.commit()
        out["run_once"] = time.perf_counter() - t
    print(
        f"  [{state}] load {os.getloadavg()[0]:.1f}; windows the supply rule computed: {computed}"
    )
    for k, v in out.items():
        print(f"    {k:<20} {v:7.3f} s")
    if args.queries:
        for k, (secs, n) in sorted(queries.items(), key=lambda kv: -kv[1][0])[:8]:
            print(f"      sql {secs:7.3f} s  {n:6d}×  {k}")
    return out


async def main_async(url: str, args: argparse.Namespace) -> None:
    all_runs: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for i in range(args.runs):
        print(f"run {i + 1}")
        for state in args.states:
            for k, v in (await one_state(url, state, args)).items():
                all_runs[state][k].append(v)
    print("summary (min / median / max over runs)")
    for state, parts in all_runs.items():
        for k, vs in parts.items():
            s = sorted(vs)
            print(f"  {state:<6} {k:<20} {s[0]:7.3f} {s[len(s) // 2]:7.3f} {s[-1]:7.3f}")


def main() -> None:
    """Parse the arguments, prepare the database, time the rounds."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--db", default="alert_bench")
    p.add_argument("--facilities", type=int, default=2000)
    p.add_argument("--tanks", type=int, default=3000)
    p.add_argument("--history-days", type=float, default=2.0)
    p.add_argument(
        "--dense-hours",
        type=float,
        default=0.0,
        help="hours of 1 Hz DP history around the last 16:00 cut-off",
    )
    p.add_argument(
        "--until-cutoff",
        action="store_true",
        help="seed a history that ends 5 s after the last 16:00 cut-off (for the cutoff state)",
    )
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--states", nargs="+", default=["cold", "stale", "fresh"])
    p.add_argument("--queries", action="store_true", help="print the slowest queries")
    p.add_argument("--reuse", action="store_true", help="time an existing database")
    p.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    p.add_argument("--code", help="import the platform from this directory (see above)")
    args = p.parse_args()
    url = prepare(args.admin_url, args.db, args)
    try:
        asyncio.run(main_async(url, args))
    finally:
        if not args.keep:
            drop(args.admin_url, args.db)


if __name__ == "__main__":
    main()
