"""The Sparkplug host's session memory, message by message (no broker needed for the logic;
the broker tests are in test_sparkplug.py and test_sparkplug_thirdparty.py).

Data messages SHOULD NOT carry the datatype (tck-id-payloads-metric-datatype-not-req): it is
declared once in the birth and must be remembered for the life of the session.
"""

from __future__ import annotations

from typing import Any

from firmware_bridge.config import parse_config
from firmware_bridge.model import GatewayRef, Outcome
from firmware_bridge.sparkplug import SparkplugHost

from tests.bridge import spb

T0 = 1_764_300_000_000

SOURCE: dict[str, Any] = {
    "name": "plant",
    "protocol": "sparkplug",
    "devices": [
        {
            "id": "G/E",
            "site": "BV-A",
            "gateway": "gw-node",
            "points": [{"metric": "Line/Pressure", "sensor": "L-p", "unit": "bar"}],
        },
        {
            "id": "G/E/T1",
            "site": "BV-A",
            "gateway": "gw-t1",
            "points": [
                {"metric": "Level/DP", "sensor": "T1-dp", "unit": "mmH2O"},
                {"metric": "Temp", "sensor": "T1-t", "unit": "degC"},
                {"metric": "Count", "sensor": "T1-n", "unit": "%"},
                {"metric": "Table", "sensor": "T1-tab", "unit": "%"},
            ],
        },
        {
            "id": "G/E/T2",
            "site": "BV-A",
            "gateway": "gw-t2",
            "points": [{"metric": "Level/DP", "sensor": "T2-dp", "unit": "mmH2O"}],
        },
    ],
}
T1 = GatewayRef("BV-A", "gw-t1")
T2 = GatewayRef("BV-A", "gw-t2")
NODE = GatewayRef("BV-A", "gw-node")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def host() -> tuple[SparkplugHost, Clock]:
    clock = Clock()
    config = parse_config({"onward": {"mqtt_url": "mqtt://x"}, "sources": [SOURCE]})
    return SparkplugHost(config.sources[0], clock=clock), clock


def nbirth(h: SparkplugHost, bd: int = 1) -> Outcome:
    return h.handle(
        "spBv1.0/G/NBIRTH/E",
        spb.payload(
            0,
            [
                spb.metric("bdSeq", None, spb.UINT64, bd),
                spb.metric("Node Control/Rebirth", None, spb.BOOLEAN, False),
                spb.metric("Line/Pressure", 1, spb.DOUBLE, 4.5),
            ],
            timestamp=T0,
        ),
    )


def dbirth(h: SparkplugHost, seq: int = 1, device: str = "T1") -> Outcome:
    return h.handle(
        f"spBv1.0/G/DBIRTH/E/{device}",
        spb.payload(
            seq,
            [
                spb.metric("Level/DP", 10, spb.INT64, -1000),
                spb.metric("Temp", 11, spb.INT8, 20),
                spb.metric("Count", 12, spb.UINT8, 7),
                spb.metric("Table", 13, spb.DATASET, ["a", "b"]),
            ],
            timestamp=T0,
        ),
    )


def values(out: Outcome, ref: GatewayRef) -> dict[str, float | None]:
    return {r.sensor: r.value for r in out.readings.get(ref, [])}


def ddata(seq: int, *metrics: dict[str, Any], device: str = "T1") -> tuple[str, bytes]:
    return f"spBv1.0/G/DDATA/E/{device}", spb.payload(seq, list(metrics), timestamp=T0 + 1000)


def test_untyped_data_is_read_with_the_births_datatype() -> None:
    h, _ = host()
    nbirth(h)
    out = dbirth(h)
    # The birth's DataSet on a mapped metric is a dead-letter reason, not a null reading.
    assert values(out, T1) == {"T1-dp": -1000.0, "T1-t": 20.0, "T1-n": 7.0}
    assert [d for d in out.dead if "'Table'" in d] == [
        "DBIRTH G/E/T1 metric 'Table': DataSet is not supported as a reading"
    ]
    out = h.handle(
        *ddata(
            2,
            spb.metric(None, 10, spb.INT64, -2000, typed=False),
            spb.metric(None, 11, spb.INT8, -50, typed=False),
            spb.metric(None, 12, spb.UINT8, 255, typed=False),
        )
    )
    assert values(out, T1) == {"T1-dp": -2000.0, "T1-t": -50.0, "T1-n": 255.0}
    assert out.dead == [] and out.commands == []
    # Node metrics too (a separate name space from the device's).
    out = h.handle(
        "spBv1.0/G/NDATA/E", spb.payload(3, [spb.metric(None, 1, spb.DOUBLE, 4.75, typed=False)])
    )
    assert values(out, NODE) == {"L-p": 4.75}


def test_unknown_datatype_is_never_guessed() -> None:
    h, _ = host()
    # Data from a node whose birth this host has not seen, without datatypes: names resolve
    # (they are sent), but the values cannot be read safely.
    out = h.handle(
        *ddata(
            7,
            spb.metric("Level/DP", None, spb.INT64, -2000, typed=False),
            spb.metric("Temp", None, spb.INT8, -50, typed=False),
        )
    )
    assert out.readings == {}
    assert len(out.dead) == 2 and all("datatype unknown" in d for d in out.dead)
    assert [t for t, _ in out.commands] == ["spBv1.0/G/NCMD/E"]
    # A typed value in the same situation is read (the message says what it is).
    out = h.handle(*ddata(8, spb.metric("Level/DP", None, spb.INT64, -2000)))
    assert values(out, T1) == {"T1-dp": -2000.0}


def test_a_value_in_the_wrong_field_is_a_dead_letter() -> None:
    h, _ = host()
    nbirth(h)
    dbirth(h)
    # Declared Int64 in the birth, but a double arrives (without datatype).
    out = h.handle(*ddata(2, spb.metric(None, 10, spb.DOUBLE, 1.5, typed=False)))
    assert out.readings == {}
    assert out.dead == [
        "DDATA G/E/T1 metric 'Level/DP': Int64 value travels in the wrong field (13)"
    ]


def test_ddata_after_ddeath_asks_for_a_rebirth() -> None:
    h, clock = host()
    nbirth(h)
    dbirth(h)
    out = h.handle("spBv1.0/G/DDEATH/E/T1", spb.payload(2, [], timestamp=T0))
    assert [(s.ref, s.online) for s in out.states] == [(T1, False)]
    clock.now = 100.0
    out = h.handle(*ddata(3, spb.metric(None, 10, spb.INT64, 5, typed=False)))
    assert [t for t, _ in out.commands] == ["spBv1.0/G/NCMD/E"]
    assert out.states == []  # not online again before its DBIRTH


def test_ndeath_after_a_host_restart_is_honoured() -> None:
    h, _ = host()
    nbirth(h, bd=4)
    dbirth(h)
    # The bridge restarts: a fresh host. The node ignores the rebirth request and dies.
    h2, _ = host()
    out = h2.handle(*ddata(9, spb.metric(None, 10, spb.INT64, 5, typed=False)))
    assert out.commands  # rebirth requested, ignored by this node
    out = h2.handle("spBv1.0/G/NDEATH/E", spb.payload(None, [spb.metric("bdSeq", None, 8, 4)]))
    assert {(s.ref, s.online) for s in out.states} == {(NODE, False), (T1, False), (T2, False)}
    # Its Will, delivered again (QoS 1 redelivery), changes nothing more.
    out = h2.handle("spBv1.0/G/NDEATH/E", spb.payload(None, [spb.metric("bdSeq", None, 8, 4)]))
    assert out.states == []
    # A late Will of an older session after a new birth is still ignored.
    nbirth(h2, bd=5)
    out = h2.handle("spBv1.0/G/NDEATH/E", spb.payload(None, [spb.metric("bdSeq", None, 8, 4)]))
    assert out.states == []


def test_a_rebirth_does_not_flip_gateways_offline() -> None:
    h, _ = host()
    nbirth(h, bd=1)
    dbirth(h, 1, "T1")
    dbirth(h, 2, "T2")
    # A seq gap: alarm, rebirth request.
    out = h.handle(*ddata(9, spb.metric(None, 10, spb.INT64, 5, typed=False)))
    assert {r for r, _ in out.alarms} == {NODE, T1, T2}
    assert out.commands
    # The node answers: NBIRTH then only T1's DBIRTH (T2 was unplugged meanwhile).
    out = nbirth(h, bd=1)
    assert [(s.ref, s.online) for s in out.states] == [(NODE, True)]  # no offline for T1/T2
    assert set(out.cleared) == {NODE, T1, T2}  # the gap alarm is over
    out = dbirth(h, 1, "T1")
    assert [(s.ref, s.online) for s in out.states] == [(T1, True)]
    # The first data message after the births: T2 did not come back, so it is offline now.
    out = h.handle(*ddata(2, spb.metric(None, 10, spb.INT64, -7, typed=False)))
    assert [(s.ref, s.online) for s in out.states] == [(T2, False)]
    assert values(out, T1) == {"T1-dp": -7.0}
    # Types are per session: after the rebirth they still hold, and no new alarm.
    out = nbirth(h, bd=1)
    assert out.cleared == []


def test_seq_wraps_from_255_to_0_without_a_gap() -> None:
    h, _ = host()
    nbirth(h)
    dbirth(h, 1)
    for seq in range(2, 256):
        assert h.handle(*ddata(seq, spb.metric(None, 10, spb.INT64, seq, typed=False))).alarms == []
    out = h.handle(*ddata(0, spb.metric(None, 10, spb.INT64, 0, typed=False)))
    assert out.alarms == [] and out.commands == []
    out = h.handle(*ddata(2, spb.metric(None, 10, spb.INT64, 2, typed=False)))
    assert next(a for _, a in out.alarms).endswith("expected 1, got 2 (DDATA)")
    assert h.gaps == 1


def test_a_datatype_that_contradicts_the_birth_is_a_dead_letter() -> None:
    h, _ = host()
    nbirth(h)
    dbirth(h)
    out = h.handle(*ddata(2, spb.metric(None, 10, spb.UINT64, 5)))  # born Int64
    assert out.readings == {}
    assert out.dead == [
        "DDATA G/E/T1 metric 'Level/DP': datatype UInt64 differs from its birth's Int64"
    ]
