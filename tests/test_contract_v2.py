"""Contract v2 data messages (oxy.contract, docs/gateway.md "Contract v2"): what a gateway
encodes, ingest decodes and resolves against the birth to the same readings (within the
declared resolution); every malformed message is refused with a reason."""

from __future__ import annotations

import math
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxy.contract import (
    MAX_READINGS_PER_MESSAGE,
    QUALITY_CODE,
    ContractError,
    Quality,
    SensorDecl,
    StateMessage,
    decode,
    decode_record,
    decode_v2,
    encode,
    encode_v2,
    expand_v2,
    ms_of,
    schema_id,
    v2_stream,
)

TOPIC = "oxy/v1/SITE-1/gw-1/data2"
DECLS = [
    SensorDecl(code="T1-dp", unit="inH2O", res=0.01),
    SensorDecl(code="T1-p", unit="bar", res=0.001),
    SensorDecl(code="T1-t", unit="degC", res=0.0),  # plain floats
]
SCHEMA = schema_id(DECLS)
NOW_MS = ms_of(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
CODES = {q: c for q, c in QUALITY_CODE.items()}

items_st = st.lists(
    st.tuples(
        st.integers(0, len(DECLS) - 1),
        st.integers(NOW_MS - 3_600_000, NOW_MS + 5_000),
        st.one_of(st.none(), st.floats(-1e9, 1e9, allow_nan=False)),
        st.sampled_from(list(QUALITY_CODE.values())),
    ).filter(lambda it: it[2] is not None or it[3] != 0),
    min_size=1,
    max_size=60,
)


def _order(r: tuple[str, int, int, float | None]) -> tuple[str, int, int, bool, float]:
    return (r[0], r[1], r[2], r[3] is None, r[3] or 0.0)


@settings(max_examples=300, deadline=None)
@given(items=items_st, deflate=st.booleans(), e2e=st.booleans())
def test_round_trip_within_the_declared_resolution(
    items: list[tuple[int, int, float | None, int]], deflate: bool, e2e: bool
) -> None:
    epoch, floor = (7, 3) if e2e else (None, None)
    payload, n = encode_v2(
        DECLS, SCHEMA, 42, NOW_MS, items, epoch=epoch, floor=floor, deflate=deflate
    )
    assert n == len(items)
    t, data = decode_v2(TOPIC, payload)
    assert (t.gateway, data.seq, data.epoch, data.floor, data.schema) == (
        "gw-1", 42, epoch, floor, SCHEMA,
    )  # fmt: skip
    record, problems = expand_v2("gw-1", data, DECLS)
    assert not problems and record is not None
    got = sorted(
        ((r["sensor"], ms_of(r["ts"]), QUALITY_CODE[r.get("q", Quality.GOOD)], r["value"])
         for r in record["readings"]),
        key=_order,
    )  # fmt: skip
    want = sorted(((DECLS[i].code, ts, q, v) for i, ts, v, q in items), key=_order)
    assert len(got) == len(want)
    for (gc, gts, gq, gv), (wc, wts, wq, wv) in zip(got, want, strict=True):
        assert (gc, gts, gq) == (wc, wts, wq)
        if wv is None:
            assert gv is None
            continue
        res = next(d.res for d in DECLS if d.code == wc)
        assert gv is not None
        assert abs(gv - wv) <= (res / 2 * 1.000001 if res else 0.0) + abs(wv) * 1e-15
    for r in record["readings"]:
        assert r["unit"] == next(d.unit for d in DECLS if d.code == r["sensor"])
    assert v2_stream(payload) == (42, epoch, floor) if e2e else True


def test_a_50_sensor_tick_is_under_five_bytes_a_reading() -> None:
    decls = [SensorDecl(code=f"T{i}-dp", unit="inH2O", res=0.01) for i in range(50)]
    items = [(i, NOW_MS, 100.0 + i * 3.217, 0) for i in range(50)]
    payload, _ = encode_v2(decls, schema_id(decls), 123456, NOW_MS, items, epoch=1, floor=123000)
    assert len(payload) / 50 < 5.0, len(payload)


def test_decimal_values_come_back_as_the_nearest_double() -> None:
    payload, _ = encode_v2(DECLS, SCHEMA, 1, NOW_MS, [(0, NOW_MS, 123.46, 0), (1, NOW_MS, 9.87, 0)])
    record, _ = expand_v2("gw-1", decode_v2(TOPIC, payload)[1], DECLS)
    assert record is not None
    assert sorted(r["value"] for r in record["readings"]) == [9.87, 123.46]


def test_a_good_reading_needs_a_finite_value() -> None:
    with pytest.raises(ContractError, match="good reading needs a value"):
        encode_v2(DECLS, SCHEMA, 1, NOW_MS, [(0, NOW_MS, None, 0)])
    with pytest.raises(ContractError, match="not finite"):
        encode_v2(DECLS, SCHEMA, 1, NOW_MS, [(0, NOW_MS, math.inf, 0)])


def test_the_message_holds_at_most_the_contract_limit() -> None:
    items = [(0, NOW_MS + k, 1.0, 0) for k in range(MAX_READINGS_PER_MESSAGE + 10)]
    payload, n = encode_v2(DECLS, SCHEMA, 1, NOW_MS, items)
    assert n == MAX_READINGS_PER_MESSAGE
    assert decode_v2(TOPIC, payload)[1].readings == n


def _body(doc: Any, flags: int = 0) -> bytes:
    return bytes((2, flags)) + msgpack.packb(doc)


GOOD = [1, 7, 3, SCHEMA, NOW_MS, NOW_MS, [[0, 0, 100, 1, 5000]], []]


def _with(pos: int, value: Any) -> bytes:
    doc = list(GOOD)
    doc[pos] = value
    return _body(doc)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "first byte must be 2"),
        (b"\x01\x00\x90", "first byte must be 2"),
        (b'{"v":1}', "first byte must be 2"),
        (bytes((2, 4)) + msgpack.packb(GOOD), "unknown flags"),
        (bytes((2, 1)) + b"not deflate", "cannot be inflated"),
        (bytes((2, 1)) + zlib.compress(msgpack.packb(GOOD))[:-6], "truncated"),
        (bytes((2, 1)) + zlib.compress(b"\x00" * 2_000_000), "exceeds"),
        (b"\x02\x00\xc1", "not one MessagePack value"),
        (_body(GOOD) + b"\x01", "not one MessagePack value"),
        (_body({"seq": 1}), "expected [seq"),
        (_body(GOOD[:7]), "expected [seq"),
        (_with(0, -1), "seq"),
        (_with(0, True), "seq"),
        (_with(0, 1.0), "seq"),
        (_with(1, None), "both or neither"),
        (_with(2, -3), "epoch and floor"),
        (_with(3, 2**32), "schema"),
        (_with(4, 2**62), "sent_ms"),
        (_with(5, "now"), "t0_ms"),
        (_with(6, {}), "arrays"),
        (_with(6, [[0, 0]]), "groups.0"),
        (_with(6, [[-1, 0, 1]]), "offset"),
        (_with(6, [[0, -1, 1]]), "indices"),
        (_with(6, [[0, 5000, 1]]), "indices"),
        (_with(6, [[0, 1.5, 1]]), "indices"),
        (_with(6, [[0, 0, None]]), "must be a number"),
        (_with(6, [[0, 0, "1"]]), "must be a number"),
        (_with(6, [[0, 0, True]]), "must be a number"),
        (_with(6, [[0, 0, math.inf]]), "not finite"),
        (_with(6, [[0, 0, math.nan]]), "not finite"),
        (_with(7, [[0, 0, 0, 1.0]]), "quality"),
        (_with(7, [[0, 0, 9, 1.0]]), "quality"),
        (_with(7, [[0, 0, 3]]), "bad.0"),
        (_with(7, [[0, 0, 3, "x"]]), "finite number or nil"),
        (_with(6, []), "readings: expected 1"),
    ],
)
def test_malformed_v2_is_refused_with_its_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(ContractError) as err:
        decode_v2(TOPIC, payload)
    assert reason in err.value.reason


def test_v2_topics_are_not_v1_and_v1_decoders_refuse_them() -> None:
    payload, _ = encode_v2(DECLS, SCHEMA, 1, NOW_MS, [(0, NOW_MS, 1.0, 0)])
    for dec in (decode, decode_record):
        with pytest.raises(ContractError, match="needs its birth"):
            dec(TOPIC, payload)
    with pytest.raises(ContractError, match="not a v2 data topic"):
        decode_v2("oxy/v1/SITE-1/gw-1/data", payload)


def test_unknown_index_is_named_and_the_rest_resolves() -> None:
    payload, _ = encode_v2(DECLS, SCHEMA, 1, NOW_MS, [(0, NOW_MS, 1.0, 0), (2, NOW_MS, 2.0, 0)])
    record, problems = expand_v2("gw-1", decode_v2(TOPIC, payload)[1], DECLS[:2])
    assert record is not None and [r["sensor"] for r in record["readings"]] == ["T1-dp"]
    assert problems == [f"groups.0: index 2 is not declared by schema {SCHEMA} (2 sensors)"]


def test_birth_declares_sensors_under_their_schema() -> None:
    birth = StateMessage(gw="gw-1", online=True, bd_seq=3, schema_=SCHEMA, sensors=DECLS)
    _, back = decode("oxy/v1/SITE-1/gw-1/state", encode(birth))
    assert isinstance(back, StateMessage) and back.sensors == DECLS and back.schema_ == SCHEMA
    # A v1 birth is byte-for-byte what it was: an older centre accepts it.
    assert b"schema" not in encode(StateMessage(gw="gw-1", online=True, bd_seq=3))
    for bad, reason in (
        ({"schema": SCHEMA + 1, "sensors": [d.model_dump() for d in DECLS]}, "does not match"),
        ({"schema": SCHEMA}, "go together"),
        ({"schema": 1, "sensors": [{"code": "a", "unit": "furlong"}]}, "unknown unit"),
        ({"schema": 1, "sensors": [{"code": "a", "unit": "bar"}] * 2}, "declared twice"),
    ):
        doc = {"v": 1, "gw": "gw-1", "online": True, "bd_seq": 1, **bad}
        with pytest.raises(ContractError, match=reason):
            decode("oxy/v1/SITE-1/gw-1/state", msgpack_free_json(doc))
    assert schema_id(DECLS) != schema_id(
        [*DECLS[:2], SensorDecl(code="T1-t", unit="degC", res=0.1)]
    )


def msgpack_free_json(doc: dict[str, Any]) -> bytes:
    import json

    return json.dumps(doc).encode()


def test_times_outside_the_calendar_are_refused_before_any_datetime() -> None:
    far = (datetime(9999, 12, 31, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        milliseconds=1
    )
    with pytest.raises(ContractError, match="offset"):
        decode_v2(TOPIC, _with(6, [[far, 0, 1]]))
