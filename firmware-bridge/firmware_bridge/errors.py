"""The bridge's exceptions: one root, and the payload error that carries a dead-letter reason."""

from __future__ import annotations

from oxy import OxyError


class BridgeError(OxyError):
    """Root of every error the bridge raises on purpose (bad configuration included)."""


class PayloadError(BridgeError):
    """A foreign payload cannot be turned into the wire contract; `reason` goes to dead letters."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
