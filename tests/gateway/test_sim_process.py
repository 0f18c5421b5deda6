"""`oxy sim run` as a process, read by a third-party client, with faults switched from the CLI."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

from pymodbus.client import ModbusTcpClient

from gateway.main import sim_fault_command
from gateway.registers import ValueType, decode
from tests.fix_mqtt import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]


def _read(port: int) -> list[int] | None:
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=1)
    try:
        if not client.connect():
            return None
        rr = client.read_holding_registers(0, count=8, device_id=1)
        return None if rr.isError() else list(rr.registers)
    finally:
        client.close()


def test_sim_process_and_fault_control(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "sim.toml"
    cfg.write_text(
        f"""
[sim]
speed = 3600.0
update_interval_s = 0.2
control_file = "faults.json"

[[tanks]]
code = "BV-A.T1"
port = {port}
capacity_kg = 10000.0
diameter_m = 2.2
fill = 0.5
daily_kg = 24000.0
"""
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "sim", "--config", str(cfg)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        first = _read(port)
        assert first is not None
        time.sleep(1.0)  # one simulated hour at 24 t/day: the level visibly drops
        later = _read(port)
        assert later is not None
        assert decode(later[4:6], ValueType.FLOAT32) < decode(first[4:6], ValueType.FLOAT32) - 200

        sim_fault_command(cfg, "BV-A.T1", "out_of_range")
        time.sleep(1.5)
        regs = _read(port)
        assert regs is not None and math.isnan(decode(regs[0:2], ValueType.FLOAT32))
        assert regs[2] == 0xFFFF

        sim_fault_command(cfg, "BV-A.T1", "unreachable", duration=1.5)
        time.sleep(1.0)
        assert _read(port) is None
        time.sleep(2.0)
        regs = _read(port)  # the timed fault ended by itself
        assert regs is not None and not math.isnan(decode(regs[0:2], ValueType.FLOAT32))
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
