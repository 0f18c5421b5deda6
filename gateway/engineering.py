"""Register values → engineering units in the wire contract's canonical unit, with a quality flag.

A bad value never travels as NaN: it travels as null with its quality (oxy.contract.Reading).
A finite value outside the transmitter's range keeps its number and is flagged out_of_range, so
an engineer can see what the device said; the centre only uses readings of quality good.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from gateway.config import SensorBinding
from gateway.registers import decode
from oxy.contract import Quality, to_canonical


class Row(NamedTuple):
    """One reading as the outbox stores it."""

    sensor: str
    ts_ms: int
    value: float | None
    unit: str
    q: str


@dataclass
class SensorState:
    """Per-sensor memory for stuck-value (stale) detection."""

    binding: SensorBinding
    last_raw: tuple[int, ...] | None = None
    same_since: float = 0.0

    def convert(self, registers: list[int] | tuple[int, ...], ts: float) -> Row:
        """Decode this sensor's registers taken at `ts` (epoch seconds) into a reading."""
        b, p = self.binding, self.binding.profile
        ts_ms = int(ts * 1000)
        try:
            raw = decode(registers, p.type, p.byte_order, p.word_order)
        except ValueError:
            return Row(b.code, ts_ms, None, b.unit, Quality.COMM_ERROR.value)
        if not math.isfinite(raw) or raw in p.invalid_raw:
            return Row(b.code, ts_ms, None, b.unit, Quality.OUT_OF_RANGE.value)
        native = p.engineering(raw)
        value = to_canonical(b.quantity, native, p.unit)
        if not math.isfinite(value):
            return Row(b.code, ts_ms, None, b.unit, Quality.OUT_OF_RANGE.value)
        if (p.valid_min is not None and native < p.valid_min) or (
            p.valid_max is not None and native > p.valid_max
        ):
            return Row(b.code, ts_ms, value, b.unit, Quality.OUT_OF_RANGE.value)
        regs = tuple(registers)
        if regs != self.last_raw:
            self.last_raw, self.same_since = regs, ts
        elif p.stale_after_s > 0 and ts - self.same_since >= p.stale_after_s:
            # A live DP or pressure transmitter always jitters; identical words for this long
            # mean a frozen sensor or a frozen device buffer.
            return Row(b.code, ts_ms, value, b.unit, Quality.STALE.value)
        return Row(b.code, ts_ms, value, b.unit, Quality.GOOD.value)

    def failed(self, ts: float) -> Row:
        """The reading for a poll that got no usable answer."""
        return Row(self.binding.code, int(ts * 1000), None, self.binding.unit, "comm_error")
