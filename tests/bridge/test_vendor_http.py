"""Vendor JSON via declarative mappings over MQTT, and the HTTP push endpoint."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from firmware_bridge.config import hash_token
from firmware_bridge.push import create_app

from tests.bridge.conftest import rows, wait_rows

ACME: dict[str, Any] = {
    "name": "acme",
    "protocol": "json",
    "topic": "acme/+/telemetry",
    "device_id_path": "serial",
    "timestamp_path": "time",
    "timestamp_format": "%d/%m/%Y %H:%M:%S",
    "timezone": "Asia/Ho_Chi_Minh",
    "devices": [
        {
            "id": "ACME-001",
            "site": "BV-D",
            "gateway": "gw-bv-d-acme",
            "points": [
                {"path": "data.lvl_mmh2o", "sensor": "T1-dp", "unit": "mmH2O"},
                {"path": "$.data.press_kpa", "sensor": "T1-p", "unit": "kPa"},
                {"path": "data.sensors[1].v", "sensor": "T1-temp", "unit": "K"},
            ],
        }
    ],
}
GASCO: dict[str, Any] = {
    "name": "gasco",
    "protocol": "json",
    "topic": "gasco/+/up",
    "device_id_topic_level": 1,
    "timestamp_path": "t",
    "timestamp_format": "epoch_ms",
    "devices": [
        {
            "id": "unit-17",
            "site": "BV-E",
            "gateway": "gw-bv-e",
            # A 4-20 mA transmitter reported in µA: 4000..20000 → 0..100 %.
            "points": [
                {"path": "ma", "sensor": "T1-level", "unit": "%", "scale": 0.00625, "offset": -25}
            ],
        }
    ],
}
TOKEN = "s3cr3t-token-for-bv-f-tank-1-0123456789abcdef"
HTTP: dict[str, Any] = {
    "name": "push",
    "protocol": "http",
    "timestamp_path": "ts",
    "timestamp_format": "iso8601",
    "devices": [
        {
            "id": "bv-f-tank1",
            "site": "BV-F",
            "gateway": "gw-bv-f-http",
            "token_sha256": hash_token(TOKEN),
            "points": [{"path": "dp", "sensor": "T1-dp", "unit": "inH2O"}],
        }
    ],
}


def test_vendor_mappings(broker, db_url, bridge_factory, collector_factory, foreign_factory):
    out = collector_factory(broker.port, "oxy/v1/#")
    bridge_factory(broker.port, db_url, [ACME, GASCO])
    dev = foreign_factory(broker.port)

    dev.send(
        "acme/ACME-001/telemetry",
        {
            "serial": "ACME-001",
            "time": "28/11/2026 20:15:00",  # local time in Ho Chi Minh City (UTC+7)
            "data": {
                "lvl_mmh2o": 2850,
                "press_kpa": "820.5",
                "sensors": [{"v": 1}, {"v": 93.15}],
            },
        },
    )
    out.wait(lambda t, p: t == "oxy/v1/BV-D/gw-bv-d-acme/data")
    [msg] = out.contract("data", "gw-bv-d-acme")
    ts = datetime(2026, 11, 28, 13, 15, tzinfo=UTC)
    assert {(r.sensor, r.value, r.unit, r.ts) for r in msg.readings} == {
        ("T1-dp", 2850.0, "mmH2O", ts),
        ("T1-p", 820.5, "kPa", ts),
        ("T1-temp", 93.15, "K", ts),
    }

    # Device id from the topic, epoch milliseconds, a batch of records, scaling.
    dev.send(
        "gasco/unit-17/up",
        b'[{"t": 1764300000000, "ma": 12000}, {"t": 1764300060000, "ma": 20000}]',
    )
    out.wait(lambda t, p: t == "oxy/v1/BV-E/gw-bv-e/data")
    [batch] = out.contract("data", "gw-bv-e")
    assert [(r.value, r.ts) for r in batch.readings] == [
        (50.0, datetime(2025, 11, 28, 3, 20, tzinfo=UTC)),
        (100.0, datetime(2025, 11, 28, 3, 21, tzinfo=UTC)),
    ]

    # An explicit null is a comm_error reading, not a dropped one.
    dev.send("gasco/unit-17/up", b'{"t": 1764300120000, "ma": null}')
    out.wait(lambda t, p: t == "oxy/v1/BV-E/gw-bv-e/data", count=2)
    [r] = out.contract("data", "gw-bv-e")[1].readings
    assert (r.value, r.q.value) == (None, "comm_error")

    # Unknown vendor device: quarantined.
    dev.send("gasco/unit-99/up", b'{"t": 1764300000000, "ma": 5000}')
    [(sensor, ts_q)] = wait_rows(db_url, "SELECT sensor, ts FROM quarantine", 1)
    assert (sensor, ts_q) == ("unit-99", datetime(2025, 11, 28, 3, 20, tzinfo=UTC))
    assert rows(db_url, "SELECT count(*) FROM dead_letters")[0][0] == 0


def test_http_push(broker, db_url, bridge_factory, collector_factory):
    out = collector_factory(broker.port, "oxy/v1/#")
    bridge = bridge_factory(broker.port, db_url, [HTTP])
    client = TestClient(create_app(bridge, timeout_s=5))
    url = "/v1/push/push/bv-f-tank1"
    body = {"ts": "2026-11-28T10:00:00+07:00", "dp": 98.5}

    assert client.post(url, json=body).status_code == 401
    assert client.post(url, json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    # The token of one device does not open another.
    other = client.post(
        "/v1/push/push/bv-g", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert other.status_code == 401
    assert client.post("/v1/push/nope/bv-f-tank1", json=body).status_code == 404
    assert out.matching(lambda t, p: True) == []

    auth = {"Authorization": f"Bearer {TOKEN}"}
    resp = client.post(url, json=body, headers=auth)
    assert resp.status_code == 202, resp.text
    assert resp.json()["published"] == 1
    out.wait(lambda t, p: t == "oxy/v1/BV-F/gw-bv-f-http/data")
    [msg] = out.contract("data", "gw-bv-f-http")
    [r] = msg.readings
    assert (r.sensor, r.value, r.ts) == ("T1-dp", 98.5, datetime(2026, 11, 28, 3, tzinfo=UTC))

    bad = client.post(url, content=b'{"ts": "yesterday", "dp": 1}', headers=auth)
    assert bad.status_code == 422
    assert "does not match iso8601" in bad.json()["detail"]
    [(topic, reason)] = wait_rows(db_url, "SELECT topic, reason FROM dead_letters", 1)
    assert topic == "http/push/bv-f-tank1" and "yesterday" in reason
    assert client.get("/healthz").json()["connected"] is True
