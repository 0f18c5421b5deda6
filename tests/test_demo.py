"""`oxy demo` end to end: every component starts, live readings flow from the simulated tanks
through gateways, the broker and ingest into PostgreSQL, the web UI answers, and a stop signal
stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.fix_mqtt import free_port


@pytest.mark.slow  # every process of `oxy demo`, spawned
def test_demo_runs_the_whole_platform(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXY_")}
    env.update(OXY_DATABASE_URL=db_url, OXY_DATA_DIR=str(tmp_path), OXY_API_PORT=str(port))
    proc = subprocess.Popen(
        [sys.executable, "-m", "oxy", "demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert health is not None and health.json()["database"] == "ok", proc.stdout
        home = httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
        assert home.status_code == 200 and "<html" in home.text.lower()
        # Live telemetry (not the back-filled history) reaches the readings table.
        started = time.time()
        live = 0
        while time.monotonic() < deadline and live == 0:
            with psycopg.connect(db_url) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM readings WHERE received_at > to_timestamp(%s)",
                    (started - 5,),
                ).fetchone()
            live = int(row[0]) if row else 0
            time.sleep(1)
        assert live > 0, "no live reading arrived"
        # The 13 gateways start one after another: the first live reading may come before the
        # last birth has been stored.
        online = 0
        while time.monotonic() < deadline and online < 13:
            with psycopg.connect(db_url) as conn:
                row = conn.execute("SELECT count(*) FROM gateway_status WHERE online").fetchone()
            online = int(row[0]) if row else 0
            time.sleep(0.5)
        assert online == 13
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "Demo logins" in out and "stopping" in out
    logins = (tmp_path / "demo" / "logins.txt").read_text().split()
    assert "admin" in logins and (tmp_path / "demo" / "logins.txt").stat().st_mode & 0o077 == 0
    leftover = subprocess.run(
        ["pgrep", "-f", str(tmp_path)], check=False, capture_output=True, text=True
    )
    assert leftover.stdout.strip() == "", "demo children still running"
