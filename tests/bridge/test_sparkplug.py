"""Sparkplug B through a real broker: births, data, alias-only data, a seq gap → rebirth, deaths."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from oxy.contract import DataMessage, StateMessage, StatusMessage
from tests.bridge import spb
from tests.bridge.conftest import rows, wait_rows

T0 = 1_764_300_000_000  # 2025-11-28T03:20:00Z in ms

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
                {"metric": "Level/DP", "sensor": "T1-dp", "unit": "inH2O"},
                {"metric": "Head/Pressure", "sensor": "T1-p", "unit": "psi"},
                {"metric": "Level/Raw", "sensor": "T1-raw", "unit": "mmH2O", "scale": 0.5},
            ],
        },
    ],
}


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def test_sparkplug_lifecycle(broker, db_url, bridge_factory, collector_factory, foreign_factory):
    out = collector_factory(broker.port)
    bridge = bridge_factory(broker.port, db_url, [{**SOURCE, "host_id": "oxy-bridge"}])
    dev = foreign_factory(broker.port)
    # The bridge announces itself as a Sparkplug primary host (retained STATE).
    [(_, host_state)] = out.wait(lambda t, p: t == "spBv1.0/STATE/oxy-bridge")
    assert json.loads(host_state)["online"] is True

    # NBIRTH: bdSeq, node control, a node metric with its alias and current value.
    dev.send(
        "spBv1.0/Plant/NBIRTH/Edge1",
        spb.payload(
            0,
            [
                spb.metric("bdSeq", None, spb.INT64, 7),
                spb.metric("Node Control/Rebirth", 0, spb.BOOLEAN, False),
                spb.metric("Line/Pressure", 1, spb.DOUBLE, 4.25, timestamp=T0),
            ],
            timestamp=T0,
        ),
    )
    out.wait(lambda t, p: t == "oxy/v1/BV-A/gw-edge1/data")
    out.wait(lambda t, p: t == "oxy/v1/BV-A/gw-edge1/state")
    [state] = out.contract("state", "gw-edge1")
    assert isinstance(state, StateMessage) and state.online and state.bd_seq == 7
    # The birth is retained: a subscriber arriving later still learns the gateway is online.
    late = collector_factory(broker.port, "oxy/v1/+/+/state")
    late.wait(lambda t, p: t == "oxy/v1/BV-A/gw-edge1/state")
    assert [r for t, _, r in late.messages] == [True]
    [node_data] = out.contract("data", "gw-edge1")
    assert [(r.sensor, r.value, r.unit, r.ts) for r in node_data.readings] == [
        ("L1-p", 4.25, "bar", _ts(T0))
    ]

    # DBIRTH: device metrics with aliases (signed Int16 travels as two's complement).
    dev.send(
        "spBv1.0/Plant/DBIRTH/Edge1/Tank1",
        spb.payload(
            1,
            [
                spb.metric("Level/DP", 10, spb.FLOAT, 112.5, timestamp=T0 + 1000),
                spb.metric("Head/Pressure", 11, spb.DOUBLE, 150.0, timestamp=T0 + 1000),
                spb.metric("Level/Raw", 12, spb.INT16, -40, timestamp=T0 + 1000),
                spb.metric("Properties/Serial", 13, spb.STRING, "SN-1"),
            ],
            timestamp=T0 + 1000,
        ),
    )
    out.wait(lambda t, p: t == "oxy/v1/BV-A/gw-tank1/data")
    out.wait(lambda t, p: t == "oxy/v1/BV-A/gw-tank1/state")
    assert [s.online for s in out.contract("state", "gw-tank1")] == [True]
    [birth_data] = out.contract("data", "gw-tank1")
    assert {r.sensor: (r.value, r.unit) for r in birth_data.readings} == {
        "T1-dp": (112.5, "inH2O"),
        "T1-p": (150.0, "psi"),
        "T1-raw": (-20.0, "mmH2O"),
    }

    # DDATA with aliases only (no names): resolved from the DBIRTH.
    dev.send(
        "spBv1.0/Plant/DDATA/Edge1/Tank1",
        spb.payload(
            2,
            [spb.metric(None, 10, spb.FLOAT, 110.25, timestamp=T0 + 60_000)],
            timestamp=T0 + 60_000,
        ),
    )
    datas = out.wait(lambda t, p: t == "oxy/v1/BV-A/gw-tank1/data", count=2)
    alias_only = out.contract("data", "gw-tank1")[1]
    assert [(r.sensor, r.value, r.ts) for r in alias_only.readings] == [
        ("T1-dp", 110.25, _ts(T0 + 60_000))
    ]
    assert len(datas) == 2

    # A gap (expected 3, got 5): the data is kept, a rebirth is requested and the gap recorded.
    dev.send(
        "spBv1.0/Plant/DDATA/Edge1/Tank1",
        spb.payload(5, [spb.metric(None, 11, spb.DOUBLE, 151.5, timestamp=T0 + 120_000)]),
    )
    [(_, ncmd)] = out.wait(lambda t, p: t == "spBv1.0/Plant/NCMD/Edge1")
    cmd = spb.parse(ncmd)
    assert [(m.name, m.boolean_value) for m in cmd.metrics] == [("Node Control/Rebirth", True)]
    out.wait(lambda t, p: t == "oxy/v1/BV-A/gw-tank1/data", count=3)
    statuses = out.wait(lambda t, p: t.endswith("/status"), count=2)
    alarms = {}
    for t, p in statuses:
        msg = StatusMessage.model_validate_json(p)
        alarms[msg.gw] = msg.alarms
    assert set(alarms) == {"gw-edge1", "gw-tank1"}
    assert all("expected 3, got 5" in a[0] for a in alarms.values())
    assert bridge.sparkplug["plant"].gaps == 1

    # The node answers the rebirth; seq restarts and no new gap is seen.
    dev.send(
        "spBv1.0/Plant/NBIRTH/Edge1",
        spb.payload(0, [spb.metric("bdSeq", None, spb.INT64, 8)], timestamp=T0 + 130_000),
    )
    dev.send(
        "spBv1.0/Plant/DBIRTH/Edge1/Tank1",
        spb.payload(
            1,
            [spb.metric("Level/DP", 20, spb.FLOAT, 109.0, timestamp=T0 + 131_000)],
        ),
    )
    out.wait(lambda t, p: t == "oxy/v1/BV-A/gw-tank1/data", count=4)
    # Aliases were redefined by the new birth: alias 20 now means Level/DP.
    dev.send(
        "spBv1.0/Plant/DDATA/Edge1/Tank1",
        spb.payload(2, [spb.metric(None, 20, spb.FLOAT, 108.5, timestamp=T0 + 140_000)]),
    )
    out.wait(lambda t, p: t == "oxy/v1/BV-A/gw-tank1/data", count=5)
    assert out.contract("data", "gw-tank1")[-1].readings[0].value == 108.5
    assert bridge.sparkplug["plant"].gaps == 1

    # DDEATH: the device's gateway goes offline.
    dev.send("spBv1.0/Plant/DDEATH/Edge1/Tank1", spb.payload(3, []))
    out.wait(
        lambda t, p: t == "oxy/v1/BV-A/gw-tank1/state" and not json.loads(p)["online"],
    )
    # An NDEATH with the previous session's bdSeq (a late Will) is ignored ...
    dev.send("spBv1.0/Plant/NDEATH/Edge1", spb.payload(None, [spb.metric("bdSeq", None, 4, 7)]))
    time.sleep(0.5)
    assert [s.online for s in out.contract("state", "gw-edge1")] == [True, True]
    # ... the current one takes the node offline.
    dev.send("spBv1.0/Plant/NDEATH/Edge1", spb.payload(None, [spb.metric("bdSeq", None, 4, 8)]))
    out.wait(lambda t, p: t == "oxy/v1/BV-A/gw-edge1/state", count=3)
    last = out.contract("state", "gw-edge1")[-1]
    assert (last.online, last.bd_seq) == (False, 8)

    # Every onward data message decodes under the contract with consecutive per-gateway seq,
    # from 1 in the bridge outbox's stream (end-to-end acknowledgement, the default).
    tank = out.contract("data", "gw-tank1")
    assert all(isinstance(m, DataMessage) for m in tank)
    assert [m.seq for m in tank] == list(range(1, len(tank) + 1))
    assert {m.epoch for m in tank} == {bridge.outbox.epoch if bridge.outbox else None}
    assert rows(db_url, "SELECT count(*) FROM dead_letters")[0][0] == 0
    assert bridge.counters["errors"] == 0


def test_data_before_birth_and_unknown_node(
    broker, db_url, bridge_factory, collector_factory, foreign_factory
):
    out = collector_factory(broker.port)
    bridge_factory(broker.port, db_url, [SOURCE])
    dev = foreign_factory(broker.port)

    # The bridge started after the node's birth: alias-only data cannot be read, so it is
    # dead-lettered with the reason and a rebirth is requested.
    dev.send(
        "spBv1.0/Plant/DDATA/Edge1/Tank1",
        spb.payload(9, [spb.metric(None, 10, spb.FLOAT, 100.0)]),
    )
    out.wait(lambda t, p: t == "spBv1.0/Plant/NCMD/Edge1")
    [(reason,)] = wait_rows(db_url, "SELECT reason FROM dead_letters", 1)
    assert "alias 10 is unknown" in reason

    # A node the mapping does not know is quarantined with what it sent, not dropped.
    dev.send(
        "spBv1.0/Plant/NBIRTH/Other",
        spb.payload(
            0,
            [
                spb.metric("bdSeq", None, spb.INT64, 1),
                spb.metric("Tank9/DP", 1, spb.FLOAT, 55.5),
            ],
            timestamp=T0,
        ),
    )
    [(site, gw, sensor, ts, detail)] = wait_rows(
        db_url, "SELECT site, gateway, sensor, ts, payload FROM quarantine", 1
    )
    assert (site, gw, sensor, ts) == ("plant", "bridge:plant", "Plant/Other", _ts(T0))
    assert {"name": "Tank9/DP", "alias": 1, "value": 55.5} in detail["first"]["metrics"]
    assert detail["count"] == 1


def test_host_state_offline_on_a_clean_stop(
    broker, db_url, bridge_factory, collector_factory, foreign_factory
):
    out = collector_factory(broker.port, "spBv1.0/STATE/#")
    bridge = bridge_factory(broker.port, db_url, [{**SOURCE, "host_id": "oxy-bridge"}])
    [(_, birth)] = out.wait(lambda t, p: t == "spBv1.0/STATE/oxy-bridge")
    born = json.loads(birth)
    assert born["online"] is True

    # Someone (a stale retained Will, a misconfigured client) says we are offline: the host
    # says online again (tck-id-message-flow-hid-sparkplug-state-message-delivered).
    other = foreign_factory(broker.port)
    other.send("spBv1.0/STATE/oxy-bridge", json.dumps({"online": False, "timestamp": 1}))
    states = out.wait(lambda t, p: t == "spBv1.0/STATE/oxy-bridge", count=3)
    assert json.loads(states[-1][1]) == born

    bridge.stop()  # what SIGTERM does in `oxy bridge run`
    states = out.wait(lambda t, p: t == "spBv1.0/STATE/oxy-bridge", count=4)
    offline = json.loads(states[-1][1])
    assert offline["online"] is False
    assert offline["timestamp"] >= born["timestamp"]
    # Retained: an edge node connecting later learns the primary host is offline.
    late = collector_factory(broker.port, "spBv1.0/STATE/#")
    [(_, retained)] = late.wait(lambda t, p: True)
    assert json.loads(retained) == offline


def test_unmapped_node_metrics_are_quarantined_once(
    broker, db_url, bridge_factory, collector_factory, foreign_factory
):
    source = {**SOURCE, "devices": [SOURCE["devices"][1]]}  # only the device is mapped
    out = collector_factory(broker.port)
    bridge_factory(broker.port, db_url, [source])
    dev = foreign_factory(broker.port)
    dev.send(
        "spBv1.0/Plant/NBIRTH/Edge1",
        spb.payload(
            0,
            [
                spb.metric("bdSeq", None, spb.INT64, 1),
                spb.metric("Line/Pressure", 1, spb.DOUBLE, 4.25),
            ],
            timestamp=T0,
        ),
    )
    for seq in range(1, 11):
        dev.send(
            "spBv1.0/Plant/NDATA/Edge1",
            spb.payload(seq, [spb.metric(None, 1, spb.DOUBLE, 4.0 + seq, typed=False)]),
        )
    dev.send(
        "spBv1.0/Plant/DBIRTH/Edge1/Tank1",
        spb.payload(11, [spb.metric("Level/DP", 10, spb.FLOAT, 100.0)], timestamp=T0),
    )
    out.wait(lambda t, p: t == "oxy/v1/BV-A/gw-tank1/data")
    [(sensor, detail)] = rows(db_url, "SELECT sensor, payload FROM quarantine")
    assert sensor == "Plant/Edge1"
    assert detail["count"] == 11
    assert detail["first"]["kind"] == "NBIRTH" and detail["last"]["kind"] == "NDATA"
    assert detail["last"]["metrics"] == [{"name": "Line/Pressure", "alias": 1, "value": 14.0}]


def test_host_will_on_a_lost_connection(broker, db_url, bridge_factory, collector_factory):
    out = collector_factory(broker.port, "spBv1.0/STATE/#")
    bridge = bridge_factory(broker.port, db_url, [{**SOURCE, "host_id": "oxy-bridge"}])
    [(_, birth)] = out.wait(lambda t, p: t == "spBv1.0/STATE/oxy-bridge")
    # The connection drops without a DISCONNECT (network loss, kill -9): the broker publishes
    # the Will, offline with the birth's timestamp; the reconnected host says online again.
    sock = bridge._clients["plant"].socket()
    assert sock is not None
    sock.shutdown(2)
    states = out.wait(lambda t, p: t == "spBv1.0/STATE/oxy-bridge", count=3, timeout=20)
    will, again = json.loads(states[1][1]), json.loads(states[2][1])
    assert will == {"online": False, "timestamp": json.loads(birth)["timestamp"]}
    assert again == json.loads(birth)
