"""Bridge test helpers: a running bridge against a real Mosquitto, a collector of what it
publishes onward, and a plain foreign publisher."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from firmware_bridge.config import parse_config
from firmware_bridge.rejects import PostgresRejects
from firmware_bridge.service import Bridge
from paho.mqtt.enums import CallbackAPIVersion

from oxy.contract import decode


class Collector:
    """Subscribes to a filter and keeps every message received (topic, payload, retain)."""

    def __init__(self, port: int, filt: str = "#") -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"collector-{uuid.uuid4().hex[:8]}"
        )

        def on_connect(c: mqtt.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
            c.subscribe(filt, qos=1)

        def on_subscribe(c: mqtt.Client, u: Any, mid: int, codes: Any, p: Any) -> None:
            ready.set()

        def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
            with self._lock:
                self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert ready.wait(5), "collector could not subscribe"

    def matching(self, pred: Callable[[str, bytes], bool]) -> list[tuple[str, bytes]]:
        """Messages so far for which pred(topic, payload) holds."""
        with self._lock:
            return [(t, p) for t, p, _ in self.messages if pred(t, p)]

    def wait(
        self, pred: Callable[[str, bytes], bool], count: int = 1, timeout: float = 10.0
    ) -> list[tuple[str, bytes]]:
        """Wait until at least `count` messages match; return them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.matching(pred)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(
            f"expected {count} matching messages, got {len(self.matching(pred))}; "
            f"all topics: {[t for t, _, _ in self.messages]}"
        )

    def contract(self, kind: str, gateway: str | None = None) -> list[Any]:
        """Decoded platform messages of a kind (validated by oxy.contract.decode)."""
        out = []
        for t, p in self.matching(lambda t, p: t.startswith("oxy/v1/") and t.endswith(kind)):
            _, msg = decode(t, p)
            if gateway is None or msg.gw == gateway:
                out.append(msg)
        return out

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


class Foreign:
    """A device-side publisher on the foreign broker."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"device-{uuid.uuid4().hex[:8]}"
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes | str | dict[str, Any], qos: int = 1) -> None:
        """Publish and wait for the broker's PUBACK."""
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        info = self.client.publish(topic, payload, qos=qos)
        info.wait_for_publish(5)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def collector_factory() -> Iterator[Callable[..., Collector]]:
    """Make collectors; closed at the end of the test."""
    made: list[Collector] = []

    def make(port: int, filt: str = "#") -> Collector:
        c = Collector(port, filt)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def foreign_factory() -> Iterator[Callable[[int], Foreign]]:
    """Make foreign publishers."""
    made: list[Foreign] = []

    def make(port: int) -> Foreign:
        f = Foreign(port)
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


@pytest.fixture
def bridge_factory() -> Iterator[Callable[..., Bridge]]:
    """Start bridges from a config mapping, rejects in the test database; stopped afterwards."""
    made: list[Bridge] = []

    def make(port: int, db_url: str, sources: list[dict[str, Any]], **extra: Any) -> Bridge:
        raw: dict[str, Any] = {
            "onward": {"mqtt_url": f"mqtt://127.0.0.1:{port}", "client_id": "bridge-test"},
            "sources": sources,
            **extra,
        }
        bridge = Bridge(parse_config(raw), PostgresRejects(db_url))
        bridge.start()
        made.append(bridge)
        assert bridge.wait_ready(10), "bridge did not connect and subscribe"
        return bridge

    yield make
    for b in made:
        b.stop()


def rows(db_url: str, query: str, *params: object) -> list[tuple[Any, ...]]:
    """Run a query on the test database."""
    with psycopg.connect(db_url) as conn:
        return list(conn.execute(query, params).fetchall())


def wait_rows(
    db_url: str, query: str, count: int, *params: object, timeout: float = 10.0
) -> list[tuple[Any, ...]]:
    """Wait until a query returns at least `count` rows."""
    deadline = time.monotonic() + timeout
    found: list[tuple[Any, ...]] = []
    while time.monotonic() < deadline:
        found = rows(db_url, query, *params)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"expected {count} rows, got {len(found)}: {found}")
