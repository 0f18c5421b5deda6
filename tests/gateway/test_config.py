"""Site configuration parsing: the shipped example, and clear errors for mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, RtuTransport, TcpTransport, load, parse
from gateway.registers import Order, ValueType
from oxy.contract import Quantity

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "gateway" / "site.example.toml"

MINIMAL = """
[gateway]
site = "S1"
code = "gw-s1"
[mqtt]
url = "mqtt://u:p%40ss@127.0.0.1:1999"
[profiles.dp]
type = "float32"
unit = "inH2O"
[[devices]]
name = "d1"
host = "127.0.0.1"
sensors = [{ code = "T1-dp", tank = "T1", quantity = "dp", profile = "dp", address = 0 }]
"""


def test_example_config_parses(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("/etc/oxy-gateway/gw-bv-choray.password", "pw")
    (tmp_path / "pw").write_text("secret\n")
    (tmp_path / "site.toml").write_text(text)
    cfg = load(tmp_path / "site.toml")
    assert (cfg.site, cfg.gateway) == ("BV-CHORAY", "gw-bv-choray")
    assert cfg.mqtt.tls and cfg.mqtt.port == 8883 and cfg.mqtt.password == "secret"
    assert cfg.mqtt.client_id == "oxy-gw-bv-choray"
    t1, t2 = cfg.devices
    assert isinstance(t1.transport, TcpTransport) and isinstance(t2.transport, RtuTransport)
    assert t2.transport.parity == "E" and t2.unit_id == 7
    dp = t1.sensors[0]
    assert dp.quantity is Quantity.DIFF_PRESSURE and dp.unit == "inH2O"
    assert dp.profile.type is ValueType.FLOAT32
    assert t2.sensors[0].profile.byte_order is Order.LITTLE
    assert cfg.outbox.path == Path("/var/lib/oxy-gateway/gw-bv-choray.outbox.sqlite")
    assert len(cfg.config_hash) == 16


def test_minimal_config_defaults_and_url_credentials() -> None:
    cfg = parse(MINIMAL)
    assert cfg.mqtt.username == "u" and cfg.mqtt.password == "p@ss" and not cfg.mqtt.tls
    assert cfg.devices[0].transport == TcpTransport("127.0.0.1", 502)
    assert cfg.devices[0].poll_interval_s == 1.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('unit = "inH2O"', 'unit = "bar"'), "measures in bar, not dp"),
        (('profile = "dp"', 'profile = "nope"'), "no profile named"),
        (('type = "float32"', 'type = "float128"'), "is not one of"),
        (("[[devices]]", "[[devices]]\nbogus = 1"), "unknown key"),
        (('url = "mqtt://u:p%40ss@127.0.0.1:1999"', 'url = "http://x"'), "mqtt://"),
        (('code = "gw-s1"', 'code = "gw s1"'), "not a valid code"),
        (("address = 0", "address = 70000"), "outside"),
        (('site = "S1"', "site = "), "config"),
    ],
)
def test_config_errors_are_reported(change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(MINIMAL.replace(*change))


def test_duplicate_sensor_codes_rejected() -> None:
    text = MINIMAL + MINIMAL[MINIMAL.index("[[devices]]") :].replace('name = "d1"', 'name = "d2"')
    with pytest.raises(ConfigError, match="used twice"):
        parse(text)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("address = 0", "address = true"),
            "devices[0].sensors[0].address: expected int, got a boolean",
        ),
        (("address = 0", 'address = "0"'), "devices[0].sensors[0].address: expected int, got '0'"),
        (
            ("[[devices]]", "[[devices]]\nbogus = 1\nzzz = 2"),
            "devices[0]: unknown key(s) bogus, zzz",
        ),
        (
            ('host = "127.0.0.1"', 'host = "h"\nbaudrate = 9600'),
            "devices[0]: unknown key(s) baudrate for transport 'tcp'",
        ),
        (('host = "127.0.0.1"', 'transport = "rtu"'), "devices[0]: missing key 'serial_port'"),
        (("[mqtt]", "[mqtt]\nkeepalive_s = 1.5"), "mqtt.keepalive_s: expected int, got 1.5"),
        (('[gateway]\nsite = "S1"', "[gateway]"), "gateway: missing key 'site'"),
        (('unit = "inH2O"', 'unit = "furlong"'), "profiles.dp.unit: unknown unit 'furlong'"),
        (("[mqtt]", "[mqtt]\nprotocol = '4'"), "mqtt.protocol: expected 'auto', '5' or '3.1.1'"),
    ],
)
def test_each_mistake_names_its_key_and_why(change: tuple[str, str], message: str) -> None:
    """The file's tables are pydantic models (types are TOML's own: no text read as a number);
    each error says which key and why."""
    with pytest.raises(ConfigError) as err:
        parse(MINIMAL.replace(*change))
    assert str(err.value) == message
