"""Helpers for the ingest tests: a registry to ingest into, a publisher, a running service."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.service import IngestConfig, IngestService
from oxy.contract import DataMessage, Quality, Reading, TopicKind, encode, topic

SITE = "BV-INGEST"
GATEWAY = "gw-bv-ingest"


@dataclass(frozen=True)
class Registry:
    """The registry rows an ingest test writes for."""

    site: str
    gateway: str
    gateway_id: int
    sensors: dict[str, int]  # code -> id

    def data_topic(self) -> str:
        return topic(self.site, self.gateway, TopicKind.DATA)


def seed_registry(url: str, site: str = SITE, gateway: str = GATEWAY, tanks: int = 1) -> Registry:
    """Insert a facility, tanks, a gateway and its sensors (`T<n>-dp` inH2O, `T<n>-p` bar)."""
    with psycopg.connect(url) as conn:
        org = conn.execute(
            "INSERT INTO organisations (code, kind, name, province_code, parent_id) "
            "VALUES (%s, 'facility', %s, '01', "
            "        (SELECT id FROM organisations WHERE code = 'SYT-01')) RETURNING id",
            (site, f"Bệnh viện {site}"),
        ).fetchone()[0]
        conn.execute("INSERT INTO facilities (org_id) VALUES (%s)", (org,))
        gw = conn.execute(
            "INSERT INTO gateways (facility_id, code) VALUES (%s, %s) RETURNING id", (org, gateway)
        ).fetchone()[0]
        sensors: dict[str, int] = {}
        for n in range(1, tanks + 1):
            tank = conn.execute(
                "INSERT INTO tanks (facility_id, code, name, capacity_kg) "
                "VALUES (%s, %s, %s, 10000) RETURNING id",
                (org, f"T{n}", f"Tank {n}"),
            ).fetchone()[0]
            for suffix, quantity, unit in (("dp", "dp", "inH2O"), ("p", "head_pressure", "bar")):
                code = f"T{n}-{suffix}"
                sensors[code] = conn.execute(
                    "INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit) "
                    "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                    (gw, code, tank, quantity, unit),
                ).fetchone()[0]
    return Registry(site, gateway, gw, sensors)


@pytest.fixture
def registry(db_url: str) -> Registry:
    return seed_registry(db_url)


T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
_seq = itertools.count()


def data_message(
    gateway: str,
    readings: list[tuple[str, datetime, float | None]],
    unit_for: Callable[[str], str] = lambda s: "bar" if s.endswith("-p") else "inH2O",
    quality: Quality = Quality.GOOD,
) -> bytes:
    """A valid data message with the given (sensor, ts, value) readings."""
    return encode(
        DataMessage(
            gw=gateway,
            seq=next(_seq),
            sent_at=datetime.now(UTC),
            readings=[
                Reading(sensor=s, ts=ts, value=v, unit=unit_for(s), q=quality)
                for s, ts, v in readings
            ],
        )
    )


def series(
    sensor: str, n: int, start: datetime = T0, step_s: float = 1.0, base: float = 100.0
) -> list[tuple[str, datetime, float | None]]:
    """`n` readings of one sensor, one per `step_s` seconds."""
    return [(sensor, start + timedelta(seconds=i * step_s), base + i) for i in range(n)]


class Publisher:
    """A QoS 1 publisher that waits for every PUBACK."""

    def __init__(self, port: int, protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv5) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pub-{uuid.uuid4().hex[:8]}",
            protocol=protocol,
        )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, topic_name: str, payload: bytes, qos: int = 1) -> None:
        self.client.publish(topic_name, payload, qos=qos).wait_for_publish(10)

    def publish_many(self, items: list[tuple[str, bytes]]) -> None:
        infos = [self.client.publish(t, p, qos=1) for t, p in items]
        for info in infos:
            info.wait_for_publish(30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(broker: Any) -> Iterator[Publisher]:
    p = Publisher(broker.port)
    yield p
    p.close()


@contextmanager
def running_ingest(db_url: str, mqtt_url: str, **overrides: Any) -> Iterator[IngestService]:
    """An ingest service in a thread of this process, stopped (and joined) on exit."""
    cfg = IngestConfig(
        mqtt_url=mqtt_url,
        database_url=db_url,
        client_id=overrides.pop("client_id", f"ingest-test-{uuid.uuid4().hex[:8]}"),
        batch_ms=overrides.pop("batch_ms", 50),
        **overrides,
    )
    service = IngestService(cfg)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    if not service.source.subscribed.wait(10):
        service.stop()
        thread.join(10)
        raise TimeoutError("ingest did not connect to the broker")
    try:
        yield service
    finally:
        service.stop()
        thread.join(30)
        assert not thread.is_alive(), "ingest did not stop"


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Poll until `predicate()` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")


def count(url: str, sql: str, params: tuple[Any, ...] = ()) -> int:
    """A single integer from the database."""
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, params).fetchone()
        return int(row[0]) if row else 0
