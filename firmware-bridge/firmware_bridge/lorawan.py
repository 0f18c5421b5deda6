"""LoRaWAN network-server uplinks (ChirpStack v4, The Things Stack v3) → readings and health.

Both servers run the device's payload codec and publish the decoded values as JSON; we map
them by device EUI. Signal quality (best RSSI/SNR over the receiving gateways) and battery are
kept as device health, published in the mapped gateway's status message.
"""

from __future__ import annotations

from datetime import datetime

from firmware_bridge.config import Source
from firmware_bridge.errors import PayloadError
from firmware_bridge.mapping import map_points, parse_json, unknown_device
from firmware_bridge.model import GatewayRef, Health, Outcome
from firmware_bridge.paths import number, parse_time, resolve


def _best(rx: object, key: str) -> float | None:
    """The best (highest) value of `key` over the receiving gateways' metadata."""
    if not isinstance(rx, list):
        return None
    values: list[float] = []
    for item in rx:
        if isinstance(item, dict) and key in item:
            try:
                v = number(item[key], key)
            except PayloadError:
                continue  # one gateway's odd metadata does not spoil the uplink
            if v is not None:
                values.append(v)
    return max(values) if values else None


def _battery(source: Source, decoded: dict[str, object], fallback: object = None) -> float | None:
    raw: object = fallback
    if source.battery_path is not None:
        try:
            raw = resolve(decoded, source.battery_path)
        except PayloadError:
            raw = fallback
    try:
        return number(raw, "battery")
    except PayloadError:
        return None


def _object(value: object, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise PayloadError(f"{what} is missing or not a JSON object")
    return value


def _finish(
    source: Source,
    *,
    dev_eui: str,
    ts: datetime,
    decoded: dict[str, object] | None,
    health: Health,
    raw: object,
) -> Outcome:
    out = Outcome()
    device = source.device(dev_eui)
    if device is None:
        out.unknown.append(unknown_device(dev_eui, ts, source, raw))
        return out
    out.health.append((GatewayRef(device.site, device.gateway), health))
    if decoded is not None:
        map_points(device, decoded, ts, out, source.protocol)
    return out


def handle_chirpstack(source: Source, topic_name: str, payload: bytes) -> Outcome:
    """ChirpStack v4 `application/<app>/device/<devEui>/event/<up|status|...>` JSON events."""
    event = topic_name.rsplit("/", 1)[-1]
    if event not in ("up", "status"):
        return Outcome()  # join, ack, txack, log, location: nothing to bridge
    doc = _object(parse_json(payload), "event")
    info = _object(doc.get("deviceInfo"), "deviceInfo")
    dev_eui = info.get("devEui")
    if not isinstance(dev_eui, str) or not dev_eui:
        raise PayloadError("deviceInfo.devEui is missing")
    ts = parse_time(resolve(doc, "time"), "iso8601")
    if event == "status":
        battery = number(doc.get("batteryLevel"), "batteryLevel")
        return _finish(
            source,
            dev_eui=dev_eui,
            ts=ts,
            decoded=None,
            health=Health(dev_eui.lower(), ts, battery),
            raw=doc,
        )
    decoded = _object(doc.get("object"), "decoded `object` (is a codec configured?)")
    rx = doc.get("rxInfo")
    health = Health(
        device=dev_eui.lower(),
        ts=ts,
        battery_pct=_battery(source, decoded),
        rssi_dbm=_best(rx, "rssi"),
        snr_db=_best(rx, "snr"),
    )
    return _finish(source, dev_eui=dev_eui, ts=ts, decoded=decoded, health=health, raw=doc)


def handle_tts(source: Source, topic_name: str, payload: bytes) -> Outcome:
    """The Things Stack v3 `v3/<app>@<tenant>/devices/<id>/up` uplink JSON."""
    if topic_name.rsplit("/", 1)[-1] != "up":
        return Outcome()
    doc = _object(parse_json(payload), "uplink")
    ids = _object(doc.get("end_device_ids"), "end_device_ids")
    dev_eui = ids.get("dev_eui")
    if not isinstance(dev_eui, str) or not dev_eui:
        raise PayloadError("end_device_ids.dev_eui is missing")
    up = _object(doc.get("uplink_message"), "uplink_message")
    ts = parse_time(doc.get("received_at") or up.get("received_at"), "iso8601")
    decoded = _object(up.get("decoded_payload"), "uplink_message.decoded_payload (no formatter?)")
    rx = up.get("rx_metadata")
    health = Health(
        device=dev_eui.lower(),
        ts=ts,
        battery_pct=_battery(source, decoded, doc.get("last_battery_percentage")),
        rssi_dbm=_best(rx, "rssi"),
        snr_db=_best(rx, "snr"),
    )
    return _finish(source, dev_eui=dev_eui, ts=ts, decoded=decoded, health=health, raw=doc)
