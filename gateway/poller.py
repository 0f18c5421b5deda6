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
from typing import Any, Literal

from gateway.backoff import Backoff
from gateway.config import DeviceConfig, RtuTransport, TcpTransport
from gateway.engineering import Row, SensorState
from gateway.registers import Block, Function, plan_blocks

logger = logging.getLogger(__name__)

Sink = Callable[[list[Row]], None]
DeviceState = Literal["ok", "failing", "unknown"]


def make_client(device: DeviceConfig) -> Any:
    """A pymodbus async client for the device, with pymodbus' own retries and reconnects off."""
    return client_for(device.transport, device.timeout_s)


def client_for(t: TcpTransport | RtuTransport, timeout_s: float) -> Any:
    """A pymodbus async client for a transport (also used by the alarm relay)."""
    from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
    from pymodbus.framer import FramerType

    if isinstance(t, TcpTransport):
        return AsyncModbusTcpClient(
            t.host, port=t.port, timeout=timeout_s, retries=0, reconnect_delay=0
        )
    return AsyncModbusSerialClient(
        t.port,
        framer=FramerType.RTU,
        baudrate=t.baudrate,
        parity=t.parity,
        stopbits=t.stopbits,
        bytesize=t.bytesize,
        timeout=timeout_s,
        retries=0,
        reconnect_delay=0,
    )


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
        self.state: DeviceState = "unknown"
        self.error: str | None = None
        self.last_good_poll: datetime | None = None
        self.requests = 0
        self.polls = 0
        self._client: Any = None
        self._backoff = Backoff(base=0.5, cap=device.reconnect_max_s)
        self._retry_at = 0.0
        self.on_transition: Callable[[DevicePoller], None] | None = None

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
                    if self.state != "failing":
                        logger.exception("device %s: unexpected error", self.device.name)
                    self._set_state("failing", f"unexpected error: {exc!r}")
                    self.close()
                    rows = [s.failed(ts) for s in self.sensors]
                self.sink(rows)
                next_tick += interval
                if next_tick <= time.time():  # fell behind (slow device): skip, do not burst
                    next_tick = (time.time() // interval + 1) * interval
        finally:
            self.close()

    def close(self) -> None:
        """Drop the connection."""
        if self._client is not None:
            self._client.close()
            self._client = None

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
            self._set_state("ok", None)
        return rows

    async def _ensure_connected(self) -> bool:
        if self._client is not None and self._client.connected:
            return True
        now = time.monotonic()
        if now < self._retry_at:
            return False
        if self._client is None:
            self._client = make_client(self.device)
        try:
            ok = bool(await self._client.connect())
        except Exception as exc:  # pymodbus/pyserial raise several kinds on a bad port
            ok = False
            self._set_state("failing", f"connect failed: {exc}")
        if not ok:
            self._set_state("failing", self.error or "connect failed")
            self._retry_at = time.monotonic() + self._backoff.next_delay()
            self.close()
            return False
        self._backoff.reset()
        return True

    async def _read(self, block: Block) -> list[int] | None:
        from pymodbus.exceptions import ConnectionException, ModbusException

        client = self._client
        self.requests += 1
        try:
            if block.function is Function.HOLDING:
                rr = await client.read_holding_registers(
                    block.address, count=block.count, device_id=self.device.unit_id
                )
            else:
                rr = await client.read_input_registers(
                    block.address, count=block.count, device_id=self.device.unit_id
                )
        except ConnectionException as exc:
            self._set_state("failing", f"connection lost: {exc}")
            self.close()
            return None
        except (TimeoutError, ModbusException, OSError) as exc:
            self._set_state("failing", f"no answer: {exc}")
            if not isinstance(self.device.transport, RtuTransport):
                self.close()  # a TCP stream that timed out may be out of step; start afresh
            return None
        if rr.isError():
            code = getattr(rr, "exception_code", "?")
            self._set_state("failing", f"exception response {code} for {block}")
            return None
        regs = list(getattr(rr, "registers", []) or [])
        if len(regs) != block.count:
            self._set_state("failing", f"asked {block.count} registers, got {len(regs)}")
            return None
        return regs

    def _set_state(self, state: DeviceState, error: str | None) -> None:
        if state == self.state and (state == "ok" or error == self.error):
            return
        previous = self.state
        if state == "failing" and previous == "failing":
            self.error = error  # new reason, same state: remember it but do not log again
            return
        self.state, self.error = state, error
        if state == "failing":
            logger.warning("device %s failing: %s", self.device.name, error)
        elif previous == "failing":
            logger.info("device %s recovered", self.device.name)
        if self.on_transition is not None:
            self.on_transition(self)
