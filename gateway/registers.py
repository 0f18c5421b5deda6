"""Declarative Modbus register maps: value types, byte/word order and the decoding of registers.

A *profile* describes one value of a sensor model (reused by every sensor of that model); the site
config binds a profile to a device address, a tank and a quantity. Decoding is plain `struct`, so
every combination of type and order is table-tested without a device.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Function(StrEnum):
    """Which Modbus table a value lives in."""

    HOLDING = "holding"  # function code 3
    INPUT = "input"  # function code 4


class ValueType(StrEnum):
    """Register value types a profile can declare."""

    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    FLOAT64 = "float64"


class Order(StrEnum):
    """Byte order inside a register, or word order across registers."""

    BIG = "big"
    LITTLE = "little"


_FORMAT: Final[dict[ValueType, str]] = {
    ValueType.INT16: ">h",
    ValueType.UINT16: ">H",
    ValueType.INT32: ">i",
    ValueType.UINT32: ">I",
    ValueType.FLOAT32: ">f",
    ValueType.FLOAT64: ">d",
}

REGISTER_COUNT: Final[dict[ValueType, int]] = {
    ValueType.INT16: 1,
    ValueType.UINT16: 1,
    ValueType.INT32: 2,
    ValueType.UINT32: 2,
    ValueType.FLOAT32: 2,
    ValueType.FLOAT64: 4,
}


@dataclass(frozen=True, slots=True)
class Profile:
    """One value of a sensor model: where it is, how it is encoded and what unit it is in.

    `valid_min`/`valid_max` bound the transmitter's range in `unit` (after scale and offset);
    `invalid_raw` lists raw sentinel values a device sends for "sensor fault".
    """

    name: str
    unit: str
    type: ValueType = ValueType.FLOAT32
    function: Function = Function.HOLDING
    byte_order: Order = Order.BIG
    word_order: Order = Order.BIG
    scale: float = 1.0
    offset: float = 0.0
    valid_min: float | None = None
    valid_max: float | None = None
    invalid_raw: tuple[float, ...] = ()
    stale_after_s: float = 0.0  # 0 disables stuck-value detection

    @property
    def count(self) -> int:
        """Number of 16-bit registers the value occupies."""
        return REGISTER_COUNT[self.type]

    def engineering(self, raw: float) -> float:
        """Raw register value to the profile's unit (scale, then offset)."""
        return raw * self.scale + self.offset


def _to_bytes(
    registers: list[int] | tuple[int, ...], byte_order: Order, word_order: Order
) -> bytes:
    words = list(registers)
    if word_order is Order.LITTLE:
        words.reverse()
    out = bytearray()
    for w in words:
        if not 0 <= w <= 0xFFFF:
            raise ValueError(f"register value {w} is not a 16-bit word")
        hi, lo = w >> 8, w & 0xFF
        out += bytes((hi, lo)) if byte_order is Order.BIG else bytes((lo, hi))
    return bytes(out)


def decode(
    registers: list[int] | tuple[int, ...],
    type_: ValueType,
    byte_order: Order = Order.BIG,
    word_order: Order = Order.BIG,
) -> float:
    """Decode the registers of one value; raise ValueError if the count is wrong."""
    if len(registers) != REGISTER_COUNT[type_]:
        raise ValueError(
            f"{type_.value} needs {REGISTER_COUNT[type_]} registers, got {len(registers)}"
        )
    (value,) = struct.unpack(_FORMAT[type_], _to_bytes(registers, byte_order, word_order))
    return float(value)


def encode(
    value: float,
    type_: ValueType,
    byte_order: Order = Order.BIG,
    word_order: Order = Order.BIG,
) -> list[int]:
    """Encode one value into registers (the inverse of :func:`decode`; used by the simulator)."""
    if type_ in (ValueType.FLOAT32, ValueType.FLOAT64):
        data = struct.pack(_FORMAT[type_], value)
    else:
        if not math.isfinite(value):
            raise ValueError("an integer register cannot hold a non-finite value")
        data = struct.pack(_FORMAT[type_], round(value))
    words = []
    for i in range(0, len(data), 2):
        hi, lo = data[i], data[i + 1]
        words.append((hi << 8 | lo) if byte_order is Order.BIG else (lo << 8 | hi))
    if word_order is Order.LITTLE:
        words.reverse()
    return words


@dataclass(frozen=True, slots=True)
class Block:
    """A contiguous range of registers read with one Modbus request."""

    function: Function
    address: int
    count: int


MAX_REGISTERS_PER_READ: Final = 125  # Modbus limit for function codes 3 and 4


def plan_blocks(
    spans: list[tuple[Function, int, int]],
    max_gap: int = 8,
    max_count: int = MAX_REGISTERS_PER_READ,
) -> list[Block]:
    """Merge (function, address, count) spans into as few reads as the gaps and limit allow."""
    blocks: list[Block] = []
    for function in Function:
        items = sorted((a, c) for f, a, c in spans if f is function)
        start = end = -1
        for address, count in items:
            if start < 0:
                start, end = address, address + count
            elif address - end <= max_gap and max(end, address + count) - start <= max_count:
                end = max(end, address + count)
            else:
                blocks.append(Block(function, start, end - start))
                start, end = address, address + count
        if start >= 0:
            blocks.append(Block(function, start, end - start))
    return blocks
