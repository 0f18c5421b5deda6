"""The [alarm] section: thresholds in DP units or percent of the span, the relay, named mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, RtuTransport, TcpTransport, load, parse
from oxy.contract import Quality
from tests.gateway.conftest import gateway_toml, tank

MMH2O_PER_INH2O = 25.4


def site(tmp_path: Path, alarm: str) -> str:
    return gateway_toml(tmp_path, [tank("T1"), tank("T2")], 1).read_text() + alarm


def test_no_alarm_section_means_no_edge_alarm(tmp_path: Path) -> None:
    assert load(gateway_toml(tmp_path, [tank("T1")], 1)).alarm is None


def test_thresholds_in_dp_units_and_percent(tmp_path: Path) -> None:
    cfg = parse(
        site(
            tmp_path,
            """
[alarm]
raise_after_s = 5
clear_after_s = 20
fault_after_s = 45
fault_qualities = ["comm_error", "stale"]
log = false
tanks = [
  { tank = "T1", low_dp = 762.0, unit = "mmH2O", hysteresis = 127.0 },
  { tank = "T2", low_pct = 20, hysteresis = 5, full_dp = 120.0 },
]

[alarm.relay]
host = "10.0.0.5"
port = 5021
unit_id = 4
address = 16
active_low = true
refresh_s = 3
""",
        )
    )
    a = cfg.alarm
    assert a is not None
    t1, t2 = a.tanks
    assert (t1.tank, t1.sensor) == ("T1", "T1-dp")
    assert t1.low == pytest.approx(762.0 / MMH2O_PER_INH2O, rel=1e-3)  # 30 inH2O
    assert t1.clear_at == pytest.approx(889.0 / MMH2O_PER_INH2O, rel=1e-3)  # 35 inH2O
    assert (t2.low, t2.clear_at) == (pytest.approx(24.0), pytest.approx(30.0))  # 20 %, 25 % of 120
    assert (a.raise_after_s, a.clear_after_s, a.fault_after_s, a.log) == (5.0, 20.0, 45.0, False)
    assert a.fault_qualities == (Quality.COMM_ERROR, Quality.STALE)
    assert a.fault_sensors == ()
    r = a.relay
    assert r is not None
    assert r.transport == TcpTransport("10.0.0.5", 5021)
    assert (r.kind, r.unit_id, r.address, r.active_low, r.refresh_s) == ("coil", 4, 16, True, 3.0)
    assert r.drive == ("low_level", "sensor_fault")
    assert r.name == "10.0.0.5:5021/4/coil:16"


def test_defaults_and_register_output(tmp_path: Path) -> None:
    cfg = parse(
        site(
            tmp_path,
            """
[alarm]
tanks = [{ tank = "T1", low_dp = 30 }]
[alarm.relay]
transport = "rtu"
serial_port = "/dev/ttyUSB9"
kind = "register"
address = 3
on_value = 255
drive = ["low_level"]
""",
        )
    )
    a = cfg.alarm
    assert a is not None and a.relay is not None
    assert (a.tanks[0].low, a.tanks[0].clear_at) == (30.0, 30.0)  # inH2O, no hysteresis
    assert (a.raise_after_s, a.clear_after_s, a.fault_after_s) == (10.0, 30.0, 60.0)
    assert isinstance(a.relay.transport, RtuTransport)
    assert (a.relay.kind, a.relay.on_value, a.relay.off_value) == ("register", 255, 0)
    assert a.relay.drive == ("low_level",)


@pytest.mark.parametrize(
    ("alarm", "message"),
    [
        ('tanks = [{ tank = "T9", low_dp = 1 }]', "no dp or level_pct sensor is bound to tank"),
        ('tanks = [{ tank = "T1", low_dp = 1, sensor = "T1-p" }]', "no dp or level_pct sensor"),
        ('tanks = [{ tank = "T1" }]', "exactly one of low_dp or low_pct"),
        ('tanks = [{ tank = "T1", low_dp = 1, low_pct = 3 }]', "exactly one of low_dp or low_pct"),
        ('tanks = [{ tank = "T1", low_pct = 10 }]', "needs full_dp"),
        ('tanks = [{ tank = "T1", low_dp = 1, unit = "bar" }]', "not a differential-pressure"),
        ('tanks = [{ tank = "T1", low_dp = 1, hysteresis = -1 }]', "must not be negative"),
        ('tanks = [{ tank = "T1", low_dp = 1, colour = "red" }]', "unknown key(s) colour"),
        (
            'tanks = [{ tank = "T1", low_dp = 1 }, { tank = "T1", low_dp = 2 }]',
            "a tank is listed twice",
        ),
        ('fault_qualities = ["good"]', "'good' is not a fault"),
        ('fault_qualities = ["broken"]', "is not one of"),
        ('fault_sensors = ["T7-dp"]', "no sensor 'T7-dp'"),
        ("raise_after_s = -1", "must be >= 0"),
        ("[alarm.relay]\nkind = 'coil'", "missing key 'host'"),
        ("[alarm.relay]\nhost = 'h'\nkind = 'lamp'", "expected 'coil' or 'register'"),
        ("[alarm.relay]\nhost = 'h'\naddress = 70000", "outside 0..65535"),
        ("[alarm.relay]\nhost = 'h'\ndrive = ['gateway_offline']", "is not one of"),
        ("[alarm.relay]\nhost = 'h'\nrefresh_s = 0", "must be positive"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, alarm: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(site(tmp_path, f"\n[alarm]\n{alarm}\n"))
    assert message in str(err.value)
    assert "alarm" in str(err.value)


def test_relay_cannot_share_a_polled_serial_line(tmp_path: Path) -> None:
    text = (
        gateway_toml(tmp_path, [tank("T1")], 1).read_text()
        + """
[[devices]]
name = "rtu-unit"
transport = "rtu"
serial_port = "/dev/ttyUSB0"
sensors = [{ code = "T5-dp", tank = "T5", quantity = "dp", profile = "dp", address = 0 }]

[alarm]
[alarm.relay]
transport = "rtu"
serial_port = "/dev/ttyUSB0"
"""
    )
    with pytest.raises(ConfigError, match="already polled"):
        parse(text)


def test_the_shipped_example_has_a_working_alarm_section() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "gateway" / "site.example.toml"
    text = example.read_text().replace(
        'password_file = "/etc/oxy-gateway/gw-bv-choray.password"', 'password = "x"'
    )
    a = parse(text).alarm
    assert a is not None and a.relay is not None
    t1, t2 = a.tanks
    assert (t1.sensor, t1.low, t1.clear_at) == ("T1-dp", 30.0, 35.0)
    # 20 % and 25 % of 3048 mmH2O (= 120 inH2O)
    assert (t2.sensor, t2.low, t2.clear_at) == ("T2-dp", pytest.approx(24.0), pytest.approx(30.0))
    assert (a.relay.kind, a.relay.address, a.relay.refresh_s) == ("coil", 0, 10.0)
