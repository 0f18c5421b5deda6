"""paho-mqtt 2.x clients with persistent sessions, built from `mqtt://` URLs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from firmware_bridge.errors import BridgeError

SESSION_EXPIRY_S: Final = 7 * 24 * 3600  # as long as the product broker keeps sessions
KEEPALIVE_S: Final = 30


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to connect."""

    url: str
    client_id: str
    version: str = "5"
    username: str | None = None
    password: str | None = None


def make_client(ep: Endpoint, manual_ack: bool = False) -> mqtt.Client:
    """A client with a persistent session (unacknowledged messages survive a reconnect)."""
    if ep.version == "5":
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=ep.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=manual_ack,
        )
    else:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=ep.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=manual_ack,
        )
    if ep.username:
        client.username_pw_set(ep.username, ep.password)
    if urlparse(ep.url).scheme == "mqtts":
        client.tls_set()
    client.reconnect_delay_set(1, 30)
    return client


def connect_async(client: mqtt.Client, ep: Endpoint) -> None:
    """Start connecting (the network loop must be started by the caller)."""
    u = urlparse(ep.url)
    if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
        raise BridgeError(f"bad MQTT URL {ep.url!r}: expected mqtt://host:port")
    port = u.port or (8883 if u.scheme == "mqtts" else 1883)
    if ep.version == "5":
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        client.connect_async(
            u.hostname, port, keepalive=KEEPALIVE_S, clean_start=False, properties=props
        )
    else:
        client.connect_async(u.hostname, port, keepalive=KEEPALIVE_S)
