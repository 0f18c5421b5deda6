"""Engineering units and quality: scale/offset, canonical units, bad values never as NaN."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.config import SensorBinding
from gateway.engineering import Row, SensorState
from gateway.registers import Order, Profile, ValueType, encode
from oxy.contract import Quality, Quantity, Reading

T0 = 1_780_000_000.0


def state(quantity: Quantity = Quantity.DIFF_PRESSURE, **kw: object) -> SensorState:
    p = Profile(name="p", **{"unit": "inH2O", **kw})  # type: ignore[arg-type]
    return SensorState(SensorBinding("T1-x", "T1", quantity, p, 0))


def as_reading(row: Row) -> Reading:
    """Every row must be a valid contract Reading (null + quality for bad values)."""
    return Reading(
        sensor=row.sensor,
        ts=datetime.fromtimestamp(row.ts_ms / 1000, UTC),
        value=row.value,
        unit=row.unit,
        q=Quality(row.q),
    )


@pytest.mark.parametrize(
    ("kw", "quantity", "regs", "expected", "unit"),
    [
        ({"type": ValueType.UINT16, "scale": 0.1}, Quantity.DIFF_PRESSURE, [1234], 123.4, "inH2O"),
        (
            {"type": ValueType.INT16, "scale": 0.5, "offset": -10},
            Quantity.DIFF_PRESSURE,
            [0xFFFE],
            -11.0,
            "inH2O",
        ),
        ({"type": ValueType.UINT16, "unit": "mmH2O"}, Quantity.DIFF_PRESSURE, [254], 10.0, "inH2O"),
        (
            {"type": ValueType.FLOAT32, "unit": "kPa_dp"},
            Quantity.DIFF_PRESSURE,
            encode(2.49088, ValueType.FLOAT32),
            10.0,
            "inH2O",
        ),
        (
            {"type": ValueType.UINT16, "unit": "psi", "scale": 0.1},
            Quantity.HEAD_PRESSURE,
            [1450],
            9.9974,
            "bar",
        ),
        (
            {"type": ValueType.INT32, "unit": "kPa", "word_order": Order.LITTLE},
            Quantity.HEAD_PRESSURE,
            [1000, 0],
            10.0,
            "bar",
        ),
        (
            {"type": ValueType.INT16, "unit": "K", "scale": 0.1},
            Quantity.TEMPERATURE,
            [2731],
            -0.05,
            "degC",
        ),
        (
            {"type": ValueType.FLOAT64, "unit": "bar"},
            Quantity.LINE_PRESSURE,
            encode(4.2, ValueType.FLOAT64),
            4.2,
            "bar",
        ),
    ],
)
def test_scale_offset_and_canonical_units(
    kw: dict[str, object], quantity: Quantity, regs: list[int], expected: float, unit: str
) -> None:
    s = state(quantity, **kw)
    row = s.convert(regs, T0)
    assert row.q == "good"
    assert row.unit == unit
    assert row.value == pytest.approx(expected, rel=1e-3, abs=1e-3)
    assert row.ts_ms == int(T0 * 1000)
    as_reading(row)


@pytest.mark.parametrize("regs", [[0x7FC0, 0], [0x7F80, 0], [0xFF80, 0]])
def test_nan_and_infinity_travel_as_null_out_of_range(regs: list[int]) -> None:
    row = state(type=ValueType.FLOAT32).convert(regs, T0)
    assert row.value is None
    assert row.q == "out_of_range"
    assert '"value":null' in as_reading(row).model_dump_json()


def test_sentinel_raw_value_is_null_out_of_range() -> None:
    row = state(type=ValueType.UINT16, invalid_raw=(65535.0,)).convert([0xFFFF], T0)
    assert (row.value, row.q) == (None, "out_of_range")


def test_outside_transmitter_range_keeps_value_flagged() -> None:
    s = state(type=ValueType.INT16, valid_min=0.0, valid_max=500.0)
    low, high, ok = s.convert([0xFFF6], T0), s.convert([600], T0), s.convert([250], T0)
    assert (low.value, low.q) == (-10.0, "out_of_range")
    assert (high.value, high.q) == (600.0, "out_of_range")
    assert ok.q == "good"


def test_wrong_register_count_is_comm_error() -> None:
    row = state(type=ValueType.FLOAT32).convert([1], T0)
    assert (row.value, row.q) == (None, "comm_error")
    as_reading(row)


def test_stuck_registers_become_stale() -> None:
    s = state(type=ValueType.UINT16, stale_after_s=10.0)
    assert s.convert([100], T0).q == "good"
    assert s.convert([100], T0 + 5).q == "good"
    stale = s.convert([100], T0 + 10)
    assert (stale.value, stale.q) == (100.0, "stale")
    assert s.convert([101], T0 + 11).q == "good"  # moves again → good at once
    no_detection = state(type=ValueType.UINT16)
    assert all(no_detection.convert([7], T0 + i * 100).q == "good" for i in range(5))


def test_failed_poll_row() -> None:
    row = state().failed(T0)
    assert (row.value, row.q, row.unit) == (None, "comm_error", "inH2O")
