"""Recorded-style uplinks: the shapes ChirpStack v4 and The Things Stack v3 publish (field names
and nesting as those servers emit them; identifiers invented)."""

from __future__ import annotations

import copy
from typing import Any

CHIRPSTACK_DEV_EUI = "0004a30b001c0530"
CHIRPSTACK_TOPIC = (
    f"application/7f3c1a2e-5b6d-4e8f-9a0b-1c2d3e4f5a6b/device/{CHIRPSTACK_DEV_EUI}/event/up"
)

_CHIRPSTACK_UP: dict[str, Any] = {
    "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
    "time": "2026-11-28T03:15:42.158817+00:00",
    "deviceInfo": {
        "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
        "tenantName": "Oxy",
        "applicationId": "7f3c1a2e-5b6d-4e8f-9a0b-1c2d3e4f5a6b",
        "applicationName": "lox-level",
        "deviceProfileId": "0b46400d-ce5b-4f1a-9a87-49a2b1d6e1f5",
        "deviceProfileName": "DP level sensor",
        "deviceName": "bv-b-tank2",
        "devEui": "0004A30B001C0530",
        "deviceClassEnabled": "CLASS_A",
        "tags": {"facility": "BV-B"},
    },
    "devAddr": "01f2a3b4",
    "adr": True,
    "dr": 5,
    "fCnt": 1842,
    "fPort": 2,
    "confirmed": False,
    "data": "AQsUA+g=",
    "object": {"dp_mbar": 27.9, "head_bar": 8.75, "battery": 87.0},
    "rxInfo": [
        {
            "gatewayId": "0016c001f153a14c",
            "uplinkId": 4471,
            "nsTime": "2026-11-28T03:15:42.142Z",
            "rssi": -112,
            "snr": -3.5,
            "channel": 2,
            "location": {"latitude": 10.77, "longitude": 106.69},
            "context": "E8Kp9w==",
            "crcStatus": "CRC_OK",
        },
        {
            "gatewayId": "0016c001f153a14d",
            "uplinkId": 9912,
            "rssi": -97,
            "snr": 6.25,
            "channel": 2,
            "context": "AAECAw==",
            "crcStatus": "CRC_OK",
        },
    ],
    "txInfo": {
        "frequency": 923200000,
        "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7, "codeRate": "CR_4_5"}},
    },
}

CHIRPSTACK_STATUS_TOPIC = CHIRPSTACK_TOPIC.rsplit("/", 1)[0] + "/status"
_CHIRPSTACK_STATUS: dict[str, Any] = {
    "deduplicationId": "90f5e0d7-3f7e-4d3a-9f77-1234567890ab",
    "time": "2026-11-28T03:20:00.000000+00:00",
    "deviceInfo": _CHIRPSTACK_UP["deviceInfo"],
    "margin": 9,
    "externalPowerSource": False,
    "batteryLevel": 81.5,
}

TTS_DEV_EUI = "70B3D57ED005C0A1"
TTS_TOPIC = "v3/lox-level@oxy/devices/bv-c-tank1/up"
_TTS_UP: dict[str, Any] = {
    "end_device_ids": {
        "device_id": "bv-c-tank1",
        "application_ids": {"application_id": "lox-level"},
        "dev_eui": TTS_DEV_EUI,
        "join_eui": "0000000000000000",
        "dev_addr": "260B1234",
    },
    "correlation_ids": ["as:up:01HZX3Q9", "gs:uplink:01HZX3Q8"],
    "received_at": "2026-11-28T03:16:05.787756681Z",
    "uplink_message": {
        "session_key_id": "AYr3Zp1t0GvWQ0nC5mXH5g==",
        "f_port": 1,
        "f_cnt": 311,
        "frm_payload": "CgAzAA==",
        "decoded_payload": {"level": {"pct": 64.5}, "bat": 92, "temperature_c": -179.6},
        "rx_metadata": [
            {
                "gateway_ids": {"gateway_id": "hcm-gw-01", "eui": "B827EBFFFE6A1B2C"},
                "time": "2026-11-28T03:16:05.551Z",
                "timestamp": 2846153515,
                "rssi": -88,
                "channel_rssi": -88,
                "snr": 9.5,
                "uplink_token": "ChcKFQoJaGNtLWd3LTAx",
            }
        ],
        "settings": {
            "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 9}},
            "frequency": "923400000",
        },
        "received_at": "2026-11-28T03:16:05.578Z",
        "consumed_airtime": "0.185344s",
        "network_ids": {"net_id": "000013", "tenant_id": "oxy", "cluster_id": "as1"},
    },
}


def chirpstack_up() -> dict[str, Any]:
    """A fresh copy of the ChirpStack v4 uplink event."""
    return copy.deepcopy(_CHIRPSTACK_UP)


def chirpstack_status() -> dict[str, Any]:
    """A fresh copy of the ChirpStack v4 status event."""
    return copy.deepcopy(_CHIRPSTACK_STATUS)


def tts_up() -> dict[str, Any]:
    """A fresh copy of The Things Stack v3 uplink."""
    return copy.deepcopy(_TTS_UP)


# More ChirpStack v4 events (integration/event.proto as JSON): join, log, ack, txack.
_CHIRPSTACK_JOIN: dict[str, Any] = {
    "deduplicationId": "c9dbe358-2578-4fb7-b295-66b44edc45a6",
    "time": "2026-11-28T03:10:00.000000+00:00",
    "deviceInfo": _CHIRPSTACK_UP["deviceInfo"],
    "devAddr": "01f2a3b4",
    "relayRxInfo": None,
}
_CHIRPSTACK_LOG: dict[str, Any] = {
    "time": "2026-11-28T03:15:42.160000+00:00",
    "deviceInfo": _CHIRPSTACK_UP["deviceInfo"],
    "level": "ERROR",
    "code": "UPLINK_CODEC",
    "description": "js vm error: TypeError: cannot read property 'length' of undefined",
    "context": {"deduplication_id": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d"},
}
_CHIRPSTACK_ACK: dict[str, Any] = {
    "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
    "time": "2026-11-28T03:15:43.000000+00:00",
    "deviceInfo": _CHIRPSTACK_UP["deviceInfo"],
    "queueItemId": "1b7b9f5e-2f3d-4c7c-8e5f-0f0e0d0c0b0a",
    "acknowledged": True,
    "fCntDown": 12,
}
_CHIRPSTACK_TXACK: dict[str, Any] = {
    "downlinkId": 1234567,
    "time": "2026-11-28T03:15:43.500000+00:00",
    "deviceInfo": _CHIRPSTACK_UP["deviceInfo"],
    "queueItemId": "1b7b9f5e-2f3d-4c7c-8e5f-0f0e0d0c0b0a",
    "fCntDown": 12,
    "gatewayId": "0016c001f153a14c",
    "txInfo": {"frequency": 923200000, "power": 14},
}


def chirpstack_event(event: str) -> dict[str, Any]:
    """A fresh copy of a ChirpStack v4 event: up, status, join, log, ack, txack."""
    return copy.deepcopy(
        {
            "up": _CHIRPSTACK_UP,
            "status": _CHIRPSTACK_STATUS,
            "join": _CHIRPSTACK_JOIN,
            "log": _CHIRPSTACK_LOG,
            "ack": _CHIRPSTACK_ACK,
            "txack": _CHIRPSTACK_TXACK,
        }[event]
    )


# The Things Stack v3: the battery as the network server last learned it (DevStatusAns), and
# the other application-up messages (join accept, downlink ack).
TTS_LAST_BATTERY: dict[str, Any] = {
    "f_cnt": 300,
    "value": 73.2,
    "received_at": "2026-11-28T02:00:00.123Z",
}
_TTS_JOIN: dict[str, Any] = {
    "end_device_ids": _TTS_UP["end_device_ids"],
    "correlation_ids": ["as:up:01HZX1AA"],
    "received_at": "2026-11-28T03:00:01.000000000Z",
    "join_accept": {
        "session_key_id": "AYr3Zp1t0GvWQ0nC5mXH5g==",
        "received_at": "2026-11-28T03:00:00.950Z",
    },
}
_TTS_DOWN_ACK: dict[str, Any] = {
    "end_device_ids": _TTS_UP["end_device_ids"],
    "correlation_ids": ["as:downlink:01HZX4BB"],
    "received_at": "2026-11-28T03:17:00.000000000Z",
    "downlink_ack": {"session_key_id": "AYr3Zp1t0GvWQ0nC5mXH5g==", "f_port": 1, "f_cnt": 5},
}


def tts_event(kind: str) -> dict[str, Any]:
    """A fresh copy of a TTS v3 application-up message: up, join, down/ack."""
    return copy.deepcopy({"up": _TTS_UP, "join": _TTS_JOIN, "down/ack": _TTS_DOWN_ACK}[kind])
