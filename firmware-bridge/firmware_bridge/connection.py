"""The bridge's MQTT endpoints: persistent sessions through the core's connection module."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import paho.mqtt.client as mqtt

from firmware_bridge.errors import BridgeError
from oxy.mqtt import SESSION_EXPIRY_S, Broker, MqttUrlError, Session, Version, connect
from oxy.mqtt import make_client as make_mqtt_client

KEEPALIVE_S: Final = 30


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to connect (credentials given here override the URL's)."""

    url: str
    client_id: str
    version: Version = "5"
    username: str | None = None
    password: str | None = None

    @property
    def broker(self) -> Broker:
        """The parsed URL with the credentials."""
        try:
            return Broker.parse(self.url).login(self.username, self.password)
        except MqttUrlError as exc:
            raise BridgeError(f"bad MQTT URL {self.url!r}: {exc}") from None

    def session(self, manual_ack: bool = False) -> Session:
        """A persistent session (unacknowledged messages survive a reconnect)."""
        return Session(
            self.client_id,
            self.version,
            persistent=True,
            session_expiry_s=SESSION_EXPIRY_S,
            keepalive_s=KEEPALIVE_S,
            manual_ack=manual_ack,
        )


def make_client(ep: Endpoint, manual_ack: bool = False) -> mqtt.Client:
    """A client with a persistent session, reconnecting by itself (1–30 s)."""
    return make_mqtt_client(ep.broker, ep.session(manual_ack), reconnect_delay=(1, 30))


def connect_async(client: mqtt.Client, ep: Endpoint) -> None:
    """Start connecting (the network loop must be started by the caller)."""
    connect(client, ep.broker, ep.session())
