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
from typing import Any, Literal

from gateway.backoff import Backoff
from gateway.config import RelayConfig, RtuTransport
from gateway.poller import client_for

logger = logging.getLogger(__name__)

RelayState = Literal["ok", "failing", "unknown"]


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
        self.state: RelayState = "unknown"
        self.error: str | None = None
        self.written: bool | None = None  # the alarm state the device last acknowledged
        self.writes = 0
        self._client: Any = None
        self._wake = asyncio.Event()
        self._backoff = Backoff(base=0.5, cap=max(0.5, min(cfg.reconnect_max_s, cfg.refresh_s)))

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
                        if self.state != "failing":
                            logger.exception("relay %s: unexpected error", self.cfg.name)
                        self._set_state("failing", f"unexpected error: {exc!r}")
                        self.close()
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
        if self._client is not None:
            self._client.close()
            self._client = None

    async def write(self, alarm: bool) -> bool:
        """Write the output for `alarm` once; False (and the reason in `error`) if it failed."""
        from pymodbus.exceptions import ConnectionException, ModbusException

        c = self.cfg
        if self._client is None or not self._client.connected:
            if self._client is None:
                self._client = client_for(c.transport, c.timeout_s)
            try:
                connected = bool(await self._client.connect())
            except Exception as exc:  # pymodbus/pyserial raise several kinds on a bad port
                connected = False
                self.error = f"connect failed: {exc}"
            if not connected:
                self._set_state("failing", self.error or "connect failed")
                self.close()
                return False
        self.writes += 1
        try:
            if c.kind == "coil":
                rr = await self._client.write_coil(
                    c.address, alarm != c.active_low, device_id=c.unit_id
                )
            else:
                value = c.on_value if alarm else c.off_value
                rr = await self._client.write_register(c.address, value, device_id=c.unit_id)
        except ConnectionException as exc:
            self._set_state("failing", f"connection lost: {exc}")
            self.close()
            return False
        except (TimeoutError, ModbusException, OSError) as exc:
            self._set_state("failing", f"no answer: {exc}")
            if not isinstance(c.transport, RtuTransport):
                self.close()  # a TCP stream that timed out may be out of step
            return False
        if rr.isError():
            code = getattr(rr, "exception_code", "?")
            self._set_state("failing", f"exception response {code}")
            return False
        self._set_state("ok", None)
        return True

    def _set_state(self, state: RelayState, error: str | None) -> None:
        previous = self.state
        self.error = error
        if state == previous:
            return
        self.state = state
        if state == "failing":
            logger.warning("alarm relay %s failing: %s", self.cfg.name, error)
        elif previous == "failing":
            logger.info("alarm relay %s recovered", self.cfg.name)
        if self.on_transition is not None:
            self.on_transition(self)
