"""The MQTT connection of one gateway: paho-mqtt 2.x on its own network thread.

The thread owns connecting and reconnecting (jittered backoff with a low cap, so publishing resumes
within seconds of the broker's return); each connection sets a Last Will carrying the birth/death
sequence `bd_seq` and publishes the retained birth with the same `bd_seq`. Connection changes and
PUBACKs are handed to the gateway's event loop with `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.backoff import Backoff
from gateway.config import MqttConfig
from oxy import __version__
from oxy.contract import SensorDecl, StateMessage, TopicKind, encode, schema_id, topic
from oxy.mqtt import Session, Version, Will, connect, make_client, set_will

logger = logging.getLogger(__name__)

CONNACK_TIMEOUT_S = 5.0


class MqttLink:
    """Connect, keep connected, publish; report connection changes and acks to the loop."""

    def __init__(
        self,
        *,
        cfg: MqttConfig,
        site: str,
        gateway: str,
        config_hash: str,
        bd_seq: int,
        loop: asyncio.AbstractEventLoop,
        on_connected: Callable[[int], None],
        on_disconnected: Callable[[str], None],
        on_ack: Callable[[int, bool, str], None],
        on_reset: Callable[[], None],
        ack_topic: str | None = None,
        on_watermark: Callable[[bytes], None] | None = None,
        declarations: list[SensorDecl] | None = None,
        rebirth_topic: str | None = None,
        on_rebirth: Callable[[bytes], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.gateway = gateway
        self.config_hash = config_hash
        self.next_bd_seq = bd_seq
        self.state_topic = topic(site, gateway, TopicKind.STATE)
        self._loop = loop
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._on_ack = on_ack
        self._on_reset = on_reset
        self.ack_topic = ack_topic
        self._on_watermark = on_watermark
        # Contract v2: the birth declares the sensors (index = position) under their schema.
        self.declarations = declarations
        self.schema = schema_id(declarations) if declarations is not None else None
        self.rebirth_topic = rebirth_topic
        self._on_rebirth = on_rebirth
        self._downgrade = False
        self._connack = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = Backoff(base=0.25, cap=cfg.reconnect_max_s)
        self.connected = False
        self.last_error = ""
        self._refused: str | None = None
        self.protocol = mqtt.MQTTv311 if cfg.protocol == "3.1.1" else mqtt.MQTTv5
        self.client = self._make_client()

    @property
    def session(self) -> Session:
        """A clean session with the configured client id, in the MQTT version now spoken."""
        version: Version = "3.1.1" if self.protocol == mqtt.MQTTv311 else "5"
        return Session(self.cfg.client_id, version, keepalive_s=self.cfg.keepalive_s)

    def _make_client(self) -> mqtt.Client:
        cfg = self.cfg
        c = make_client(cfg.broker, self.session, tls=cfg.tls_files)
        c.max_inflight_messages_set(max(cfg.inflight, 1) + 4)  # data window + birth/status
        c.max_queued_messages_set(0)
        c.connect_timeout = 3.0
        c.on_connect = self._handle_connect
        c.on_disconnect = self._handle_disconnect
        c.on_publish = self._handle_publish
        c.on_message = self._handle_message
        return c

    def start(self) -> None:
        """Start the network thread."""
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{self.gateway}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish the offline state (a clean disconnect sends no Will), disconnect, join."""
        self._stop.set()
        if self.connected:
            bd = self.next_bd_seq - 1
            info = self.client.publish(self.state_topic, self._state(False, bd), qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=2.0)
        self.client.disconnect()
        if self._thread is not None:
            self._thread.join(timeout)

    def publish(self, topic_name: str, payload: bytes, retain: bool = False) -> int:
        """Queue a QoS 1 publish; returns its message id (paho resends it after a reconnect)."""
        info = self.client.publish(topic_name, payload, qos=1, retain=retain)
        return int(info.mid)

    def publish_birth(self) -> None:
        """Publish the retained birth again (the centre asked: a rebirth request)."""
        if self.connected:
            birth = self._state(True, self.next_bd_seq - 1)
            self.client.publish(self.state_topic, birth, qos=1, retain=True)

    def _state(self, online: bool, bd_seq: int) -> bytes:
        declare = online and self.declarations is not None
        return encode(
            StateMessage(
                gw=self.gateway,
                online=online,
                bd_seq=bd_seq,
                version=__version__ if online else None,
                config_hash=self.config_hash if online else None,
                ts=datetime.now(UTC),
                schema_=self.schema if declare else None,
                sensors=self.declarations if declare else None,
            )
        )

    def _run(self) -> None:
        c = self.client
        first = True
        while not self._stop.is_set():
            if self._downgrade:
                # An MQTT 3.1.1-only broker (e.g. the demo's in-process amqtt): start over with
                # a 3.1.1 client. Its unacknowledged messages go with the old client, so the
                # gateway replays from its outbox.
                self._downgrade = False
                self.protocol = mqtt.MQTTv311
                c = self.client = self._make_client()
                first = True
                logger.info("broker does not speak MQTT 5; using MQTT 3.1.1")
                self._loop.call_soon_threadsafe(self._on_reset)
            bd = self.next_bd_seq
            self._refused = None
            set_will(c, Will(self.state_topic, self._state(False, bd)))
            try:
                if first:
                    rc = connect(c, self.cfg.broker, self.session, background=False)
                    first = False
                else:
                    rc = c.reconnect()
            except (OSError, ssl.SSLError, ValueError) as exc:
                rc = MQTTErrorCode.MQTT_ERR_NO_CONN
                self._disconnected(f"connect failed: {exc}")
            started, self._connack = time.monotonic(), False
            while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and not self._stop.is_set():
                rc = c.loop(timeout=0.5)
                if not self._connack and time.monotonic() - started > CONNACK_TIMEOUT_S:
                    # Some 3.1.1-only brokers (amqtt) never answer an MQTT 5 CONNECT with a Will.
                    self._refused = "no CONNACK from the broker"
                    self._downgrade = self._may_downgrade()
                    break
            if self._stop.is_set():
                # Drain the clean disconnect requested by stop().
                for _ in range(10):
                    if c.loop(timeout=0.1) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                        break
                break
            self._disconnected(self._refused or f"connection lost ({mqtt.error_string(rc)})")
            self._stop.wait(self._backoff.next_delay())

    def _may_downgrade(self) -> bool:
        return self.cfg.protocol == "auto" and self.protocol == mqtt.MQTTv5

    # ---- paho callbacks (network thread)

    def _handle_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connack = True
        if reason.is_failure:
            if reason.value in (0x01, 0x84):  # unacceptable / unsupported protocol version
                self._downgrade = self._may_downgrade()
            self._refused = f"broker refused the connection: {reason}"
            self._disconnected(self._refused)
            return
        bd = self.next_bd_seq
        self.next_bd_seq = bd + 1
        self._backoff.reset()
        client.publish(self.state_topic, self._state(True, bd), qos=1, retain=True)
        if self.ack_topic:
            # The centre's watermark (retained: the last one arrives at once).
            client.subscribe(self.ack_topic, qos=1)
        if self.rebirth_topic:
            client.subscribe(self.rebirth_topic, qos=1)
        self.connected = True
        self._loop.call_soon_threadsafe(self._on_connected, bd)

    def _handle_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._disconnected(f"disconnected: {reason}")

    def _handle_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._loop.call_soon_threadsafe(self._on_ack, mid, not reason.is_failure, str(reason))

    def _handle_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if self._on_watermark is not None and msg.topic == self.ack_topic:
            self._loop.call_soon_threadsafe(self._on_watermark, bytes(msg.payload))
        elif self._on_rebirth is not None and msg.topic == self.rebirth_topic:
            self._loop.call_soon_threadsafe(self._on_rebirth, bytes(msg.payload))

    def _disconnected(self, why: str) -> None:
        # Report the loss of a connection and each new reason, not every failed attempt.
        if self.connected or why != self.last_error:
            self.connected = False
            self.last_error = why
            self._loop.call_soon_threadsafe(self._on_disconnected, why)
