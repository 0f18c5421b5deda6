"""The gateway cuts its batches by encoded size as well as by count (issue 14): with the
contract's payload limit lowered, every data message it publishes stays under it, in order,
with no gap in `seq` and no reading lost."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import oxy.contract
from gateway.config import load
from tests.gateway.conftest import RunningGateway, gateway_toml, tank

LIMIT = 700  # bytes: three or four readings


def test_data_messages_are_cut_by_encoded_size(
    bg, sim_factory, broker, subscriber_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(oxy.contract, "MAX_PAYLOAD_BYTES", LIMIT)
    t1, t2 = tank("T1"), tank("T2", fill=0.3)
    sim_factory(t1, t2)
    sub = subscriber_factory(broker.port)
    broker.stop()  # readings pile up in the outbox: the first batches are as large as allowed
    path = gateway_toml(
        tmp_path, [t1, t2], broker.port, poll=0.1, extra_mqtt="batch_max_readings = 500"
    )
    run = RunningGateway(bg, load(path))
    try:
        deadline = time.monotonic() + 20
        while (run.gw.outbox is None or run.gw.outbox.depth < 40) and (time.monotonic() < deadline):
            time.sleep(0.1)
        broker.start()
        sub.wait_for(lambda: sum(len(m["readings"]) for m in sub.of_kind("data")) >= 40)
    finally:
        run.stop()
    with sub.lock:
        sizes = [len(p) for t, p, _ in sub.messages if t.endswith("/data")]
    data = sub.of_kind("data")
    assert max(sizes) <= LIMIT
    assert max(len(m["readings"]) for m in data) >= 2  # batched, only smaller
    seqs = [m["seq"] for m in data]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    keys = [(r["sensor"], r["ts"]) for m in data for r in m["readings"]]
    assert len(keys) == len(set(keys))  # in order, none twice
