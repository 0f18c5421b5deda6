"""Modbus RTU polling over a pseudo-terminal pair (socat) against a real pymodbus serial server."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import parse
from gateway.poller import DevicePoller
from gateway.registers import Order, ValueType, encode
from tests.fix_mqtt import IN_CI
from tests.gateway.conftest import LoopThread


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    socat = shutil.which("socat") or "/usr/bin/socat"
    if not Path(socat).exists():
        if IN_CI:
            pytest.fail("socat is required for the RTU tests")
        pytest.skip("socat not installed")
    a, b = tmp_path / "ttyA", tmp_path / "ttyB"
    proc = subprocess.Popen(
        [socat, f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 5
    while not (a.exists() and b.exists()) and time.monotonic() < deadline:
        time.sleep(0.02)
    yield str(a), str(b)
    proc.terminate()
    proc.wait(5)


CONFIG = """
[gateway]
site = "S1"
code = "gw-rtu"
[mqtt]
url = "mqtt://127.0.0.1:1"
[profiles.dp-int16-le]
type = "int16"
byte_order = "little"
unit = "mmH2O"
scale = 0.1
[profiles.p-f32]
function = "input"
type = "float32"
word_order = "little"
unit = "psi"
[[devices]]
name = "rtu-7"
transport = "rtu"
serial_port = "{port}"
baudrate = 38400
unit_id = 7
timeout_s = 0.5
sensors = [
  {{ code = "T2-dp", tank = "T2", quantity = "dp", profile = "dp-int16-le", address = 100 }},
  {{ code = "T2-p", tank = "T2", quantity = "head_pressure", profile = "p-f32", address = 101 }},
]
"""


def test_rtu_poll_over_pty(bg: LoopThread, pty_pair: tuple[str, str]) -> None:
    server_end, client_end = pty_pair
    dp_words = encode(1270.0, ValueType.INT16, Order.LITTLE)  # 127.0 mmH2O = 5.0 inH2O
    p_words = encode(145.0377, ValueType.FLOAT32, Order.BIG, Order.LITTLE)  # psi = 10 bar
    regs = [0] * 100 + dp_words + p_words + [0] * 10

    async def start_server() -> object:
        from pymodbus.server import ModbusSerialServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        dev = SimDevice(
            id=7, simdata=[SimData(0, count=len(regs), values=regs, datatype=DataType.REGISTERS)]
        )
        server = ModbusSerialServer(dev, port=server_end, baudrate=38400)
        await server.serve_forever(background=True)
        return server

    server = bg.run(start_server())
    try:
        cfg = parse(CONFIG.format(port=client_end))
        poller = DevicePoller(cfg.devices[0], lambda rows: None)
        # holding 100 and input 101..102 are different tables: two requests per poll
        assert len(poller.blocks) == 2
        rows = []
        for _ in range(3):
            rows = bg.run(poller.poll_once(time.time()))
            if all(r.q == "good" for r in rows):
                break
            time.sleep(0.3)
        got = {r.sensor: (r.value, r.q) for r in rows}
        assert got["T2-dp"][1] == "good" and got["T2-dp"][0] == pytest.approx(5.0, abs=0.01)
        assert got["T2-p"][1] == "good" and got["T2-p"][0] == pytest.approx(10.0, abs=0.001)
        assert poller.state == "ok"

        # a wrong unit id gets no answer on a serial line: comm_error, and the poller goes on
        wrong = parse(CONFIG.format(port=client_end).replace("unit_id = 7", "unit_id = 9"))
        poller.close()
        other = DevicePoller(wrong.devices[0], lambda rows: None)
        rows = bg.run(other.poll_once(time.time()))
        assert {r.q for r in rows} == {"comm_error"} and other.state == "failing"
        other.close()
    finally:
        bg.run(server.shutdown())  # type: ignore[attr-defined]
