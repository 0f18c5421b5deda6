"""Bridge test helpers: a running bridge against a real Mosquitto, a collector of what it
publishes onward, and a plain foreign publisher."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
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


# -- A third-party Sparkplug B edge node (pysparkplug) in its own process -------------------

REPO = Path(__file__).resolve().parents[2]
SPB_EDGE_LOCK = REPO / "requirements" / "spb-edge.lock"
SPB_EDGE_DIR = REPO / ".venv" / "thirdparty" / "spb-edge"


def _spb_edge_path() -> Path:
    """pysparkplug and its paho-mqtt 1.x, installed apart from the platform's venv (whose
    paho-mqtt is 2.x) from their hashed lock; reinstalled when the lock changes."""
    SPB_EDGE_DIR.parent.mkdir(parents=True, exist_ok=True)
    # pytest-xdist workers may ask at once: one installs, the others wait for its stamp.
    with open(SPB_EDGE_DIR.parent / ".spb-edge.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        return _install_spb_edge()


def _install_spb_edge() -> Path:
    stamp = SPB_EDGE_DIR / ".lock-sha256"
    digest = hashlib.sha256(SPB_EDGE_LOCK.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return SPB_EDGE_DIR
    shutil.rmtree(SPB_EDGE_DIR, ignore_errors=True)
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--require-hashes",
         "--target", str(SPB_EDGE_DIR), "-r", str(SPB_EDGE_LOCK)],
        check=False, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if r.returncode != 0:
        msg = f"cannot install the third-party Sparkplug edge node: {r.stderr[-500:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    stamp.write_text(digest)
    return SPB_EDGE_DIR


class EdgeNode:
    """tests/bridge/edge_node.py (pysparkplug) in a subprocess, driven by JSON lines."""

    def __init__(self, lib: Path, port: int, bd_seq: int) -> None:
        env = {**os.environ, "PYTHONPATH": str(lib)}
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("edge_node.py")), str(port), str(bd_seq)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env,
        )  # fmt: skip
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"ev": "garbled", "line": line}
            with self._lock:
                self.events.append(event)

    def send(self, op: str, **args: Any) -> None:
        """Send a command and wait until the node has done it."""
        assert self.proc.stdin is not None
        before = len(self.of("ok"))
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        if op != "quit":
            self.wait("ok", before + 1)

    def of(self, ev: str) -> list[dict[str, Any]]:
        """Events of one kind so far."""
        with self._lock:
            return [e for e in self.events if e["ev"] == ev]

    def wait(self, ev: str, count: int = 1, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Wait for `count` events of a kind."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.of(ev)
            if len(found) >= count:
                return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        stderr = (
            self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
        )
        raise AssertionError(f"edge node: expected {count} {ev!r}, events {self.events} {stderr}")

    def close(self) -> None:
        """Stop the process (if still running)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def edge_factory() -> Iterator[Callable[[int, int], EdgeNode]]:
    """Start third-party edge nodes: edge_factory(broker_port, bd_seq)."""
    lib = _spb_edge_path()
    made: list[EdgeNode] = []

    def make(port: int, bd_seq: int = 0) -> EdgeNode:
        node = EdgeNode(lib, port, bd_seq)
        made.append(node)
        return node

    yield make
    for node in made:
        node.close()
