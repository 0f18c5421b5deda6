"""Site configuration (TOML): the gateway, its MQTT link, its outbox, sensor profiles and devices.

Parsed with the standard library's `tomllib` into frozen dataclasses; every mistake is reported as
one :class:`ConfigError` naming the file and the key, before anything starts.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from gateway.registers import Function, Order, Profile, ValueType
from oxy import OxyError
from oxy.contract import CANONICAL_UNIT, CODE_RE, QUANTITY_DIMENSION, UNITS, Quantity


class ConfigError(OxyError):
    """A site configuration that cannot be used."""


@dataclass(frozen=True, slots=True)
class SensorBinding:
    """A profile read at an address of a device, bound to a tank and a quantity."""

    code: str
    tank: str | None
    quantity: Quantity
    profile: Profile
    address: int

    @property
    def unit(self) -> str:
        """The canonical unit the reading travels in."""
        return CANONICAL_UNIT[self.quantity]


@dataclass(frozen=True, slots=True)
class TcpTransport:
    """Modbus TCP."""

    host: str
    port: int = 502


@dataclass(frozen=True, slots=True)
class RtuTransport:
    """Modbus RTU over a serial line (RS-485 adapter or a pseudo-terminal)."""

    port: str
    baudrate: int = 19200
    parity: Literal["N", "E", "O"] = "N"
    stopbits: int = 1
    bytesize: int = 8


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """One Modbus device (slave) and the sensors read from it."""

    name: str
    transport: TcpTransport | RtuTransport
    unit_id: int
    sensors: tuple[SensorBinding, ...]
    poll_interval_s: float = 1.0
    timeout_s: float = 1.0
    max_gap: int = 8
    reconnect_max_s: float = 10.0


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """How the gateway reaches the broker."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    client_id: str = ""
    keepalive_s: int = 20
    batch_max_readings: int = 500
    linger_s: float = 0.2
    inflight: int = 20
    reconnect_max_s: float = 2.0
    protocol: Literal["auto", "5", "3.1.1"] = "auto"  # auto: MQTT 5, else 3.1.1 if refused


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    """Where readings wait for their PUBACK, and the bound that evicts (counted) the oldest."""

    path: Path
    max_readings: int = 10_000_000
    max_age_s: float = 7 * 86400.0
    synchronous: Literal["normal", "full"] = "full"


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """Everything one gateway needs; several may run in one process."""

    site: str
    gateway: str
    mqtt: MqttConfig
    outbox: OutboxConfig
    devices: tuple[DeviceConfig, ...]
    status_interval_s: float = 30.0
    config_hash: str = ""
    source: Path | None = None

    @property
    def sensors(self) -> list[SensorBinding]:
        """Every sensor of every device."""
        return [s for d in self.devices for s in d.sensors]


@dataclass
class _Reader:
    """Typed access to one TOML table with the key path for error messages."""

    data: dict[str, Any]
    where: str
    used: set[str] = field(default_factory=set)

    def _get(self, key: str, kinds: tuple[type, ...], default: Any, required: bool) -> Any:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise ConfigError(f"{self.where}: missing key {key!r}")
            return default
        value = self.data[key]
        if isinstance(value, bool) and bool not in kinds:
            raise ConfigError(f"{self.where}.{key}: expected {kinds[0].__name__}, got a boolean")
        if not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise ConfigError(f"{self.where}.{key}: expected {names}, got {value!r}")
        return value

    def text(self, key: str, default: str | None = None, required: bool = False) -> Any:
        return self._get(key, (str,), default, required)

    def integer(self, key: str, default: int | None = None, required: bool = False) -> Any:
        return self._get(key, (int,), default, required)

    def number(self, key: str, default: float | None = None, required: bool = False) -> Any:
        value = self._get(key, (int, float), default, required)
        return None if value is None else float(value)

    def flag(self, key: str, default: bool) -> bool:
        return bool(self._get(key, (bool,), default, False))

    def table(self, key: str) -> _Reader:
        value = self._get(key, (dict,), {}, False)
        return _Reader(value, f"{self.where}.{key}" if self.where else key)

    def items(self, key: str) -> list[Any]:
        return list(self._get(key, (list,), [], False))

    def done(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            raise ConfigError(f"{self.where or 'config'}: unknown key(s) {', '.join(extra)}")


def _enum(enum: Any, value: str, where: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise ConfigError(f"{where}: {value!r} is not one of {allowed}") from None


def _profile(name: str, r: _Reader) -> Profile:
    unit = r.text("unit", required=True)
    if unit not in UNITS:
        raise ConfigError(f"{r.where}.unit: unknown unit {unit!r}")
    invalid = r.items("invalid_raw")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in invalid):
        raise ConfigError(f"{r.where}.invalid_raw: expected a list of numbers")
    p = Profile(
        name=name,
        unit=unit,
        type=_enum(ValueType, r.text("type", "float32"), f"{r.where}.type"),
        function=_enum(Function, r.text("function", "holding"), f"{r.where}.function"),
        byte_order=_enum(Order, r.text("byte_order", "big"), f"{r.where}.byte_order"),
        word_order=_enum(Order, r.text("word_order", "big"), f"{r.where}.word_order"),
        scale=r.number("scale", 1.0),
        offset=r.number("offset", 0.0),
        valid_min=r.number("valid_min"),
        valid_max=r.number("valid_max"),
        invalid_raw=tuple(float(x) for x in invalid),
        stale_after_s=r.number("stale_after_s", 0.0),
    )
    r.done()
    return p


def _sensor(r: _Reader, profiles: dict[str, Profile]) -> SensorBinding:
    code = r.text("code", required=True)
    if not CODE_RE.match(code):
        raise ConfigError(f"{r.where}.code: {code!r} is not a valid code")
    quantity = _enum(Quantity, r.text("quantity", required=True), f"{r.where}.quantity")
    pname = r.text("profile", required=True)
    if pname not in profiles:
        raise ConfigError(f"{r.where}.profile: no profile named {pname!r}")
    profile = profiles[pname]
    if UNITS[profile.unit].dimension != QUANTITY_DIMENSION[quantity]:
        raise ConfigError(
            f"{r.where}: profile {pname!r} measures in {profile.unit}, not {quantity.value}"
        )
    address = r.integer("address", required=True)
    if not 0 <= address <= 0xFFFF:
        raise ConfigError(f"{r.where}.address: {address} is outside 0..65535")
    s = SensorBinding(code, r.text("tank"), quantity, profile, address)
    r.done()
    return s


def _device(r: _Reader, profiles: dict[str, Profile]) -> DeviceConfig:
    name = r.text("name", required=True)
    kind = r.text("transport", "tcp")
    transport: TcpTransport | RtuTransport
    if kind == "tcp":
        transport = TcpTransport(r.text("host", required=True), r.integer("port", 502))
    elif kind == "rtu":
        parity = r.text("parity", "N")
        if parity not in ("N", "E", "O"):
            raise ConfigError(f"{r.where}.parity: expected N, E or O")
        transport = RtuTransport(
            r.text("serial_port", required=True),
            r.integer("baudrate", 19200),
            parity,
            r.integer("stopbits", 1),
            r.integer("bytesize", 8),
        )
    else:
        raise ConfigError(f"{r.where}.transport: expected 'tcp' or 'rtu', got {kind!r}")
    sensors = []
    for i, item in enumerate(r.items("sensors")):
        if not isinstance(item, dict):
            raise ConfigError(f"{r.where}.sensors[{i}]: expected a table")
        sensors.append(_sensor(_Reader(item, f"{r.where}.sensors[{i}]"), profiles))
    if not sensors:
        raise ConfigError(f"{r.where}: a device needs at least one sensor")
    d = DeviceConfig(
        name=name,
        transport=transport,
        unit_id=r.integer("unit_id", 1),
        sensors=tuple(sensors),
        poll_interval_s=r.number("poll_interval_s", 1.0),
        timeout_s=r.number("timeout_s", 1.0),
        max_gap=r.integer("max_gap", 8),
        reconnect_max_s=r.number("reconnect_max_s", 10.0),
    )
    if d.poll_interval_s <= 0 or d.timeout_s <= 0:
        raise ConfigError(f"{r.where}: poll_interval_s and timeout_s must be positive")
    r.done()
    return d


def _mqtt(r: _Reader, gateway: str, base: Path) -> MqttConfig:
    url = urlsplit(r.text("url", required=True))
    if url.scheme not in ("mqtt", "mqtts") or not url.hostname:
        raise ConfigError(f"{r.where}.url: expected mqtt://host[:port] or mqtts://host[:port]")
    tls = url.scheme == "mqtts"
    protocol = r.text("protocol", "auto")
    if protocol not in ("auto", "5", "3.1.1"):
        raise ConfigError(f"{r.where}.protocol: expected auto, 5 or 3.1.1")
    password = r.text("password", unquote(url.password) if url.password else None)
    password_file = r.text("password_file")
    if password_file:
        try:
            password = (base / password_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{r.where}.password_file: cannot read it ({exc.strerror})") from None

    def path(key: str) -> Path | None:
        value = r.text(key)
        return (base / value) if value else None

    m = MqttConfig(
        host=url.hostname,
        port=url.port or (8883 if tls else 1883),
        tls=tls,
        username=r.text("username", unquote(url.username) if url.username else None),
        password=password,
        ca_file=path("ca_file"),
        cert_file=path("cert_file"),
        key_file=path("key_file"),
        client_id=r.text("client_id", f"oxy-{gateway}"),
        keepalive_s=r.integer("keepalive_s", 20),
        batch_max_readings=r.integer("batch_max_readings", 500),
        linger_s=r.number("linger_s", 0.2),
        inflight=r.integer("inflight", 20),
        reconnect_max_s=r.number("reconnect_max_s", 2.0),
        protocol=protocol,
    )
    if not 1 <= m.batch_max_readings <= 5000:
        raise ConfigError(f"{r.where}.batch_max_readings: must be within 1..5000 (the contract)")
    r.done()
    return m


def parse(text: str, source: Path | None = None) -> SiteConfig:
    """Parse the TOML text of one site configuration."""
    where = str(source) if source else "config"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    base = source.parent if source else Path.cwd()
    root = _Reader(data, "")
    g = root.table("gateway")
    site, code = g.text("site", required=True), g.text("code", required=True)
    for name, value in (("site", site), ("code", code)):
        if not CODE_RE.match(value):
            raise ConfigError(f"gateway.{name}: {value!r} is not a valid code")
    state_dir = base / g.text("state_dir", ".")
    status_interval = g.number("status_interval_s", 30.0)
    g.done()
    profiles = {}
    ptable = root.table("profiles")
    for pname in list(ptable.data):
        profiles[pname] = _profile(pname, ptable.table(pname))
    ptable.done()
    o = root.table("outbox")
    sync = o.text("synchronous", "full")
    if sync not in ("normal", "full"):
        raise ConfigError("outbox.synchronous: expected 'normal' or 'full'")
    outbox = OutboxConfig(
        path=base / o.text("path", str(state_dir / f"{code}.outbox.sqlite")),
        max_readings=o.integer("max_readings", 10_000_000),
        max_age_s=o.number("max_age_h", 168.0) * 3600.0,
        synchronous=sync,
    )
    o.done()
    mqtt = _mqtt(root.table("mqtt"), code, base)
    devices = []
    for i, item in enumerate(root.items("devices")):
        if not isinstance(item, dict):
            raise ConfigError(f"devices[{i}]: expected a table")
        devices.append(_device(_Reader(item, f"devices[{i}]"), profiles))
    root.done()
    seen: set[str] = set()
    for s in (s for d in devices for s in d.sensors):
        if s.code in seen:
            raise ConfigError(f"{where}: sensor code {s.code!r} is used twice")
        seen.add(s.code)
    if len({d.name for d in devices}) != len(devices):
        raise ConfigError(f"{where}: device names must be unique")
    return SiteConfig(
        site=site,
        gateway=code,
        mqtt=mqtt,
        outbox=outbox,
        devices=tuple(devices),
        status_interval_s=status_interval,
        config_hash=hashlib.sha256(text.encode()).hexdigest()[:16],
        source=source,
    )


def load(path: Path) -> SiteConfig:
    """Read and parse a site configuration file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    return parse(text, path.resolve())
