"""Onward publishing to the platform broker: QoS 1, a callback on PUBACK, per-gateway seq.

paho keeps QoS 1 messages that are not yet acknowledged (also across reconnects) and resends
them, so "PUBACK received" is the moment a message is safely handed on; only then does the
bridge acknowledge the foreign message it came from.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from firmware_bridge.connection import Endpoint, connect_async, make_client
from oxy.contract import REBIRTH_SUFFIX

logger = logging.getLogger(__name__)

Done = Callable[[bool, str], None]  # (accepted, broker's reason)


class SeqStore:
    """The next `seq` of every gateway the bridge publishes for; on disk when a dir is given."""

    def __init__(self, state_dir: Path | None) -> None:
        self._lock = threading.Lock()
        self._seq: dict[tuple[str, str], int] = {}
        self._db: sqlite3.Connection | None = None
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                state_dir / "bridge-seq.sqlite", check_same_thread=False, isolation_level=None
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS seq (site TEXT, gateway TEXT, next INTEGER,"
                " PRIMARY KEY (site, gateway))"
            )
            for site, gw, nxt in self._db.execute("SELECT site, gateway, next FROM seq"):
                self._seq[(site, gw)] = int(nxt)

    def take(self, site: str, gateway: str) -> int:
        """Reserve the next seq of a gateway."""
        with self._lock:
            seq = self._seq.get((site, gateway), 0)
            self._seq[(site, gateway)] = seq + 1
            if self._db is not None:
                self._db.execute(
                    "INSERT INTO seq VALUES (?, ?, ?) ON CONFLICT (site, gateway)"
                    " DO UPDATE SET next = excluded.next",
                    (site, gateway, seq + 1),
                )
            return seq

    def close(self) -> None:
        """Close the state file."""
        if self._db is not None:
            self._db.close()


class Publisher:
    """One connection to the platform broker; `publish(..., done)` calls `done` on PUBACK."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._client = make_client(endpoint)
        self._lock = threading.Lock()
        self._pending: dict[int, Done] = {}
        self._early: dict[int, tuple[bool, str]] = {}
        self._connected = threading.Event()
        self._stopping = False
        self.published_total = 0
        # End-to-end acknowledgement: the ack topics to read, where their messages go, and
        # who hears about a (re)connection (firmware_bridge.outbox.AckSender).
        self.ack_topics: list[str] = []
        self.on_ack: Callable[[str, bytes], None] | None = None
        # Contract v2: ingest's rebirth requests (topics to read and who answers them).
        self.rebirth_topics: list[str] = []
        self.on_rebirth: Callable[[str, bytes], None] | None = None
        self.on_connected: Callable[[], None] | None = None
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish

    @property
    def pending(self) -> int:
        """Messages handed to paho and not yet acknowledged by the broker."""
        with self._lock:
            return len(self._pending)

    @property
    def connected(self) -> bool:
        """Whether the connection to the platform broker is up."""
        return self._connected.is_set()

    def start(self) -> None:
        """Connect in the background (reconnects by itself)."""
        connect_async(self._client, self.endpoint)
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected (tests and start-up)."""
        return self._connected.wait(timeout)

    def stop(self) -> None:
        """Disconnect; unacknowledged messages stay unacknowledged upstream too."""
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: bytes, retain: bool, done: Done) -> None:
        """Publish at QoS 1; `done(accepted, reason)` runs on the network thread at PUBACK."""
        # Not holding our lock across paho's publish: paho calls on_publish with its own
        # message lock held, so the PUBACK may be seen before we know the mid (kept in _early).
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            done(False, f"local publish failed: {mqtt.error_string(info.rc)}")
            return
        with self._lock:
            early = self._early.pop(info.mid, None)
            if early is None:
                self._pending[info.mid] = done
        if early is not None:
            done(*early)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            logger.error("platform broker refused the connection: %s", reason)
            return
        logger.info("connected to the platform broker %s", self.endpoint.url)
        if self.ack_topics or self.rebirth_topics:
            client.subscribe([(t, 1) for t in self.ack_topics + self.rebirth_topics])
        self._connected.set()
        if self.on_connected is not None:
            self.on_connected()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        handler = self.on_rebirth if msg.topic.endswith("/" + REBIRTH_SUFFIX) else self.on_ack
        if handler is not None:
            try:
                handler(msg.topic, bytes(msg.payload))
            except Exception:  # one odd ack must not stop the network thread
                logger.exception("cannot handle the message on %s", msg.topic)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if self._connected.is_set() and not self._stopping:
            logger.warning("disconnected from the platform broker: %s", reason)
        self._connected.clear()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any
    ) -> None:
        result = (not bool(getattr(reason, "is_failure", False)), str(reason))
        with self._lock:
            self.published_total += 1
            done = self._pending.pop(mid, None)
            if done is None:
                self._early[mid] = result
        if done is not None:
            done(*result)
