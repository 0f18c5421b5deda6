"""Declarative JSON mapping shared by vendor MQTT, HTTP push and LoRaWAN decoded objects."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from firmware_bridge.config import Device, Source
from firmware_bridge.errors import PayloadError
from firmware_bridge.model import GatewayRef, Outcome, Unknown, point_reading
from firmware_bridge.paths import number, parse_time, resolve


def parse_json(payload: bytes) -> object:
    """Parse a JSON payload; PayloadError with the parser's reason otherwise."""
    try:
        return json.loads(payload)
    except UnicodeDecodeError:
        raise PayloadError("payload is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(f"payload is not JSON: {exc.msg} at offset {exc.pos}") from None


def map_points(device: Device, document: object, ts: datetime, out: Outcome, what: str) -> None:
    """Add a reading for each mapped point found in `document`; missing or bad ones → dead."""
    ref = GatewayRef(device.site, device.gateway)
    before = len(out.readings.get(ref, []))
    for point in device.points:
        assert point.path is not None  # checked when the config was loaded
        try:
            value = number(resolve(document, point.path), f"field {point.path!r}")
            out.add_reading(ref, point_reading(point, ts, value))
        except PayloadError as exc:
            out.dead.append(f"{what} {device.id} sensor {point.sensor}: {exc.reason}")
    if device.points and len(out.readings.get(ref, [])) == before:
        # Nothing usable at all: the whole message is a dead letter, not a partial one.
        raise PayloadError("; ".join(out.dead) or f"{what} {device.id}: no mapped value")


def unknown_device(device_id: str, ts: datetime | None, source: Source, doc: object) -> Unknown:
    """The quarantine record for a device the mapping does not know."""
    return Unknown(
        device=device_id,
        ts=ts,
        reason=f"{source.protocol} device {device_id} is not in the mapping of source"
        f" {source.name}",
        detail=doc,
    )


def vendor_records(document: object) -> list[object]:
    """A vendor body is one record or a list of records."""
    if isinstance(document, list):
        if not document:
            raise PayloadError("empty list of records")
        return document
    return [document]


def record_time(source: Source, record: object) -> datetime:
    """The record's timestamp by the source's declared path and format (received now if none)."""
    if source.timestamp_path is None:
        return datetime.now(UTC)
    return parse_time(resolve(record, source.timestamp_path), source.timestamp_format, source.zone)


def record_device_id(source: Source, record: object, topic_name: str | None) -> str:
    """The foreign device id of a record: a JSON path, or a level of the MQTT topic."""
    if source.device_id_path is not None:
        raw = resolve(record, source.device_id_path)
        if not isinstance(raw, str | int) or isinstance(raw, bool) or str(raw) == "":
            raise PayloadError(f"device id at {source.device_id_path!r} is not a string")
        return str(raw)
    if source.device_id_topic_level is not None and topic_name is not None:
        levels = topic_name.split("/")
        if source.device_id_topic_level >= len(levels):
            raise PayloadError(f"topic {topic_name!r} has no level {source.device_id_topic_level}")
        return levels[source.device_id_topic_level]
    raise PayloadError("no device id: the source maps neither a path nor a topic level")


def handle_vendor(
    source: Source, document: object, topic_name: str | None, device_id: str | None = None
) -> Outcome:
    """Map a vendor JSON document (MQTT or HTTP push) to readings; unknown devices quarantined."""
    out = Outcome()
    for record in vendor_records(document):
        if not isinstance(record, dict):
            raise PayloadError(f"record is a {type(record).__name__}, not a JSON object")
        dev_id = device_id or record_device_id(source, record, topic_name)
        ts = record_time(source, record)
        device = source.device(dev_id)
        if device is None:
            out.unknown.append(unknown_device(dev_id, ts, source, record))
            continue
        map_points(device, record, ts, out, source.protocol)
    return out
