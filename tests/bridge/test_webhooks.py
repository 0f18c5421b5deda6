"""The network servers' own HTTP integrations: ChirpStack v4's HTTP integration and The Things
Stack v3's webhooks post every event type of every device to one URL, with their own JSON and
their own authentication header; the bridge takes them as they are."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from firmware_bridge.config import hash_token
from firmware_bridge.push import create_app

from oxy.contract import StatusMessage
from tests.bridge import recorded
from tests.bridge.conftest import rows, wait_rows
from tests.bridge.test_lorawan import CHIRPSTACK, TTS

CS_TOKEN = "cs-http-integration-3f9a1c0d7e5b4a2f"
TTS_TOKEN = "NNSXS.WEBHOOK-DOWNLINK-KEY-7Q2W9E"
CS_HOOK: dict[str, Any] = {
    **CHIRPSTACK,
    "name": "cs-hook",
    "transport": "webhook",
    "webhook_header": "X-Oxy-Token",  # a custom header set in the integration's settings
    "webhook_token_sha256": hash_token(CS_TOKEN),
}
TTS_HOOK: dict[str, Any] = {
    **TTS,
    "name": "tts-hook",
    "transport": "webhook",
    "webhook_header": "X-Downlink-Apikey",  # TTS sends the webhook's downlink API key here
    "webhook_token_sha256": hash_token(TTS_TOKEN),
}


def test_chirpstack_http_integration(broker, db_url, bridge_factory, collector_factory):
    out = collector_factory(broker.port, "oxy/v1/#")
    bridge = bridge_factory(broker.port, db_url, [CS_HOOK])
    client = TestClient(create_app(bridge, timeout_s=5))
    auth = {"X-Oxy-Token": CS_TOKEN}

    # Wrong or missing header: refused, nothing stored.
    body = recorded.chirpstack_event("up")
    assert client.post("/v1/webhook/cs-hook?event=up", json=body).status_code == 401
    bad = {"X-Oxy-Token": "guess"}
    assert client.post("/v1/webhook/cs-hook?event=up", json=body, headers=bad).status_code == 401
    assert client.post("/v1/webhook/nope?event=up", json=body, headers=auth).status_code == 404
    assert client.post("/v1/webhook/cs-hook", json=body, headers=auth).status_code == 422

    # Every event type goes to the same URL; the uplink is mapped like its MQTT counterpart.
    resp = client.post("/v1/webhook/cs-hook?event=up", json=body, headers=auth)
    assert resp.status_code == 202, resp.text
    assert resp.json()["readings"] == 2
    out.wait(lambda t, p: t.endswith("/data"))
    [data] = out.contract("data", "gw-bv-b-lora")
    ts = datetime(2026, 11, 28, 3, 15, 42, 158000, tzinfo=UTC)
    assert {(r.sensor, r.value, r.unit, r.ts) for r in data.readings} == {
        ("T2-dp", 27.9, "mbar_dp", ts),
        ("T2-p", 8.75, "bar", ts),
    }
    for event in ("status", "join", "ack", "txack", "log"):
        resp = client.post(
            f"/v1/webhook/cs-hook?event={event}",
            json=recorded.chirpstack_event(event),
            headers=auth,
        )
        assert resp.status_code == 202, (event, resp.text)
    found = out.wait(lambda t, p: t.endswith("/status"), count=3)
    statuses = [StatusMessage.model_validate_json(p) for _, p in found]
    assert statuses[1].devices[0].battery_pct == 81.5  # the status event
    assert "UPLINK_CODEC" in statuses[-1].alarms[0]  # the log event
    assert len(out.contract("data")) == 1
    assert rows(db_url, "SELECT count(*) FROM dead_letters")[0][0] == 0

    # An unknown device is quarantined, as over MQTT.
    other = recorded.chirpstack_event("up")
    other["deviceInfo"]["devEui"] = "A84041000181C0DE"
    resp = client.post("/v1/webhook/cs-hook?event=up", json=other, headers=auth)
    assert resp.json()["quarantined"] == 1
    wait_rows(db_url, "SELECT 1 FROM quarantine WHERE sensor = 'A84041000181C0DE'", 1)


def test_tts_webhook(broker, db_url, bridge_factory, collector_factory):
    out = collector_factory(broker.port, "oxy/v1/#")
    bridge = bridge_factory(broker.port, db_url, [TTS_HOOK])
    client = TestClient(create_app(bridge, timeout_s=5))
    auth = {"X-Downlink-Apikey": TTS_TOKEN}
    assert client.post("/v1/webhook/tts-hook", json=recorded.tts_up()).status_code == 401

    # One base URL for every message type (TTS may also append a per-type path).
    for path, kind in (("", "join"), ("/uplink", "up"), ("", "down/ack")):
        resp = client.post(
            f"/v1/webhook/tts-hook{path}", json=recorded.tts_event(kind), headers=auth
        )
        assert resp.status_code == 202, (kind, resp.text)
    out.wait(lambda t, p: t.endswith("/data"))
    [data] = out.contract("data", "gw-bv-c-lora")
    assert {r.sensor: r.value for r in data.readings} == {"T1-level": 64.5, "T1-temp": -179.6}

    fake = recorded.tts_up()
    fake["simulated"] = True
    resp = client.post("/v1/webhook/tts-hook", json=fake, headers=auth)
    assert resp.status_code == 422 and "simulated" in resp.json()["detail"]
    assert len(out.contract("data")) == 1
