"""`oxy sim run` as a process, read by a third-party client, with faults switched from the CLI."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

from gateway.main import sim_fault_command
from gateway.registers import ValueType, decode
from tests.fix_mqtt import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]


def _read(port: int) -> list[int] | None:
    """The first 8 registers, or None when the simulator does not answer: refused, timed out,
    or the connection reset (an 'unreachable' fault may drop it while the client reads)."""
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=1)
    try:
        if not client.connect():
            return None
        rr = client.read_holding_registers(0, count=8, device_id=1)
        return None if rr.isError() else list(rr.registers)
    except (OSError, ModbusException):
        return None
    finally:
        client.close()


def _until(port: int, ok: Callable[[list[int]], bool], timeout: float = 5.0) -> list[int]:
    """The registers once the simulator answers and `ok` holds for them (polled, not slept on:
    the simulator updates every 0.2 s); the last answer, or [] when it never answered, at the
    deadline, for the caller's assert to show."""
    deadline = time.monotonic() + timeout
    regs: list[int] | None = None
    while True:
        got = _read(port)
        regs = got if got is not None else regs
        if (got is not None and ok(got)) or time.monotonic() > deadline:
            return regs or []
        time.sleep(0.05)


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
        start_kg = decode(first[4:6], ValueType.FLOAT32)
        # At 3600x, 24 t/day is 1 t per real second: the level visibly drops within a second.
        later = _until(port, lambda r: decode(r[4:6], ValueType.FLOAT32) < start_kg - 200)
        assert decode(later[4:6], ValueType.FLOAT32) < start_kg - 200

        sim_fault_command(cfg, "BV-A.T1", "out_of_range")
        regs = _until(port, lambda r: math.isnan(decode(r[0:2], ValueType.FLOAT32)))
        assert math.isnan(decode(regs[0:2], ValueType.FLOAT32))
        assert regs[2] == 0xFFFF

        sim_fault_command(cfg, "BV-A.T1", "unreachable", duration=1.5)
        went = time.monotonic()
        deadline = went + 5
        while _read(port) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _read(port) is None
        regs = _until(port, lambda r: True)  # the timed fault ends by itself
        assert time.monotonic() - went >= 1.0  # and not before its time
        assert not math.isnan(decode(regs[0:2], ValueType.FLOAT32))
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
