"""The edge alarm: debounce and hysteresis on readings, then end to end with a real relay module
(pymodbus server) and the tank simulator, with no broker at all."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import ModbusTcpClient

from gateway.alarm import Debounce, EdgeAlarm
from gateway.config import load, parse
from gateway.engineering import Row
from gateway.status import format_status, read_status
from tests.fix_mqtt import free_port
from tests.gateway.conftest import LoopThread, RunningGateway, gateway_toml, tank


class RelayModule:
    """A Modbus TCP relay/IO module (real pymodbus server): 16 coils and 16 holding registers.

    `restart()` brings it back with every output off, like a module after a power cycle.
    """

    def __init__(self, bg: LoopThread, unit_id: int = 3) -> None:
        self.bg, self.unit_id, self.port = bg, unit_id, free_port()
        self.server: Any = None
        self.writes: list[tuple[int, int, Any]] = []
        self.start()

    async def _action(  # pymodbus calls it with positional arguments
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> None:
        if set_values is not None:
            self.writes.append((function_code, address, list(set_values)))

    def start(self) -> None:
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        def block(kind: DataType, value: Any) -> list[SimData]:
            return [SimData(0, count=16, values=value, datatype=kind)]

        async def start() -> Any:
            device = SimDevice(
                id=self.unit_id,
                simdata=(
                    block(DataType.BITS, False),
                    block(DataType.BITS, False),
                    block(DataType.REGISTERS, 0),
                    block(DataType.REGISTERS, 0),
                ),
                action=self._action,
            )
            server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
            await server.serve_forever(background=True)
            return server

        self.server = self.bg.run(start())

    def stop(self) -> None:
        if self.server is not None:
            self.bg.run(self.server.shutdown())
            self.server = None

    def read(self, kind: str, address: int) -> bool | int:
        """Read an output with an independent (synchronous) client."""
        client = ModbusTcpClient("127.0.0.1", port=self.port, timeout=2)
        assert client.connect()
        try:
            if kind == "coil":
                rr = client.read_coils(address, count=1, device_id=self.unit_id)
                assert not rr.isError()
                return bool(rr.bits[0])
            rr = client.read_holding_registers(address, count=1, device_id=self.unit_id)
            assert not rr.isError()
            return int(rr.registers[0])
        finally:
            client.close()

    def wait(self, kind: str, address: int, value: bool | int, timeout: float) -> float:
        """Wait until the output reads `value`; the seconds it took."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.read(kind, address) == value:
                return time.monotonic() - t0
            time.sleep(0.1)
        raise AssertionError(f"{kind} {address} did not become {value} within {timeout}s")


@pytest.fixture
def relay_module(bg: LoopThread) -> Any:
    made: list[RelayModule] = []

    def make(**kw: Any) -> RelayModule:
        m = RelayModule(bg, **kw)
        made.append(m)
        return m

    yield make
    for m in made:
        m.stop()


async def _on_loop(fn: Any) -> None:
    fn()


def row(sensor: str, value: float | None, q: str = "good") -> Row:
    return Row(sensor, 0, value, "inH2O", q)


# ---- the logic, with an explicit clock


def test_debounce_holds_before_changing() -> None:
    d = Debounce(raise_after_s=5.0, clear_after_s=10.0)
    assert not d.update(True, 100.0) and not d.update(True, 104.9)
    assert d.update(True, 105.0) and d.active
    assert not d.update(False, 106.0)
    assert not d.update(True, 107.0)  # back before the clear time: the clear timer restarts
    assert not d.update(False, 108.0) and not d.update(False, 117.9)
    assert d.update(False, 118.0) and not d.active


def alarm_site(tmp_path: Path, alarm: str, **kw: Any) -> Any:
    return parse(gateway_toml(tmp_path, [tank("T1")], 1, **kw).read_text() + alarm)


def test_low_level_hysteresis_does_not_chatter(tmp_path: Path) -> None:
    cfg = alarm_site(
        tmp_path,
        """
[alarm]
raise_after_s = 2
clear_after_s = 3
fault_after_s = 0
tanks = [{ tank = "T1", low_dp = 30, hysteresis = 5 }]
""",
    )
    changes: list[tuple[str, bool, float]] = []
    clock = [0.0]
    edge = EdgeAlarm(cfg, lambda key, active, detail: changes.append((key, active, clock[0])))

    def feed(value: float, seconds: float) -> None:
        for _ in range(int(seconds * 10)):
            clock[0] += 0.1
            edge.observe([row("T1-dp", value), row("T1-p", 10.0)], clock[0])

    feed(40.0, 5)
    feed(29.0, 1.5)  # below, but not for long enough
    feed(31.0, 1)
    assert changes == []
    feed(29.0, 2.5)
    assert [c[:2] for c in changes] == [("low_level:T1", True)]
    assert edge.active == ["low_level:T1"] and edge.any_active(("low_level",))
    # noise around the threshold, and a climb that stays below threshold + hysteresis: no clear
    for _ in range(10):
        feed(30.5, 0.5)
        feed(29.5, 0.5)
    feed(34.0, 10)
    assert len(changes) == 1
    # bad readings say nothing about the level: the alarm holds
    for _ in range(50):
        clock[0] += 0.1
        edge.observe([row("T1-dp", None, "comm_error")], clock[0])
    feed(35.5, 2.9)
    assert len(changes) == 1
    feed(35.5, 0.2)
    assert [c[:2] for c in changes] == [("low_level:T1", True), ("low_level:T1", False)]
    assert edge.active == []


def test_sensor_fault_after_n_seconds_of_bad_quality_or_silence(tmp_path: Path) -> None:
    cfg = alarm_site(
        tmp_path,
        """
[alarm]
clear_after_s = 2
fault_after_s = 5
fault_sensors = ["T1-dp"]
""",
    )
    changes: list[tuple[str, bool, str]] = []
    edge = EdgeAlarm(cfg, lambda *c: changes.append(c))
    t = time.monotonic()
    edge.observe([row("T1-dp", 50.0)], t)
    for i in range(1, 50):  # stale and out_of_range alternate: still one fault
        edge.observe([row("T1-dp", 50.0, "stale" if i % 2 else "out_of_range")], t + i * 0.1)
    assert changes == []
    edge.observe([row("T1-dp", None, "comm_error")], t + 5.1)
    assert changes == [("sensor_fault:T1-dp", True, "quality comm_error")]
    edge.observe([row("T1-dp", 50.0)], t + 6.0)
    edge.evaluate(t + 7.9)
    assert len(changes) == 1
    edge.evaluate(t + 8.0)
    assert changes[-1][:2] == ("sensor_fault:T1-dp", False)
    # silence: no reading since t+6 for 3 polls + timeout (3.5 s), then the fault hold time
    edge.evaluate(t + 9.4)
    edge.evaluate(t + 9.6)
    edge.evaluate(t + 9.6 + 4.9)
    assert len(changes) == 2
    edge.evaluate(t + 9.6 + 5.0)
    assert changes[-1] == ("sensor_fault:T1-dp", True, "no reading")
    assert "T1-p" not in str(changes)  # only the listed sensors


# ---- end to end: simulator → gateway → relay module, no broker


def edge_config(
    tmp_path: Path, spec: Any, relay: RelayModule, alarm: str, relay_extra: str = ""
) -> Path:
    # The broker URL points at a port where nothing listens: the alarm must not need it.
    path = gateway_toml(tmp_path, [spec], free_port(), poll=0.2)
    path.write_text(
        path.read_text()
        + alarm
        + f"""
[alarm.relay]
host = "127.0.0.1"
port = {relay.port}
unit_id = {relay.unit_id}
refresh_s = 1.0
reconnect_max_s = 0.5
timeout_s = 0.5
{relay_extra}
"""
    )
    return path


def test_sensor_fault_drives_a_fail_safe_coil(
    bg: LoopThread, sim_factory, relay_module, tmp_path: Path
) -> None:
    spec = tank("T1")
    sim = sim_factory(spec)
    relay = relay_module()
    cfg = load(
        edge_config(
            tmp_path,
            spec,
            relay,
            """
[alarm]
clear_after_s = 1.0
fault_after_s = 2.0
""",
            "address = 5\nactive_low = true",
        )
    )
    run = RunningGateway(bg, cfg)
    try:
        relay.wait("coil", 5, True, timeout=5)  # fail-safe: energised while all is well
        assert run.gw.edge_alarm is not None and run.gw.edge_alarm.active == []
        faulted = time.monotonic()
        bg.run(sim.set_fault("T1", "unreachable"))
        relay.wait("coil", 5, False, timeout=10)
        took = time.monotonic() - faulted
        assert took >= 2.0  # not before fault_after_s of comm_error
        assert took < 2.0 + 2.0, f"the relay dropped {took:.1f}s after the fault"
        assert run.gw.edge_alarm.active == ["sensor_fault:T1-dp", "sensor_fault:T1-p"]
        status = run.gw.status()
        assert {"sensor_fault:T1-dp", "sensor_fault:T1-p", "device_failing"} <= set(status.alarms)
        assert "broker_unreachable" in status.alarms

        bg.run(sim.set_fault("T1", None))
        relay.wait("coil", 5, True, timeout=10)
        assert run.gw.edge_alarm.active == []
        assert time.monotonic() - faulted > 2.0
    finally:
        run.stop()


def test_relay_module_down_then_back_gets_the_state_again(
    bg: LoopThread,
    sim_factory,
    relay_module,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = tank("T1")
    sim = sim_factory(spec)
    model = sim.tanks["T1"].model
    relay = relay_module()
    low = model.table.dp_for(2000.0)
    cfg = load(
        edge_config(
            tmp_path,
            spec,
            relay,
            f"""
[alarm]
raise_after_s = 0.5
fault_after_s = 0
tanks = [{{ tank = "T1", low_dp = {low:.3f} }}]
""",
            'kind = "register"\naddress = 7\non_value = 255\ndrive = ["low_level"]',
        )
    )
    caplog.set_level(logging.INFO, logger="gateway")
    run = RunningGateway(bg, cfg)
    try:
        relay.wait("register", 7, 0, timeout=5)
        model.contents_kg = 1500.0
        relay.wait("register", 7, 255, timeout=5)
        assert run.gw.relay is not None and run.gw.relay.state == "ok"

        # Count the gateway's failed writes, to wait for several retries instead of a fixed
        # 4 s (the retries come every ≤ 0.5 s, backoff capped by reconnect_max_s).
        failed: list[float] = []
        write = run.gw.relay.write

        async def counted(alarm: bool) -> bool:
            ok = False
            try:
                ok = await write(alarm)
                return ok
            finally:
                if not ok:
                    failed.append(time.monotonic())

        monkeypatch.setattr(run.gw.relay, "write", counted)
        relay.stop()
        deadline = time.monotonic() + 10
        while len(failed) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(failed) >= 4, "several retries fail meanwhile"
        assert run.gw.relay.state == "failing"
        assert "relay_failing" in run.gw.status().alarms
        bg.run(_on_loop(run.gw.write_status))  # the outbox connection belongs to the loop
        shown = format_status(read_status(cfg))  # `oxy gateway status` on the box
        assert f"alarm relay 127.0.0.1:{relay.port}/3/register:7: failing" in shown
        assert "low_level:T1" in shown and "relay_failing" in shown
        failing_logs = [r for r in caplog.records if "alarm relay" in r.getMessage()]
        assert len(failing_logs) == 1, "a failing relay is logged once, not on every retry"

        writes_before = len(relay.writes)
        relay.start()  # back, with its outputs off (a power-cycled module: a fresh SimDevice)
        took = relay.wait("register", 7, 255, timeout=5)
        assert len(relay.writes) > writes_before  # written again by the gateway, not left over
        assert took < 2.5  # re-asserted by the retry (≤ 0.5 s) or the refresh (1 s)
        deadline = time.monotonic() + 2
        while run.gw.relay.state != "ok" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert run.gw.relay.state == "ok"
        assert "relay_failing" not in run.gw.status().alarms
        assert any("recovered" in r.getMessage() for r in caplog.records)
        assert all(fc == 6 for fc, _, _ in relay.writes)  # function 6, never a coil
    finally:
        run.stop()
