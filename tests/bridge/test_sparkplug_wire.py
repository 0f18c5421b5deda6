"""The bridge's Sparkplug B reader against payloads from protoc-generated classes."""

from __future__ import annotations

import math

import pytest
from firmware_bridge.errors import PayloadError
from firmware_bridge.sparkplug_wire import decode_payload, encode_rebirth
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bridge import spb

INT_RANGES = {
    spb.INT8: (-(2**7), 2**7 - 1),
    spb.INT16: (-(2**15), 2**15 - 1),
    spb.INT32: (-(2**31), 2**31 - 1),
    spb.INT64: (-(2**63), 2**63 - 1),
    spb.UINT32: (0, 2**32 - 1),
    spb.UINT64: (0, 2**64 - 1),
}


@st.composite
def metrics(draw: st.DrawFn) -> dict[str, object]:
    dt = draw(st.sampled_from([*INT_RANGES, spb.DOUBLE, spb.FLOAT, spb.BOOLEAN, spb.STRING]))
    if dt in INT_RANGES:
        lo, hi = INT_RANGES[dt]
        value: object = draw(st.integers(lo, hi))
    elif dt == spb.DOUBLE:
        value = draw(st.floats(allow_nan=False))
    elif dt == spb.FLOAT:
        value = draw(st.floats(width=32, allow_nan=False))
    elif dt == spb.BOOLEAN:
        value = draw(st.booleans())
    else:
        value = draw(st.text(max_size=20))
    return spb.metric(
        name=draw(st.none() | st.text(min_size=1, max_size=30)),
        alias=draw(st.none() | st.integers(0, 2**64 - 1)),
        datatype=dt,
        value=value,
        timestamp=draw(st.none() | st.integers(0, 2**63)),
    )


@settings(max_examples=200, deadline=None)
@given(
    seq=st.none() | st.integers(0, 255),
    ts=st.none() | st.integers(0, 2**64 - 1),
    ms=st.lists(metrics(), max_size=8),
)
def test_reader_matches_generated_classes(
    seq: int | None, ts: int | None, ms: list[dict[str, object]]
) -> None:
    decoded = decode_payload(spb.payload(seq, ms, timestamp=ts))
    assert decoded.seq == seq
    assert decoded.timestamp == ts
    assert len(decoded.metrics) == len(ms)
    for got, want in zip(decoded.metrics, ms, strict=True):
        assert got.name == want["name"]
        assert got.alias == want["alias"]
        assert got.timestamp == want["timestamp"]
        assert got.datatype == want["datatype"]
        if want["datatype"] == spb.FLOAT:
            assert isinstance(got.value, float)
            assert (
                math.isclose(got.value, want["value"], rel_tol=1e-6) or got.value == want["value"]
            )  # type: ignore[arg-type]
        else:
            assert got.value == want["value"]


def test_null_metric_and_skipped_dataset() -> None:
    p = spb.pb.Payload()
    p.seq = 3
    m = p.metrics.add()
    m.name, m.datatype, m.is_null = "Level/DP", spb.FLOAT, True
    ds = p.metrics.add()
    ds.name, ds.datatype = "Table", 16
    ds.dataset_value.num_of_columns = 1
    ds.dataset_value.columns.append("a")
    row = ds.dataset_value.rows.add()
    row.elements.add().int_value = 5
    ds.properties.keys.append("engUnit")
    ds.properties.values.add().string_value = "inH2O"
    decoded = decode_payload(p.SerializeToString())
    assert decoded.metrics[0].is_null and decoded.metrics[0].value is None
    assert decoded.metrics[1].name == "Table" and decoded.metrics[1].value is None


def test_rebirth_command_parses_with_generated_classes() -> None:
    p = spb.parse(encode_rebirth(1_700_000_000_123))
    assert p.timestamp == 1_700_000_000_123
    assert [(m.name, m.datatype, m.boolean_value) for m in p.metrics] == [
        ("Node Control/Rebirth", spb.BOOLEAN, True)
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"\x08",  # truncated varint
        b"\x12\x05ab",  # metric longer than the payload
        b"\x00\x01",  # field number 0
        b"\x0b",  # start-group wire type
        b"\x08" + b"\xff" * 11,  # varint longer than 10 bytes
        b"\x12\x03\x0a\x01\xff",  # metric name not UTF-8
        b"\x18\x05\x12",  # trailing key with no value
    ],
)
def test_garbage_is_a_payload_error(data: bytes) -> None:
    with pytest.raises(PayloadError):
        decode_payload(data)
