"""The chaos suite of issue 14 in its short form (bench/chaos.py): real processes (a private
PostgreSQL and Mosquitto, ingest, three gateways), each fault in turn, and the target: nothing
lost, nothing duplicated, recovered within 10 s of the fault's end, and ingest never down
because of a message (hostile messages of every class throughout, each one dead-lettered)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_chaos_short_form(mosquitto_path: str) -> None:
    if not Path("/usr/lib/postgresql/15/bin/initdb").exists():
        pytest.fail("PostgreSQL 15 server binaries are needed for the private server")
    args = ["--fault-s", "3", "--pg-s", "5", "--ingest-away-s", "6", "--replay", "3000", "--json"]
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench/chaos.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=420,
        check=True,
    ).stdout
    print(out)
    results = json.loads(out.strip().splitlines()[-1])
    rows = [r for r in results if "fault" in r]
    assert len(rows) == 10
    for r in rows:
        assert r["published"] > 0, r
        assert (r["lost"], r["duplicated"]) == (0, 0), r
        assert r["stored"] == r["published"], r
        assert r["recovery_s"] is not None and r["recovery_s"] < 10.0, r
        # ingest never down because of a message: it exited only when the suite stopped it
        assert r["ingest_exits"] == [], r
        assert r["hostile_wrong_reason"] == [], r
        if not r["broker_restarts"]:  # a restarting broker may lose what it acknowledged
            assert r["hostile_dead_lettered"] == r["hostile_sent"], r
        # hostile readings inside gw-c2's own batches: each found in its message's dead letter
        # with its reason (where the link was down, a catch-up message can be too long for the
        # one-by-one lookup: the whole-run count below covers those)
        assert r["in_batch_sent"] > 0, r
        if not r["link_lost"]:
            assert r["in_batch_missing_kinds"] == [], r
        # ... and every good reading that shared a message with one is stored
        assert r["in_batch_good_alongside"] > 0, r
        assert r["in_batch_good_alongside_stored"] == r["in_batch_good_alongside"], r
    assert rows[-2]["fault"].startswith("broker SIGKILL, PostgreSQL down")
    assert rows[-1]["fault"].startswith("ingest SIGKILL during a network cut")
    burst = rows[-3]
    assert burst["fault"] == "hostile message of each class"
    # every hostile reading inside gw-c2's batches was refused in a dead letter, or evicted by
    # the gateway (a year-1 reading too old for its outbox while the link was down); no good
    # reading of gw-c2 was refused with them
    end = results[-1]
    assert end["in_batch_written"] > 0
    assert end["in_batch_refused"] <= end["in_batch_written"], end
    assert end["in_batch_refused"] + end["in_batch_evicted"] >= end["in_batch_written"], end
    # every class of hostile reading inside a gateway's batch was dead-lettered somewhere
    inside = {k for r in rows for k in r["in_batch_kinds"]}
    assert inside == {"year 1", "year 9999", "a day ahead", "1.7e308 MPa"}
    assert set(burst["hostile_kinds"]) >= {
        "year 1", "year 9999", "1.7e308 MPa", "value true", "integer epoch ts",
        "retained data", "over the payload limit", "garbage bytes",
    }  # fmt: skip
    # the message over the broker's packet limit: dropped by the broker, visible in its log ...
    assert results[-1]["broker_log_oversize"] >= 1
    # ... and in ingest's metrics (counted from the broker's $SYS log), each drop once
    # (read right after the burst: a drop logged later is not in it)
    assert 1 <= results[-1]["ingest_metric_oversize"] <= results[-1]["broker_log_oversize"]
