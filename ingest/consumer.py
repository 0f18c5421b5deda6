"""The MQTT side: a persistent session whose messages are acknowledged only after commit.

MQTT v5 (Mosquitto, EMQX): fixed client id, clean_start=False, a session expiry, and a shared
subscription so several ingest workers split the load. MQTT 3.1.1 (the demo's in-process broker):
clean_session=False and a plain subscription, one worker.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.batch import Inbound
from oxy import OxyError
from oxy.broker import BROKER_LOG_TOPIC
from oxy.contract import subscription
from oxy.mqtt import Broker, MqttUrlError, Session, Version, connect, make_client

logger = logging.getLogger(__name__)

Protocol = Version


class IngestError(OxyError):
    """Root of the ingest service's own errors."""


def detect_protocol(target: Broker, stop: threading.Event, timeout: float = 5.0) -> Protocol:
    """Ask the broker whether it speaks MQTT v5 (a throwaway clean session; waits until the
    broker answers). The demo's in-process broker answers "unsupported protocol version"."""
    answered: list[ReasonCode] = []
    waited = False
    while not stop.is_set():
        session = Session(f"oxy-ingest-probe-{threading.get_ident()}", "5", keepalive_s=10)
        probe = make_client(target, session)
        probe.on_connect = lambda c, u, f, reason, p: answered.append(reason)
        try:
            connect(probe, target, session, background=False)
        except OSError as exc:
            if not waited:
                logger.warning(
                    "waiting for the broker at %s:%d (%s)", target.host, target.port, exc
                )
                waited = True
            stop.wait(1.0)
            continue
        deadline = time.monotonic() + timeout
        while not answered and time.monotonic() < deadline:
            probe.loop(timeout=0.1)
        with contextlib.suppress(Exception):
            probe.disconnect()
        if answered and answered[0].is_failure and "protocol version" in str(answered[0]).lower():
            logger.info("the broker speaks MQTT 3.1.1 only: one worker, no shared subscription")
            return "3.1.1"
        return "5"
    return "5"


class MqttSource:
    """Receives messages into `inbox`; `ack()` them once committed (never before).

    `protocol="auto"` asks the broker first: MQTT v5 when it can, else 3.1.1."""

    def __init__(
        self,
        url: str,
        client_id: str,
        group: str | None,
        *,
        protocol: Protocol | Literal["auto"] = "auto",
        max_unacked: int = 1000,
        session_expiry_s: int = 7 * 24 * 3600,
        keepalive: int = 30,
        on_state: Callable[[bool], None] | None = None,
        drain: bool = False,
        on_broker_log: Callable[[str], None] | None = None,
    ) -> None:
        try:
            self.target = Broker.parse(url)
        except MqttUrlError as exc:
            raise IngestError(str(exc)) from None
        self.inbox: queue.SimpleQueue[Inbound] = queue.SimpleQueue()
        self.client_id = client_id
        self.group = group
        self.requested = protocol
        self.max_unacked = max_unacked
        self.session_expiry_s = session_expiry_s
        self.keepalive = keepalive
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.generation = 0  # bumped on every (re)connect: see ack()
        # drain=True: take over a retired worker's session, leave the group (unsubscribe) and
        # receive only what the broker had queued for it; end_session() then deletes it.
        self.drain = drain
        self.left_group = threading.Event()
        # The broker's notice log (BROKER_LOG_TOPIC, QoS 0, not shared: every worker reads it).
        self._on_broker_log = on_broker_log
        self.broker_log = threading.Event()  # its subscription was granted
        self._broker_log_mid: int | None = None
        self._on_state = on_state or (lambda up: None)
        self._lock = threading.Lock()
        self.client: mqtt.Client | None = None
        self.protocol: Protocol = "5" if protocol == "auto" else protocol
        self.topic_filter = self._filter()

    def _filter(self) -> str:
        # A shared subscription needs MQTT v5; a 3.1.1 broker gets one plain subscriber.
        shared = self.group if self.protocol == "5" and self.group else None
        return subscription(shared_group=shared)

    @property
    def session(self) -> Session:
        """A persistent session acknowledged by hand (after commit), in the version spoken."""
        return Session(
            self.client_id,
            self.protocol,
            persistent=True,
            session_expiry_s=self.session_expiry_s,
            keepalive_s=self.keepalive,
            manual_ack=True,
            receive_maximum=self.max_unacked,
        )

    def _build(self) -> mqtt.Client:
        client = make_client(self.target, self.session, reconnect_delay=(1, 5))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        # Its own callback: the broker's log never enters the inbox (it is no contract message).
        client.message_callback_add(BROKER_LOG_TOPIC, self._on_log_message)
        return client

    def start(self, stop: threading.Event | None = None) -> None:
        """Connect in the background; paho's loop thread reconnects by itself."""
        if self.requested == "auto":
            self.protocol = detect_protocol(self.target, stop or threading.Event())
            self.topic_filter = self._filter()
        if self.drain and self.protocol != "5":
            raise IngestError(
                "draining a retired session needs an MQTT v5 broker (a 3.1.1 broker has one "
                "worker and no shared group to leave)"
            )
        self.client = client = self._build()
        connect(client, self.target, self.session)
        client.loop_start()

    def stop(self) -> None:
        """Disconnect (the session and its unacked messages stay on the broker)."""
        self.connected.clear()
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
        self.connected.clear()

    def end_session(self) -> None:
        """Disconnect and let the broker delete this session (MQTT v5 Session Expiry 0 on
        DISCONNECT): for a drained worker, whose queue is empty and which has left the group."""
        client = self.client
        self.connected.clear()
        if client is not None:
            props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0
            client.disconnect(properties=props)
            client.loop_stop()

    def ack(self, items: list[Inbound]) -> int:
        """Acknowledge committed messages; returns how many PUBACKs were sent.

        Messages received on an earlier connection are not acked: the broker redelivers them on
        the new connection (with packet ids that may since have been reused for other messages,
        so an old id must never be acked), and the idempotent write absorbs the repeat.
        """
        sent = 0
        with self._lock:
            gen = self.generation
            for it in items:
                if it.qos > 0 and it.generation == gen and self.client is not None:
                    self.client.ack(it.mid, it.qos)
                    sent += 1
        return sent

    def clear_retained(self, topic_name: str) -> None:
        """Ask the broker to forget a retained message on `topic_name` (an empty retained
        publish). The product ACL gives ingest read access only, so there the broker refuses
        it and an operator clears it (docs/ingest.md); the dead letter is written once anyway."""
        if self.client is not None:
            self.client.publish(topic_name, b"", qos=1, retain=True)

    def publish_retained(self, items: list[tuple[str, bytes]]) -> int:
        """Publish QoS 1 retained messages (the end-to-end acks); returns how many were queued.

        Best effort: an ack lost on the way is repeated by the next batch of that gateway, and
        the gateway re-sends what stays unconfirmed (docs/ingest.md)."""
        client = self.client
        if client is None or not items:
            return 0
        queued = 0
        for topic_name, payload in items:
            info = client.publish(topic_name, payload, qos=1, retain=True)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                queued += 1
        return queued

    def publish_requests(self, items: list[tuple[str, bytes]]) -> int:
        """Publish QoS 1 messages that are not retained (rebirth requests); returns how many
        were queued."""
        client = self.client
        if client is None:
            return 0
        queued = 0
        for topic_name, payload in items:
            if client.publish(topic_name, payload, qos=1).rc == mqtt.MQTT_ERR_SUCCESS:
                queued += 1
        return queued

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            logger.warning("broker refused the connection: %s", reason)
            return
        with self._lock:
            self.generation += 1
        logger.info(
            "connected to mqtt://%s:%d (session present: %s), %s %s",
            self.target.host,
            self.target.port,
            flags.session_present,
            "draining, leaving" if self.drain else "subscribing",
            self.topic_filter,
        )
        if self.drain and not flags.session_present:
            logger.warning(
                "the broker has no session %s: nothing queued to drain (expired, already "
                "drained, or another client id)",
                self.client_id,
            )
        if self.drain:
            # Queued messages arrive whether subscribed or not; leaving the group stops the
            # broker from handing this session any new share.
            client.unsubscribe(self.topic_filter)
        elif self.protocol == "5":
            # Retain as published: a data message the gateway published retained arrives with
            # its retain flag even live, so ingest refuses it the first time (contract: data is
            # never retained), not only when the broker's stored copy comes back.
            options = SubscribeOptions(qos=1, retainAsPublished=True)
            client.subscribe(self.topic_filter, options=options)
        else:
            client.subscribe(self.topic_filter, qos=1)
        if self._on_broker_log is not None:
            _, self._broker_log_mid = client.subscribe(BROKER_LOG_TOPIC, qos=0)
        self.connected.set()
        self._on_state(True)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self.connected.is_set():
            logger.warning("disconnected from the broker (%s); reconnecting", reason)
        self.connected.clear()
        self.subscribed.clear()
        self._on_state(False)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if mid == self._broker_log_mid:
            if any(r.is_failure for r in reasons):
                logger.warning(
                    "broker refused %s (%s): oversize drops are not counted; the ingest "
                    "account needs `topic read %s` in the ACL",
                    BROKER_LOG_TOPIC,
                    reasons,
                    BROKER_LOG_TOPIC,
                )
            else:
                self.broker_log.set()
            return
        if any(r.is_failure for r in reasons):
            logger.error("broker refused the subscription %s: %s", self.topic_filter, reasons)
            return
        self.subscribed.set()

    def _on_unsubscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        # "No subscription existed" is fine: the session had already left the group.
        logger.info("left the shared group (%s): %s", self.topic_filter, reasons)
        self.left_group.set()

    def _on_log_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._on_broker_log is not None:
            self._on_broker_log(bytes(msg.payload).decode("utf-8", "replace"))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.inbox.put(
            Inbound(
                topic=msg.topic,
                payload=bytes(msg.payload),
                mid=msg.mid,
                qos=msg.qos,
                received_at=datetime.now(UTC),
                generation=self.generation,
                retain=bool(msg.retain),
                dup=bool(msg.dup),
            )
        )
