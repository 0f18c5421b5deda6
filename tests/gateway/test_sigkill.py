"""The gateway process killed with SIGKILL mid-publish and restarted: the outbox loses nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.config import load
from oxy.contract import format_ts
from tests.gateway.conftest import gateway_toml, tank

ROOT = Path(__file__).resolve().parents[2]


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _start(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(cfg)],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _outbox_rows(path: Path) -> tuple[set[tuple[str, str]], int]:
    """The readings waiting in the outbox, and how many the broker had acknowledged."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT sensor, ts_ms FROM outbox").fetchall()
        acked = db.execute("SELECT value FROM meta WHERE key = 'published_total'").fetchone()
    finally:
        db.close()
    waiting = {(s, format_ts(datetime.fromtimestamp(ms / 1000, UTC))) for s, ms in rows}
    return waiting, int(acked[0]) if acked else 0


@pytest.mark.slow  # a fault test (a SIGKILLed gateway): the slow tier, run in CI
def test_sigkill_mid_publish_then_restart(
    bg, sim_factory, broker, subscriber_factory, tmp_path: Path
) -> None:
    tanks = [tank("T1"), tank("T2")]
    sim_factory(*tanks)
    sub = subscriber_factory(broker.port, client_id="kill-subscriber")
    cfg_path = gateway_toml(
        tmp_path,
        tanks,
        broker.port,
        poll=0.1,
        extra_mqtt="batch_max_readings = 4\nlinger_s = 0.05\nend_to_end_ack = false",
    )
    cfg = load(cfg_path)
    log = tmp_path / "gateway.log"
    proc = _start(cfg_path, log)
    try:
        sub.wait_for(lambda: len(sub.of_kind("data")) >= 30, timeout=20)
        # Freeze the broker so PUBACKs stop coming: the kill then lands while messages are
        # published but unacknowledged (and more readings wait behind them).
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGSTOP)
        time.sleep(1.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        killed_at = time.time()
        broker.proc.send_signal(signal.SIGCONT)
        snapshot, acked = _outbox_rows(cfg.outbox.path)
        assert len(snapshot) >= 20, "the kill should catch readings waiting in the outbox"

        # the broker published the Will: offline, with the birth's bd_seq
        sub.wait_for(lambda: any(not s["online"] for s in sub.of_kind("state")), timeout=60)
        births = [s for s in sub.of_kind("state") if s["online"]]
        deaths = [s for s in sub.of_kind("state") if not s["online"]]
        assert deaths[-1]["bd_seq"] == births[-1]["bd_seq"]

        proc = _start(cfg_path, log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            received = {(r["sensor"], r["ts"]) for r in sub.readings()}
            if snapshot <= received:
                break
            time.sleep(0.2)
        missing = snapshot - received
        assert not missing, f"{len(missing)} readings in the outbox at the kill never arrived"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)

    # everything the first process wrote (acknowledged + waiting at the kill) arrived, once each
    first_run = {(r["sensor"], r["ts"]) for r in sub.readings() if _ts(r["ts"]) < killed_at}
    assert len(first_run) == acked + len(snapshot)
    births = [s for s in sub.of_kind("state") if s["online"]]
    assert births[-1]["bd_seq"] == births[0]["bd_seq"] + 1
