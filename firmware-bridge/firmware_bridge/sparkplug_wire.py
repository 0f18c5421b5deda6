"""A small reader/writer for the Sparkplug B protobuf payload (see sparkplug_b.proto).

Only the parts a host application needs are decoded: the payload's timestamp, seq and metrics
(name, alias, timestamp, datatype, is_null and the scalar values). DataSets, Templates, metadata
and properties are skipped by wire type, so they never break a payload. Hand-written rather than
generated so the bridge needs no protobuf runtime; the tests build payloads with protoc-generated
classes, an independent implementation.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from firmware_bridge.errors import PayloadError

_VARINT, _FIXED64, _LEN, _SGROUP, _EGROUP, _FIXED32 = 0, 1, 2, 3, 4, 5


class DataType(IntEnum):
    """Sparkplug B data type codes."""

    UNKNOWN = 0
    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14
    UUID = 15
    DATASET = 16
    BYTES = 17
    FILE = 18
    TEMPLATE = 19


_SIGNED_BITS: Final[dict[int, int]] = {
    DataType.INT8: 8,
    DataType.INT16: 16,
    DataType.INT32: 32,
    DataType.INT64: 64,
}

_UNSIGNED_BITS: Final[dict[int, int]] = {
    DataType.UINT8: 8,
    DataType.UINT16: 16,
    DataType.UINT32: 32,
    DataType.UINT64: 64,
}
# The specification's spelling of each type, for reasons people read.
_TYPE_NAMES: Final = [
    "Unknown", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float",
    "Double", "Boolean", "String", "DateTime", "Text", "UUID", "DataSet", "Bytes", "File",
    "Template",
]  # fmt: skip

Value = int | float | bool | str | bytes | None


@dataclass(frozen=True, slots=True)
class Metric:
    """One decoded metric; `value` is None when absent or flagged null."""

    name: str | None
    alias: int | None
    timestamp: int | None
    datatype: int | None
    is_null: bool
    value: Value  # as far as this message alone tells (see `typed_value` for data messages)
    value_field: int | None  # which oneof field carried the value (10..19), None if none
    raw: int | bytes | None = None  # the value's field as it came off the wire


@dataclass(frozen=True, slots=True)
class Payload:
    """A decoded Sparkplug B payload."""

    timestamp: int | None
    seq: int | None
    metrics: tuple[Metric, ...]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def done(self) -> bool:
        return self.pos >= len(self.data)

    def varint(self) -> int:
        result = shift = 0
        while True:
            if self.pos >= len(self.data):
                raise PayloadError("protobuf: truncated varint")
            b = self.data[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift >= 70:
                raise PayloadError("protobuf: varint longer than 10 bytes")

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise PayloadError("protobuf: field runs past the end of the payload")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def key(self) -> tuple[int, int]:
        k = self.varint()
        field, wire = k >> 3, k & 7
        if field == 0:
            raise PayloadError("protobuf: field number 0")
        return field, wire

    def value(self, wire: int) -> int | bytes:
        if wire == _VARINT:
            return self.varint()
        if wire == _FIXED64:
            return self.take(8)
        if wire == _FIXED32:
            return self.take(4)
        if wire == _LEN:
            return self.take(self.varint())
        raise PayloadError(f"protobuf: unsupported wire type {wire}")


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _str(raw: int | bytes, what: str) -> str:
    if not isinstance(raw, bytes):
        raise PayloadError(f"protobuf: {what} is not length-delimited")
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise PayloadError(f"protobuf: {what} is not UTF-8") from None


def _int(raw: int | bytes, what: str) -> int:
    if not isinstance(raw, int):
        raise PayloadError(f"protobuf: {what} is not a varint")
    return raw


def _decode_metric(data: bytes) -> Metric:
    r = _Reader(data)
    name: str | None = None
    alias = timestamp = datatype = None
    is_null = False
    value: Value = None
    value_field: int | None = None
    raw_value: int | bytes | None = None
    while not r.done():
        field, wire = r.key()
        raw = r.value(wire)
        if field == 1:
            name = _str(raw, "metric name")
        elif field == 2:
            alias = _int(raw, "metric alias")
        elif field == 3:
            timestamp = _int(raw, "metric timestamp")
        elif field == 4:
            datatype = _int(raw, "metric datatype")
        elif field == 7:
            is_null = bool(_int(raw, "metric is_null"))
        elif 10 <= field <= 19:
            value_field, raw_value = field, raw
    if raw_value is not None and value_field is not None and not is_null:
        value = _metric_value(value_field, raw_value, datatype)
    return Metric(name, alias, timestamp, datatype, is_null, value, value_field, raw_value)


def _metric_value(field: int, raw: int | bytes, datatype: int | None) -> Value:
    if field in (10, 11):
        v = _int(raw, "integer value")
        if datatype is None:
            return v
        # Signed types travel as two's complement in uint32/uint64 (spec 3.0, 6.4.16).
        if datatype in _SIGNED_BITS:
            return _signed(v, _SIGNED_BITS[datatype])
        if datatype in _UNSIGNED_BITS:
            return v & ((1 << _UNSIGNED_BITS[datatype]) - 1)
        return v
    if field == 12:
        if not isinstance(raw, bytes):
            raise PayloadError("protobuf: float value has the wrong wire type")
        return float(struct.unpack("<f", raw)[0])
    if field == 13:
        if not isinstance(raw, bytes):
            raise PayloadError("protobuf: double value has the wrong wire type")
        return float(struct.unpack("<d", raw)[0])
    if field == 14:
        return bool(_int(raw, "boolean value"))
    if field == 15:
        return _str(raw, "string value")
    if field == 16:
        return raw if isinstance(raw, bytes) else None
    return None  # DataSet, Template, extension: not readings


# The types a reading can be made of, and the value field each must travel in (spec 6.4.16).
_INTEGER_FIELDS: Final = (10, 11)
_NUMERIC_FIELDS: Final[dict[int, tuple[int, ...]]] = {
    **{int(t): _INTEGER_FIELDS for t in range(DataType.INT8, DataType.UINT64 + 1)},
    DataType.FLOAT: (12,),
    DataType.DOUBLE: (13,),
    DataType.BOOLEAN: (14,),
}


def type_name(datatype: int) -> str:
    """`Int64`, `DataSet`, ... for a datatype code (the number itself when unknown)."""
    if 0 <= datatype < len(_TYPE_NAMES):
        return _TYPE_NAMES[datatype]
    return f"datatype {datatype}"


def typed_value(metric: Metric, datatype: int | None) -> int | float | bool | None:
    """The metric's value read as `datatype` (from the metric itself or from its birth).

    Data messages SHOULD NOT carry the datatype (spec 3.0, tck-id-payloads-metric-datatype-not-req),
    and integers travel as unsigned two's complement, so an Int64 of -2000 is only readable with
    the type the birth declared. Returns None for a null value; PayloadError for a datatype that
    is not a number (String, DataSet, Template, ...), for none at all (never a guessed value) or
    for a value in the wrong field.
    """
    if not datatype:
        raise PayloadError("metric has no datatype (neither in this message nor in its birth)")
    fields = _NUMERIC_FIELDS.get(datatype)
    if fields is None:
        raise PayloadError(f"{type_name(datatype)} is not supported as a reading")
    if metric.is_null or metric.raw is None:
        return None
    if metric.value_field not in fields:
        raise PayloadError(
            f"{type_name(datatype)} value travels in the wrong field ({metric.value_field})"
        )
    return _metric_value(metric.value_field, metric.raw, datatype)  # type: ignore[return-value]


def decode_payload(data: bytes) -> Payload:
    """Decode a Sparkplug B payload; raise PayloadError with a reason if it is not one."""
    r = _Reader(data)
    timestamp = seq = None
    metrics: list[Metric] = []
    while not r.done():
        field, wire = r.key()
        raw = r.value(wire)
        if field == 1:
            timestamp = _int(raw, "payload timestamp")
        elif field == 2:
            if not isinstance(raw, bytes):
                raise PayloadError("protobuf: metric is not length-delimited")
            metrics.append(_decode_metric(raw))
        elif field == 3:
            seq = _int(raw, "payload seq")
    return Payload(timestamp, seq, tuple(metrics))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _len_field(field: int, body: bytes) -> bytes:
    return _varint(field << 3 | _LEN) + _varint(len(body)) + body


def encode_rebirth(timestamp_ms: int) -> bytes:
    """The NCMD payload asking an edge node to rebirth: `Node Control/Rebirth` = true."""
    metric = (
        _len_field(1, b"Node Control/Rebirth")
        + _varint(3 << 3 | _VARINT)
        + _varint(timestamp_ms)
        + _varint(4 << 3 | _VARINT)
        + _varint(DataType.BOOLEAN)
        + _varint(14 << 3 | _VARINT)
        + _varint(1)
    )
    return _varint(1 << 3 | _VARINT) + _varint(timestamp_ms) + _len_field(2, metric)
