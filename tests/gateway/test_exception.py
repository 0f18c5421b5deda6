"""Contract v2 settings and report by exception (issue 24): the config keys, their errors, and
the deadband/heartbeat filter on an explicit series."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, parse
from gateway.engineering import Row
from gateway.exception import ExceptionFilter
from oxy.contract import SensorDecl, schema_id
from tests.gateway.test_config import MINIMAL

V2 = MINIMAL.replace('url = "mqtt', 'data_format = "v2"\nurl = "mqtt')


def test_defaults_are_v1_without_deadband() -> None:
    cfg = parse(MINIMAL)
    assert cfg.mqtt.data_format == "v1" and not cfg.mqtt.deflate
    (s,) = cfg.sensors
    assert s.deadband is None and s.resolution == 0.01
    assert not ExceptionFilter(cfg.sensors).active


def test_v2_declares_sensors_and_profile_or_sensor_sets_the_exception_keys() -> None:
    text = V2.replace('unit = "inH2O"', 'unit = "inH2O"\ndeadband = 0.05\nheartbeat_s = 60')
    text = text.replace("address = 0 }", "address = 0, resolution = 0.001 }")
    cfg = parse(text)
    (s,) = cfg.sensors
    assert (s.deadband, s.heartbeat_s, s.resolution) == (0.05, 60.0, 0.001)
    decls = [SensorDecl(code="T1-dp", unit="inH2O", res=0.001)]
    assert cfg.declarations == decls and cfg.schema == schema_id(decls)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('data_format = "v2"', 'data_format = "v3"'), "expected 'v1' or 'v2'"),
        (('data_format = "v2"', 'data_format = "v2"\nend_to_end_ack = false'), "needs end_to_end"),
        (("address = 0 }", "address = 0, deadband = -1 }"), "deadband: must not be negative"),
        (("address = 0 }", "address = 0, heartbeat_s = 0 }"), "heartbeat_s: must be positive"),
        (("address = 0 }", "address = 0, resolution = -0.1 }"), "resolution: must be within"),
    ],
)
def test_v2_and_exception_mistakes_are_named(change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(V2.replace(*change))


def test_deadband_heartbeat_quality_and_the_reading_before_a_move() -> None:
    text = V2.replace("address = 0 }", "address = 0, deadband = 0.5, heartbeat_s = 10 }")
    f = ExceptionFilter(parse(text).sensors)

    def row(t: int, v: float | None, q: str = "good") -> Row:
        return Row("T1-dp", t * 1000, v, "inH2O", q)

    series = [
        row(0, 100.0),  # first: kept
        row(1, 100.2),  # inside the band: held
        row(2, 100.4),  # held
        row(3, 101.0),  # moved 1.0: kept, with the held 100.4 before it
        row(4, 101.1),  # held
        row(14, 101.2),  # heartbeat (10 s after the last kept): kept
        row(15, None, "comm_error"),  # quality changed: kept
        row(16, None, "comm_error"),  # same quality, no value: kept (nothing to compare)
        row(17, 101.2),  # good again: kept
        row(18, 101.3),  # held, and stays held (nothing moves after it)
    ]
    kept = f.keep(series)
    assert [(r.ts_ms // 1000, r.value) for r in kept] == [
        (0, 100.0), (2, 100.4), (3, 101.0), (14, 101.2), (15, None), (16, None), (17, 101.2),
    ]  # fmt: skip
    assert f.held_total == 3  # 1 and 4 and 18; 2 went with the move
    other = Row("T9-x", 0, 1.0, "bar", "good")
    assert f.keep([other, other]) == [other, other]  # sensors without a deadband: everything
