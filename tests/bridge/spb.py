"""Sparkplug B payloads built with the protoc-generated classes (an implementation independent
of the bridge's own reader)."""

from __future__ import annotations

from typing import Any

from tests.bridge import sparkplug_b_pb2 as pb

INT8, INT16, INT32, INT64 = 1, 2, 3, 4
UINT32, UINT64 = 7, 8
UINT8, UINT16 = 5, 6
FLOAT, DOUBLE, BOOLEAN, STRING = 9, 10, 11, 12
DATASET = 16


def metric(
    name: str | None = None,
    alias: int | None = None,
    datatype: int = DOUBLE,
    value: Any = None,
    timestamp: int | None = None,
    is_null: bool = False,
    typed: bool = True,
) -> dict[str, Any]:
    """A metric description for `payload`; `typed=False` leaves the datatype out of the wire
    message, as data messages should (the value is still encoded as `datatype` says)."""
    return {
        "typed": typed,
        "name": name,
        "alias": alias,
        "datatype": datatype,
        "value": value,
        "timestamp": timestamp,
        "is_null": is_null,
    }


def payload(seq: int | None, metrics: list[dict[str, Any]], timestamp: int | None = None) -> bytes:
    """Serialise a Sparkplug B payload."""
    p = pb.Payload()
    if timestamp is not None:
        p.timestamp = timestamp
    if seq is not None:
        p.seq = seq
    for spec in metrics:
        m = p.metrics.add()
        if spec["name"] is not None:
            m.name = spec["name"]
        if spec["alias"] is not None:
            m.alias = spec["alias"]
        if spec["timestamp"] is not None:
            m.timestamp = spec["timestamp"]
        if spec["typed"]:
            m.datatype = spec["datatype"]
        if spec["is_null"]:
            m.is_null = True
            continue
        v, dt = spec["value"], spec["datatype"]
        if v is None:
            continue
        if dt in (INT8, INT16, INT32):
            m.int_value = v & 0xFFFFFFFF  # two's complement in uint32 (spec 6.4.16)
        elif dt == 5 or dt == 6 or dt == UINT32:
            m.int_value = v
        elif dt == INT64:
            m.long_value = v & 0xFFFFFFFFFFFFFFFF
        elif dt in (UINT64, 13):
            m.long_value = v
        elif dt == FLOAT:
            m.float_value = v
        elif dt == DOUBLE:
            m.double_value = v
        elif dt == BOOLEAN:
            m.boolean_value = v
        elif dt in (STRING, 14):
            m.string_value = v
        elif dt == DATASET:
            m.dataset_value.num_of_columns = len(v)
            m.dataset_value.columns.extend(v)
        else:
            m.bytes_value = v
    return p.SerializeToString()


def parse(data: bytes) -> Any:
    """Parse a payload with the generated classes."""
    p = pb.Payload()
    p.ParseFromString(data)
    return p
