"""Modbus TCP polling against real in-process pymodbus servers (the tank simulator)."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from pymodbus.client import ModbusTcpClient

from gateway.config import load
from gateway.poller import DevicePoller
from gateway.registers import ValueType, decode
from gateway.sim.model import REG_CONTENTS, REG_DP, REG_PRESSURE
from oxy.calibration import vertical_tank_table
from tests.gateway.conftest import LoopThread, gateway_toml, tank


def poller_for(tmp_path: Path, spec: object, **kw: object) -> DevicePoller:
    cfg = load(gateway_toml(tmp_path, [spec], 1, **kw))  # type: ignore[list-item]
    return DevicePoller(cfg.devices[0], lambda rows: None)


def poll(bg: LoopThread, p: DevicePoller) -> dict[str, tuple[float | None, str]]:
    rows = bg.run(p.poll_once(time.time()))
    return {r.sensor: (r.value, r.q) for r in rows}


def test_reads_tank_in_one_request_per_poll(bg: LoopThread, sim_factory, tmp_path: Path) -> None:
    spec = tank("T1")
    sim = sim_factory(spec)
    p = poller_for(tmp_path, spec)
    before = sim.tanks["T1"].requests
    for _ in range(3):
        got = poll(bg, p)
    assert p.requests == 3 and p.polls == 3
    assert sim.tanks["T1"].requests - before == 3  # DP + pressure: one request per poll
    model = sim.tanks["T1"].model
    dp, q = got["T1-dp"]
    assert q == "good" and dp == pytest.approx(model.table.dp_for(model.contents_kg), abs=0.2)
    assert got["T1-p"][1] == "good" and got["T1-p"][0] == pytest.approx(10.0, abs=1.5)
    assert p.state == "ok" and p.last_good_poll is not None
    bg.run(_close(p))


async def _close(p: DevicePoller) -> None:
    p.close()


def test_faults_are_flagged_and_the_poller_recovers(
    bg: LoopThread, sim_factory, tmp_path: Path
) -> None:
    spec = tank("T1")
    sim = sim_factory(spec)
    p = poller_for(tmp_path, spec, stale_dp=0.3)
    assert poll(bg, p)["T1-dp"][1] == "good"

    bg.run(sim.set_fault("T1", "out_of_range"))
    got = poll(bg, p)
    assert got == {"T1-dp": (None, "out_of_range"), "T1-p": (None, "out_of_range")}

    bg.run(sim.set_fault("T1", "exception"))  # the unit answers with an exception response
    assert poll(bg, p) == {"T1-dp": (None, "comm_error"), "T1-p": (None, "comm_error")}
    assert p.state == "failing" and "exception" in (p.error or "")

    bg.run(sim.set_fault("T1", None))
    assert poll(bg, p)["T1-dp"][1] == "good" and p.state == "ok"

    bg.run(sim.set_fault("T1", "stuck"))
    qualities = []
    for _ in range(6):
        qualities.append(poll(bg, p)["T1-dp"][1])
        time.sleep(0.1)
    assert qualities[0] == "good" and qualities[-1] == "stale"

    bg.run(sim.set_fault("T1", "unreachable"))
    assert poll(bg, p) == {"T1-dp": (None, "comm_error"), "T1-p": (None, "comm_error")}
    assert p.state == "failing"
    bg.run(sim.set_fault("T1", None))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and poll(bg, p)["T1-dp"][1] != "good":
        time.sleep(0.2)
    assert p.state == "ok"  # reconnected by itself after the device came back
    bg.run(_close(p))


def test_unanswerable_request_is_comm_error_not_a_crash(
    bg: LoopThread, sim_factory, tmp_path: Path
) -> None:
    spec = tank("T1")
    sim_factory(spec)
    path = gateway_toml(tmp_path, [spec], 1)
    # a float32 at address 7 needs registers 7..8; the unit has 0..7 → exception response
    text = path.read_text().replace('profile = "p", address = 2', 'profile = "dp", address = 7')
    text = text.replace(
        'quantity = "head_pressure", profile = "dp"', 'quantity = "dp", profile = "dp"'
    )
    path.write_text(text)
    p = DevicePoller(load(path).devices[0], lambda rows: None)
    got = poll(bg, p)
    assert got == {"T1-dp": (None, "comm_error"), "T1-p": (None, "comm_error")}
    got = poll(bg, p)  # and again: the loop goes on
    assert p.polls == 2 and p.state == "failing"
    bg.run(_close(p))


def test_third_party_client_reads_the_simulator(sim_factory) -> None:
    spec = tank("T1", capacity_kg=20000.0, diameter_m=2.6, fill=0.45)
    sim = sim_factory(spec)
    client = ModbusTcpClient("127.0.0.1", port=spec.port)
    assert client.connect()
    try:
        rr = client.read_holding_registers(0, count=8, device_id=1)
        assert not rr.isError()
        regs = rr.registers
    finally:
        client.close()
    dp = decode(regs[REG_DP : REG_DP + 2], ValueType.FLOAT32)
    contents = decode(regs[REG_CONTENTS : REG_CONTENTS + 2], ValueType.FLOAT32)
    assert regs[REG_PRESSURE] / 100 == pytest.approx(10.0, abs=1.5)
    # the centre's table (same geometry) recovers the contents from DP
    table = vertical_tank_table(20000.0, 2.6)
    assert table.contents_kg(dp) == pytest.approx(contents, rel=0.01)
    assert contents == pytest.approx(sim.tanks["T1"].model.contents_kg, rel=0.01)
    assert struct.pack(">HH", *regs[0:2])  # plain big-endian words
