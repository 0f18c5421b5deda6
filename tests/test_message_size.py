"""Message size (issue 14): the broker's packet limit, the contract's payload limit and the
gateways' batches agree, so no gateway builds a message the broker would drop; a packet over
the limit is dropped visibly (the broker logs it)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import oxy.contract
from oxy.broker import MAX_PACKET_BYTES, BrokerConfig, render
from oxy.contract import (
    MAX_PAYLOAD_BYTES,
    MAX_READINGS_PER_MESSAGE,
    DataMessage,
    Quality,
    Reading,
    TopicKind,
    decode,
    encode_data,
    topic,
)
from tests.fix_mqtt import Broker

CODE64 = "S" * 64
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def worst_readings(n: int) -> list[Reading]:
    """Readings as long as the contract allows: 64-character codes, the longest float text,
    the longest unit and quality."""
    return [
        Reading(
            sensor=CODE64[:-5] + f"{i:05d}",
            ts=T0 + timedelta(milliseconds=i * 1001),
            value=-2.2250738585072014e-300,
            unit="mbar_dp",
            q=Quality.OUT_OF_RANGE,
        )
        for i in range(n)
    ]


def test_the_product_packet_limit_leaves_room_for_the_largest_payload() -> None:
    longest_topic = topic(CODE64, CODE64, TopicKind.STATUS)
    # Fixed header (5), topic length (2), packet id (2), MQTT v5 properties: far below 4 KiB.
    assert MAX_PAYLOAD_BYTES + len(longest_topic) + 4096 <= MAX_PACKET_BYTES
    assert f"max_packet_size {MAX_PACKET_BYTES}\n" in render(BrokerConfig())


def test_encode_data_splits_by_encoded_size(monkeypatch: pytest.MonkeyPatch) -> None:
    readings = worst_readings(MAX_READINGS_PER_MESSAGE)
    payload, n = encode_data("gw1", 1, T0, readings)
    # The count limit alone keeps the worst case inside the payload limit today ...
    assert n == MAX_READINGS_PER_MESSAGE and len(payload) <= MAX_PAYLOAD_BYTES
    # ... and with a smaller limit (or longer readings) the batch is cut by size, in order.
    monkeypatch.setattr(oxy.contract, "MAX_PAYLOAD_BYTES", 20_000)
    sent: list[Reading] = []
    while len(sent) < len(readings):
        payload, n = encode_data("gw1", 1, T0, readings[len(sent) :])
        assert len(payload) <= 20_000 and n >= 1
        _, msg = decode("oxy/v1/S1/gw1/data", payload)
        assert isinstance(msg, DataMessage)
        sent += msg.readings
    assert sent == readings


def _subscriber(port: int, got: list[bytes], ready: threading.Event) -> mqtt.Client:
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:6]}")
    sub.on_connect = lambda c, u, f, r, p: c.subscribe("oxy/v1/#", qos=1)
    sub.on_subscribe = lambda *a: ready.set()
    sub.on_message = lambda c, u, m: got.append(bytes(m.payload))
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    return sub


def test_the_broker_passes_the_largest_message_and_logs_a_dropped_one(
    broker_factory: Callable[..., Broker],
) -> None:
    broker = broker_factory()
    got: list[bytes] = []
    ready = threading.Event()
    sub = _subscriber(broker.port, got, ready)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-oversize", protocol=mqtt.MQTTv5)
    reasons: list[Any] = []
    pub.on_disconnect = lambda c, u, f, reason, p: reasons.append(reason)
    try:
        assert ready.wait(10)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        time.sleep(0.3)
        # The largest data message a gateway can build, on the longest topic: delivered.
        largest, _ = encode_data(CODE64, 7, T0, worst_readings(MAX_READINGS_PER_MESSAGE))
        name = topic(CODE64, CODE64, TopicKind.DATA)
        pub.publish(name, largest, qos=1).wait_for_publish(10)
        deadline = time.monotonic() + 10
        while largest not in got and time.monotonic() < deadline:
            time.sleep(0.05)
        assert largest in got
        # A packet over the limit: the broker drops it, closes the connection and says so.
        pub.publish(name, b"x" * (MAX_PACKET_BYTES + 1), qos=1)
        deadline = time.monotonic() + 10
        while not reasons and time.monotonic() < deadline:
            time.sleep(0.05)
        # The broker closes the connection; the client reads "Packet too large" when the
        # broker's DISCONNECT arrives before the reset of the socket it was still writing to,
        # else an unspecified error. The broker's log says it in both cases.
        assert reasons and any(
            w in str(reasons[0]).lower() for w in ("too large", "unspecified error")
        )
        log = (broker.workdir / "mosquitto.log").read_text()
        assert "gw-oversize disconnected due to oversize packet" in log
    finally:
        pub.loop_stop()
        pub.disconnect()
        sub.loop_stop()
        sub.disconnect()


def test_an_oversize_drop_is_counted_in_ingest_metrics_under_the_product_acl(
    broker_factory: Callable[..., Broker], db_url: str
) -> None:
    """Mosquitto has no counter of oversize drops; the product's broker copies its notice log to
    `$SYS/broker/log/N` (log_dest topic), which the ingest account may read, and ingest counts
    each "disconnected due to oversize packet" in oxy_broker_oversize_drops_total (scraped by
    the stack's Prometheus with the rest of /metrics)."""
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from prometheus_client import generate_latest

    from api.devices import Account, render_acl_file
    from tests.ingest.conftest import running_ingest, wait_for

    tmp = Path(tempfile.mkdtemp(prefix="oxy-acl-"))
    site, gw = "BV-OVERSIZE", "gw-oversize-acl"
    pw = tmp / "passwd"
    pw.write_text("")
    for user, secret in (("oxy-ingest", "s1"), (gw, "s2")):
        subprocess.run(["mosquitto_passwd", "-b", str(pw), user, secret], check=True)
    now = datetime.now(UTC)
    accounts = [
        Account("oxy-ingest", "ingest", "", None, None, now, None, None),
        Account(gw, "gateway", "", site, gw, now, None, None),
    ]
    acl = tmp / "acl"
    acl.write_text(render_acl_file(accounts))
    for f in (pw, acl):
        f.chmod(0o644)
    tmp.chmod(0o755)
    broker = broker_factory(password_file=pw, acl_file=acl)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=gw, protocol=mqtt.MQTTv5)
    pub.username_pw_set(gw, "s2")
    try:
        with running_ingest(db_url, f"mqtt://oxy-ingest:s1@127.0.0.1:{broker.port}") as svc:
            wait_for(svc.source.broker_log.is_set, 10, "the broker log subscription")
            assert svc.metrics.oversize_drops._value.get() == 0
            pub.connect("127.0.0.1", broker.port)
            pub.loop_start()
            wait_for(pub.is_connected, 10, "gateway connected")
            pub.publish(topic(site, gw, TopicKind.DATA), b"x" * (MAX_PACKET_BYTES + 1), qos=1)
            wait_for(lambda: svc.metrics.oversize_drops._value.get() == 1, 10, "one drop")
            text = generate_latest(svc.metrics.registry).decode()
            assert "oxy_broker_oversize_drops_total 1.0" in text
            # An ordinary disconnect is not counted.
            pub.loop_stop()
            pub.reconnect()
            pub.disconnect()
            time.sleep(1.0)
            assert svc.metrics.oversize_drops._value.get() == 1
        log = (broker.workdir / "mosquitto.log").read_text()
        assert f"{gw} disconnected due to oversize packet" in log
    finally:
        pub.loop_stop()
        pub.disconnect()
        shutil.rmtree(tmp, ignore_errors=True)
