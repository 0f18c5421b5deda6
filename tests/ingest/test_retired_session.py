"""A retired ingest worker's session (issue 14, "100 published, ~50 stored").

Mosquitto keeps an offline MQTT v5 session's `$share` subscription in the group and goes on
handing it its round-robin share of the messages, queued until the session expires (7 days).
Two workers that ran one after the other on one broker with different client ids therefore
store half of what is published while the first is away, with nothing dead-lettered: the other
half waits in the retired session. `oxy ingest drain` (`IngestService` with `drain=True`) takes
that session over, stores its queue, leaves the group and ends the session."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.service import IngestConfig, IngestService
from tests.fix_mqtt import Broker
from tests.ingest.conftest import (
    T0,
    Publisher,
    Registry,
    count,
    data_message,
    running_ingest,
    seed_registry,
    wait_for,
)

N = 100


def _session_present(port: int, client_id: str) -> bool:
    """Whether the broker still holds a session for `client_id` (it is resumed, then kept)."""
    flags: list[bool] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.on_connect = lambda cl, u, f, r, p: flags.append(bool(f.session_present))
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    deadline = time.monotonic() + 10
    while not flags and time.monotonic() < deadline:
        c.loop(0.1)
    c.disconnect()
    assert flags, "no CONNACK"
    return flags[0]


def _burst(registry: Registry) -> list[tuple[str, bytes]]:
    """N data messages of one gateway, consecutive seqs, distinct readings."""
    return [
        (
            registry.data_topic(),
            data_message(registry.gateway, [("T1-dp", T0 + timedelta(seconds=i), 100.0 + i)]),
        )
        for i in range(N)
    ]


def _stored(db_url: str, registry: Registry) -> int:
    return count(
        db_url, "SELECT count(*) FROM readings WHERE sensor_id = %s", (registry.sensors["T1-dp"],)
    )


def test_a_burst_through_one_worker_is_stored_whole(
    db_url: str, broker: Broker, registry: Registry, publisher: Publisher
) -> None:
    with running_ingest(db_url, broker.url):
        publisher.publish_many(_burst(registry))
        wait_for(lambda: _stored(db_url, registry) == N, 20, f"{N} readings")
    assert count(db_url, "SELECT count(*) FROM dead_letters") == 0


def test_a_burst_from_many_gateways_through_one_worker_is_stored_whole(
    db_url: str, broker: Broker, publisher: Publisher
) -> None:
    gateways = [seed_registry(db_url, f"BV-BURST-{g}", f"gw-burst-{g}") for g in range(10)]
    items = [
        (
            r.data_topic(),
            data_message(r.gateway, [("T1-dp", T0 + timedelta(seconds=i), float(i))]),
        )
        for i in range(N // len(gateways))
        for r in gateways
    ]
    ids = [r.sensors["T1-dp"] for r in gateways]
    with running_ingest(db_url, broker.url):
        publisher.publish_many(items)
        wait_for(
            lambda: (
                count(db_url, "SELECT count(*) FROM readings WHERE sensor_id = ANY(%s)", (ids,))
                == N
            ),
            20,
            f"{N} readings",
        )
    assert count(db_url, "SELECT count(*) FROM dead_letters") == 0


def test_a_retired_worker_session_takes_its_share_until_drained(
    db_url: str, broker: Broker, registry: Registry, publisher: Publisher
) -> None:
    # The worker that ran before (another client id, same group), now gone for good.
    with running_ingest(db_url, broker.url, client_id="ingest-retired"):
        pass
    with running_ingest(db_url, broker.url, client_id="ingest-live") as live:
        publisher.publish_many(_burst(registry))
        wait_for(lambda: live.committed_batches > 0, 10, "a committed batch")
        wait_for(lambda: live.metrics.unacked._value.get() == 0, 10, "all acked")
        # The live worker gets its round-robin half; the rest is queued for the retired one.
        stored_live = _stored(db_url, registry)
        assert 0 < stored_live < N
        assert count(db_url, "SELECT count(*) FROM dead_letters") == 0

        # Draining the retired session stores its queue and takes it out of the group.
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "oxy",
                "ingest",
                "drain",
                "--client-id",
                "ingest-retired",
                "--mqtt-url",
                broker.url,
                "--database-url",
                db_url,
                "--idle-s",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "session ingest-retired drained" in done.stdout
        assert _stored(db_url, registry) == N
        assert _session_present(broker.port, "ingest-retired") is False

        # The group is the live worker alone again: a second burst is stored whole by it.
        before = live.committed_batches
        publisher.publish_many(
            [
                (
                    registry.data_topic(),
                    data_message(
                        registry.gateway, [("T1-dp", T0 + timedelta(hours=1, seconds=i), 1.0)]
                    ),
                )
                for i in range(N)
            ]
        )
        wait_for(lambda: _stored(db_url, registry) == 2 * N, 20, f"{2 * N} readings")
        # Counted by the live worker just after its commit (the rows can be seen first).
        wait_for(lambda: live.committed_batches > before, 10, "the live worker's batch")
    assert count(db_url, "SELECT count(*) FROM dead_letters") == 0


@pytest.mark.parametrize("protocol", ["3.1.1"])
def test_drain_refuses_a_broker_without_shared_subscriptions(db_url: str, protocol: str) -> None:
    from ingest.consumer import IngestError

    with pytest.raises(IngestError, match="MQTT v5"):
        IngestService(
            IngestConfig(
                mqtt_url="mqtt://127.0.0.1:1",
                database_url=db_url,
                protocol="3.1.1",
                drain=True,
            )
        )
