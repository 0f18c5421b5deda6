"""Modbus TCP servers (pymodbus) in front of simulated tanks, with faults on demand.

Faults: `stuck` (registers freeze), `out_of_range` (DP reads NaN, pressure the sentinel 0xFFFF),
`exception` (the unit answers with exception 4, device failure), `unreachable` (the server stops
listening and drops its connections). Faults come from the config's schedule, from the control
file (`oxy sim fault`) or from :meth:`Simulator.set_fault`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import time
from typing import Any

from pymodbus.constants import ExcCodes

from gateway.registers import Order, ValueType, encode
from gateway.sim.config import FAULT_KINDS, SimConfig
from gateway.sim.model import PRESSURE_SENTINEL, REG_DP, REG_PRESSURE, REGISTER_COUNT, TankModel

logger = logging.getLogger(__name__)


class SimulatedTank:
    """A tank model plus its Modbus server and fault state."""

    def __init__(self, model: TankModel) -> None:
        self.model = model
        self.spec = model.spec
        self.regs = model.registers()
        self.fault: str | None = None
        self.fault_until: float | None = None
        self.server: Any = None
        self.requests = 0

    async def _action(  # noqa: PLR0917 (pymodbus calls it positionally)
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        self.requests += 1
        if self.fault == "exception":
            return ExcCodes.DEVICE_FAILURE
        current_registers[: len(self.regs)] = self.regs
        return None

    async def start_server(self) -> None:
        """Listen on the tank's host and port."""
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        device = SimDevice(
            id=self.spec.unit_id,
            simdata=[
                SimData(address=0, count=REGISTER_COUNT, values=0, datatype=DataType.REGISTERS)
            ],
            action=self._action,
        )
        self.server = ModbusTcpServer(device, address=(self.spec.host, self.spec.port))
        await self.server.serve_forever(background=True)

    async def stop_server(self) -> None:
        """Stop listening and drop connections."""
        if self.server is not None:
            await self.server.shutdown()
            self.server = None

    def refresh(self) -> None:
        """Copy the model into the registers, unless a fault says otherwise."""
        if self.fault == "stuck":
            return
        regs = self.model.registers()
        if self.fault == "out_of_range":
            regs[REG_DP : REG_DP + 2] = encode(math.nan, ValueType.FLOAT32, Order.BIG, Order.BIG)
            regs[REG_PRESSURE] = PRESSURE_SENTINEL
        self.regs = regs


class Simulator:
    """All tanks of a simulator config, advanced in accelerated time."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        rng = random.Random(cfg.seed)
        self.tanks = {
            t.code: SimulatedTank(TankModel(t, random.Random(rng.random()))) for t in cfg.tanks
        }
        self.wall0 = time.time()
        self.sim_t = self.wall0
        self._task: asyncio.Task[None] | None = None
        self._control_mtime = 0.0

    async def start(self) -> None:
        """Start every server and the model loop."""
        for tank in self.tanks.values():
            await tank.start_server()
        logger.info(
            "simulator: %d tanks at speed x%g on %s",
            len(self.tanks),
            self.cfg.speed,
            ", ".join(f"{t.spec.code}@{t.spec.host}:{t.spec.port}" for t in self.tanks.values()),
        )
        self._task = asyncio.create_task(self._loop(), name="sim-loop")

    async def stop(self) -> None:
        """Stop the model loop and every server."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for tank in self.tanks.values():
            await tank.stop_server()

    async def set_fault(self, code: str, kind: str | None, duration_s: float = 0.0) -> None:
        """Switch a fault on (kind) or off (None) for a tank."""
        if kind is not None and kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}")
        tank = self.tanks[code]
        if tank.fault == kind:
            return
        previous = tank.fault
        tank.fault = kind
        tank.fault_until = time.time() + duration_s if kind and duration_s > 0 else None
        logger.info("simulator: tank %s fault %s -> %s", code, previous, kind)
        if kind == "unreachable":
            await tank.stop_server()
        elif previous == "unreachable":
            await tank.start_server()
        tank.refresh()

    async def _loop(self) -> None:
        interval = self.cfg.update_interval_s
        last = time.time()
        while True:
            await asyncio.sleep(interval)
            now = time.time()
            dt = (now - last) * self.cfg.speed
            last = now
            self.sim_t += dt
            for code, tank in self.tanks.items():
                for event in tank.model.advance(self.sim_t, dt):
                    logger.info("simulator: %s", event)
                if tank.fault_until is not None and now >= tank.fault_until:
                    await self.set_fault(code, None)
                tank.refresh()
            for f in self.cfg.faults:
                if f.at_s <= now - self.wall0 < f.at_s + interval * 1.5:
                    await self.set_fault(f.tank, f.kind, f.duration_s)
            await self._read_control()

    async def _read_control(self) -> None:
        path = self.cfg.control_file
        if path is None or not path.exists():
            return
        mtime = path.stat().st_mtime
        if mtime == self._control_mtime:
            return
        self._control_mtime = mtime
        try:
            wanted = json.loads(path.read_text())
        except (OSError, ValueError):
            logger.warning("simulator: cannot read control file %s", path)
            return
        for code, tank in self.tanks.items():
            entry = wanted.get(code)
            kind = entry.get("kind") if isinstance(entry, dict) else None
            until = entry.get("until") if isinstance(entry, dict) else None
            if until is not None and until <= time.time():
                kind = None
            if kind != tank.fault:
                await self.set_fault(code, kind, (until - time.time()) if until else 0.0)


async def run_simulator(cfg: SimConfig) -> None:
    """Run the simulator until cancelled."""
    sim = Simulator(cfg)
    await sim.start()
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
