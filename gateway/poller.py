"""One asyncio task per Modbus device: contiguous registers in one request, errors become data.

A device error response, a timeout, a short answer or a refused connection turn into readings of
quality comm_error for that device's sensors; the loop never dies of them and never stops the
other devices. State changes (ok → failing → ok) are logged once each, not every failed poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from gateway.backoff import Backoff
from gateway.config import DeviceConfig
from gateway.engineering import Row, SensorState
from gateway.modbus_link import LinkState, ModbusLink
from gateway.registers import Block, Function, plan_blocks

logger = logging.getLogger(__name__)

Sink = Callable[[list[Row]], None]
DeviceState = LinkState


class DevicePoller:
    """Polls one device on a fixed cadence and hands each poll's readings to `sink`."""

    def __init__(self, device: DeviceConfig, sink: Sink) -> None:
        self.device = device
        self.sink = sink
        self.sensors = [SensorState(s) for s in device.sensors]
        self.blocks: list[Block] = plan_blocks(
            [(s.profile.function, s.address, s.profile.count) for s in device.sensors],
            max_gap=device.max_gap,
        )
        self.last_good_poll: datetime | None = None
        self.requests = 0
        self.polls = 0
        self.link = ModbusLink(
            f"device {device.name}", device.transport, device.timeout_s, self._transition
        )
        self._backoff = Backoff(base=0.5, cap=device.reconnect_max_s)
        self._retry_at = 0.0
        self.on_transition: Callable[[DevicePoller], None] | None = None

    @property
    def state(self) -> DeviceState:
        """ok, failing (with the reason in `error`) or unknown (not polled yet)."""
        return self.link.state

    @property
    def error(self) -> str | None:
        """Why the device is failing."""
        return self.link.error

    def _transition(self) -> None:
        if self.on_transition is not None:
            self.on_transition(self)

    async def run(self) -> None:
        """Poll until cancelled; ticks are aligned to the interval so devices poll together."""
        interval = self.device.poll_interval_s
        try:
            next_tick = (time.time() // interval + 1) * interval
            while True:
                await asyncio.sleep(max(0.0, next_tick - time.time()))
                ts = time.time()
                try:
                    rows = await self.poll_once(ts)
                except Exception as exc:
                    # A bug or an unexpected library error must not end this device's loop.
                    self.link.unexpected(exc)
                    rows = [s.failed(ts) for s in self.sensors]
                self.sink(rows)
                next_tick += interval
                if next_tick <= time.time():  # fell behind (slow device): skip, do not burst
                    next_tick = (time.time() // interval + 1) * interval
        finally:
            self.close()

    def close(self) -> None:
        """Drop the connection."""
        self.link.close()

    async def poll_once(self, ts: float) -> list[Row]:
        """One poll: every block read once; returns one reading per sensor."""
        self.polls += 1
        if not await self._ensure_connected():
            return [s.failed(ts) for s in self.sensors]
        words: dict[tuple[Function, int], int] = {}
        failed = False
        for block in self.blocks:
            regs = await self._read(block)
            if regs is None:
                failed = True
                continue
            for i, w in enumerate(regs):
                words[(block.function, block.address + i)] = w
        rows = []
        for s in self.sensors:
            p = s.binding.profile
            try:
                regs_s = [words[(p.function, s.binding.address + i)] for i in range(p.count)]
            except KeyError:
                rows.append(s.failed(ts))
                continue
            rows.append(s.convert(regs_s, ts))
        if not failed:
            self.last_good_poll = datetime.fromtimestamp(ts, UTC)
            self.link.set_state("ok", None)
        return rows

    async def _ensure_connected(self) -> bool:
        if self.link.connected:
            return True
        now = time.monotonic()
        if now < self._retry_at:
            return False
        if not await self.link.connect():
            self._retry_at = time.monotonic() + self._backoff.next_delay()
            return False
        self._backoff.reset()
        return True

    async def _read(self, block: Block) -> list[int] | None:
        unit = self.device.unit_id
        self.requests += 1
        if block.function is Function.HOLDING:
            rr = await self.link.request(
                lambda c: c.read_holding_registers(
                    block.address, count=block.count, device_id=unit
                ),
                str(block),
            )
        else:
            rr = await self.link.request(
                lambda c: c.read_input_registers(block.address, count=block.count, device_id=unit),
                str(block),
            )
        if rr is None:
            return None
        regs = list(getattr(rr, "registers", []) or [])
        if len(regs) != block.count:
            self.link.set_state("failing", f"asked {block.count} registers, got {len(regs)}")
            return None
        return regs
