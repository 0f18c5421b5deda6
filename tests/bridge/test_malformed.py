"""A corpus of malformed payloads per protocol: every one recorded with its reason, none crashes
the bridge, and good messages keep flowing afterwards."""

from __future__ import annotations

import json
from typing import Any

from tests.bridge import recorded, spb
from tests.bridge.conftest import wait_rows
from tests.bridge.test_lorawan import CHIRPSTACK, TTS
from tests.bridge.test_sparkplug import SOURCE as SPARKPLUG
from tests.bridge.test_vendor_http import GASCO

CS = recorded.CHIRPSTACK_TOPIC


def _cs(**changes: Any) -> bytes:
    doc = recorded.chirpstack_up()
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return json.dumps(doc).encode()


def _tts(mutate: Any) -> bytes:
    doc = recorded.tts_up()
    mutate(doc)
    return json.dumps(doc).encode()


BIRTH = [
    ("spBv1.0/Plant/NBIRTH/Edge1", spb.payload(0, [spb.metric("bdSeq", None, spb.INT64, 1)])),
    (
        "spBv1.0/Plant/DBIRTH/Edge1/Tank1",
        spb.payload(1, [spb.metric("Level/DP", 10, spb.FLOAT, 100.0)]),
    ),
]

# (topic, payload, a phrase the recorded reason must contain)
CORPUS: list[tuple[str, bytes, str]] = [
    # Sparkplug B
    ("spBv1.0/Plant/NDATA/Edge1", b"\xff\xff\xff", "truncated varint"),
    ("spBv1.0/Plant/NDATA/Edge1", b"hello world", "wire type"),
    ("spBv1.0/Plant/DDATA/Edge1", spb.payload(2, []), "wrong number of levels"),
    ("spBv1.0/Plant/NFOO/Edge1", spb.payload(2, []), "not a Sparkplug B topic"),
    (
        "spBv1.0/Plant/NBIRTH/Edge2",
        spb.payload(0, [spb.metric("Temp", 1, spb.FLOAT, 1.0)]),
        "no integer bdSeq",
    ),
    (
        "spBv1.0/Plant/NBIRTH/Edge3",
        spb.payload(0, [spb.metric("bdSeq", None, spb.STRING, "one")]),
        "no integer bdSeq",
    ),
    (
        "spBv1.0/Plant/DDATA/Edge1/Tank1",
        spb.payload(None, [spb.metric(None, 10, spb.FLOAT, 1.0)]),
        "carries no seq",
    ),
    (
        "spBv1.0/Plant/DDATA/Edge1/Tank1",
        spb.payload(2, [spb.metric(None, 10, spb.STRING, "full")]),
        "datatype String differs from its birth's Float",
    ),
    (
        "spBv1.0/Plant/DDATA/Edge1/Tank1",
        spb.payload(3, [spb.metric(None, 10, spb.FLOAT, 1.0, timestamp=2**63)]),
        "out of range",
    ),
    # ChirpStack v4
    (CS, b"{not json", "not JSON"),
    (CS, b"\xff\xfe\x00", "not UTF-8"),
    (CS, b"[]", "not a JSON object"),
    (CS, _cs(deviceInfo=None), "deviceInfo"),
    (CS, _cs(deviceInfo={"devEui": ""}), "devEui"),
    (CS, _cs(time="yesterday"), "does not match iso8601"),
    (CS, _cs(object=None), "is a codec configured"),
    (CS, _cs(object={"dp_mbar": "abc"}), "is not a number"),
    # The Things Stack v3
    (recorded.TTS_TOPIC, _tts(lambda d: d.pop("end_device_ids")), "end_device_ids"),
    (
        recorded.TTS_TOPIC,
        _tts(lambda d: d["uplink_message"].pop("decoded_payload")),
        "decoded_payload",
    ),
    (
        recorded.TTS_TOPIC,
        _tts(lambda d: (d.pop("received_at"), d["uplink_message"].pop("received_at"))),
        "timestamp None",
    ),
    (
        recorded.TTS_TOPIC,
        json.dumps(recorded.tts_up()).replace("64.5", "NaN").replace("-179.6", "Infinity").encode(),
        "not a finite number",
    ),
    # Vendor JSON
    ("gasco/unit-17/up", b"42", "not a JSON object"),
    ("gasco/unit-17/up", b"[]", "empty list"),
    ("gasco/unit-17/up", b'{"ma": 5000}', "missing field 't'"),
    ("gasco/unit-17/up", b'{"t": 1e30, "ma": 5000}', "out of range"),
    ("gasco/unit-17/up", b'{"t": "2026-11-28", "ma": 5000}', "not a number"),
    ("gasco/unit-17/up", b'{"t": 1764300000000, "ma": {"v": 1}}', "dict is not a number"),
    ("gasco/unit-17/up", b'{"t": 1764300000000}', "missing field 'ma'"),
]


def test_malformed_corpus(broker, db_url, bridge_factory, collector_factory, foreign_factory):
    out = collector_factory(broker.port, "oxy/v1/#")
    bridge = bridge_factory(broker.port, db_url, [SPARKPLUG, CHIRPSTACK, TTS, GASCO])
    dev = foreign_factory(broker.port)
    for topic, payload in BIRTH:
        dev.send(topic, payload)
    out.wait(lambda t, p: t == "oxy/v1/BV-A/gw-tank1/data")

    for topic, payload, _ in CORPUS:
        dev.send(topic, payload)
    found = wait_rows(
        db_url,
        "SELECT topic, payload, payload_size, reason FROM dead_letters ORDER BY id",
        len(CORPUS),
    )
    assert len(found) == len(CORPUS)
    # Sources run on their own connections, so rows are matched by content, not order.
    recorded_rows = {(t, bytes(p)): (size, reason) for t, p, size, reason in found}
    assert len(recorded_rows) == len({(t, p) for t, p, _ in CORPUS}) == len(CORPUS)
    for topic, payload, phrase in CORPUS:
        size, reason = recorded_rows[(topic, payload)]
        assert size == len(payload)
        assert phrase in reason, (topic, reason)
    assert bridge.counters["errors"] == 0

    # Still running: a good message of every protocol goes through afterwards.
    dev.send(
        "spBv1.0/Plant/DDATA/Edge1/Tank1",
        spb.payload(4, [spb.metric(None, 10, spb.FLOAT, 99.5)]),
    )
    dev.send(CS, recorded.chirpstack_up())
    dev.send(recorded.TTS_TOPIC, recorded.tts_up())
    dev.send("gasco/unit-17/up", b'{"t": 1764300000000, "ma": 4000}')
    for gw in ("gw-tank1", "gw-bv-b-lora", "gw-bv-c-lora", "gw-bv-e"):
        out.wait(lambda t, p, gw=gw: t.endswith(f"/{gw}/data"))
    assert out.contract("data", "gw-tank1")[-1].readings[0].value == 99.5
    assert bridge.sparkplug["plant"].gaps == 0  # bad payloads did not disturb seq tracking
