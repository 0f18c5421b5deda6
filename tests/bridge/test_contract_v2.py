"""The firmware bridge speaking contract v2 (issue 24): `[onward] data_format = "v2"`.

Real servers and services: a private Mosquitto, the test PostgreSQL, the real ingest service,
the bridge fed over its HTTP push endpoint (the vendor-JSON path). The bridge declares each
mapped gateway's sensors in a birth, sends v2 data on `data2`, and answers ingest's rebirth
requests by publishing the birth again and re-sending what is not confirmed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from fastapi.testclient import TestClient
from firmware_bridge.config import hash_token, parse_config
from firmware_bridge.errors import BridgeError
from firmware_bridge.outbox import BridgeOutbox, V2Schema, data_topic
from firmware_bridge.push import create_app
from firmware_bridge.service import Bridge
from paho.mqtt.enums import CallbackAPIVersion

from oxy.contract import (
    Reading,
    SensorDecl,
    StateMessage,
    TopicKind,
    decode_v2,
    expand_v2,
    schema_id,
    topic,
)
from tests.bridge import spb
from tests.ingest.conftest import count, running_ingest, wait_for
from tests.ingest.test_end_to_end_ack import seed_gateway, settle, stored

SITE, GW = "BV-V2", "gw-bv-v2"
TOKEN = "push-token-bv-v2-0123456789abcdef0123456789ab"
POINTS = [
    {"path": "dp", "sensor": "T1-dp", "unit": "inH2O", "resolution": 0.01},
    {"path": "p", "sensor": "T1-p", "unit": "bar"},
]
SOURCES: list[dict[str, Any]] = [
    {
        "name": "push",
        "protocol": "http",
        "timestamp_path": "ts",
        "devices": [
            {
                "id": "d1",
                "site": SITE,
                "gateway": GW,
                "token_sha256": hash_token(TOKEN),
                "points": POINTS,
            }
        ],
    }
]
BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
DECLS = [
    SensorDecl(code="T1-dp", unit="inH2O", res=0.01),
    SensorDecl(code="T1-p", unit="bar", res=0.0),
]


def _onward(url: str, **extra: Any) -> dict[str, Any]:
    return {"mqtt_url": url, "client_id": "bridge-v2", "data_format": "v2", **extra}


class Wire:
    """Counts what the bridge publishes on the platform broker, per topic kind."""

    def __init__(self, port: int) -> None:
        self.kinds: list[str] = []
        self.states: list[StateMessage] = []
        self._lock = threading.Lock()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="v2-wire")
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.subscribe("oxy/v1/+/+/+", qos=1)
        self.c.loop_start()

    def _on_message(self, c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        kind = msg.topic.rsplit("/", 1)[-1]
        with self._lock:
            self.kinds.append(kind)
            if kind == "state" and msg.payload:
                self.states.append(StateMessage.model_validate_json(msg.payload))

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _push(client: TestClient, n: int) -> tuple[tuple[str, int], tuple[str, int]]:
    ts = BASE + timedelta(seconds=n)
    r = client.post(
        "/v1/push/push/d1",
        json={"ts": ts.isoformat(), "dp": 100.0 + n / 100, "p": 3.5 + n / 1000},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert r.status_code == 202, r.text
    ms = int(ts.timestamp() * 1000)
    return ("T1-dp", ms), ("T1-p", ms)


def _values(db_url: str) -> dict[tuple[str, int], float]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT s.code, round(extract(epoch FROM r.ts) * 1000)::bigint, r.value "
            "FROM readings r JOIN sensors s ON s.id = r.sensor_id"
        ).fetchall()
    return {(c, int(ms)): float(v) for c, ms, v in rows}


def test_config_v2_needs_the_end_to_end_ack_and_one_unit_per_sensor() -> None:
    raw: dict[str, Any] = {"onward": _onward("mqtt://127.0.0.1:1"), "sources": SOURCES}
    cfg = parse_config(raw)
    assert cfg.onward.data_format == "v2"
    assert cfg.declarations() == {(SITE, GW): DECLS}
    assert parse_config({"onward": {"mqtt_url": "mqtt://x:1"}}).onward.data_format == "v1"
    with pytest.raises(BridgeError, match="needs end_to_end_ack"):
        parse_config({**raw, "onward": _onward("mqtt://x:1", end_to_end_ack=False)})
    with pytest.raises(BridgeError, match="data_format"):
        parse_config({**raw, "onward": _onward("mqtt://x:1", data_format="v3")})
    twice = [{**SOURCES[0], "devices": [{**SOURCES[0]["devices"][0], "points": POINTS}]}]
    second = {**SOURCES[0], "name": "push2"}
    second["devices"] = [
        {**SOURCES[0]["devices"][0], "id": "d2", "points": [{**POINTS[1], "unit": "kPa"}]}
    ]
    with pytest.raises(BridgeError, match="two units or resolutions"):
        parse_config({**raw, "sources": [*twice, second]})
    # v1 keeps accepting it (every v1 reading carries its unit).
    parse_config({**raw, "onward": {"mqtt_url": "mqtt://x:1"}, "sources": [*twice, second]})


def test_outbox_stores_v2_messages_that_expand_to_the_readings(tmp_path: Path) -> None:
    """The stored payload is the contract's own v2 encoding (encode_v2): it decodes, with the
    birth's declarations, to the readings given; a reading the birth lacks goes as v1."""
    box = BridgeOutbox(tmp_path / "o.sqlite")
    v2 = V2Schema.of(DECLS)
    assert v2.schema == schema_id(DECLS)
    readings = [
        Reading(sensor="T1-dp", ts=BASE, value=123.46, unit="inH2O"),
        Reading(sensor="T1-p", ts=BASE + timedelta(seconds=1), value=3.25, unit="bar"),
    ]
    [(key, body, n)] = box.store(SITE, GW, BASE, readings, v2)
    assert n == 2 and body[0] == 2 and data_topic(key, body).endswith("/data2")
    _t, data = decode_v2(data_topic(key, body), body)
    record, problems = expand_v2(GW, data, DECLS)
    assert not problems and record is not None
    assert (record["seq"], record["epoch"], record["floor"]) == (1, box.epoch, 1)
    got = [(r["sensor"], r["ts"], r["value"], r["unit"]) for r in record["readings"]]
    assert got == [(r.sensor, r.ts, r.value, r.unit) for r in readings]
    other = [Reading(sensor="T9-dp", ts=BASE, value=1.0, unit="inH2O")]
    [(key, body, _)] = box.store(SITE, GW, BASE, other, v2)
    assert body[:1] == b"{" and data_topic(key, body).endswith("/data")
    box.close()


@pytest.mark.slow
def test_v2_bridge_readings_are_stored_with_nothing_dead_lettered(
    broker: Any, db_url: str, bridge_factory: Callable[..., Bridge], tmp_path: Path
) -> None:
    seed_gateway(db_url, GW, ["T1"], site=SITE)
    wire = Wire(broker.port)
    try:
        with running_ingest(db_url, broker.url, client_id="ingest-bridge-v2"):
            bridge = bridge_factory(
                broker.port, db_url, SOURCES, state_dir=str(tmp_path), onward=_onward(broker.url)
            )
            client = TestClient(create_app(bridge))
            published = {k for n in range(40) for k in _push(client, n)}
            took = settle(db_url, published, timeout=20.0)
            print(f"{len(published)} readings stored {took:.1f} s after the last push")
            wait_for(lambda: bridge.outbox is not None and bridge.outbox.depth == 0, 10)
        values = _values(db_url)
        for n in range(40):
            ms = int((BASE + timedelta(seconds=n)).timestamp() * 1000)
            assert values[("T1-dp", ms)] == pytest.approx(100.0 + n / 100, abs=1e-9)
            assert values[("T1-p", ms)] == pytest.approx(3.5 + n / 1000, abs=1e-12)
        assert count(db_url, "SELECT count(*) FROM dead_letters") == 0
        assert count(db_url, "SELECT count(*) FROM gateway_births") == 1
        assert count(db_url, "SELECT count(*) FROM reading_conflicts") == 0
        assert "data2" in wire.kinds and "data" not in wire.kinds
        birth = wire.states[0]
        assert birth.online and birth.sensors == DECLS and birth.schema_ == schema_id(DECLS)
        assert bridge.health()["data_format"] == "v2" and bridge.rebirths == 0
    finally:
        wire.close()


@pytest.mark.slow
def test_missing_birth_recovers_through_the_rebirth(
    broker: Any, db_url: str, bridge_factory: Callable[..., Bridge], tmp_path: Path
) -> None:
    """The bridge's birth never reached the centre (its retained copy cleared before ingest
    first subscribes): the v2 data is dead-lettered and not confirmed, ingest asks for a
    birth, the bridge publishes it and re-sends, and every reading is stored once."""
    seed_gateway(db_url, GW, ["T1"], site=SITE)
    onward = _onward(broker.url, ack_timeout_s=1.0, ack_timeout_max_s=2.0)
    bridge = bridge_factory(broker.port, db_url, SOURCES, state_dir=str(tmp_path), onward=onward)
    client = TestClient(create_app(bridge))
    published = {k for n in range(20) for k in _push(client, n)}
    wait_for(lambda: bridge.counters["readings"] == 40, timeout=10, what="all PUBACKed")
    clear = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="clear-birth")
    clear.connect("127.0.0.1", broker.port)
    clear.loop_start()
    clear.publish(topic(SITE, GW, TopicKind.STATE), b"", qos=1, retain=True).wait_for_publish(5)
    clear.disconnect()
    clear.loop_stop()
    with running_ingest(db_url, broker.url, client_id="ingest-bridge-rebirth"):
        wait_for(lambda: bridge.rebirths >= 1, timeout=20, what="a rebirth request")
        published |= {k for n in range(20, 30) for k in _push(client, n)}
        wait_for(lambda: published <= stored(db_url)[0], timeout=30,
                 what="every reading stored after the rebirth")  # fmt: skip
        wait_for(lambda: bridge.outbox is not None and bridge.outbox.depth == 0, 15)
    have, n = stored(db_url)
    assert have == published and n == len(have)  # each once
    with psycopg.connect(db_url) as conn:
        reasons = [r for (r,) in conn.execute("SELECT reason FROM dead_letters")]
    assert reasons and all("no birth of schema" in r for r in reasons), reasons
    assert count(db_url, "SELECT count(*) FROM gateway_births") == 1
    assert count(db_url, "SELECT count(*) FROM reading_conflicts") == 0
    assert bridge.sender is not None and bridge.sender.resent_total > 0


@pytest.mark.slow
def test_v2_sparkplug_node_birth_declares_and_its_data_is_stored(
    broker_factory: Callable[..., Any],
    db_url: str,
    bridge_factory: Callable[..., Bridge],
    foreign_factory: Callable[[int], Any],
    tmp_path: Path,
) -> None:
    """A gateway only Sparkplug maps: no birth before its node's; the node's NBIRTH becomes a
    birth with the node's bdSeq declaring the sensors, and its DDATA travels as v2."""
    seed_gateway(db_url, GW, ["T1"], site=SITE)
    foreign, platform = broker_factory(), broker_factory()
    source = {
        "name": "spb",
        "protocol": "sparkplug",
        "mqtt_url": foreign.url,
        "devices": [
            {
                "id": "G/E/T1",
                "site": SITE,
                "gateway": GW,
                "points": [{"metric": "DP", "sensor": "T1-dp", "unit": "inH2O"}],
            }
        ],
    }
    wire = Wire(platform.port)
    try:
        with running_ingest(db_url, platform.url, client_id="ingest-bridge-v2-spb"):
            onward = _onward(platform.url)
            bridge = bridge_factory(
                platform.port, db_url, [source], state_dir=str(tmp_path), onward=onward
            )
            time.sleep(0.5)
            assert wire.states == []  # not declared before its node is seen
            node = foreign_factory(foreign.port)
            t0 = int(BASE.timestamp() * 1000)
            bd = spb.metric("bdSeq", None, spb.INT64, 7)
            node.send("spBv1.0/G/NBIRTH/E", spb.payload(0, [bd]))
            dp = spb.metric("DP", 5, spb.FLOAT, 1.0, timestamp=t0)
            node.send("spBv1.0/G/DBIRTH/E/T1", spb.payload(1, [dp]))
            sent = {("T1-dp", t0)}
            for k in range(1, 11):
                ts = t0 + k * 1000
                metric = spb.metric(None, 5, spb.FLOAT, float(k), timestamp=ts)
                node.send("spBv1.0/G/DDATA/E/T1", spb.payload(1 + k, [metric]), qos=0)
                sent.add(("T1-dp", ts))
            settle(db_url, sent, timeout=20.0)
            wait_for(lambda: bridge.outbox is not None and bridge.outbox.depth == 0, 10)
        birth = wire.states[0]
        assert (birth.online, birth.bd_seq) == (True, 7)
        assert birth.sensors == [SensorDecl(code="T1-dp", unit="inH2O")]
        assert "data2" in wire.kinds and "data" not in wire.kinds
        assert bridge.counters["dead_letters"] == 0
        assert count(db_url, "SELECT count(*) FROM dead_letters") == 0
    finally:
        wire.close()
