"""The bridge driven by a third-party Sparkplug B edge node (pysparkplug from PyPI, in its own
process: tests/bridge/edge_node.py), through a real broker: data messages without datatypes,
rebirth across a bridge restart, a node that ignores rebirth requests, and a primary-host-aware
node that stores and forwards while the bridge restarts."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.bridge.conftest import rows, wait_rows

SOURCE: dict[str, Any] = {
    "name": "plant",
    "protocol": "sparkplug",
    "topic": "spBv1.0/Plant/#",
    "devices": [
        {
            "id": "Plant/Edge1",
            "site": "BV-A",
            "gateway": "gw-edge1",
            "points": [{"metric": "Line/Pressure", "sensor": "L1-p", "unit": "bar"}],
        },
        {
            "id": "Plant/Edge1/Tank1",
            "site": "BV-A",
            "gateway": "gw-tank1",
            "points": [
                {"metric": "Level/DP", "sensor": "T1-dp", "unit": "mmH2O"},
                {"metric": "Temp", "sensor": "T1-t", "unit": "degC"},
                {"metric": "Counter", "sensor": "T1-n", "unit": "%"},
            ],
        },
    ],
}


def _values(out: Any, gateway: str, sensor: str) -> list[float | None]:
    return [
        r.value for m in out.contract("data", gateway) for r in m.readings if r.sensor == sensor
    ]


def test_untyped_data_from_a_thirdparty_node(
    broker, db_url, bridge_factory, collector_factory, edge_factory
):
    out = collector_factory(broker.port, "oxy/v1/#")
    bridge_factory(broker.port, db_url, [SOURCE])
    node = edge_factory(broker.port, 3)
    node.send("connect")
    node.wait("born")
    out.wait(lambda t, p: t == "oxy/v1/BV-A/gw-tank1/data")  # the DBIRTH's values
    # Int64 -2000 (a long_value of 2**64-2000), Int8 -50 (pysparkplug sends 206), UInt32 4e9,
    # aliases only, no datatype: read with the types of the DBIRTH.
    node.send("ddata", values={"Level/DP": -2000, "Temp": -50, "Counter": 4_000_000_000})
    node.send("ndata", values={"Line/Pressure": 5.5})
    out.wait(lambda t, p: t == "oxy/v1/BV-A/gw-tank1/data", count=2)
    out.wait(lambda t, p: t == "oxy/v1/BV-A/gw-edge1/data", count=2)
    assert _values(out, "gw-tank1", "T1-dp") == [-1000.0, -2000.0]
    assert _values(out, "gw-tank1", "T1-t") == [20.0, -50.0]
    assert _values(out, "gw-tank1", "T1-n") == [0.0, 4_000_000_000.0]
    assert _values(out, "gw-edge1", "L1-p") == [4.25, 5.5]
    assert rows(db_url, "SELECT count(*) FROM dead_letters")[0][0] == 0
    # A clean stop of the node: NDEATH, both gateways offline.
    node.send("quit")
    out.wait(lambda t, p: t.endswith("/state") and not json.loads(p)["online"], count=2)


def test_rebirth_across_a_bridge_restart(
    broker, db_url, bridge_factory, collector_factory, edge_factory
):
    out = collector_factory(broker.port, "oxy/v1/#")
    first = bridge_factory(broker.port, db_url, [SOURCE])
    node = edge_factory(broker.port, 5)
    node.send("connect")
    node.wait("born")
    out.wait(lambda t, p: t == "oxy/v1/BV-A/gw-tank1/data")
    first.stop()
    # While no bridge runs, QoS 0 data is lost (what a restart costs a node that is not
    # primary-host aware).
    node.send("ddata", values={"Level/DP": -1500})
    second = bridge_factory(broker.port, db_url, [SOURCE])
    # The new bridge does not know the session: the untyped value is not guessed but
    # dead-lettered, and a rebirth is requested; the node answers with its births.
    node.send("ddata", values={"Level/DP": -2000})
    node.wait("rebirth_requested")
    node.wait("born", 2)
    reasons = [r for (r,) in wait_rows(db_url, "SELECT reason FROM dead_letters", 1)]
    assert all("alias 10 is unknown" in r and "rebirth requested" in r for r in reasons)
    out.wait(lambda t, p: t == "oxy/v1/BV-A/gw-tank1/data", count=2)  # the new DBIRTH
    node.send("ddata", values={"Level/DP": -2500})
    out.wait(lambda t, p: t == "oxy/v1/BV-A/gw-tank1/data", count=3)
    assert _values(out, "gw-tank1", "T1-dp") == [-1000.0, -2000.0, -2500.0]
    assert second.sparkplug["plant"].rebirths == 1
    assert -1500.0 not in _values(out, "gw-tank1", "T1-dp")  # lost with no bridge listening


def test_ndeath_of_a_node_that_ignores_rebirth_after_a_bridge_restart(
    broker, db_url, bridge_factory, collector_factory, edge_factory
):
    out = collector_factory(broker.port, "oxy/v1/#")
    first = bridge_factory(broker.port, db_url, [SOURCE])
    node = edge_factory(broker.port, 9)
    node.send("connect", ignore_rebirth=True)
    node.wait("born")
    out.wait(lambda t, p: t == "oxy/v1/BV-A/gw-tank1/state")
    first.stop()
    bridge_factory(broker.port, db_url, [SOURCE])
    node.send("ddata", values={"Level/DP": -2000})
    node.wait("rebirth_requested")
    node.send("quit")  # NDEATH with bdSeq 9: the new bridge never saw the NBIRTH
    out.wait(lambda t, p: t.endswith("/state") and not json.loads(p)["online"], count=2)
    offline = {m.gw for m in out.contract("state") if not m.online}
    assert offline == {"gw-edge1", "gw-tank1"}


@pytest.mark.slow  # a fault test (a restart of the bridge): the slow tier, run in CI
def test_primary_host_aware_node_stores_and_forwards_across_a_restart(
    broker, db_url, bridge_factory, collector_factory, edge_factory
):
    source = {**SOURCE, "host_id": "oxy-bridge"}
    out = collector_factory(broker.port, "oxy/v1/#")
    node = edge_factory(broker.port, 1)
    node.send("connect", primary_host="oxy-bridge")
    node.wait("connected")
    time.sleep(0.3)
    assert node.of("born") == []  # waits for the primary host
    first = bridge_factory(broker.port, db_url, [source])
    node.wait("born")
    for n in (1, 2, 3):
        node.send("ddata", values={"Counter": n})
    out.wait(lambda t, p: t == "oxy/v1/BV-A/gw-tank1/data", count=4)

    first.stop()  # SIGTERM: STATE offline before the disconnect
    node.wait("host", 2)
    assert node.of("host")[-1]["online"] is False
    for n in (4, 5, 6):
        node.send("ddata", values={"Counter": n})
    assert len(node.of("stored")) == 3

    bridge_factory(broker.port, db_url, [source])  # STATE online again, a newer timestamp
    node.wait("born", 2)
    node.wait("forwarded")
    node.send("ddata", values={"Counter": 7})
    wanted = [0.0, 1.0, 2.0, 3.0, 0.0, 3.0, 4.0, 5.0, 6.0, 7.0]  # births repeat the last value
    deadline = time.monotonic() + 10
    while _values(out, "gw-tank1", "T1-n") != wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    counters = _values(out, "gw-tank1", "T1-n")
    assert {1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0} <= set(counters), counters
    assert rows(db_url, "SELECT count(*) FROM dead_letters")[0][0] == 0
