"""Site configuration (TOML): the gateway, its MQTT link, its outbox, sensor profiles and devices.

Read with the standard library's `tomllib`, checked by pydantic models of the file's tables (as
the firmware bridge checks its own TOML), and built into frozen dataclasses; every mistake is
reported as one :class:`ConfigError` naming the key and why, before anything starts.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

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


# --- the TOML file's shape: one pydantic model per table ------------------------------------
# Types, keys and single values are checked here (strict: TOML's own types, no coercion from
# text); what depends on other tables (a sensor's profile, an alarm's sensor, a relay's serial
# line) is checked while building the configuration below. Every mistake becomes one ConfigError
# naming the key, as `devices[0].sensors[1].address: 70000 is outside 0..65535`.

Number = Annotated[float, Field(strict=True)]  # an integer or a float, not a boolean
Integer = Annotated[int, Field(strict=True)]
Text = Annotated[str, Field(strict=True)]
Flag = Annotated[bool, Field(strict=True)]


def _valid_code(value: str) -> str:
    if not CODE_RE.match(value):
        raise ValueError(f"{value!r} is not a valid code")
    return value


def _register_address(value: int) -> int:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{value} is outside 0..65535")
    return value


Code = Annotated[Text, AfterValidator(_valid_code)]
Address = Annotated[Integer, AfterValidator(_register_address)]

_TCP_KEYS = frozenset({"host", "port"})
_RTU_KEYS = frozenset({"serial_port", "baudrate", "parity", "stopbits", "bytesize"})


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _GatewayTable(_Table):
    site: Code
    code: Code
    state_dir: Text = "."
    status_interval_s: Number = 30.0


class _ProfileTable(_Table):
    unit: Text
    type: ValueType = ValueType.FLOAT32
    function: Function = Function.HOLDING
    byte_order: Order = Order.BIG
    word_order: Order = Order.BIG
    scale: Number = 1.0
    offset: Number = 0.0
    valid_min: Number | None = None
    valid_max: Number | None = None
    invalid_raw: list[Number] = []
    stale_after_s: Number = 0.0
    # Defaults of its sensors (report by exception, contract v2).
    resolution: Number | None = None
    deadband: Number | None = None
    heartbeat_s: Number | None = None

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, unit: str) -> str:
        if unit not in UNITS:
            raise ValueError(f"unknown unit {unit!r}")
        return unit


class _SensorTable(_Table):
    code: Code
    tank: Text | None = None
    quantity: Quantity
    profile: Text
    address: Address
    resolution: Number | None = None
    deadband: Number | None = None
    heartbeat_s: Number | None = None


class _TransportTable(_Table):
    """The keys of a Modbus transport (a device's or the relay's): TCP or RTU, not both."""

    transport: Literal["tcp", "rtu"] = "tcp"
    host: Text | None = None
    port: Integer = 502
    serial_port: Text | None = None
    baudrate: Integer = 19200
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Integer = 1
    bytesize: Integer = 8

    @model_validator(mode="after")
    def _one_transport(self) -> Self:
        needed, foreign = (
            ("host", _RTU_KEYS) if self.transport == "tcp" else ("serial_port", _TCP_KEYS)
        )
        extra = sorted(self.model_fields_set & foreign)
        if extra:
            raise ValueError(f"unknown key(s) {', '.join(extra)} for transport {self.transport!r}")
        if getattr(self, needed) is None:
            raise ValueError(f"missing key {needed!r}")
        return self

    def build(self) -> TcpTransport | RtuTransport:
        """The transport the configuration names."""
        if self.transport == "tcp":
            assert self.host is not None
            return TcpTransport(self.host, self.port)
        assert self.serial_port is not None
        return RtuTransport(
            self.serial_port, self.baudrate, self.parity, self.stopbits, self.bytesize
        )


class _DeviceTable(_TransportTable):
    name: Text
    unit_id: Integer = 1
    sensors: list[_SensorTable] = []
    poll_interval_s: Number = 1.0
    timeout_s: Number = 1.0
    max_gap: Integer = 8
    reconnect_max_s: Number = 10.0


class _MqttTable(_Table):
    url: Text
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    username: Text | None = None
    password: Text | None = None
    password_file: Text | None = None
    ca_file: Text | None = None
    cert_file: Text | None = None
    key_file: Text | None = None
    client_id: Text | None = None
    keepalive_s: Integer = 20
    batch_max_readings: Integer = 500
    linger_s: Number = 0.2
    inflight: Integer = 20
    reconnect_max_s: Number = 2.0
    end_to_end_ack: Flag = True
    ack_timeout_s: Number = 30.0
    ack_timeout_max_s: Number = 600.0
    data_format: Literal["v1", "v2"] = "v1"
    deflate: Flag = False

    @field_validator("url")
    @classmethod
    def _broker_url(cls, url: str) -> str:
        try:
            Broker.parse(url)
        except MqttUrlError as exc:
            raise ValueError(str(exc)) from None
        return url


class _OutboxTable(_Table):
    path: Text | None = None
    max_readings: Integer = 10_000_000
    max_age_h: Number = 168.0
    synchronous: Literal["normal", "full"] = "full"


class _TankAlarmTable(_Table):
    tank: Text
    sensor: Text | None = None
    low_dp: Number | None = None
    low_pct: Number | None = None
    hysteresis: Number = 0.0
    unit: Text | None = None
    full_dp: Number | None = None


class _RelayTable(_TransportTable):
    unit_id: Integer = 1
    kind: Literal["coil", "register"] = "coil"
    address: Address = 0
    on_value: Integer = 1
    off_value: Integer = 0
    active_low: Flag = False
    refresh_s: Number = 10.0
    timeout_s: Number = 1.0
    reconnect_max_s: Number = 5.0
    drive: list[Text] = []

    @field_validator("drive")
    @classmethod
    def _alarm_kinds(cls, drive: list[str]) -> list[str]:
        for d in drive:
            if d not in ALARM_KINDS:
                raise ValueError(f"{d!r} is not one of {', '.join(ALARM_KINDS)}")
        return drive


class _AlarmTable(_Table):
    tanks: list[_TankAlarmTable] = []
    raise_after_s: Number = 10.0
    clear_after_s: Number = 30.0
    fault_after_s: Number = 60.0
    fault_qualities: list[Quality] = []
    fault_sensors: list[Text] = []
    relay: _RelayTable | None = None
    log: Flag = True


class _SiteFile(_Table):
    gateway: _GatewayTable
    profiles: dict[str, _ProfileTable] = {}
    outbox: _OutboxTable = _OutboxTable()
    mqtt: _MqttTable
    devices: list[_DeviceTable] = []
    alarm: _AlarmTable | None = None


# pydantic's error types → what the message says about the key's value.
_EXPECTED = {
    "int_type": "expected int",
    "float_type": "expected a number",
    "string_type": "expected str",
    "bool_type": "expected a boolean",
    "list_type": "expected a list",
    "dict_type": "expected a table",
    "model_type": "expected a table",
}


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _problem(errors: list[ErrorDetails]) -> str:
    """The first validation error as `key.path: why` (unknown keys of one table together)."""
    first = errors[0]
    if first["type"] == "extra_forbidden":
        parent = first["loc"][:-1]
        keys = [
            str(e["loc"][-1])
            for e in errors
            if e["type"] == "extra_forbidden" and e["loc"][:-1] == parent
        ]
        return f"{_key_path(parent) or 'config'}: unknown key(s) {', '.join(keys)}"
    return _one_problem(first)


def _one_problem(error: ErrorDetails) -> str:
    """One validation error as `key.path: why`."""
    loc, kind, ctx = error["loc"], error["type"], error.get("ctx", {})
    where = _key_path(loc)
    parent = _key_path(loc[:-1]) or "config"
    value = error.get("input")
    if kind == "missing":
        return f"{parent}: missing key {loc[-1]!r}"
    if kind == "extra_forbidden":
        return f"{parent}: unknown key(s) {loc[-1]}"
    if kind == "enum":
        return f"{where}: {value!r} is not one of {ctx['expected']}"
    if kind == "literal_error":
        return f"{where}: expected {ctx['expected']}"
    if kind == "value_error":
        return f"{where or 'config'}: {ctx['error']}"
    if kind in _EXPECTED:
        got = "a boolean" if isinstance(value, bool) else repr(value)
        return f"{where}: {_EXPECTED[kind]}, got {got}"
    return f"{where or 'config'}: {error['msg']}"


# --- from the checked tables to the configuration -------------------------------------------

# Per profile: `resolution`, `deadband`, `heartbeat_s` defaults for its sensors (report by
# exception).
ExceptionDefaults = dict[str, dict[str, float]]


def _profile(name: str, t: _ProfileTable) -> Profile:
    return Profile(
        name=name,
        unit=t.unit,
        type=t.type,
        function=t.function,
        byte_order=t.byte_order,
        word_order=t.word_order,
        scale=t.scale,
        offset=t.offset,
        valid_min=t.valid_min,
        valid_max=t.valid_max,
        invalid_raw=tuple(t.invalid_raw),
        stale_after_s=t.stale_after_s,
    )


def _sensor(
    t: _SensorTable, where: str, profiles: dict[str, Profile], defaults: ExceptionDefaults
) -> SensorBinding:
    if t.profile not in profiles:
        raise ConfigError(f"{where}.profile: no profile named {t.profile!r}")
    profile = profiles[t.profile]
    if UNITS[profile.unit].dimension != QUANTITY_DIMENSION[t.quantity]:
        raise ConfigError(
            f"{where}: profile {t.profile!r} measures in {profile.unit}, not {t.quantity.value}"
        )
    extra = defaults.get(t.profile, {})

    def pick(value: float | None, key: str, default: float | None) -> float | None:
        return value if value is not None else extra.get(key, default)

    resolution = pick(t.resolution, "resolution", DEFAULT_RESOLUTION[t.quantity])
    deadband = pick(t.deadband, "deadband", None)
    heartbeat = pick(t.heartbeat_s, "heartbeat_s", 300.0)
    assert resolution is not None and heartbeat is not None
    if not 0 <= resolution <= 1e6:
        raise ConfigError(f"{where}.resolution: must be within 0..1e6 (0: plain floats)")
    if deadband is not None and deadband < 0:
        raise ConfigError(f"{where}.deadband: must not be negative")
    if heartbeat <= 0:
        raise ConfigError(f"{where}.heartbeat_s: must be positive")
    return SensorBinding(
        t.code, t.tank, t.quantity, profile, t.address, resolution, deadband, heartbeat
    )


def _device(
    t: _DeviceTable, where: str, profiles: dict[str, Profile], defaults: ExceptionDefaults
) -> DeviceConfig:
    sensors = tuple(
        _sensor(s, f"{where}.sensors[{i}]", profiles, defaults) for i, s in enumerate(t.sensors)
    )
    if not sensors:
        raise ConfigError(f"{where}: a device needs at least one sensor")
    if t.poll_interval_s <= 0 or t.timeout_s <= 0:
        raise ConfigError(f"{where}: poll_interval_s and timeout_s must be positive")
    return DeviceConfig(
        name=t.name,
        transport=t.build(),
        unit_id=t.unit_id,
        sensors=sensors,
        poll_interval_s=t.poll_interval_s,
        timeout_s=t.timeout_s,
        max_gap=t.max_gap,
        reconnect_max_s=t.reconnect_max_s,
    )


def _mqtt(t: _MqttTable, gateway: str, base: Path) -> MqttConfig:
    where = "mqtt"
    url = Broker.parse(t.url)  # checked by the model
    password = t.password if t.password is not None else url.password
    if t.password_file:
        try:
            password = (base / t.password_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{where}.password_file: cannot read it ({exc.strerror})") from None

    def path(value: str | None) -> Path | None:
        return (base / value) if value else None

    if t.data_format == "v2" and not t.end_to_end_ack:
        # A v2 message whose birth the centre lacks is re-sent after the rebirth, which only
        # the end-to-end acknowledgement does (docs/gateway.md, "Contract v2").
        raise ConfigError(f"{where}.data_format: 'v2' needs end_to_end_ack = true")
    if not 0.5 <= t.ack_timeout_s <= t.ack_timeout_max_s:
        raise ConfigError(f"{where}.ack_timeout_s: must be >= 0.5 and <= ack_timeout_max_s")
    if not 1 <= t.batch_max_readings <= 5000:
        raise ConfigError(f"{where}.batch_max_readings: must be within 1..5000 (the contract)")
    return MqttConfig(
        host=url.host,
        port=url.port,
        tls=url.tls,
        username=t.username if t.username is not None else url.username,
        password=password,
        ca_file=path(t.ca_file),
        cert_file=path(t.cert_file),
        key_file=path(t.key_file),
        client_id=t.client_id if t.client_id is not None else f"oxy-{gateway}",
        keepalive_s=t.keepalive_s,
        batch_max_readings=t.batch_max_readings,
        linger_s=t.linger_s,
        inflight=t.inflight,
        reconnect_max_s=t.reconnect_max_s,
        protocol=t.protocol,
        end_to_end_ack=t.end_to_end_ack,
        ack_timeout_s=t.ack_timeout_s,
        ack_timeout_max_s=t.ack_timeout_max_s,
        data_format=t.data_format,
        deflate=t.deflate,
    )


def _dp_unit(t: _TankAlarmTable, where: str, sensor: SensorBinding) -> str:
    unit = t.unit if t.unit is not None else CANONICAL_UNIT[Quantity.DIFF_PRESSURE]
    if unit not in UNITS or UNITS[unit].dimension != QUANTITY_DIMENSION[sensor.quantity]:
        raise ConfigError(f"{where}.unit: {unit!r} is not a differential-pressure unit")
    return unit


def _tank_alarm(t: _TankAlarmTable, where: str, sensors: list[SensorBinding]) -> TankAlarm:
    level = (Quantity.DIFF_PRESSURE, Quantity.LEVEL_PCT)
    candidates = [s for s in sensors if s.tank == t.tank and s.quantity in level]
    if t.sensor is not None:
        candidates = [s for s in candidates if s.code == t.sensor]
        if not candidates:
            raise ConfigError(
                f"{where}.sensor: no dp or level_pct sensor {t.sensor!r} on {t.tank!r}"
            )
    elif not candidates:
        raise ConfigError(f"{where}.tank: no dp or level_pct sensor is bound to tank {t.tank!r}")
    elif len(candidates) > 1:
        raise ConfigError(f"{where}: tank {t.tank!r} has several level sensors; name one (sensor)")
    sensor = candidates[0]
    low_dp, low_pct, hysteresis = t.low_dp, t.low_pct, t.hysteresis
    if hysteresis < 0:
        raise ConfigError(f"{where}.hysteresis: must not be negative")
    if (low_dp is None) == (low_pct is None):
        raise ConfigError(f"{where}: give exactly one of low_dp or low_pct")
    if sensor.quantity is Quantity.LEVEL_PCT:
        if low_pct is None:
            raise ConfigError(f"{where}: {sensor.code} reports percent; use low_pct")
        low, clear_at = low_pct, low_pct + hysteresis
    elif low_dp is not None:
        unit = _dp_unit(t, where, sensor)
        low = to_canonical(sensor.quantity, low_dp, unit)
        clear_at = to_canonical(sensor.quantity, low_dp + hysteresis, unit)
    else:
        assert low_pct is not None
        # Percent of the DP span 0..full_dp: the commissioning sheet's figure, not a calibration.
        if t.full_dp is None or t.full_dp <= 0:
            raise ConfigError(f"{where}: low_pct on a DP sensor needs full_dp (> 0)")
        full = to_canonical(sensor.quantity, t.full_dp, _dp_unit(t, where, sensor))
        low, clear_at = full * low_pct / 100.0, full * (low_pct + hysteresis) / 100.0
    return TankAlarm(tank=t.tank, sensor=sensor.code, low=low, clear_at=clear_at)


def _relay(t: _RelayTable, where: str, devices: list[DeviceConfig]) -> RelayConfig:
    transport = t.build()
    if isinstance(transport, RtuTransport) and any(
        isinstance(d.transport, RtuTransport) and d.transport.port == transport.port
        for d in devices
    ):
        # Two clients on one serial line would garble each other's frames.
        raise ConfigError(f"{where}.serial_port: {transport.port} is already polled")
    if not (0 <= t.on_value <= 0xFFFF and 0 <= t.off_value <= 0xFFFF):
        raise ConfigError(f"{where}: on_value and off_value must be within 0..65535")
    if t.refresh_s <= 0 or t.timeout_s <= 0:
        raise ConfigError(f"{where}: refresh_s and timeout_s must be positive")
    return RelayConfig(
        transport=transport,
        unit_id=t.unit_id,
        kind=t.kind,
        address=t.address,
        on_value=t.on_value,
        off_value=t.off_value,
        active_low=t.active_low,
        refresh_s=t.refresh_s,
        timeout_s=t.timeout_s,
        reconnect_max_s=t.reconnect_max_s,
        drive=tuple(t.drive or ALARM_KINDS),
    )


def _alarm(t: _AlarmTable, devices: list[DeviceConfig]) -> AlarmConfig:
    where = "alarm"
    sensors = [s for d in devices for s in d.sensors]
    tanks = [_tank_alarm(a, f"{where}.tanks[{i}]", sensors) for i, a in enumerate(t.tanks)]
    if len({a.tank for a in tanks}) != len(tanks):
        raise ConfigError(f"{where}.tanks: a tank is listed twice")
    qualities = tuple(t.fault_qualities) or (
        Quality.COMM_ERROR,
        Quality.OUT_OF_RANGE,
        Quality.STALE,
    )
    if Quality.GOOD in qualities:
        raise ConfigError(f"{where}.fault_qualities: 'good' is not a fault")
    known = {s.code for s in sensors}
    for code in t.fault_sensors:
        if code not in known:
            raise ConfigError(f"{where}.fault_sensors: no sensor {code!r}")
    relay = _relay(t.relay, f"{where}.relay", devices) if t.relay is not None else None
    if min(t.raise_after_s, t.clear_after_s, t.fault_after_s) < 0:
        raise ConfigError(f"{where}: raise_after_s, clear_after_s, fault_after_s must be >= 0")
    return AlarmConfig(
        tanks=tuple(tanks),
        raise_after_s=t.raise_after_s,
        clear_after_s=t.clear_after_s,
        fault_after_s=t.fault_after_s,
        fault_qualities=qualities,
        fault_sensors=tuple(t.fault_sensors),
        relay=relay,
        log=t.log,
    )


def parse(text: str, source: Path | None = None) -> SiteConfig:
    """Parse the TOML text of one site configuration."""
    where = str(source) if source else "config"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    try:
        f = _SiteFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problem(exc.errors(include_url=False))) from None
    base = source.parent if source else Path.cwd()
    g = f.gateway
    state_dir = base / g.state_dir
    profiles = {name: _profile(name, p) for name, p in f.profiles.items()}
    defaults: ExceptionDefaults = {
        name: {
            k: v
            for k, v in (
                ("resolution", p.resolution),
                ("deadband", p.deadband),
                ("heartbeat_s", p.heartbeat_s),
            )
            if v is not None
        }
        for name, p in f.profiles.items()
    }
    o = f.outbox
    outbox = OutboxConfig(
        path=base / (o.path if o.path is not None else str(state_dir / f"{g.code}.outbox.sqlite")),
        max_readings=o.max_readings,
        max_age_s=o.max_age_h * 3600.0,
        synchronous=o.synchronous,
    )
    mqtt = _mqtt(f.mqtt, g.code, base)
    devices = [_device(d, f"devices[{i}]", profiles, defaults) for i, d in enumerate(f.devices)]
    alarm = _alarm(f.alarm, devices) if f.alarm is not None else None
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
        site=g.site,
        gateway=g.code,
        mqtt=mqtt,
        outbox=outbox,
        devices=tuple(devices),
        status_interval_s=g.status_interval_s,
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
