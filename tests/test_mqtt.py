"""The core's MQTT connection module (oxy.mqtt): broker URLs and the clients built from them.

The gateway, ingest and bridge tests connect through it to real brokers; these pin the parser
and the session each client is built with."""

from __future__ import annotations

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes

from oxy.mqtt import (
    Broker,
    MqttUrlError,
    Session,
    TlsFiles,
    Will,
    connect_properties,
    make_client,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://broker.example", Broker("broker.example", 1883, False)),
        ("mqtts://broker.example", Broker("broker.example", 8883, True)),
        ("mqtt://10.0.0.5:1884", Broker("10.0.0.5", 1884, False)),
        ("mqtts://h:9999", Broker("h", 9999, True)),
        ("tcp://h", Broker("h", 1883, False)),
        ("ssl://h", Broker("h", 8883, True)),
        ("h:1885", Broker("h", 1885, False)),
        ("mqtt://ingest@h", Broker("h", 1883, False, "ingest", None)),
        ("mqtt://ingest:s3cret@h:1883", Broker("h", 1883, False, "ingest", "s3cret")),
        # Percent-escaped credentials are decoded (a password with '@' or ':').
        ("mqtts://gw%2F1:p%40ss%3Aword@h", Broker("h", 8883, True, "gw/1", "p@ss:word")),
        ("mqtt://[::1]:1883", Broker("::1", 1883, False)),
    ],
)
def test_broker_urls_parse(url: str, expected: Broker) -> None:
    assert Broker.parse(url) == expected


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://h", "unsupported broker URL scheme 'http'"),
        ("ws://h:9001", "unsupported broker URL scheme 'ws'"),
        ("mqtt://", "no host"),
        ("mqtt://:1883", "no host"),
        ("mqtt://h:port", "port is not a number"),
        ("mqtt://h:70000", "port is not a number"),
    ],
)
def test_bad_broker_urls_say_why(url: str, why: str) -> None:
    with pytest.raises(MqttUrlError, match=why):
        Broker.parse(url)


def test_credentials_beside_the_url_override_it() -> None:
    b = Broker.parse("mqtt://u:p@h")
    assert b.login(None, None) == b
    assert b.login("other", None) == Broker("h", 1883, False, "other", "p")
    assert b.login(None, "pw") == Broker("h", 1883, False, "u", "pw")


def test_a_persistent_v5_session_resumes_with_an_expiry() -> None:
    props = connect_properties(Session("c", "5", persistent=True, session_expiry_s=60))
    assert props is not None
    assert props.packetType == PacketTypes.CONNECT
    assert props.SessionExpiryInterval == 60
    assert not hasattr(props, "ReceiveMaximum")
    capped = connect_properties(Session("c", "5", persistent=True, receive_maximum=1000))
    assert capped is not None
    assert capped.ReceiveMaximum == 1000
    # A clean session, or MQTT 3.1.1 (no CONNECT properties), sends none.
    assert connect_properties(Session("c", "5")) is None
    assert connect_properties(Session("c", "3.1.1", persistent=True)) is None


@pytest.mark.parametrize(
    ("session", "protocol", "clean"),
    [
        (Session("a", "5"), mqtt.MQTTv5, None),
        (Session("b", "3.1.1"), mqtt.MQTTv311, True),
        (Session("c", "3.1.1", persistent=True), mqtt.MQTTv311, False),
    ],
)
def test_clients_carry_the_session(session: Session, protocol: int, clean: bool | None) -> None:
    client = make_client(Broker("h", 1883), session)
    assert client.protocol == protocol
    assert client._client_id == session.client_id.encode()
    if clean is not None:
        assert client._clean_session is clean


def test_a_client_carries_credentials_tls_and_its_will(tmp_path: object) -> None:
    broker = Broker.parse("mqtts://gw:pw@h")
    will = Will("oxy/v1/s/g/state", b"offline")
    client = make_client(
        broker, Session("gw", manual_ack=True), tls=TlsFiles(), will=will, reconnect_delay=(1, 5)
    )
    assert client.username == "gw"
    assert client.password == "pw"
    assert client._ssl_context is not None
    assert client._will_topic == will.topic.encode()
    assert client._will_payload == b"offline"
    assert client._will_retain is True
    assert client._manual_ack is True
    assert (client._reconnect_min_delay, client._reconnect_max_delay) == (1, 5)
    plain = make_client(Broker("h", 1883), Session("p"))
    assert plain._ssl_context is None
    assert plain.username is None
