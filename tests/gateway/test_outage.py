"""A 60-second broker outage while polling at 1 Hz: every reading arrives, in order per sensor."""

from __future__ import annotations

import itertools
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from gateway.config import load
from tests.gateway.conftest import RunningGateway, gateway_toml, tank

OUTAGE_S = 60.0


def _t(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


@pytest.mark.slow
def test_broker_outage_loses_nothing(
    bg, sim_factory, broker_factory, subscriber_factory, tmp_path: Path
) -> None:
    broker = broker_factory()
    tanks = [tank(f"T{i}") for i in range(1, 6)]  # 10 sensors
    sim_factory(*tanks)
    sub = subscriber_factory(broker.port, client_id="outage-subscriber")
    # PUBACK mode: no ingest here to confirm (the end-to-end acknowledgement under broker
    # faults is tests/ingest/test_end_to_end_ack.py and bench/chaos.py).
    cfg = gateway_toml(tmp_path, tanks, broker.port, poll=1.0, extra_mqtt="end_to_end_ack = false")
    run = RunningGateway(bg, load(cfg))
    sub.wait_for(lambda: len(sub.of_kind("data")) >= 5)
    time.sleep(3)

    broker.stop()
    time.sleep(OUTAGE_S)
    waiting = run.gw.outbox.depth if run.gw.outbox else 0
    assert waiting >= 10 * (OUTAGE_S - 2)  # the outage's readings are on disk, not in memory

    back = time.monotonic()
    broker.start()
    while not (run.gw.link and run.gw.link.connected) and time.monotonic() - back < 10:
        time.sleep(0.05)
    reconnect_s = time.monotonic() - back
    assert reconnect_s < 5.0, f"publishing resumed {reconnect_s:.1f}s after the broker returned"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (run.gw.outbox is None or run.gw.outbox.depth > 20):
        time.sleep(0.1)
    time.sleep(2)
    run.stop()
    assert run.gw.outbox is not None
    written, left = run.gw.outbox.written_total, run.gw.outbox.depth

    def unique() -> int:
        return len({(r["sensor"], r["ts"]) for r in sub.readings()})

    sub.wait_for(lambda: unique() >= written - left, timeout=20)
    readings = sub.readings()
    assert written - left <= unique() <= written

    # in order per sensor: after dropping exact repeats, timestamps strictly increase, with no hole
    seen: set[tuple[str, str]] = set()
    per_sensor: dict[str, list[float]] = defaultdict(list)
    for r in readings:
        key = (r["sensor"], r["ts"])
        if key in seen:
            continue
        seen.add(key)
        per_sensor[r["sensor"]].append(_t(r["ts"]))
    assert len(per_sensor) == 10
    for sensor, ts in per_sensor.items():
        assert ts == sorted(ts), f"{sensor} out of order"
        gaps = [b - a for a, b in itertools.pairwise(ts)]
        # (the count check above proves nothing is lost; a skipped tick under load is not a hole)
        assert max(gaps) < 3.0, f"{sensor}: a hole of {max(gaps):.1f}s"
        assert ts[-1] - ts[0] > OUTAGE_S

    # repeats only as whole re-sent messages (same seq: a PUBACK lost in the outage), counted
    data = sub.of_kind("data")
    seq_count = Counter(m["seq"] for m in data)
    resent = sum(len(m["readings"]) for m in data if seq_count[m["seq"]] > 1) - sum(
        len(next(m for m in data if m["seq"] == s)["readings"])
        for s, n in seq_count.items()
        if n > 1
    )
    duplicates = len(readings) - unique()
    assert duplicates == resent
    print(
        f"\noutage: {written} readings written, {duplicates} duplicates, "
        f"reconnect {reconnect_s:.2f}s"
    )
