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
