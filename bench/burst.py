"""The 16:00 burst (issue 22), with locust against a live server: every facility files its report
of the day within the window, most of them in its last sixth (the last 10 minutes of the hour),
while the 34 SYT officers compose and send and BYT refreshes the national dashboard and map.

    # the documented form: the national country (2,000 facilities), the hour from 16:00 to 17:00
    OXY_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/burst.py --facilities 2000 --window 3600

    # a short form (what tests/test_burst.py runs): the same shape in one minute
    .venv/bin/python bench/burst.py --facilities 68 --window 60

Seeds a national country into a scratch database (`demo.national`), issues a bearer token
to every facility and SYT account (the way an integration files reports), serves the API with
`oxy api run` on loopback and runs `locust --headless` with bench/locustfile_burst.py. Prints
p50/p95/p99 and errors per endpoint, then the issue's targets.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.soak import LOOPBACK, _wait_port, free_port, scratch_database  # noqa: E402

# (endpoint, percentile, target in ms) from the issue
TARGETS = (
    ("PUT facility report", 99, 300),
    ("GET SYT composer", 95, 500),
    ("GET BYT dashboard (map)", 95, 1000),
    ("GET BYT national view", 95, 1000),
)


@dataclass(frozen=True)
class Row:
    """One endpoint's figures from locust's statistics."""

    name: str
    requests: int
    failures: int
    p50: float
    p95: float
    p99: float


def _tokens(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """A bearer token for every national facility and SYT account: username → secret."""
    from api.auth import TOKEN_PREFIX, digest

    users = conn.execute(
        "SELECT id, username FROM users WHERE username LIKE 'nat-%%' "
        "AND role IN ('facility', 'syt')"
    ).fetchall()
    out, rows = {}, []
    for uid, username in users:
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        out[username] = secret
        rows.append((uid, "burst", digest(secret), secret[:10]))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO api_tokens (user_id, name, token_hash, prefix) VALUES (%s, %s, %s, %s)",
            rows,
        )
    return out


def plan(
    url: str, facilities: int, window: float, byt_users: int, seed: int = 16
) -> dict[str, Any]:
    """Seed the country and draw every facility's moment: a sixth of them spread over the first
    five sixths of the window, the rest in the last sixth."""
    from demo.national import NationalScale, seed_national
    from oxy.migrate import migrate

    migrate(url)
    password = "burst-" + secrets.token_hex(8)
    scale = NationalScale(
        facilities=facilities,
        tanks=facilities * 3 // 2,
        suppliers=max(3, facilities // 30),
        history_days=1.0,
    )
    if seed_national(url, scale, password=password).password is None:
        raise SystemExit("the database already holds a national country: give a fresh one")
    rng = random.Random(seed)
    with psycopg.connect(url) as conn:
        tokens = _tokens(conn)
        orgs = conn.execute(
            "SELECT o.id, u.username, o.kind FROM users u JOIN organisations o ON o.id = u.org_id "
            "WHERE u.username LIKE 'nat-%%' AND o.kind IN ('facility', 'syt') ORDER BY o.id"
        ).fetchall()
    early = 1 / 6
    fac = []
    for org_id, username, kind in orgs:
        if kind != "facility":
            continue
        late = rng.random() >= early
        offset = rng.uniform(5 / 6, 1.0) if late else rng.uniform(0, 5 / 6)
        fac.append([org_id, tokens[username], round(offset * window * 0.98, 2)])
    day = (datetime.now(UTC) + timedelta(hours=7)).date().isoformat()  # Vietnam's day
    return {
        "window_s": window,
        "day": day,
        "facilities": fac,
        "syt": [[o, tokens[u]] for o, u, k in orgs if k == "syt"],
        "byt_users": byt_users,
        "byt": {"username": "nat-byt", "password": password},
    }


def read_stats(prefix: Path) -> list[Row]:
    """The per-endpoint rows of locust's `--csv` statistics."""
    rows = []
    with open(f"{prefix}_stats.csv", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["Name"] == "Aggregated":
                continue

            def num(key: str, rec: dict[str, str] = r) -> float:
                v = rec.get(key) or "nan"
                return float("nan") if v == "N/A" else float(v)

            rows.append(
                Row(r["Name"], int(r["Request Count"]), int(r["Failure Count"]),
                    num("50%"), num("95%"), num("99%"))
            )  # fmt: skip
    return rows


@dataclass(frozen=True)
class BurstResult:
    """The endpoints' figures, what the database holds afterwards, and the failures."""

    rows: list[Row]
    filed: int  # facility reports of the day with submitted_at
    sent: int  # SYT reports of the day in state 'sent'
    failures: list[tuple[str, str, int]]  # endpoint, error, occurrences


def read_failures(prefix: Path) -> list[tuple[str, str, int]]:
    """locust's `--csv` failures: (endpoint, error, occurrences)."""
    with open(f"{prefix}_failures.csv", encoding="utf-8") as fh:
        return [(r["Name"], r["Error"], int(r["Occurrences"])) for r in csv.DictReader(fh)]


def run(
    facilities: int, window: float, byt_users: int = 2, workers: int = 1, out: Any = sys.stdout
) -> BurstResult:
    """Seed, serve, run locust over `window` seconds (+ a margin), print and return the rows."""
    if not 34 <= facilities <= 5000 or not 10 <= window <= 4 * 3600:
        raise ValueError("facilities must be in [34, 5000] and the window in [10 s, 4 h]")
    work = Path(tempfile.mkdtemp(prefix="oxy-burst-"))
    with scratch_database() as url:
        t = time.monotonic()
        p = plan(url, facilities, window, byt_users)
        print(f"seeded {facilities} facilities in {time.monotonic() - t:.0f} s", file=out)
        (work / "plan.json").write_text(json.dumps(p), encoding="utf-8")
        port = free_port()
        env = {**os.environ, "OXY_DATABASE_URL": url, "OXY_LOG_LEVEL": "WARNING",
               "OXY_BURST_PLAN": str(work / "plan.json")}  # fmt: skip
        api = subprocess.Popen(
            [sys.executable, "-m", "oxy", "api", "run", "--host", LOOPBACK, "--port", str(port),
             "--workers", str(workers)],
            cwd=ROOT, env=env, stdout=(work / "api.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _wait_port(port, 60)
            users = len(p["facilities"]) + len(p["syt"]) + byt_users
            locust = [
                sys.executable, "-m", "locust", "-f", str(ROOT / "bench/locustfile_burst.py"),
                "--headless", "--host", f"http://{LOOPBACK}:{port}", "-u", str(users),
                "-r", str(max(50, users)), "-t", f"{int(window + 15)}s", "--csv",
                str(work / "burst"), "--only-summary", "--stop-timeout", "30",
                "--exit-code-on-error", "0",
            ]  # fmt: skip
            subprocess.run(
                locust, cwd=ROOT, env=env, check=True, timeout=window + 300,
                stdout=(work / "locust.log").open("wb"), stderr=subprocess.STDOUT,
            )  # fmt: skip
        finally:
            api.terminate()
            api.wait(30)
        with psycopg.connect(url) as conn:
            filed = conn.execute(
                "SELECT count(*) FROM facility_reports WHERE report_day = %s "
                "AND submitted_at IS NOT NULL",
                (p["day"],),
            ).fetchone()
            sent = conn.execute(
                "SELECT count(*) FROM syt_reports WHERE report_day = %s AND state = 'sent'",
                (p["day"],),
            ).fetchone()
    rows = read_stats(work / "burst")
    failures = read_failures(work / "burst")
    print(f"{'endpoint':<28} {'requests':>8} {'errors':>6} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'p99 ms':>7}", file=out)  # fmt: skip
    for r in rows:
        print(f"{r.name:<28} {r.requests:>8} {r.failures:>6} {r.p50:>7.0f} {r.p95:>7.0f} "
              f"{r.p99:>7.0f}", file=out)  # fmt: skip
    by = {r.name: r for r in rows}
    for name, q, target in TARGETS:
        r = by.get(name)
        got = None if r is None else (r.p99 if q == 99 else r.p95)
        ok = got is not None and got < target
        shown = "—" if got is None else f"{got:.0f} ms"
        print(f"  {name:<28} p{q} {shown:>8}  target < {target} ms  "
              f"{'met' if ok else 'NOT MET'}", file=out)  # fmt: skip
    errors = sum(r.failures for r in rows)
    print(f"  errors {errors}  target 0  {'met' if errors == 0 else 'NOT MET'}", file=out)
    for name, error, n in failures:
        print(f"  {n} × {name}: {error[:160]}", file=out)
    result = BurstResult(rows, int(filed[0]) if filed else 0, int(sent[0]) if sent else 0, failures)
    print(f"facility reports filed {result.filed} of {len(p['facilities'])}, SYT reports sent "
          f"{result.sent} of {len(p['syt'])}", file=out)  # fmt: skip
    print(f"locust log, API log and statistics: {work}", file=out)
    return result


def main() -> None:
    """Parse the arguments and run."""
    a = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    a.add_argument("--facilities", type=int, default=2000)
    a.add_argument("--window", type=float, default=3600.0, help="seconds (16:00 → 17:00)")
    a.add_argument("--byt-users", type=int, default=2)
    a.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = a.parse_args()
    try:
        run(args.facilities, args.window, args.byt_users, args.workers)
    except ValueError as exc:
        sys.exit(f"burst: {exc}")


if __name__ == "__main__":
    main()
