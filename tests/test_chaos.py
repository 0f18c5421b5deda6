"""The chaos suite of issue 14 in its short form (bench/chaos.py): real processes, each fault in
turn, and the target: nothing lost, nothing duplicated, recovered within 10 s of the fault's end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_chaos_short_form(pg_admin_url: str, mosquitto_path: str) -> None:
    args = ["--db-admin-url", pg_admin_url, "--fault-s", "3", "--replay", "3000", "--json"]
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench/chaos.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    print(out)
    results = json.loads(out.strip().splitlines()[-1])
    assert len(results) == 6
    for r in results:
        assert r["published"] > 0, r
        assert (r["lost"], r["duplicated"]) == (0, 0), r
        assert r["stored"] == r["published"], r
        assert r["recovery_s"] is not None and r["recovery_s"] < 10.0, r
