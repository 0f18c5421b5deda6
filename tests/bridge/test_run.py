"""The delivery guarantee across a platform-broker outage and a bridge restart, and
`oxy bridge run` as a process (TOML config, HTTP push on a port, SQLite rejects)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from firmware_bridge.config import hash_token

from tests.bridge.conftest import wait_rows
from tests.bridge.test_vendor_http import GASCO
from tests.fix_mqtt import free_port, wait_port

GOOD = b'{"t": 1764300000000, "ma": 12000}'


def test_unacked_until_handed_on(
    broker_factory, db_url, bridge_factory, collector_factory, foreign_factory
):
    foreign = broker_factory()
    platform = broker_factory()
    source: dict[str, Any] = {**GASCO, "mqtt_url": foreign.url}
    first = bridge_factory(platform.port, db_url, [source])
    platform.stop()  # the platform broker goes away: nothing can be handed on

    foreign_factory(foreign.port).send("gasco/unit-17/up", GOOD)
    deadline = time.monotonic() + 5
    while first.counters["messages"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert first.counters["messages"] == 1
    # The bridge dies with the reading only in its memory. Had it acknowledged on receipt,
    # the reading would be lost now.
    first.stop()

    platform.start()
    out = collector_factory(platform.port, "oxy/v1/#")
    bridge_factory(platform.port, db_url, [source])  # same client ids: same foreign session
    out.wait(lambda t, p: t == "oxy/v1/BV-E/gw-bv-e/data", timeout=15)
    [msg] = out.contract("data", "gw-bv-e")
    assert msg.readings[0].value == 50.0


CONFIG = """
state_dir = "{state}"

[onward]
mqtt_url = "mqtt://127.0.0.1:{port}"
client_id = "bridge-cli-test"

[rejects]
sqlite_path = "{state}/rejects.sqlite"

[http]
enabled = true
port = {http_port}

[[sources]]
name = "push"
protocol = "http"
timestamp_path = "ts"

[[sources.devices]]
id = "d1"
site = "BV-G"
gateway = "gw-bv-g"
token_sha256 = "{digest}"
points = [{{ path = "dp", sensor = "T1-dp", unit = "inH2O" }}]

[[sources]]
name = "gasco"
protocol = "json"
topic = "gasco/+/up"
device_id_topic_level = 1
timestamp_path = "t"
timestamp_format = "epoch_ms"

[[sources.devices]]
id = "unit-17"
site = "BV-E"
gateway = "gw-bv-e"
points = [{{ path = "ma", sensor = "T1-level", unit = "%", scale = 0.00625, offset = -25 }}]

[[sources]]
name = "plant"
protocol = "sparkplug"
topic = "spBv1.0/Plant/#"
host_id = "oxy-cli"
"""


def test_oxy_bridge_run(broker, tmp_path: Path, collector_factory, foreign_factory):
    out = collector_factory(broker.port, "oxy/v1/#")
    http_port = free_port()
    config = tmp_path / "bridge.toml"
    config.write_text(
        CONFIG.format(
            state=tmp_path, port=broker.port, http_port=http_port, digest=hash_token("tok-1")
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXY_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "oxy", "bridge", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(http_port, timeout=20)
        url = f"http://127.0.0.1:{http_port}/v1/push/push/d1"
        auth = {"Authorization": "Bearer tok-1"}
        deadline = time.monotonic() + 10
        while True:  # the HTTP port may open before the platform connection is up
            r = httpx.post(url, json={"ts": "2026-11-28T03:30:00Z", "dp": 42.0}, headers=auth)
            if r.status_code != 503 or time.monotonic() > deadline:
                break
        assert r.status_code == 202, r.text
        out.wait(lambda t, p: t == "oxy/v1/BV-G/gw-bv-g/data")

        foreign_factory(broker.port).send("gasco/unit-17/up", GOOD)
        out.wait(lambda t, p: t == "oxy/v1/BV-E/gw-bv-e/data")

        bad = httpx.post(url, content=b"not json", headers=auth)
        assert bad.status_code == 422
        with sqlite3.connect(tmp_path / "rejects.sqlite") as db:
            [(topic, reason)] = db.execute("SELECT topic, reason FROM dead_letters").fetchall()
        assert topic == "http/push/d1" and "not JSON" in reason
        # seq survives restarts: it is kept in the state dir, in the end-to-end outbox (the
        # default), where both messages wait for ingest's watermark (no ingest runs here).
        with sqlite3.connect(tmp_path / "bridge-outbox.sqlite") as db:
            assert dict(
                ((s, g), n) for s, g, n in db.execute("SELECT site, gateway, seq FROM streams")
            ) == {("BV-G", "gw-bv-g"): 1, ("BV-E", "gw-bv-e"): 1}
            [(waiting,)] = db.execute("SELECT count(*) FROM msgs").fetchall()
            assert waiting == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            output = proc.communicate(timeout=15)[0].decode()
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, output
    # SIGTERM: the Sparkplug host said offline (retained) before it disconnected; the Will
    # (which only fires on a lost connection) would not have.
    late = collector_factory(broker.port, "spBv1.0/STATE/#")
    [(_, state)] = late.wait(lambda t, p: t == "spBv1.0/STATE/oxy-cli")
    assert json.loads(state)["online"] is False


def test_bad_config_is_one_clear_line(tmp_path: Path):
    config = tmp_path / "bad.toml"
    config.write_text(
        '[[sources]]\nname = "x"\nprotocol = "json"\n'
        '[[sources.devices]]\nid = "a"\nsite = "S"\ngateway = "g"\n'
        'points = [{ path = "v", sensor = "s", unit = "furlongs" }]\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXY_")}
    r = subprocess.run(
        [sys.executable, "-m", "oxy", "bridge", "run", "--config", str(config)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "a json source needs `topic`" in lines[0] or "unknown unit 'furlongs'" in lines[0]


def test_example_config_is_valid(monkeypatch: pytest.MonkeyPatch):
    from firmware_bridge.config import load_config

    monkeypatch.setenv("OXY_BRIDGE_TTS_API_KEY", "NNSXS.EXAMPLE")

    example = Path(__file__).parents[2] / "deploy" / "bridge" / "bridge.example.toml"
    config = load_config(example)
    assert {s.protocol for s in config.sources} == {
        "sparkplug",
        "chirpstack",
        "tts",
        "json",
        "http",
    }
    assert config.source("chirpstack").device("0004A30B001C0530") is not None  # EUI case
    assert config.source("tts").password == "NNSXS.EXAMPLE"


def test_reject_not_acked_until_recorded(broker, db_url, bridge_factory, foreign_factory):
    source: dict[str, Any] = {**GASCO}
    down = "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=1"
    first = bridge_factory(broker.port, down, [source])
    foreign_factory(broker.port).send("gasco/unit-17/up", b"{broken")
    deadline = time.monotonic() + 10
    while first.counters["errors"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert first.counters["errors"] == 1  # the dead letter could not be written ...
    first.stop()
    # ... so the message was not acknowledged: the next bridge gets it and records it.
    bridge_factory(broker.port, db_url, [source])
    [(reason,)] = wait_rows(db_url, "SELECT reason FROM dead_letters", 1)
    assert "not JSON" in reason
