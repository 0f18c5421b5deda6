"""Every protocol end to end into the readings table: foreign device → bridge → platform broker →
the real ingest service → PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from firmware_bridge.config import hash_token
from firmware_bridge.push import create_app

from ingest.service import IngestConfig, IngestService
from tests.bridge import recorded, spb
from tests.bridge.conftest import wait_rows

SITE, GW = "BV-BRIDGE", "gw-bv-bridge"
# sensor code → (quantity, registry unit)
SENSORS = {
    "T1-dp": ("dp", "inH2O"),
    "T2-dp": ("dp", "inH2O"),
    "T3-level": ("level_pct", "%"),
    "T4-p": ("head_pressure", "bar"),
    "T5-dp": ("dp", "inH2O"),
}
TOKEN = "push-token-bv-bridge-5-0123456789abcdef0123"


def _device(dev_id: str, points: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": dev_id, "site": SITE, "gateway": GW, "points": points, **extra}


SOURCES: list[dict[str, Any]] = [
    {
        "name": "spb",
        "protocol": "sparkplug",
        "devices": [
            _device("G/E/T1", [{"metric": "DP", "sensor": "T1-dp", "unit": "inH2O"}]),
        ],
    },
    {
        "name": "cs",
        "protocol": "chirpstack",
        "devices": [
            _device(
                recorded.CHIRPSTACK_DEV_EUI,
                [{"path": "dp_mbar", "sensor": "T2-dp", "unit": "mbar_dp"}],
            )
        ],
    },
    {
        "name": "tts",
        "protocol": "tts",
        "devices": [
            _device(
                recorded.TTS_DEV_EUI, [{"path": "level.pct", "sensor": "T3-level", "unit": "%"}]
            )
        ],
    },
    {
        "name": "acme",
        "protocol": "json",
        "topic": "acme/+/up",
        "device_id_topic_level": 1,
        "timestamp_path": "ts",
        "timestamp_format": "epoch_s",
        "devices": [_device("a1", [{"path": "p_psi", "sensor": "T4-p", "unit": "psi"}])],
    },
    {
        "name": "push",
        "protocol": "http",
        "timestamp_path": "ts",
        "devices": [
            _device(
                "d5",
                [{"path": "dp", "sensor": "T5-dp", "unit": "mmH2O"}],
                token_sha256=hash_token(TOKEN),
            )
        ],
    },
]


def _seed(url: str) -> None:
    with psycopg.connect(url) as conn:
        org = conn.execute(
            "INSERT INTO organisations (code, kind, name, province_code, parent_id) "
            "VALUES (%s, 'facility', %s, '01', "
            "        (SELECT id FROM organisations WHERE code = 'SYT-01')) RETURNING id",
            (SITE, "Bệnh viện cầu nối"),
        ).fetchone()[0]
        conn.execute("INSERT INTO facilities (org_id) VALUES (%s)", (org,))
        gw = conn.execute(
            "INSERT INTO gateways (facility_id, code) VALUES (%s, %s) RETURNING id", (org, GW)
        ).fetchone()[0]
        for code, (quantity, unit) in SENSORS.items():
            tank = conn.execute(
                "INSERT INTO tanks (facility_id, code, name, capacity_kg) "
                "VALUES (%s, %s, %s, 10000) RETURNING id",
                (org, code.split("-")[0], code),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit) "
                "VALUES (%s, %s, %s, %s, %s)",
                (gw, code, tank, quantity, unit),
            )


@pytest.fixture
def ingest(broker, db_url) -> Iterator[IngestService]:
    service = IngestService(
        IngestConfig(
            mqtt_url=broker.url, database_url=db_url, client_id="ingest-bridge-test", batch_ms=50
        )
    )
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    yield service
    service.stop()
    thread.join(15)


def test_every_protocol_into_readings(broker, db_url, bridge_factory, foreign_factory, ingest):
    _seed(db_url)
    bridge = bridge_factory(broker.port, db_url, SOURCES)
    dev = foreign_factory(broker.port)
    t0 = 1_764_300_000_000

    dev.send("spBv1.0/G/NBIRTH/E", spb.payload(0, [spb.metric("bdSeq", None, spb.INT64, 0)]))
    dev.send(
        "spBv1.0/G/DBIRTH/E/T1",
        spb.payload(1, [spb.metric("DP", 5, spb.FLOAT, 120.5, timestamp=t0)]),
    )
    dev.send(
        "spBv1.0/G/DDATA/E/T1",
        spb.payload(2, [spb.metric(None, 5, spb.FLOAT, 119.75, timestamp=t0 + 60_000)]),
    )
    dev.send(recorded.CHIRPSTACK_TOPIC, recorded.chirpstack_up())
    dev.send(recorded.TTS_TOPIC, recorded.tts_up())
    dev.send("acme/a1/up", {"ts": 1764300000, "p_psi": 120.0})
    resp = TestClient(create_app(bridge)).post(
        "/v1/push/push/d5",
        json={"ts": "2026-11-28T03:30:00Z", "dp": 2540.0},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert resp.status_code == 202, resp.text

    found = wait_rows(
        db_url,
        "SELECT s.code, r.ts, r.value, r.quality FROM readings r "
        "JOIN sensors s ON s.id = r.sensor_id ORDER BY s.code, r.ts",
        6,
        timeout=20,
    )
    got = {(code, ts): (round(value, 3), q) for code, ts, value, q in found}
    ms = lambda v: datetime.fromtimestamp(v / 1000, UTC)  # noqa: E731
    assert got == {
        ("T1-dp", ms(t0)): (120.5, 0),
        ("T1-dp", ms(t0 + 60_000)): (119.75, 0),
        # 27.9 mbar = 2790 Pa = 11.201 inH2O (ingest converts to the canonical unit)
        ("T2-dp", datetime(2026, 11, 28, 3, 15, 42, 158000, tzinfo=UTC)): (11.201, 0),
        ("T3-level", datetime(2026, 11, 28, 3, 16, 5, 787000, tzinfo=UTC)): (64.5, 0),
        ("T4-p", ms(t0)): (8.274, 0),  # 120 psi
        # 2540 mmH2O = 100.0 inH2O (1 in = 25.4 mm at the conventional density)
        ("T5-dp", datetime(2026, 11, 28, 3, 30, tzinfo=UTC)): (100.0, 0),
    }
    # Device health reached the engineers' gateway view.
    [(devices,)] = wait_rows(
        db_url,
        "SELECT devices FROM gateway_status gs JOIN gateways g ON g.id = gs.gateway_id "
        "WHERE g.code = %s AND devices IS NOT NULL AND jsonb_array_length(devices) = 2",
        1,
        GW,
    )
    by_device = {d["device"]: d for d in devices}
    assert by_device[recorded.CHIRPSTACK_DEV_EUI]["rssi_dbm"] == -97.0
    assert by_device[recorded.TTS_DEV_EUI.lower()]["battery_pct"] is None  # no battery_path

    # A seq gap is an alarm in the engineers' gateway view until the node's next birth.
    alarms_q = (
        "SELECT alarms FROM gateway_status gs JOIN gateways g ON g.id = gs.gateway_id "
        "WHERE g.code = %s AND (jsonb_array_length(alarms) > 0) = %s"
    )
    dev.send("spBv1.0/G/DDATA/E/T1", spb.payload(9, [spb.metric(None, 5, spb.FLOAT, 1.0)]))
    [(alarms,)] = wait_rows(db_url, alarms_q, 1, GW, True)
    assert "expected 3, got 9" in alarms[0]
    dev.send("spBv1.0/G/NBIRTH/E", spb.payload(0, [spb.metric("bdSeq", None, spb.INT64, 0)]))
    wait_rows(db_url, alarms_q, 1, GW, False)
