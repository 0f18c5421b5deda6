"""Configuration validation and the declarative path/timestamp rules (pure, no services)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from firmware_bridge.config import parse_config
from firmware_bridge.errors import BridgeError, PayloadError
from firmware_bridge.paths import parse_time, resolve

DEV = {"id": "d", "site": "S", "gateway": "g"}
ONWARD = {"mqtt_url": "mqtt://platform:1883"}


@pytest.mark.parametrize(
    ("source", "phrase"),
    [
        ({"name": "x", "protocol": "json", "device_id_path": "id"}, "needs `topic`"),
        ({"name": "x", "protocol": "json", "topic": "a/#"}, "device_id_path"),
        (
            {"name": "x", "protocol": "sparkplug", "devices": [{**DEV, "points": [
                {"path": "a", "sensor": "s", "unit": "bar"}]}]},
            "needs `metric`",
        ),
        (
            {"name": "x", "protocol": "tts", "devices": [{**DEV, "points": [
                {"sensor": "s", "unit": "bar"}]}]},
            "needs `path`",
        ),
        (
            {"name": "x", "protocol": "http", "devices": [DEV]},
            "needs `token_sha256`",
        ),
        (
            {"name": "x", "protocol": "chirpstack", "devices": [
                {**DEV, "id": "AABB"}, {**DEV, "id": "aabb"}]},
            "listed twice",
        ),
        (
            {"name": "x", "protocol": "tts", "devices": [{**DEV, "site": "bad site"}]},
            "invalid code",
        ),
        ({"name": "x", "protocol": "tts", "timezone": "Mars/Olympus"}, "unknown time zone"),
        (
            {"name": "x", "protocol": "tts", "devices": [{**DEV, "points": [
                {"path": "a", "sensor": "s", "unit": "bar", "colour": "red"}]}]},
            "Extra inputs",
        ),
        ({"name": "x", "protocol": "modbus"}, "protocol"),
        (
            {"name": "x", "protocol": "json", "topic": "a", "device_id_path": "i",
             "transport": "webhook"},
            "for chirpstack and tts",
        ),
        ({"name": "x", "protocol": "tts", "transport": "webhook"}, "needs `webhook_header`"),
        (
            {"name": "x", "protocol": "tts", "transport": "webhook", "webhook_header": "X-K",
             "webhook_token_sha256": "plain-token"},
            "64 hex digits",
        ),
    ],
)  # fmt: skip
def test_bad_config_names_the_problem(source: dict, phrase: str) -> None:
    with pytest.raises(BridgeError, match="bad bridge config") as err:
        parse_config({"onward": ONWARD, "sources": [source]})
    assert phrase in str(err.value)


def test_duplicate_source_names() -> None:
    s = {"name": "x", "protocol": "tts"}
    with pytest.raises(BridgeError, match="unique"):
        parse_config({"onward": ONWARD, "sources": [s, s]})


def test_paths() -> None:
    doc = {"a": {"b": [{"c": 1}, {"c": 2.5}]}, "x.y": 3}
    assert resolve(doc, "a.b[1].c") == 2.5
    assert resolve(doc, "$.a.b.0.c") == 1
    assert resolve(doc, "$") == doc
    with pytest.raises(PayloadError, match=r"missing field 'a\.b\.2'"):
        resolve(doc, "a.b[2].c")
    with pytest.raises(PayloadError, match=r"missing field 'a\.b\.c'"):
        resolve(doc, "a.b.c")


def test_timestamps() -> None:
    utc = datetime(2026, 11, 28, 3, 15, tzinfo=UTC)
    hcm = ZoneInfo("Asia/Ho_Chi_Minh")
    assert parse_time("2026-11-28T03:15:00Z", "iso8601") == utc
    assert parse_time("2026-11-28T10:15:00+07:00", "iso8601") == utc
    assert parse_time("2026-11-28T10:15:00", "iso8601", hcm) == utc  # naive → the source's zone
    assert parse_time("2026-11-28T03:15:00.123456789Z", "iso8601") == utc.replace(
        microsecond=123456
    )
    assert parse_time(1795835700, "epoch_s") == utc
    assert parse_time("1795835700000", "epoch_ms") == utc
    assert parse_time(1795835700000000, "epoch_us") == utc
    assert parse_time("28/11/2026 10:15", "%d/%m/%Y %H:%M", hcm) == utc
    for value, fmt in [
        ("28/11/2026", "iso8601"),
        (None, "epoch_s"),
        (1e30, "epoch_ms"),
        (5, "iso8601"),
    ]:
        with pytest.raises(PayloadError):
            parse_time(value, fmt)


def test_onward_is_required() -> None:
    # No silent fallback to a broker on localhost: the readings must go somewhere on purpose.
    with pytest.raises(BridgeError, match="onward: Field required"):
        parse_config({"sources": []})
    with pytest.raises(BridgeError, match=r"onward\.mqtt_url: Field required"):
        parse_config({"onward": {"client_id": "b"}, "sources": []})


def test_secrets_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "tts.key").write_text("NNSXS.FROM-FILE\n")
    monkeypatch.setenv("OXY_TEST_BRIDGE_PW", "from-env")
    config = parse_config(
        {
            "onward": {**ONWARD, "password_env": "OXY_TEST_BRIDGE_PW"},
            "sources": [{"name": "tts", "protocol": "tts", "password_file": "tts.key"}],
        },
        base=tmp_path,
    )
    assert config.onward.password == "from-env"
    assert config.sources[0].password == "NNSXS.FROM-FILE"
    assert not [r for r in caplog.records if "written in the file" in r.getMessage()]
    parse_config({"onward": {**ONWARD, "password": "plain"}, "sources": []})
    assert [r for r in caplog.records if "written in the file" in r.getMessage()]
    bad = [
        ({"password_file": "missing.key"}, "cannot read it"),
        ({"password_env": "OXY_TEST_BRIDGE_UNSET"}, "OXY_TEST_BRIDGE_UNSET is not set"),
        ({"password": "x", "password_env": "OXY_TEST_BRIDGE_PW"}, "give only one of"),
    ]
    for extra, phrase in bad:
        with pytest.raises(BridgeError, match=phrase):
            parse_config(
                {"onward": ONWARD, "sources": [{"name": "t", "protocol": "tts", **extra}]},
                base=tmp_path,
            )
