"""Backup and restore drill (issue 22), on a PRIVATE PostgreSQL cluster (never the machine's):
while gateways publish through the broker into ingest, a base backup is taken and the WAL is
streamed to a second place; the cluster is then destroyed (killed, its data directory deleted),
a fresh cluster is restored from the base backup and the WAL, ingest reconnects on its own and
the gateways' outboxes re-send what was never confirmed. Checks: every reading the gateways made
is stored, the closed days (readings, rollups, reports before today) are identical before and
after, and prints RPO (committed data lost) and RTO (destroy → first commit after restore).

    .venv/bin/python bench/restore_drill.py [--gateways 20] [--before 20] [--after 10]
    .venv/bin/python bench/restore_drill.py --pg-dump [--gateways 20] [--before 20] [--after 10]

The commands it runs are the ones docs/deployment.md gives for a real server:
`pg_receivewal --slot … --synchronous` (with `synchronous_standby_names = 'pg_receivewal'` on
the primary, so a commit waits for the WAL copy: RPO 0), `pg_basebackup -X none -c fast`, and on
restore the base backup, the streamed WAL (the `.partial` segment renamed), `recovery.signal`
and `restore_command = 'cp …/%f %p'`.

`--pg-dump` is the drill of a small ministry that runs only `pg_dump` (docs/deployment.md): the
roles (`pg_dumpall --globals-only`) and a custom-format dump (`pg_dump -Fc`) taken while
ingesting; the cluster destroyed; a fresh cluster made (`initdb`), the roles and the dump
restored (`pg_restore -j`). What was committed after the dump's snapshot is lost for good (the
gateways deleted it from their outboxes once the centre confirmed it): that is the RPO, printed
in readings and seconds. Everything else comes back: the closed days are identical, and every
reading made from the loss on waits in the outboxes and is stored after the restore (the
gateways' declared floor lets ingest's watermark step over the lost sequence numbers, so their
streams go on being confirmed without anyone's intervention).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.chaos import PG_BIN, PrivatePostgres  # noqa: E402
from bench.soak import (  # noqa: E402
    Platform,
    Scheduler,
    SoakConfig,
    Stats,
    drain,
    load_gateways,
    scrape,
    seed,
    start_platform,
)

# What "closed days" means for the comparison: everything of the days before today (UTC).
_FINGERPRINT = """
SELECT
  (SELECT md5(string_agg(sensor_id || ':' || ts || ':' || value, ',' ORDER BY sensor_id, ts))
   FROM readings WHERE ts < date_trunc('day', now())),
  (SELECT md5(string_agg(sensor_id || ':' || bucket || ':' || n || ':' || last_value, ','
                         ORDER BY sensor_id, bucket))
   FROM readings_1h WHERE bucket < date_trunc('day', now())),
  (SELECT md5(coalesce(string_agg(f::text, ',' ORDER BY f.id), ''))
   FROM facility_reports f WHERE report_day < current_date),
  (SELECT count(*) FROM readings WHERE ts < date_trunc('day', now()))
"""


@dataclass
class DrillResult:
    """What the drill found."""

    generated: int
    stored: int
    unconfirmed: int
    closed_days_identical: bool
    closed_readings: int
    rpo_readings: int  # committed before the destroy and missing after the restore
    rto_s: float  # destroy → first commit after the restore (includes the --after wait)
    restore_s: float  # restore began → cluster out of recovery
    back_s: float  # restore began → first commit (the operator's part of the RTO)


def _as_postgres(*args: str) -> None:
    user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*user, *args], check=True, capture_output=True)


def _fingerprint(url: str) -> tuple[Any, ...]:
    with psycopg.connect(url) as conn:
        row = conn.execute(_FINGERPRINT).fetchone()
    assert row is not None
    return tuple(row)


def _committed(url: str, gws: list[str], since: Any) -> int:
    """Readings of these gateways that ingest received since `since` (the seeded history was
    received before)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM readings r JOIN sensors s ON s.id = r.sensor_id "
            "JOIN gateways g ON g.id = s.gateway_id WHERE g.code = ANY(%s) "
            "AND r.received_at >= %s",
            (gws, since),
        ).fetchone()
    return int(row[0]) if row else 0


# A reading's identity that survives a restore (the ids are the dump's, the codes the country's).
ReadingKey = tuple[str, str, Any]


def _committed_keys(url: str, gws: list[str], since: Any) -> set[ReadingKey]:
    """Which readings of these gateways received since `since` are committed now, as (gateway,
    sensor, ts). What a loss costs is measured on these, never on a count of a received_at
    window: a message ingest received before the loss and committed only after the restore
    keeps its received_at (the time ingest got it), so it lands in the window it was not
    committed in and would hide as many readings that were lost."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT g.code, s.code, r.ts FROM readings r JOIN sensors s ON s.id = r.sensor_id "
            "JOIN gateways g ON g.id = s.gateway_id WHERE g.code = ANY(%s) "
            "AND r.received_at >= %s",
            (gws, since),
        ).fetchall()
    return {(gw, sensor, ts) for gw, sensor, ts in rows}


async def _drill(
    work: Path, pg: PrivatePostgres, url: str, platform: Platform, cfg: SoakConfig,
    before: float, after: float, out: Any,
) -> DrillResult:  # fmt: skip
    rng = random.Random(cfg.seed)
    gws = load_gateways(url, cfg, rng)
    for g in gws:
        g.outage = None  # the outage here is the database's
    stats = Stats()
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    since = row[0]
    codes = [g.gw for g in gws]
    t0 = time.monotonic()
    tasks = [asyncio.create_task(Scheduler(gws, cfg, platform.broker.port, t0, stats, rng).run())]
    wal = work / "wal"
    await asyncio.sleep(before / 2)
    base = work / "base"
    t = time.monotonic()
    await asyncio.to_thread(
        _as_postgres, str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(pg.port),
        "-U", "postgres", "-D", str(base), "-X", "none", "-c", "fast",
    )  # fmt: skip
    print(f"base backup taken while ingesting in {time.monotonic() - t:.1f} s", file=out)
    await asyncio.sleep(before / 2)
    closed = _fingerprint(url)
    committed_before = _committed_keys(url, codes, since)
    # Destroy: the server killed, its data directory gone.
    _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(pg.data), "-m", "immediate", "-w", "stop")
    shutil.rmtree(pg.data)
    t_destroy = time.monotonic()
    print(f"cluster destroyed after {t_destroy - t0:.0f} s of ingest "
          f"({len(committed_before)} readings committed)", file=out)  # fmt: skip
    await asyncio.sleep(after)  # the gateways carry on; ingest holds, the outboxes fill
    # Restore into a fresh cluster on the same address.
    t = time.monotonic()
    _as_postgres("cp", "-a", str(base), str(pg.data))
    for f in list(wal.iterdir()):
        target = wal / f.name.removesuffix(".partial")
        if f.name.endswith(".partial"):
            _as_postgres("cp", str(f), str(target))
    (pg.data / "recovery.signal").touch()
    with (pg.data / "postgresql.auto.conf").open("a", encoding="utf-8") as fh:
        fh.write(f"restore_command = 'cp {wal}/%f %p'\nsynchronous_standby_names = ''\n")
    if os.geteuid() == 0:  # what we wrote as root goes back to the server's user
        await asyncio.to_thread(
            subprocess.run, ["chown", "-R", "postgres", str(pg.data)], check=True
        )
    os.chmod(pg.data, 0o700)
    await asyncio.to_thread(pg.start)
    while True:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        if row and not row[0]:
            break
        await asyncio.sleep(0.2)
    restore_s = time.monotonic() - t
    before_readings = scrape(platform.ingest_metrics, "oxy_ingest_readings_total")
    while scrape(platform.ingest_metrics, "oxy_ingest_readings_total") <= before_readings:  # noqa: ASYNC110 - another process's counter
        await asyncio.sleep(0.2)
    rto = time.monotonic() - t_destroy
    back = time.monotonic() - t
    print(f"restored in {restore_s:.1f} s, first commit {back:.1f} s after the restore began, "
          f"{rto:.1f} s after the destroy ({after:.0f} s of it waiting on purpose)",
          file=out)  # fmt: skip
    rpo = len(committed_before - _committed_keys(url, codes, since))
    await asyncio.gather(*tasks)
    unconfirmed = await drain(gws, stats, cfg.drain_s)
    for g in gws:
        if g.client is not None:
            g.client.disconnect()
    stored = _committed(url, codes, since)
    after_fp = _fingerprint(url)
    return DrillResult(
        stats.generated, stored, unconfirmed, after_fp == closed, int(closed[3]), rpo, rto,
        restore_s, back,
    )  # fmt: skip


@dataclass
class DumpDrillResult:
    """What the pg_dump drill found."""

    generated: int
    stored: int
    unconfirmed: int
    closed_days_identical: bool
    closed_readings: int
    at_risk_readings: int  # committed after the dump began and before the loss
    rpo_readings: int  # committed before the loss, missing after the restore
    rpo_s: float  # the dump began → the loss: the window a dump-only setup loses
    dump_s: float
    dump_mb: float
    restore_s: float  # fresh cluster → roles and dump restored
    back_s: float  # restore began → first commit
    rto_s: float  # loss → first commit (includes the --after wait)


def _db_now(url: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]


async def _dump_drill(
    work: Path, pg: PrivatePostgres, url: str, platform: Platform, cfg: SoakConfig,
    before: float, after: float, out: Any,
) -> DumpDrillResult:  # fmt: skip
    rng = random.Random(cfg.seed)
    gws = load_gateways(url, cfg, rng)
    for g in gws:
        g.outage = None  # the outage here is the database's
    stats = Stats()
    since = _db_now(url)
    codes = [g.gw for g in gws]
    t0 = time.monotonic()
    tasks = [asyncio.create_task(Scheduler(gws, cfg, platform.broker.port, t0, stats, rng).run())]
    await asyncio.sleep(before / 2)
    conn_args = ["-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres"]
    dump, roles = work / "oxy.dump", work / "globals.sql"
    t = time.monotonic()
    dump_began = _db_now(url)
    # Committed before the dump began, so in its snapshot: what is lost is committed after.
    in_dump = _committed_keys(url, codes, since)
    await asyncio.to_thread(
        _as_postgres, "sh", "-c",
        f"{PG_BIN / 'pg_dumpall'} {' '.join(conn_args)} --globals-only > {roles}",
    )  # fmt: skip
    await asyncio.to_thread(
        _as_postgres, str(PG_BIN / "pg_dump"), *conn_args, "-Fc", "-f", str(dump), "oxy"
    )
    dump_s = time.monotonic() - t
    print(f"pg_dump -Fc taken while ingesting in {dump_s:.1f} s "
          f"({dump.stat().st_size / 2**20:.1f} MB)", file=out)  # fmt: skip
    await asyncio.sleep(before / 2)
    # Ingest is held still (SIGSTOP) from the count to the kill, so what the count says was
    # committed is exactly what the database held when it died: readings committed in between
    # would be lost without being counted.
    platform.ingest.send_signal(signal.SIGSTOP)
    await asyncio.sleep(0.5)  # a COMMIT it had already sent completes without it
    closed = _fingerprint(url)
    committed_before = _committed_keys(url, codes, since)
    lost_at = _db_now(url)
    at_risk = len(committed_before - in_dump)
    # Destroy: the server killed, its data directory gone.
    _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(pg.data), "-m", "immediate", "-w", "stop")
    platform.ingest.send_signal(signal.SIGCONT)
    shutil.rmtree(pg.data)
    t_destroy = time.monotonic()
    rpo_s = (lost_at - dump_began).total_seconds()
    print(f"cluster destroyed after {t_destroy - t0:.0f} s of ingest ({len(committed_before)} "
          f"readings committed, {at_risk} of them after the dump began)", file=out)  # fmt: skip
    await asyncio.sleep(after)  # the gateways carry on; ingest holds, the outboxes fill
    # A fresh cluster at the same address, the roles, the database and the dump.
    t = time.monotonic()
    _as_postgres(str(PG_BIN / "initdb"), "-D", str(pg.data), "-A", "trust", "-U", "postgres",
                 "--no-sync", "-E", "UTF8")  # fmt: skip
    await asyncio.to_thread(pg.start)
    await asyncio.to_thread(
        _as_postgres, str(PG_BIN / "psql"), *conn_args, "-q", "-d", "postgres", "-f", str(roles)
    )  # an error for the role `postgres` that exists already is expected and harmless
    # Restored under another name, renamed when complete: ingest and the API, retrying all
    # along, find the database only whole (a half-restored one killed the ingest writer).
    await asyncio.to_thread(_as_postgres, str(PG_BIN / "createdb"), *conn_args, "oxy_restore")
    await asyncio.to_thread(
        _as_postgres, str(PG_BIN / "pg_restore"), *conn_args, "-d", "oxy_restore", "-j", "2",
        "--exit-on-error", str(dump),
    )  # fmt: skip
    await asyncio.to_thread(
        _as_postgres, str(PG_BIN / "psql"), *conn_args, "-d", "postgres", "-c",
        "ALTER DATABASE oxy_restore RENAME TO oxy",
    )  # fmt: skip
    restore_s = time.monotonic() - t
    before_readings = scrape(platform.ingest_metrics, "oxy_ingest_readings_total")
    while scrape(platform.ingest_metrics, "oxy_ingest_readings_total") <= before_readings:  # noqa: ASYNC110 - another process's counter
        await asyncio.sleep(0.2)
    rto = time.monotonic() - t_destroy
    back = time.monotonic() - t
    print(f"restored in {restore_s:.1f} s, first commit {back:.1f} s after the restore began, "
          f"{rto:.1f} s after the destroy ({after:.0f} s of it waiting on purpose)",
          file=out)  # fmt: skip
    await asyncio.gather(*tasks)
    unconfirmed = await drain(gws, stats, cfg.drain_s)
    for g in gws:
        if g.client is not None:
            g.client.disconnect()
    stored = _committed(url, codes, since)
    # Lost for good: committed before the loss and still missing once the outboxes are empty
    # (a reading whose ack had not left ingest when it died was re-sent: it is not lost).
    rpo = len(committed_before - _committed_keys(url, codes, since))
    return DumpDrillResult(
        stats.generated, stored, unconfirmed, _fingerprint(url) == closed, int(closed[3]),
        at_risk, rpo, rpo_s, dump_s, dump.stat().st_size / 2**20, restore_s, back, rto,
    )  # fmt: skip


def run_dump(
    gateways: int = 20, before: float = 20, after: float = 10, out: Any = sys.stdout
) -> DumpDrillResult:
    """The pg_dump-only drill: private cluster (no WAL copy), broker and ingest; clean up."""
    work = Path(tempfile.mkdtemp(prefix="oxy-dump-drill-"))
    os.chmod(work, 0o777)
    pg = PrivatePostgres(work / "pg")
    pg.start()
    platform = None
    try:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE oxy")
        url = pg.url.rsplit("/", 1)[0] + "/oxy"
        cfg = SoakConfig(gateways=gateways, duration_s=before + after + 15, interval_s=1e9,
                         history_days=2.0, drain_s=60,
                         wire=os.environ.get("OXY_DRILL_WIRE", "v2"))  # fmt: skip
        seed(url, cfg)
        platform = start_platform(url)
        res = asyncio.run(_dump_drill(work, pg, url, platform, cfg, before, after, out))
    finally:
        if platform is not None:
            platform.stop()
        pg.destroy()
    print(
        f"readings generated {res.generated}, stored {res.stored}, "
        f"lost {res.generated - res.stored} (all of them committed after the dump: "
        f"RPO {res.rpo_readings} readings, the "
        f"{res.rpo_s:.1f} s from the dump to the loss); unconfirmed {res.unconfirmed}; closed days "
        f"({res.closed_readings} readings) {'identical' if res.closed_days_identical else 'DIFFER'}"
        f"; dump {res.dump_s:.1f} s, {res.dump_mb:.1f} MB; restore {res.restore_s:.1f} s; RTO "
        f"{res.rto_s:.1f} s from the loss, {res.back_s:.1f} s from the start of the restore",
        file=out,
    )
    shutil.rmtree(work, ignore_errors=True)
    return res


def run(
    gateways: int = 20, before: float = 20, after: float = 10, out: Any = sys.stdout
) -> DrillResult:
    """Set up the private cluster, broker and ingest; run the drill; clean up."""
    work = Path(tempfile.mkdtemp(prefix="oxy-drill-"))
    os.chmod(work, 0o777)
    pg = PrivatePostgres(work / "pg")
    # A commit waits until pg_receivewal has the WAL on disk: nothing committed is lost (RPO 0).
    with (pg.data / "postgresql.auto.conf").open("a", encoding="utf-8") as fh:
        fh.write("synchronous_standby_names = 'pg_receivewal'\n")
    pg.start()
    wal = work / "wal"
    _as_postgres("mkdir", "-p", str(wal))
    receive = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    _as_postgres(str(PG_BIN / "pg_receivewal"), "-h", "127.0.0.1", "-p", str(pg.port),
                 "-U", "postgres", "--slot", "drill", "--create-slot")  # fmt: skip
    receiver = subprocess.Popen(
        [*receive, str(PG_BIN / "pg_receivewal"), "-h", "127.0.0.1", "-p", str(pg.port),
         "-U", "postgres", "-D", str(wal), "--slot", "drill", "--synchronous", "-n"],
        stdout=(work / "receivewal.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    platform = None
    try:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE oxy")
        url = pg.url.rsplit("/", 1)[0] + "/oxy"
        cfg = SoakConfig(gateways=gateways, duration_s=before + after + 15, interval_s=1e9,
                         history_days=2.0, drain_s=60,
                         wire=os.environ.get("OXY_DRILL_WIRE", "v2"))  # fmt: skip
        seed(url, cfg)
        platform = start_platform(url)
        res = asyncio.run(_drill(work, pg, url, platform, cfg, before, after, out))
    finally:
        if platform is not None:
            platform.stop()
        receiver.terminate()
        receiver.wait(10)
        pg.destroy()
    print(
        f"readings generated {res.generated}, stored {res.stored}, lost "
        f"{res.generated - res.stored}; unconfirmed {res.unconfirmed}; closed days "
        f"({res.closed_readings} readings) {'identical' if res.closed_days_identical else 'DIFFER'}"
        f"; RPO {res.rpo_readings} committed readings lost; RTO {res.rto_s:.1f} s from the "
        f"loss, {res.back_s:.1f} s from the start of the restore (recovery {res.restore_s:.1f} s)",
        file=out,
    )
    shutil.rmtree(work, ignore_errors=True)
    return res


def main() -> None:
    """Parse the arguments and run."""
    a = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    a.add_argument("--gateways", type=int, default=20)
    a.add_argument("--before", type=float, default=20, help="seconds of ingest before the loss")
    a.add_argument("--after", type=float, default=10, help="seconds without a database")
    a.add_argument("--pg-dump", action="store_true",
                   help="the pg_dump-only drill (no WAL copy): RPO = the dump's age")  # fmt: skip
    args = a.parse_args()
    (run_dump if args.pg_dump else run)(args.gateways, args.before, args.after)


if __name__ == "__main__":
    main()
