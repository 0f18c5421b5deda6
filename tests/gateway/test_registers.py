"""Register decoding: every type with every byte and word order, and request planning."""

from __future__ import annotations

import math
import struct

import pytest

from gateway.registers import Block, Function, Order, ValueType, decode, encode, plan_blocks

B, L = Order.BIG, Order.LITTLE

# (registers as a device sends them, type, byte order, word order, expected value)
CASES = [
    ([0x0102], ValueType.UINT16, B, B, 0x0102),
    ([0x0201], ValueType.UINT16, L, B, 0x0102),
    ([0xFFFF], ValueType.UINT16, B, B, 65535),
    ([0xFFFF], ValueType.INT16, B, B, -1),
    ([0x8000], ValueType.INT16, B, B, -32768),
    ([0x0080], ValueType.INT16, L, B, -32768),
    ([0x0001, 0x0002], ValueType.UINT32, B, B, 0x00010002),
    ([0x0002, 0x0001], ValueType.UINT32, B, L, 0x00010002),
    ([0x0100, 0x0200], ValueType.UINT32, L, B, 0x00010002),
    ([0x0200, 0x0100], ValueType.UINT32, L, L, 0x00010002),
    ([0xFFFF, 0xFFFE], ValueType.INT32, B, B, -2),
    ([0xFFFE, 0xFFFF], ValueType.INT32, B, L, -2),
    # 123.456 as float32 is 0x42F6E979: ABCD, CDAB (word swap), BADC (byte swap), DCBA.
    ([0x42F6, 0xE979], ValueType.FLOAT32, B, B, struct.unpack(">f", bytes.fromhex("42F6E979"))[0]),
    ([0xE979, 0x42F6], ValueType.FLOAT32, B, L, struct.unpack(">f", bytes.fromhex("42F6E979"))[0]),
    ([0xF642, 0x79E9], ValueType.FLOAT32, L, B, struct.unpack(">f", bytes.fromhex("42F6E979"))[0]),
    ([0x79E9, 0xF642], ValueType.FLOAT32, L, L, struct.unpack(">f", bytes.fromhex("42F6E979"))[0]),
    # 1234.5678 as float64 is 0x40934A456D5CFAAD.
    ([0x4093, 0x4A45, 0x6D5C, 0xFAAD], ValueType.FLOAT64, B, B, 1234.5678),
    ([0xFAAD, 0x6D5C, 0x4A45, 0x4093], ValueType.FLOAT64, B, L, 1234.5678),
    ([0x9340, 0x454A, 0x5C6D, 0xADFA], ValueType.FLOAT64, L, B, 1234.5678),
    ([0xADFA, 0x5C6D, 0x454A, 0x9340], ValueType.FLOAT64, L, L, 1234.5678),
]


@pytest.mark.parametrize(("regs", "type_", "bo", "wo", "expected"), CASES)
def test_decode_table(
    regs: list[int], type_: ValueType, bo: Order, wo: Order, expected: float
) -> None:
    assert decode(regs, type_, bo, wo) == pytest.approx(expected, rel=1e-12)
    # encode is the inverse (the simulator relies on it)
    assert encode(expected, type_, bo, wo) == regs


def test_nan_float_decodes_to_nan() -> None:
    assert math.isnan(decode([0x7FC0, 0x0000], ValueType.FLOAT32))
    assert math.isinf(decode([0x7F80, 0x0000], ValueType.FLOAT32))


@pytest.mark.parametrize("type_", list(ValueType))
def test_wrong_register_count_is_an_error(type_: ValueType) -> None:
    n = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "float64": 4}[type_.value]
    with pytest.raises(ValueError, match="registers"):
        decode([0] * (n + 1), type_)
    with pytest.raises(ValueError):
        decode([0x1FFFF] * n, type_)


def test_contiguous_spans_make_one_request() -> None:
    spans = [(Function.HOLDING, a, 2) for a in range(0, 100, 2)]  # 50 float32 values
    assert plan_blocks(spans) == [Block(Function.HOLDING, 0, 100)]


def test_planning_respects_gaps_limit_and_tables() -> None:
    spans = [
        (Function.HOLDING, 0, 2),
        (Function.HOLDING, 4, 1),  # gap of 2 → merged
        (Function.HOLDING, 100, 2),  # far → own request
        (Function.INPUT, 0, 1),  # other table → own request
    ]
    assert plan_blocks(spans, max_gap=8) == [
        Block(Function.HOLDING, 0, 5),
        Block(Function.HOLDING, 100, 2),
        Block(Function.INPUT, 0, 1),
    ]
    assert plan_blocks([(Function.HOLDING, 0, 1), (Function.HOLDING, 2, 1)], max_gap=0) == [
        Block(Function.HOLDING, 0, 1),
        Block(Function.HOLDING, 2, 1),
    ]
    many = [(Function.HOLDING, a, 2) for a in range(0, 300, 2)]
    blocks = plan_blocks(many)
    assert all(b.count <= 125 for b in blocks)
    assert sum(b.count for b in blocks) == 300
    assert len(blocks) == 3
