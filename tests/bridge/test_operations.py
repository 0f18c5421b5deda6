"""What an operator sees: a source whose broker is unreachable (log on change, /healthz), the
readings counted as well as the messages."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from firmware_bridge.config import parse_config
from firmware_bridge.model import Unknown
from firmware_bridge.push import create_app
from firmware_bridge.rejects import PostgresRejects, SqliteRejects
from firmware_bridge.service import Bridge

from tests.bridge.test_vendor_http import GASCO, HTTP, TOKEN


def _wait(pred: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_unreachable_source_broker_is_logged_once_and_shown(
    broker, broker_factory, db_url, caplog: pytest.LogCaptureFixture
):
    foreign = broker_factory()
    foreign.stop()  # the vendor's broker is down when the bridge starts
    source = {**GASCO, "mqtt_url": foreign.url}
    config = parse_config({"onward": {"mqtt_url": broker.url}, "sources": [source]})
    bridge = Bridge(config, PostgresRejects(db_url))
    caplog.set_level(logging.INFO, logger="firmware_bridge.service")
    bridge.start()
    try:
        assert bridge.publisher.wait_connected(10)
        _wait(lambda: bridge.health()["sources"]["gasco"]["error"] is not None)
        health = bridge.health()
        assert health["ok"] is False and health["connected"] is True
        assert health["sources"]["gasco"]["connected"] is False
        assert foreign.url in health["sources"]["gasco"]["error"]
        time.sleep(2.5)  # several reconnect attempts ...
        down = [r for r in caplog.records if "broker unreachable" in r.getMessage()]
        assert len(down) == 1 and down[0].levelno == logging.ERROR  # ... logged once
        assert "gasco" in down[0].getMessage()

        foreign.start()
        _wait(lambda: bridge.health()["sources"]["gasco"]["connected"], timeout=40)
        assert bridge.health()["ok"] is True
        assert any("broker reachable" in r.getMessage() for r in caplog.records)
    finally:
        bridge.stop()


def test_healthz_and_published_readings(broker, db_url, bridge_factory):
    bridge = bridge_factory(broker.port, db_url, [HTTP, GASCO])
    client = TestClient(create_app(bridge, timeout_s=5))
    body = [
        {"ts": "2026-11-28T10:00:00+07:00", "dp": 98.5},
        {"ts": "2026-11-28T10:01:00+07:00", "dp": 98.0},
        {"ts": "2026-11-28T10:02:00+07:00", "dp": 97.5},
    ]
    resp = client.post(
        "/v1/push/push/bv-f-tank1", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert resp.status_code == 202, resp.text
    # One data message carrying three readings: both are told.
    assert (resp.json()["published"], resp.json()["readings"]) == (1, 3)
    health = client.get("/healthz").json()
    assert health["ok"] is True
    assert health["sources"]["gasco"]["connected"] is True
    assert "push" not in health["sources"]  # no broker behind an HTTP source
    assert (health["counters"]["published"], health["counters"]["readings"]) == (1, 3)


def test_sqlite_rejects_aggregate_an_unmapped_node(tmp_path) -> None:
    # A site bridge without the platform database keeps the same one-row-per-node quarantine.
    sink = SqliteRejects(tmp_path / "r.sqlite")
    for n in range(3):
        sink.quarantine(
            "spBv1.0/G/NDATA/E",
            "plant",
            Unknown("G/E", None, "not mapped", {"seq": n}, aggregate=True),
        )
    sink.quarantine("t", "plant", Unknown("G/F", None, "not mapped", {"seq": 9}, aggregate=True))
    sink.close()
    with sqlite3.connect(tmp_path / "r.sqlite") as db:
        found = dict(db.execute("SELECT sensor, payload FROM quarantine").fetchall())
    assert set(found) == {"G/E", "G/F"}
    ge = json.loads(found["G/E"])
    assert (ge["count"], ge["first"], ge["last"]) == (3, {"seq": 0}, {"seq": 2})
    assert json.loads(found["G/F"])["count"] == 1
