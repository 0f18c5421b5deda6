"""One Modbus connection (a polled device or the alarm relay) whose failures are data.

The link connects on demand, turns every kind of failure — a refused connection, a timeout, a
lost connection, an exception response — into the state "failing" with its reason, and logs each
transition once (ok → failing → ok), not every failed request; a new reason while failing is
remembered without a log line. pymodbus is imported on first use (the gateway's CLI stays light).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from gateway.config import RtuTransport, TcpTransport

logger = logging.getLogger(__name__)

LinkState = Literal["ok", "failing", "unknown"]


def client_for(t: TcpTransport | RtuTransport, timeout_s: float) -> Any:
    """A pymodbus async client for a transport, with pymodbus' own retries and reconnects off."""
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


class ModbusLink:
    """A client for one transport, its state ("ok", "failing", "unknown") and the reason.

    `label` names it in the log ("device T1", "alarm relay 10.0.0.9:502/1/coil:0");
    `on_transition` is called after each change of state."""

    def __init__(
        self,
        label: str,
        transport: TcpTransport | RtuTransport,
        timeout_s: float,
        on_transition: Callable[[], None] | None = None,
    ) -> None:
        self.label = label
        self.transport = transport
        self.timeout_s = timeout_s
        self.on_transition = on_transition
        self.state: LinkState = "unknown"
        self.error: str | None = None
        self.client: Any = None

    @property
    def connected(self) -> bool:
        """Whether a client is open and connected."""
        return self.client is not None and bool(self.client.connected)

    async def connect(self) -> bool:
        """Connect if not connected; False (state failing, the reason in `error`) if it fails."""
        if self.connected:
            return True
        if self.client is None:
            self.client = client_for(self.transport, self.timeout_s)
        try:
            ok = bool(await self.client.connect())
        except Exception as exc:  # pymodbus/pyserial raise several kinds on a bad port
            ok = False
            self.set_state("failing", f"connect failed: {exc}")
        if not ok:
            self.set_state("failing", self.error or "connect failed")
            self.close()
        return ok

    async def request(self, call: Callable[[Any], Awaitable[Any]], what: str = "") -> Any:
        """Run one request on the connected client; its response, or None when it failed (the
        state is then failing with the reason). `what` names the request in the reason."""
        from pymodbus.exceptions import ConnectionException, ModbusException

        try:
            rr = await call(self.client)
        except ConnectionException as exc:
            self.set_state("failing", f"connection lost: {exc}")
            self.close()
            return None
        except (TimeoutError, ModbusException, OSError) as exc:
            self.set_state("failing", f"no answer: {exc}")
            if not isinstance(self.transport, RtuTransport):
                self.close()  # a TCP stream that timed out may be out of step; start afresh
            return None
        if rr.isError():
            code = getattr(rr, "exception_code", "?")
            self.set_state("failing", f"exception response {code}{' for ' if what else ''}{what}")
            return None
        return rr

    def unexpected(self, exc: Exception) -> None:
        """A bug or a library surprise: logged with its traceback once, then failing."""
        if self.state != "failing":
            logger.exception("%s: unexpected error", self.label)
        self.set_state("failing", f"unexpected error: {exc!r}")
        self.close()

    def close(self) -> None:
        """Drop the connection."""
        if self.client is not None:
            self.client.close()
            self.client = None

    def set_state(self, state: LinkState, error: str | None) -> None:
        """Record the state and its reason; log and report a change of state once."""
        previous = self.state
        self.error = error
        if state == previous:
            return
        self.state = state
        if state == "failing":
            logger.warning("%s failing: %s", self.label, error)
        elif previous == "failing":
            logger.info("%s recovered", self.label)
        if self.on_transition is not None:
            self.on_transition()
