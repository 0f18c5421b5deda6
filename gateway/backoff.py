"""Jittered exponential backoff with a low cap, for Modbus and MQTT reconnects."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    """Delay = uniform(½·d, d) with d = min(cap, base·2ⁿ): no thundering herd, quick recovery."""

    base: float = 0.25
    cap: float = 2.0
    attempts: int = 0

    def next_delay(self) -> float:
        """The delay before the next attempt (and count the attempt)."""
        d = min(self.cap, self.base * (2**self.attempts))
        self.attempts = min(self.attempts + 1, 30)
        return random.uniform(d / 2.0, d)

    def reset(self) -> None:
        """Back to the shortest delay after a success."""
        self.attempts = 0
