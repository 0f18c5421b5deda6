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

from gateway.registers import Function, Order, Profile, ValueType
from oxy import OxyError
from oxy.contract import (
    CANONICAL_UNIT,
    CODE_RE,
    MAX_V2_SENSORS,
    QUANTITY_DIMENSION,
    UNITS,
    Quality,
    Quantity,
    SensorDecl,
    schema_id,
    to_canonical,
)
from oxy.mqtt import Broker, MqttUrlError, TlsFiles


class ConfigError(OxyError):
    """A site configuration that cannot be used."""


ALARM_KINDS = ("low_level", "sensor_fault")

# Contract v2: the quantum a value travels in, per quantity, in its canonical unit (override with
# `resolution` on a profile or a sensor; 0 sends plain floats). Each is far below what the
# transmitters resolve (a LOX DP transmitter: ~0.1 inH2O; 0.01 inH2O is < 1 kg of a 20 t tank).
DEFAULT_RESOLUTION: dict[Quantity, float] = {
    Quantity.DIFF_PRESSURE: 0.01,
    Quantity.HEAD_PRESSURE: 0.001,
    Quantity.LINE_PRESSURE: 0.001,
    Quantity.TEMPERATURE: 0.01,
    Quantity.LEVEL_PCT: 0.01,
    Quantity.CONTENTS: 0.1,
    Quantity.FLOW: 0.01,
}  # edge alarms; their keys are "<kind>:<tank|sensor>"


@dataclass(frozen=True, slots=True)
class SensorBinding:
    """A profile read at an address of a device, bound to a tank and a quantity."""

    code: str
    tank: str | None
    quantity: Quantity
    profile: Profile
    address: int
    # Contract v2 quantum (canonical unit); report by exception: a value is sent when it moves
    # more than `deadband` from the last one sent, or when `heartbeat_s` has passed (None: off).
    resolution: float = 0.0
    deadband: float | None = None
    heartbeat_s: float = 300.0

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
    # End-to-end acknowledgement: keep readings until the centre has committed them (its
    # watermark on .../data/ack), re-send what stays unconfirmed after `ack_timeout_s`
    # (doubling while nothing progresses, up to `ack_timeout_max_s`) and after a reconnect.
    end_to_end_ack: bool = True
    ack_timeout_s: float = 30.0
    ack_timeout_max_s: float = 600.0
    # Wire format of data messages: "v1" (JSON, every field per reading) or "v2" (compact,
    # indices declared in the birth; needs end_to_end_ack), optionally deflated.
    data_format: Literal["v1", "v2"] = "v1"
    deflate: bool = False

    @property
    def broker(self) -> Broker:
        """Where the broker is and the credentials to give it."""
        return Broker(self.host, self.port, self.tls, self.username, self.password)

    @property
    def tls_files(self) -> TlsFiles:
        """The CA and client certificate files for `mqtts://`."""
        return TlsFiles(self.ca_file, self.cert_file, self.key_file)


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    """Where readings wait for their PUBACK, and the bound that evicts (counted) the oldest."""

    path: Path
    max_readings: int = 10_000_000
    max_age_s: float = 7 * 86400.0
    synchronous: Literal["normal", "full"] = "full"


@dataclass(frozen=True, slots=True)
class TankAlarm:
    """Low-level alarm of one tank, on its level sensor (DP or percent), in the sensor's unit.

    `low` and `clear_at` are in the canonical unit of the sensor's quantity (inH2O for DP,
    percent for level_pct): the alarm raises below `low` and clears at or above `clear_at`.
    """

    tank: str
    sensor: str
    low: float
    clear_at: float


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """A local output (relay coil or holding register) set while any driving alarm is active."""

    transport: TcpTransport | RtuTransport
    unit_id: int = 1
    kind: Literal["coil", "register"] = "coil"
    address: int = 0
    on_value: int = 1  # register only
    off_value: int = 0  # register only
    active_low: bool = False  # coil only: fail-safe wiring, coil OFF = alarm
    refresh_s: float = 10.0
    timeout_s: float = 1.0
    reconnect_max_s: float = 5.0
    drive: tuple[str, ...] = ("low_level", "sensor_fault")

    @property
    def name(self) -> str:
        """Where the output is, for logs and the status."""
        t = self.transport
        where = f"{t.host}:{t.port}" if isinstance(t, TcpTransport) else t.port
        return f"{where}/{self.unit_id}/{self.kind}:{self.address}"


@dataclass(frozen=True, slots=True)
class AlarmConfig:
    """The edge alarm: works on readings as they are polled, with no broker or centre needed."""

    tanks: tuple[TankAlarm, ...] = ()
    raise_after_s: float = 10.0
    clear_after_s: float = 30.0
    fault_after_s: float = 60.0  # 0 = no sensor-fault alarm
    fault_qualities: tuple[Quality, ...] = (
        Quality.COMM_ERROR,
        Quality.OUT_OF_RANGE,
        Quality.STALE,
    )
    fault_sensors: tuple[str, ...] = ()  # empty = every sensor
    relay: RelayConfig | None = None
    log: bool = True


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
    alarm: AlarmConfig | None = None

    @property
    def sensors(self) -> list[SensorBinding]:
        """Every sensor of every device."""
        return [s for d in self.devices for s in d.sensors]

    @property
    def declarations(self) -> list[SensorDecl]:
        """The contract v2 declaration of every sensor, in config order (index = position)."""
        return [SensorDecl(code=s.code, unit=s.unit, res=s.resolution) for s in self.sensors]

    @property
    def schema(self) -> int:
        """The v2 schema number of :attr:`declarations`."""
        return schema_id(self.declarations)


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


def _profile(name: str, r: _Reader, exception_defaults: ExceptionDefaults) -> Profile:
    defaults = {k: r.number(k) for k in ("resolution", "deadband", "heartbeat_s")}
    exception_defaults[name] = {k: v for k, v in defaults.items() if v is not None}
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


# Per profile: `resolution`, `deadband`, `heartbeat_s` defaults for its sensors (report by
# exception). Read by _profile, used by _sensor.
ExceptionDefaults = dict[str, dict[str, float]]


def _sensor(
    r: _Reader, profiles: dict[str, Profile], exception_defaults: ExceptionDefaults
) -> SensorBinding:
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
    extra = exception_defaults.get(pname, {})
    resolution = r.number("resolution", extra.get("resolution", DEFAULT_RESOLUTION[quantity]))
    deadband = r.number("deadband", extra.get("deadband"))
    heartbeat = r.number("heartbeat_s", extra.get("heartbeat_s", 300.0))
    if not 0 <= resolution <= 1e6:
        raise ConfigError(f"{r.where}.resolution: must be within 0..1e6 (0: plain floats)")
    if deadband is not None and deadband < 0:
        raise ConfigError(f"{r.where}.deadband: must not be negative")
    if heartbeat <= 0:
        raise ConfigError(f"{r.where}.heartbeat_s: must be positive")
    s = SensorBinding(
        code, r.text("tank"), quantity, profile, address, resolution, deadband, heartbeat
    )
    r.done()
    return s


def _transport(r: _Reader) -> TcpTransport | RtuTransport:
    kind = r.text("transport", "tcp")
    if kind == "tcp":
        return TcpTransport(r.text("host", required=True), r.integer("port", 502))
    if kind == "rtu":
        parity = r.text("parity", "N")
        if parity not in ("N", "E", "O"):
            raise ConfigError(f"{r.where}.parity: expected N, E or O")
        return RtuTransport(
            r.text("serial_port", required=True),
            r.integer("baudrate", 19200),
            parity,
            r.integer("stopbits", 1),
            r.integer("bytesize", 8),
        )
    raise ConfigError(f"{r.where}.transport: expected 'tcp' or 'rtu', got {kind!r}")


def _device(
    r: _Reader, profiles: dict[str, Profile], exception_defaults: ExceptionDefaults
) -> DeviceConfig:
    name = r.text("name", required=True)
    transport = _transport(r)
    sensors = []
    for i, item in enumerate(r.items("sensors")):
        if not isinstance(item, dict):
            raise ConfigError(f"{r.where}.sensors[{i}]: expected a table")
        sensors.append(
            _sensor(_Reader(item, f"{r.where}.sensors[{i}]"), profiles, exception_defaults)
        )
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
    try:
        url = Broker.parse(r.text("url", required=True))
    except MqttUrlError as exc:
        raise ConfigError(f"{r.where}.url: {exc}") from None
    protocol = r.text("protocol", "auto")
    if protocol not in ("auto", "5", "3.1.1"):
        raise ConfigError(f"{r.where}.protocol: expected auto, 5 or 3.1.1")
    password = r.text("password", url.password)
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
        host=url.host,
        port=url.port,
        tls=url.tls,
        username=r.text("username", url.username),
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
        end_to_end_ack=r.flag("end_to_end_ack", True),
        ack_timeout_s=r.number("ack_timeout_s", 30.0),
        ack_timeout_max_s=r.number("ack_timeout_max_s", 600.0),
        data_format=r.text("data_format", "v1"),
        deflate=r.flag("deflate", False),
    )
    if m.data_format not in ("v1", "v2"):
        raise ConfigError(f"{r.where}.data_format: expected 'v1' or 'v2'")
    if m.data_format == "v2" and not m.end_to_end_ack:
        # A v2 message whose birth the centre lacks is re-sent after the rebirth, which only
        # the end-to-end acknowledgement does (docs/gateway.md, "Contract v2").
        raise ConfigError(f"{r.where}.data_format: 'v2' needs end_to_end_ack = true")
    if not 0.5 <= m.ack_timeout_s <= m.ack_timeout_max_s:
        raise ConfigError(f"{r.where}.ack_timeout_s: must be >= 0.5 and <= ack_timeout_max_s")
    if not 1 <= m.batch_max_readings <= 5000:
        raise ConfigError(f"{r.where}.batch_max_readings: must be within 1..5000 (the contract)")
    r.done()
    return m


def _tank_alarm(r: _Reader, sensors: list[SensorBinding]) -> TankAlarm:
    tank = r.text("tank", required=True)
    level = (Quantity.DIFF_PRESSURE, Quantity.LEVEL_PCT)
    candidates = [s for s in sensors if s.tank == tank and s.quantity in level]
    code = r.text("sensor")
    if code is not None:
        candidates = [s for s in candidates if s.code == code]
        if not candidates:
            raise ConfigError(f"{r.where}.sensor: no dp or level_pct sensor {code!r} on {tank!r}")
    elif not candidates:
        raise ConfigError(f"{r.where}.tank: no dp or level_pct sensor is bound to tank {tank!r}")
    elif len(candidates) > 1:
        raise ConfigError(f"{r.where}: tank {tank!r} has several level sensors; name one (sensor)")
    sensor = candidates[0]
    low_dp, low_pct = r.number("low_dp"), r.number("low_pct")
    hysteresis = r.number("hysteresis", 0.0)
    if hysteresis < 0:
        raise ConfigError(f"{r.where}.hysteresis: must not be negative")
    if (low_dp is None) == (low_pct is None):
        raise ConfigError(f"{r.where}: give exactly one of low_dp or low_pct")
    if sensor.quantity is Quantity.LEVEL_PCT:
        if low_pct is None:
            raise ConfigError(f"{r.where}: {sensor.code} reports percent; use low_pct")
        low, clear_at = low_pct, low_pct + hysteresis
    elif low_dp is not None:
        unit = r.text("unit", CANONICAL_UNIT[Quantity.DIFF_PRESSURE])
        if unit not in UNITS or UNITS[unit].dimension != QUANTITY_DIMENSION[sensor.quantity]:
            raise ConfigError(f"{r.where}.unit: {unit!r} is not a differential-pressure unit")
        low = to_canonical(sensor.quantity, low_dp, unit)
        clear_at = to_canonical(sensor.quantity, low_dp + hysteresis, unit)
    else:
        assert low_pct is not None
        # Percent of the DP span 0..full_dp: the commissioning sheet's figure, not a calibration.
        full_dp = r.number("full_dp")
        if full_dp is None or full_dp <= 0:
            raise ConfigError(f"{r.where}: low_pct on a DP sensor needs full_dp (> 0)")
        unit = r.text("unit", CANONICAL_UNIT[Quantity.DIFF_PRESSURE])
        if unit not in UNITS or UNITS[unit].dimension != QUANTITY_DIMENSION[sensor.quantity]:
            raise ConfigError(f"{r.where}.unit: {unit!r} is not a differential-pressure unit")
        full = to_canonical(sensor.quantity, full_dp, unit)
        low, clear_at = full * low_pct / 100.0, full * (low_pct + hysteresis) / 100.0
    r.done()
    return TankAlarm(tank=tank, sensor=sensor.code, low=low, clear_at=clear_at)


def _relay(r: _Reader, devices: list[DeviceConfig]) -> RelayConfig:
    transport = _transport(r)
    if isinstance(transport, RtuTransport) and any(
        isinstance(d.transport, RtuTransport) and d.transport.port == transport.port
        for d in devices
    ):
        # Two clients on one serial line would garble each other's frames.
        raise ConfigError(f"{r.where}.serial_port: {transport.port} is already polled")
    kind = r.text("kind", "coil")
    if kind not in ("coil", "register"):
        raise ConfigError(f"{r.where}.kind: expected 'coil' or 'register'")
    drive = r.items("drive") or ["low_level", "sensor_fault"]
    for d in drive:
        if d not in ALARM_KINDS:
            raise ConfigError(f"{r.where}.drive: {d!r} is not one of {', '.join(ALARM_KINDS)}")
    relay = RelayConfig(
        transport=transport,
        unit_id=r.integer("unit_id", 1),
        kind=kind,
        address=r.integer("address", 0),
        on_value=r.integer("on_value", 1),
        off_value=r.integer("off_value", 0),
        active_low=r.flag("active_low", False),
        refresh_s=r.number("refresh_s", 10.0),
        timeout_s=r.number("timeout_s", 1.0),
        reconnect_max_s=r.number("reconnect_max_s", 5.0),
        drive=tuple(drive),
    )
    if not 0 <= relay.address <= 0xFFFF:
        raise ConfigError(f"{r.where}.address: {relay.address} is outside 0..65535")
    if not (0 <= relay.on_value <= 0xFFFF and 0 <= relay.off_value <= 0xFFFF):
        raise ConfigError(f"{r.where}: on_value and off_value must be within 0..65535")
    if relay.refresh_s <= 0 or relay.timeout_s <= 0:
        raise ConfigError(f"{r.where}: refresh_s and timeout_s must be positive")
    r.done()
    return relay


def _alarm(r: _Reader, devices: list[DeviceConfig]) -> AlarmConfig:
    sensors = [s for d in devices for s in d.sensors]
    tanks = []
    for i, item in enumerate(r.items("tanks")):
        if not isinstance(item, dict):
            raise ConfigError(f"{r.where}.tanks[{i}]: expected a table")
        tanks.append(_tank_alarm(_Reader(item, f"{r.where}.tanks[{i}]"), sensors))
    if len({t.tank for t in tanks}) != len(tanks):
        raise ConfigError(f"{r.where}.tanks: a tank is listed twice")
    qualities = tuple(
        _enum(Quality, q, f"{r.where}.fault_qualities")
        for q in r.items("fault_qualities") or ["comm_error", "out_of_range", "stale"]
    )
    if Quality.GOOD in qualities:
        raise ConfigError(f"{r.where}.fault_qualities: 'good' is not a fault")
    fault_sensors = tuple(r.items("fault_sensors"))
    known = {s.code for s in sensors}
    for code in fault_sensors:
        if code not in known:
            raise ConfigError(f"{r.where}.fault_sensors: no sensor {code!r}")
    relay = _relay(r.table("relay"), devices) if "relay" in r.data else None
    a = AlarmConfig(
        tanks=tuple(tanks),
        raise_after_s=r.number("raise_after_s", 10.0),
        clear_after_s=r.number("clear_after_s", 30.0),
        fault_after_s=r.number("fault_after_s", 60.0),
        fault_qualities=qualities,
        fault_sensors=fault_sensors,
        relay=relay,
        log=r.flag("log", True),
    )
    if min(a.raise_after_s, a.clear_after_s, a.fault_after_s) < 0:
        raise ConfigError(f"{r.where}: raise_after_s, clear_after_s, fault_after_s must be >= 0")
    r.done()
    return a


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
    exception_defaults: ExceptionDefaults = {}
    ptable = root.table("profiles")
    for pname in list(ptable.data):
        profiles[pname] = _profile(pname, ptable.table(pname), exception_defaults)
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
        devices.append(_device(_Reader(item, f"devices[{i}]"), profiles, exception_defaults))
    alarm = _alarm(root.table("alarm"), devices) if "alarm" in root.data else None
    root.done()
    seen: set[str] = set()
    for s in (s for d in devices for s in d.sensors):
        if s.code in seen:
            raise ConfigError(f"{where}: sensor code {s.code!r} is used twice")
        seen.add(s.code)
    if len({d.name for d in devices}) != len(devices):
        raise ConfigError(f"{where}: device names must be unique")
    if mqtt.data_format == "v2" and len(seen) > MAX_V2_SENSORS:
        raise ConfigError(f"{where}: data_format 'v2' declares at most {MAX_V2_SENSORS} sensors")
    return SiteConfig(
        site=site,
        gateway=code,
        mqtt=mqtt,
        outbox=outbox,
        devices=tuple(devices),
        status_interval_s=status_interval,
        config_hash=hashlib.sha256(text.encode()).hexdigest()[:16],
        source=source,
        alarm=alarm,
    )


def load(path: Path) -> SiteConfig:
    """Read and parse a site configuration file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    return parse(text, path.resolve())
