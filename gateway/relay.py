"""The alarm relay: one Modbus coil (function 5) or holding register (function 6) that follows the
edge alarm.

The output is written on every change and re-asserted every `refresh_s`, so a relay module that
restarted (and came back with its outputs off) gets the state again. A failed write is data: the
relay is marked failing (one log line on the change, one on recovery), retried with backoff, and
never ends the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from gateway.backoff import Backoff
from gateway.config import RelayConfig
from gateway.modbus_link import LinkState, ModbusLink

logger = logging.getLogger(__name__)

RelayState = LinkState


class RelayOutput:
    """Keeps a relay output equal to `desired()`; `wake()` after the alarm changes."""

    def __init__(
        self,
        cfg: RelayConfig,
        desired: Callable[[], bool],
        on_transition: Callable[[RelayOutput], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.desired = desired
        self.on_transition = on_transition
        self.link = ModbusLink(
            f"alarm relay {cfg.name}", cfg.transport, cfg.timeout_s, self._transition
        )
        self.written: bool | None = None  # the alarm state the device last acknowledged
        self.writes = 0
        self._wake = asyncio.Event()
        self._backoff = Backoff(base=0.5, cap=max(0.5, min(cfg.reconnect_max_s, cfg.refresh_s)))

    @property
    def state(self) -> RelayState:
        """ok, failing (with the reason in `error`) or unknown (not written yet)."""
        return self.link.state

    @property
    def error(self) -> str | None:
        """Why the output is failing."""
        return self.link.error

    def _transition(self) -> None:
        if self.on_transition is not None:
            self.on_transition(self)

    def wake(self) -> None:
        """Write now (the alarm changed)."""
        self._wake.set()

    async def run(self) -> None:
        """Write on change and every `refresh_s` until cancelled."""
        next_refresh = 0.0
        try:
            while True:
                self._wake.clear()
                want = self.desired()
                now = time.monotonic()
                wait = next_refresh - now
                if want != self.written or wait <= 0:
                    try:
                        ok = await self.write(want)
                    except Exception as exc:
                        # A library surprise must not end the alarm output.
                        self.link.unexpected(exc)
                        ok = False
                    if ok:
                        self.written = want
                        self._backoff.reset()
                        next_refresh = time.monotonic() + self.cfg.refresh_s
                        wait = self.cfg.refresh_s
                    else:
                        self.written = None
                        wait = self._backoff.next_delay()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
        finally:
            self.close()

    def close(self) -> None:
        """Drop the connection."""
        self.link.close()

    async def write(self, alarm: bool) -> bool:
        """Write the output for `alarm` once; False (and the reason in `error`) if it failed."""
        c = self.cfg
        if not await self.link.connect():
            return False
        self.writes += 1
        if c.kind == "coil":
            rr = await self.link.request(
                lambda m: m.write_coil(c.address, alarm != c.active_low, device_id=c.unit_id)
            )
        else:
            value = c.on_value if alarm else c.off_value
            rr = await self.link.request(
                lambda m: m.write_register(c.address, value, device_id=c.unit_id)
            )
        if rr is None:
            return False
        self.link.set_state("ok", None)
        return True
