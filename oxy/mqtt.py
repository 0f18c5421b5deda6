"""The one MQTT connection module: broker URLs and paho-mqtt 2.x clients for every process.

The gateway, ingest and the firmware bridge each keep their own connection logic (the gateway's
own network thread and birth/death sequence, ingest's ack-after-commit, the bridge's sources);
what they share is here: parsing `mqtt://user:pass@host:port` / `mqtts://…` URLs, and building a
client with its credentials, TLS, client id, MQTT version, session (clean or persistent), Last
Will and keepalive.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from oxy import OxyError

Version = Literal["5", "3.1.1"]

# As long as the product broker keeps sessions (oxy.broker: persistent_client_expiration 7d).
SESSION_EXPIRY_S: Final = 7 * 24 * 3600
PLAIN_PORT: Final = 1883
TLS_PORT: Final = 8883
_SCHEMES: Final = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True}


class MqttUrlError(OxyError):
    """A broker URL that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Broker:
    """Where the broker is and who we are to it (from an `mqtt://` or `mqtts://` URL)."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> Broker:
        """Parse `mqtt://[user[:password]@]host[:port]` or `mqtts://…` (TLS, port 8883 by
        default); `tcp://` and `ssl://` are accepted as their aliases, and a bare `host:port`
        means `mqtt://`. Percent-escapes in the credentials are decoded."""
        u = urlsplit(url if "://" in url else f"mqtt://{url}")
        if u.scheme not in _SCHEMES:
            raise MqttUrlError(
                f"unsupported broker URL scheme {u.scheme!r}: expected mqtt://host[:port] "
                "or mqtts://host[:port]"
            )
        try:
            port = u.port
        except ValueError:
            raise MqttUrlError(f"{url!r}: the port is not a number within 0..65535") from None
        if not u.hostname:
            raise MqttUrlError(f"{url!r}: no host (expected mqtt://host[:port])")
        tls = _SCHEMES[u.scheme]
        return cls(
            host=u.hostname,
            port=port or (TLS_PORT if tls else PLAIN_PORT),
            tls=tls,
            username=unquote(u.username) if u.username else None,
            password=unquote(u.password) if u.password else None,
        )

    def login(self, username: str | None, password: str | None) -> Broker:
        """The same broker with credentials given beside the URL (each overrides the URL's)."""
        return replace(
            self,
            username=username if username is not None else self.username,
            password=password if password is not None else self.password,
        )


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A CA bundle to trust (None: the system's) and a client certificate, for `mqtts://`."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class Will:
    """A Last Will: published by the broker when the connection ends without a DISCONNECT."""

    topic: str
    payload: bytes | str
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class Session:
    """How one client connects: its id, MQTT version, session and keepalive.

    `persistent`: the broker keeps the subscriptions and unacknowledged messages across
    reconnects (MQTT 5: clean_start=False with a session expiry; 3.1.1: clean_session=False).
    `receive_maximum` (MQTT 5) caps the messages the broker sends unacknowledged."""

    client_id: str
    version: Version = "5"
    persistent: bool = False
    session_expiry_s: int = SESSION_EXPIRY_S
    keepalive_s: int = 30
    manual_ack: bool = False
    receive_maximum: int | None = None


def make_client(
    broker: Broker,
    session: Session,
    *,
    tls: TlsFiles | None = None,
    will: Will | None = None,
    reconnect_delay: tuple[int, int] | None = None,
) -> mqtt.Client:
    """A paho client set up for `broker` and `session` (not connected yet)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=session.client_id,
        protocol=mqtt.MQTTv5 if session.version == "5" else mqtt.MQTTv311,
        # Only MQTT 3.1.1 takes the session in the constructor (5: in CONNECT, see connect()).
        clean_session=None if session.version == "5" else not session.persistent,
        manual_ack=session.manual_ack,
    )
    if broker.username:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        files = tls or TlsFiles()
        client.tls_set(
            ca_certs=str(files.ca_file) if files.ca_file else None,
            certfile=str(files.cert_file) if files.cert_file else None,
            keyfile=str(files.key_file) if files.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    if will is not None:
        set_will(client, will)
    if reconnect_delay is not None:
        client.reconnect_delay_set(*reconnect_delay)
    return client


def set_will(client: mqtt.Client, will: Will) -> None:
    """Set (or replace, before the next connect) the client's Last Will."""
    client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)


def connect_properties(session: Session) -> Properties | None:
    """The MQTT 5 CONNECT properties of `session` (None for 3.1.1 or when there are none)."""
    if session.version != "5" or not (session.persistent or session.receive_maximum):
        return None
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    if session.persistent:
        props.SessionExpiryInterval = session.session_expiry_s
    if session.receive_maximum:
        props.ReceiveMaximum = session.receive_maximum
    return props


def connect(
    client: mqtt.Client, broker: Broker, session: Session, *, background: bool = True
) -> MQTTErrorCode:
    """Connect `client` as `session` says: in the background (`connect_async`, the caller starts
    the network loop; returns success) or now (returns paho's result; raises OSError)."""
    if session.version == "5":
        # A persistent session resumes (clean_start=False); otherwise paho's default: clean on
        # the first connect only.
        clean: bool | Literal[3] = False if session.persistent else mqtt.MQTT_CLEAN_START_FIRST_ONLY
        props = connect_properties(session)
        if background:
            client.connect_async(
                broker.host,
                broker.port,
                session.keepalive_s,
                clean_start=clean,
                properties=props,
            )
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return client.connect(
            broker.host, broker.port, session.keepalive_s, clean_start=clean, properties=props
        )
    if background:
        client.connect_async(broker.host, broker.port, session.keepalive_s)
        return MQTTErrorCode.MQTT_ERR_SUCCESS
    return client.connect(broker.host, broker.port, session.keepalive_s)
