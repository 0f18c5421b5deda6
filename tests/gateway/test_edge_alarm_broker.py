"""The edge alarm raises with the broker down (issue 11): the relay coil follows the tank level
locally, and the status message carries the alarm once the broker is back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.config import load
from gateway.status import read_status
from tests.gateway.conftest import RunningGateway, gateway_toml, tank
from tests.gateway.test_edge_alarm import RelayModule

RAISE_S = 2.0
CLEAR_S = 1.5


@pytest.mark.slow  # a fault test (a broker outage): the slow tier, run in CI
def test_low_level_raises_the_relay_with_the_broker_down(
    bg, sim_factory, broker_factory, subscriber_factory, tmp_path: Path
) -> None:
    broker = broker_factory()
    spec = tank("T1")  # 10,000 kg, 6,000 kg in it
    sim = sim_factory(spec)
    model = sim.tanks["T1"].model
    relay = RelayModule(bg)
    low, clear_at = model.table.dp_for(2000.0), model.table.dp_for(3000.0)  # ~29.0 / 39.3 inH2O
    path = gateway_toml(tmp_path, [spec], broker.port, poll=0.2)
    path.write_text(
        path.read_text()
        + f"""
[alarm]
raise_after_s = {RAISE_S}
clear_after_s = {CLEAR_S}
fault_after_s = 30
tanks = [{{ tank = "T1", low_dp = {low:.3f}, hysteresis = {clear_at - low:.3f} }}]

[alarm.relay]
host = "127.0.0.1"
port = {relay.port}
unit_id = {relay.unit_id}
address = 2
refresh_s = 2.0
"""
    )
    cfg = load(path)
    run = RunningGateway(bg, cfg)
    try:
        sub = subscriber_factory(broker.port, client_id="edge-alarm-subscriber")
        sub.wait_for(lambda: len(sub.of_kind("status")) >= 1 and len(sub.of_kind("data")) >= 2)
        assert relay.read("coil", 2) is False
        assert all(not a.startswith("low_level") for a in sub.of_kind("status")[-1]["alarms"])

        broker.stop()
        deadline = time.monotonic() + 10
        while run.gw.link is not None and run.gw.link.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert run.gw.link is not None and not run.gw.link.connected

        model.contents_kg = 1500.0  # ~23.8 inH2O: below the threshold
        took = relay.wait("coil", 2, True, timeout=RAISE_S + 3.0)
        assert took >= RAISE_S - 0.5  # debounced (the first low poll comes ≤ 0.3 s after)
        assert run.gw.edge_alarm is not None and run.gw.edge_alarm.active == ["low_level:T1"]
        local = read_status(cfg)  # what `oxy gateway status` shows on the box, broker or not
        deadline = time.monotonic() + 3
        while "low_level:T1" not in local.get("alarms", []) and time.monotonic() < deadline:
            time.sleep(0.1)
            local = read_status(cfg)
        assert {"low_level:T1", "broker_unreachable"} <= set(local["alarms"])
        print(f"\nedge alarm: relay set {took:.2f}s after the level fell (debounce {RAISE_S}s)")

        broker.start()
        # The broker sees the alarm once it is back, and soon no longer "broker unreachable" (a
        # status built just before the reconnect may still carry it on its way out).
        sub.wait_for(
            lambda: any(
                "low_level:T1" in s["alarms"] and "broker_unreachable" not in s["alarms"]
                for s in sub.of_kind("status")
            ),
            timeout=15,
        )

        model.contents_kg = 2500.0  # ~34 inH2O: above the threshold, below threshold + hysteresis
        time.sleep(CLEAR_S + 1.5)
        assert relay.read("coil", 2) is True
        model.contents_kg = 4000.0  # ~49.7 inH2O: recovered
        relay.wait("coil", 2, False, timeout=CLEAR_S + 3.0)
        assert run.gw.edge_alarm.active == []
        sub.wait_for(lambda: sub.of_kind("status")[-1]["alarms"] == [], timeout=10)
    finally:
        run.stop()
        relay.stop()
