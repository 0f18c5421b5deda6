"""A broker that speaks only MQTT 3.1.1 (the demo's in-process amqtt): the gateway falls back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from gateway.config import load
from tests.fix_mqtt import IN_CI, free_port, wait_port
from tests.gateway.conftest import RunningGateway, gateway_toml, tank

ROOT = Path(__file__).resolve().parents[2]


def test_falls_back_to_mqtt_311(bg, sim_factory, subscriber_factory, tmp_path: Path) -> None:
    try:
        import amqtt  # noqa: F401
    except ImportError:
        if IN_CI:
            pytest.fail("amqtt is required")
        pytest.skip("amqtt not installed")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "oxy.embedded_broker", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, timeout=20)
        t1 = tank("T1")
        sim_factory(t1)
        sub = subscriber_factory(port, protocol=mqtt.MQTTv311, client_id="sub311")
        run = RunningGateway(bg, load(gateway_toml(tmp_path, [t1], port, poll=0.5)))
        sub.wait_for(lambda: len(sub.of_kind("data")) >= 3, timeout=30)
        run.stop()
        assert run.gw.link is not None and run.gw.link.protocol == mqtt.MQTTv311
        assert any(s["online"] for s in sub.of_kind("state"))
        seqs = [m["seq"] for m in sub.of_kind("data")]
        assert seqs == sorted(seqs)
    finally:
        proc.terminate()
        proc.wait(10)
