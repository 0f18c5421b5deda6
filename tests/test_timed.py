"""scripts/timed.sh, which times each tier of `make test`: it prints and logs the wall time,
passes a failure through, and reads pytest's "no test selected" (exit 5) as an empty tier."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(log: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "timed.sh"), *command],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "OXY_TIERS_LOG": str(log)},
        timeout=60,
    )


def test_each_tier_prints_and_logs_its_wall_time(tmp_path: Path) -> None:
    log = tmp_path / "tiers.log"
    got = _timed(log, "fast (PostgreSQL)", "sh", "-c", "echo running; sleep 1")
    assert got.returncode == 0
    assert got.stdout.startswith("== fast (PostgreSQL) ==\nrunning\n")
    line = log.read_text().strip()
    m = re.fullmatch(r"fast \(PostgreSQL\)\s+(\d+) s  \(exit 0, load [\d.]+\)", line)
    assert m, line
    assert int(m.group(1)) >= 1
    assert f"== {line} ==" in got.stdout


def test_a_failing_tier_fails_and_is_still_timed(tmp_path: Path) -> None:
    log = tmp_path / "tiers.log"
    got = _timed(log, "slow (PostgreSQL)", "sh", "-c", "exit 3")
    assert got.returncode == 3
    assert "(exit 3," in log.read_text()


def test_an_empty_tier_is_not_a_failure(tmp_path: Path) -> None:
    log = tmp_path / "tiers.log"
    got = _timed(log, "slow (TimescaleDB)", "sh", "-c", "exit 5")
    assert got.returncode == 0
    assert "(exit 5," in log.read_text()
