"""LoRaWAN network-server uplinks (ChirpStack v4, The Things Stack v3) → readings and health.

Both servers run the device's payload codec and publish the decoded values as JSON; we map
them by device EUI. Signal quality (best RSSI/SNR over the receiving gateways) and battery are
kept as device health, published in the mapped gateway's status message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

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
    """ChirpStack v4 `application/<app>/device/<devEui>/event/<up|status|...>` JSON events.

    `up` → readings and health; `status` → battery; `log` of level ERROR (a codec that failed,
    a frame-counter reset, ...) → an alarm on the mapped gateway; join, ack, txack, location:
    nothing to bridge. The HTTP integration names the event in `?event=`, the same names.
    """
    event = topic_name.rsplit("/", 1)[-1]
    if event not in ("up", "status", "log"):
        return Outcome()  # join, ack, txack, location: nothing to bridge
    doc = _object(parse_json(payload), "event")
    info = _object(doc.get("deviceInfo"), "deviceInfo")
    dev_eui = info.get("devEui")
    if not isinstance(dev_eui, str) or not dev_eui:
        raise PayloadError("deviceInfo.devEui is missing")
    ts = parse_time(resolve(doc, "time"), "iso8601")
    if event == "log":
        return _chirpstack_log(source, dev_eui, doc)
    if event == "status":
        battery = None
        if not doc.get("externalPowerSource") and not doc.get("batteryLevelUnavailable"):
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


def _chirpstack_log(source: Source, dev_eui: str, doc: dict[str, object]) -> Outcome:
    out = Outcome()
    device = source.device(dev_eui)
    if device is not None and doc.get("level") == "ERROR":
        reason = f"chirpstack {dev_eui.lower()}: {doc.get('code')}: {doc.get('description')}"
        out.alarms.append((GatewayRef(device.site, device.gateway), reason[:500]))
    return out


# The message kinds of a TTS v3 application-up, by the key that carries each (MQTT topics end
# in the same names: up, join, down/ack, ...; a webhook posts them all to one URL).
TTS_KINDS: Final = {
    "uplink_message": "up",
    "join_accept": "join",
    "downlink_ack": "down/ack",
    "downlink_nack": "down/nack",
    "downlink_sent": "down/sent",
    "downlink_failed": "down/failed",
    "downlink_queued": "down/queued",
    "downlink_queue_invalidated": "down/queue/invalidated",
    "location_solved": "location/solved",
    "service_data": "service/data",
}


def tts_kind(doc: object) -> str | None:
    """Which TTS message an application-up document is (None when none is recognised)."""
    if isinstance(doc, dict):
        for key, kind in TTS_KINDS.items():
            if key in doc:
                return kind
    return None


def handle_tts(source: Source, topic_name: str, payload: bytes) -> Outcome:
    """The Things Stack v3 application-up JSON (`v3/<app>@<tenant>/devices/<id>/<kind>` or a
    webhook): uplinks → readings and health; joins, downlink events, ...: nothing to bridge."""
    doc = _object(parse_json(payload), "application-up message")
    if tts_kind(doc) != "up":
        return Outcome()
    ids = _object(doc.get("end_device_ids"), "end_device_ids")
    dev_eui = ids.get("dev_eui")
    if not isinstance(dev_eui, str) or not dev_eui:
        raise PayloadError("end_device_ids.dev_eui is missing")
    up = _object(doc.get("uplink_message"), "uplink_message")
    if doc.get("simulated") is True:
        # Sent from the console's "simulate uplink": test traffic, never a real reading.
        raise PayloadError(f"tts {dev_eui.lower()}: simulated uplink, not stored as a reading")
    ts = parse_time(doc.get("received_at") or up.get("received_at"), "iso8601")
    decoded = _object(up.get("decoded_payload"), "uplink_message.decoded_payload (no formatter?)")
    rx = up.get("rx_metadata")
    last_battery = up.get("last_battery_percentage")
    health = Health(
        device=dev_eui.lower(),
        ts=ts,
        battery_pct=_battery(
            source, decoded, last_battery.get("value") if isinstance(last_battery, dict) else None
        ),
        rssi_dbm=_best(rx, "rssi"),
        snr_db=_best(rx, "snr"),
    )
    return _finish(source, dev_eui=dev_eui, ts=ts, decoded=decoded, health=health, raw=doc)
