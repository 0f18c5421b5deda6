"""LoRaWAN uplinks (ChirpStack v4, The Things Stack v3) through a real broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from oxy.contract import StatusMessage
from tests.bridge import recorded
from tests.bridge.conftest import rows, wait_rows

CHIRPSTACK: dict[str, Any] = {
    "name": "cs",
    "protocol": "chirpstack",
    "battery_path": "battery",
    "devices": [
        {
            "id": recorded.CHIRPSTACK_DEV_EUI,  # lower case; the uplink says upper case
            "site": "BV-B",
            "gateway": "gw-bv-b-lora",
            "points": [
                {"path": "dp_mbar", "sensor": "T2-dp", "unit": "mbar_dp"},
                {"path": "head_bar", "sensor": "T2-p", "unit": "bar"},
            ],
        }
    ],
}
TTS: dict[str, Any] = {
    "name": "tts",
    "protocol": "tts",
    "battery_path": "bat",
    "devices": [
        {
            "id": recorded.TTS_DEV_EUI,
            "site": "BV-C",
            "gateway": "gw-bv-c-lora",
            "points": [
                {"path": "level.pct", "sensor": "T1-level", "unit": "%"},
                {"path": "temperature_c", "sensor": "T1-temp", "unit": "degC"},
            ],
        }
    ],
}


def test_chirpstack_uplink_and_status(
    broker, db_url, bridge_factory, collector_factory, foreign_factory
):
    out = collector_factory(broker.port, "oxy/v1/#")
    bridge_factory(broker.port, db_url, [CHIRPSTACK])
    ns = foreign_factory(broker.port)

    ns.send(recorded.CHIRPSTACK_TOPIC, recorded.chirpstack_up())
    out.wait(lambda t, p: t == "oxy/v1/BV-B/gw-bv-b-lora/data")
    [data] = out.contract("data", "gw-bv-b-lora")
    ts = datetime(2026, 11, 28, 3, 15, 42, 158000, tzinfo=UTC)
    assert {(r.sensor, r.value, r.unit, r.ts) for r in data.readings} == {
        ("T2-dp", 27.9, "mbar_dp", ts),
        ("T2-p", 8.75, "bar", ts),
    }
    [(_, status_raw)] = out.wait(lambda t, p: t == "oxy/v1/BV-B/gw-bv-b-lora/status")
    status = StatusMessage.model_validate_json(status_raw)
    [health] = status.devices
    # Battery from the codec; signal quality is the best gateway's.
    assert (health.device, health.battery_pct, health.rssi_dbm, health.snr_db) == (
        recorded.CHIRPSTACK_DEV_EUI,
        87.0,
        -97.0,
        6.25,
    )

    # A status event updates the battery without readings.
    ns.send(recorded.CHIRPSTACK_STATUS_TOPIC, recorded.chirpstack_status())
    statuses = out.wait(lambda t, p: t.endswith("/status"), count=2)
    assert StatusMessage.model_validate_json(statuses[-1][1]).devices[0].battery_pct == 81.5
    assert len(out.contract("data")) == 1

    # Join/ack events carry nothing to bridge and are acknowledged without output.
    ns.send(recorded.CHIRPSTACK_TOPIC.replace("/up", "/join"), {"deviceInfo": {}})

    # An unknown device EUI is quarantined with its uplink.
    unknown = recorded.chirpstack_up()
    unknown["deviceInfo"]["devEui"] = "A84041000181C0DE"
    ns.send(
        recorded.CHIRPSTACK_TOPIC.replace(recorded.CHIRPSTACK_DEV_EUI, "a84041000181c0de"), unknown
    )
    [(sensor, reason, payload)] = wait_rows(
        db_url, "SELECT sensor, reason, payload FROM quarantine", 1
    )
    assert sensor == "A84041000181C0DE" and "not in the mapping" in reason
    assert payload["object"]["dp_mbar"] == 27.9
    # The join event before it was acknowledged without a dead letter.
    assert rows(db_url, "SELECT count(*) FROM dead_letters")[0][0] == 0


def test_tts_uplink(broker, db_url, bridge_factory, collector_factory, foreign_factory):
    out = collector_factory(broker.port, "oxy/v1/#")
    bridge_factory(broker.port, db_url, [TTS])
    ns = foreign_factory(broker.port)

    ns.send(recorded.TTS_TOPIC, recorded.tts_up())
    out.wait(lambda t, p: t == "oxy/v1/BV-C/gw-bv-c-lora/data")
    [data] = out.contract("data", "gw-bv-c-lora")
    ts = datetime(2026, 11, 28, 3, 16, 5, 787000, tzinfo=UTC)  # nanoseconds cut to ms
    assert {(r.sensor, r.value, r.unit, r.ts) for r in data.readings} == {
        ("T1-level", 64.5, "%", ts),
        ("T1-temp", -179.6, "degC", ts),
    }
    [(_, raw)] = out.wait(lambda t, p: t.endswith("/status"))
    [health] = StatusMessage.model_validate_json(raw).devices
    assert (health.battery_pct, health.rssi_dbm, health.snr_db) == (92.0, -88.0, 9.5)

    # A missing value in one uplink: the other reading still goes on, the gap is recorded.
    partial = recorded.tts_up()
    del partial["uplink_message"]["decoded_payload"]["temperature_c"]
    ns.send(recorded.TTS_TOPIC, json.dumps(partial))
    out.wait(lambda t, p: t == "oxy/v1/BV-C/gw-bv-c-lora/data", count=2)
    assert [r.sensor for r in out.contract("data", "gw-bv-c-lora")[1].readings] == ["T1-level"]
    [(reason,)] = wait_rows(db_url, "SELECT reason FROM dead_letters", 1)
    assert "T1-temp" in reason and "temperature_c" in reason


def _status(raw: bytes) -> StatusMessage:
    return StatusMessage.model_validate_json(raw)


def test_device_health_is_merged_not_overwritten(
    broker, db_url, bridge_factory, collector_factory, foreign_factory
):
    # The codec does not report the battery: only ChirpStack's status event does.
    source = {**CHIRPSTACK, "battery_path": None}
    out = collector_factory(broker.port, "oxy/v1/+/+/status")
    bridge_factory(broker.port, db_url, [source])
    ns = foreign_factory(broker.port)
    ns.send(recorded.CHIRPSTACK_STATUS_TOPIC, recorded.chirpstack_status())  # 03:20:00
    out.wait(lambda t, p: True)
    up = recorded.chirpstack_up()
    up["time"] = "2026-11-28T03:25:00+00:00"
    ns.send(recorded.CHIRPSTACK_TOPIC, up)
    [_, (_, raw)] = out.wait(lambda t, p: True, count=2)
    [health] = _status(raw).devices
    # The up has no battery: the status event's level stays; the signal comes from the up.
    assert (health.battery_pct, health.rssi_dbm) == (81.5, -97.0)
    assert health.last_good_poll == datetime(2026, 11, 28, 3, 25, tzinfo=UTC)

    # An old uplink arrives late (a gateway's backlog, a redelivery): its readings are stored
    # under their own time, but last_good_poll does not go back, nor does its signal win.
    old = recorded.chirpstack_up()
    old["time"] = "2026-11-28T01:00:00+00:00"
    old["rxInfo"] = [{"gatewayId": "0016c001f153a14c", "rssi": -120, "snr": -10.0}]
    ns.send(recorded.CHIRPSTACK_TOPIC, old)
    [*_, (_, raw)] = out.wait(lambda t, p: True, count=3)
    [health] = _status(raw).devices
    assert health.last_good_poll == datetime(2026, 11, 28, 3, 25, tzinfo=UTC)
    assert (health.battery_pct, health.rssi_dbm, health.snr_db) == (81.5, -97.0, 6.25)


def test_chirpstack_events(broker, db_url, bridge_factory, collector_factory, foreign_factory):
    out = collector_factory(broker.port, "oxy/v1/#")
    bridge = bridge_factory(broker.port, db_url, [CHIRPSTACK])
    ns = foreign_factory(broker.port)
    base = recorded.CHIRPSTACK_TOPIC.rsplit("/", 1)[0]
    for event in ("join", "ack", "txack"):
        ns.send(f"{base}/{event}", recorded.chirpstack_event(event))
    # A codec error reported by the network server is an alarm on the mapped gateway.
    ns.send(f"{base}/log", recorded.chirpstack_event("log"))
    [(_, raw)] = out.wait(lambda t, p: t == "oxy/v1/BV-B/gw-bv-b-lora/status")
    [alarm] = _status(raw).alarms
    assert "UPLINK_CODEC" in alarm and recorded.CHIRPSTACK_DEV_EUI in alarm
    assert out.contract("data") == []
    assert rows(db_url, "SELECT count(*) FROM dead_letters")[0][0] == 0
    assert bridge.counters["messages"] == 4


def test_tts_battery_join_and_simulated(
    broker, db_url, bridge_factory, collector_factory, foreign_factory
):
    source = {**TTS, "battery_path": None, "topic": "v3/+/devices/+/#"}
    out = collector_factory(broker.port, "oxy/v1/#")
    bridge_factory(broker.port, db_url, [source])
    ns = foreign_factory(broker.port)
    devices = recorded.TTS_TOPIC.rsplit("/", 1)[0]

    ns.send(f"{devices}/join", recorded.tts_event("join"))
    ns.send(f"{devices}/down/ack", recorded.tts_event("down/ack"))
    up = recorded.tts_up()
    up["uplink_message"]["last_battery_percentage"] = recorded.TTS_LAST_BATTERY
    ns.send(recorded.TTS_TOPIC, up)
    [(_, raw)] = out.wait(lambda t, p: t.endswith("/status"))
    [health] = _status(raw).devices
    assert health.battery_pct == 73.2

    # An uplink simulated from the console is test traffic: a dead letter, never a reading.
    fake = recorded.tts_up()
    fake["simulated"] = True
    fake["uplink_message"]["decoded_payload"]["level"]["pct"] = 1.0
    ns.send(recorded.TTS_TOPIC, fake)
    [(reason,)] = wait_rows(db_url, "SELECT reason FROM dead_letters", 1)
    assert "simulated uplink" in reason
    assert len(out.contract("data")) == 1
