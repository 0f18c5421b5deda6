"""The wire contract: topics, message schemas, units and oxygen reference conditions.

This is the single source that `gateway`, `firmware_bridge` and `ingest` import. It is versioned:
the topic carries `v1` and every message carries `"v": 1`; a message of another version is
dead-lettered by ingest, never guessed at.

Topics (Sparkplug-inspired, JSON payloads, see shared ARCHITECTURE.md):

* ``oxy/v1/<site>/<gateway>/data``   — :class:`DataMessage`, QoS 1, not retained
* ``oxy/v1/<site>/<gateway>/data2``  — contract v2 data (compact, MessagePack; "Contract v2"
  below and docs/gateway.md): sensor indices declared by the birth, QoS 1, not retained
* ``oxy/v1/<site>/<gateway>/state``  — :class:`StateMessage`, retained birth; the MQTT Will
  publishes ``online: false`` with the same ``bd_seq``
* ``oxy/v1/<site>/<gateway>/status`` — :class:`StatusMessage`, health, outbox depth, evictions
* ``oxy/v1/<site>/<gateway>/data/ack`` — :class:`AckMessage`, published by ingest only (retained):
  the highest contiguous data ``seq`` of the gateway's outbox stream the centre has committed
  (end-to-end acknowledgement, docs/ingest.md). Six levels, so ingest's own ``+/+/+`` filter
  never receives it.
* ``oxy/v1/<site>/<gateway>/data/rebirth`` — :class:`RebirthRequest`, published by ingest only
  (not retained) when a v2 message names a schema the centre has no birth for.

Both data versions are accepted side by side; a gateway chooses by its setting
(``[mqtt] data_format``). The birth (state) is JSON for both, with the v2 declaration optional.

``<site>`` is the facility code from the registry, ``<gateway>`` the gateway code.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, NotRequired

import msgpack
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_serializer,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict  # pydantic needs it (not typing's) before 3.12

from oxy import OxyError

CONTRACT_VERSION: Final = 1
TOPIC_ROOT: Final = f"oxy/v{CONTRACT_VERSION}"
MAX_READINGS_PER_MESSAGE: Final = 5000
MAX_PAYLOAD_BYTES: Final = 1_048_576

_CODE = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
CODE_RE: Final = re.compile(rf"^{_CODE}$")


class ContractError(OxyError):
    """A message or topic does not follow the wire contract; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------------
# Topics


class TopicKind(StrEnum):
    """The per-gateway topics: v1 data (JSON), v2 data (compact, see "Contract v2"), state and
    status."""

    DATA = "data"
    DATA_V2 = "data2"
    STATE = "state"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed platform topic."""

    site: str
    gateway: str
    kind: TopicKind

    def __str__(self) -> str:
        return f"{TOPIC_ROOT}/{self.site}/{self.gateway}/{self.kind.value}"


def topic(site: str, gateway: str, kind: TopicKind) -> str:
    """The topic string for a site's gateway; codes are checked against the contract."""
    for name, value in (("site", site), ("gateway", gateway)):
        if not CODE_RE.match(value):
            raise ContractError(f"invalid {name} code {value!r}: letters, digits, . _ - (max 64)")
    return str(Topic(site, gateway, kind))


def parse_topic(name: str) -> Topic:
    """Parse `oxy/v1/<site>/<gateway>/<kind>`; raise ContractError for anything else."""
    parts = name.split("/")
    if len(parts) != 5 or parts[0] != "oxy":
        raise ContractError(f"topic {name!r} is not oxy/v<N>/<site>/<gateway>/<kind>")
    if parts[1] != f"v{CONTRACT_VERSION}":
        raise ContractError(f"unsupported contract version {parts[1]!r} in topic {name!r}")
    site, gateway, kind = parts[2], parts[3], parts[4]
    if not CODE_RE.match(site) or not CODE_RE.match(gateway):
        raise ContractError(f"invalid site or gateway code in topic {name!r}")
    try:
        return Topic(site, gateway, TopicKind(kind))
    except ValueError:
        raise ContractError(f"unknown topic kind {kind!r} in topic {name!r}") from None


def subscription(kind: TopicKind | None = None, shared_group: str | None = None) -> str:
    """Topic filter for every gateway's `kind` topic (all kinds if None), optionally shared."""
    filt = f"{TOPIC_ROOT}/+/+/{kind.value if kind else '+'}"
    return f"$share/{shared_group}/{filt}" if shared_group else filt


def gateway_prefix(site: str, gateway: str) -> str:
    """The topic prefix a gateway may publish under (used by broker ACLs and by ingest)."""
    return f"{TOPIC_ROOT}/{site}/{gateway}/"


# --------------------------------------------------------------------------------------------
# Quantities and units


class Quantity(StrEnum):
    """Physical quantities a sensor can report; each has one canonical unit for storage."""

    DIFF_PRESSURE = "dp"  # LOX level gauge: liquid vs head space
    HEAD_PRESSURE = "head_pressure"  # tank (vessel) pressure, gauge
    LINE_PRESSURE = "line_pressure"  # hospital pipeline pressure, gauge
    TEMPERATURE = "temperature"
    LEVEL_PCT = "level_pct"  # some vendor/LoRaWAN sensors report percent full
    CONTENTS = "contents"  # already-derived contents (vendor telemetry), kg of LOX
    FLOW = "flow"  # gas flow at the reference conditions


CANONICAL_UNIT: Final[dict[Quantity, str]] = {
    Quantity.DIFF_PRESSURE: "inH2O",
    Quantity.HEAD_PRESSURE: "bar",
    Quantity.LINE_PRESSURE: "bar",
    Quantity.TEMPERATURE: "degC",
    Quantity.LEVEL_PCT: "%",
    Quantity.CONTENTS: "kg",
    Quantity.FLOW: "Nm3/h",
}

# 1 inH2O (conventional, 4 °C water) = 249.08891 Pa; 1 mmH2O = 9.80665 Pa.
_PA_PER_INH2O: Final = 249.08891
_PA_PER_MMH2O: Final = 9.80665
_PA_PER_PSI: Final = 6894.757293168


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit the wire accepts: its dimension and the affine map to the canonical unit."""

    symbol: str
    dimension: Literal["pressure_small", "pressure", "temperature", "fraction", "mass", "flow"]
    scale: float
    offset: float = 0.0

    def to_canonical(self, value: float) -> float:
        """Convert a value in this unit to the dimension's canonical unit."""
        return value * self.scale + self.offset


# Differential pressure is its own dimension (canonical inH2O); head/line pressure is in bar.
UNITS: Final[dict[str, Unit]] = {
    u.symbol: u
    for u in (
        Unit("inH2O", "pressure_small", 1.0),
        Unit("mmH2O", "pressure_small", _PA_PER_MMH2O / _PA_PER_INH2O),
        Unit("kPa_dp", "pressure_small", 1000.0 / _PA_PER_INH2O),
        Unit("mbar_dp", "pressure_small", 100.0 / _PA_PER_INH2O),
        Unit("bar", "pressure", 1.0),
        Unit("psi", "pressure", _PA_PER_PSI / 100_000.0),
        Unit("kPa", "pressure", 0.01),
        Unit("MPa", "pressure", 10.0),
        Unit("degC", "temperature", 1.0),
        Unit("K", "temperature", 1.0, -273.15),
        Unit("%", "fraction", 1.0),
        Unit("kg", "mass", 1.0),
        Unit("t", "mass", 1000.0),
        Unit("Nm3/h", "flow", 1.0),
    )
}

QUANTITY_DIMENSION: Final[dict[Quantity, str]] = {
    Quantity.DIFF_PRESSURE: "pressure_small",
    Quantity.HEAD_PRESSURE: "pressure",
    Quantity.LINE_PRESSURE: "pressure",
    Quantity.TEMPERATURE: "temperature",
    Quantity.LEVEL_PCT: "fraction",
    Quantity.CONTENTS: "mass",
    Quantity.FLOW: "flow",
}


def to_canonical(quantity: Quantity, value: float, unit: str) -> float:
    """Convert `value` in `unit` to the canonical unit of `quantity`, or raise ContractError."""
    u = UNITS.get(unit)
    if u is None:
        raise ContractError(f"unknown unit {unit!r}")
    if u.dimension != QUANTITY_DIMENSION[quantity]:
        raise ContractError(f"unit {unit!r} does not measure {quantity.value}")
    return u.to_canonical(value)


# --------------------------------------------------------------------------------------------
# Oxygen reference conditions (shared DOMAIN.md, "Oxygen quantities")

LOX_DENSITY_KG_PER_L: Final = 1.141  # at the normal boiling point, -183 °C, 1 atm
O2_MOLAR_MASS_KG: Final = 0.031999
GAS_CONSTANT: Final = 8.314462618
# Second virial coefficient of O2, B(T) in cm3/mol (Dymond & Smith, "The Virial Coefficients of
# Pure Gases and Mixtures"): at 1 atm the real gas is ~0.1 % denser than the ideal one, which is
# the difference between the declared 1.429 kg/m3 at 0 °C (shared DOMAIN.md; 1 kg = 0.700 m3, the
# suppliers' figure) and the ideal-gas 1.4277.
O2_VIRIAL_B: Final = (
    (200.0, -42.7),
    (250.0, -27.6),
    (273.15, -21.9),
    (300.0, -16.2),
    (350.0, -8.4),
)


def _virial_b_m3(temp_k: float) -> float:
    """B(T) of O2 in m3/mol, interpolated linearly (clamped outside the table)."""
    pts = O2_VIRIAL_B
    if temp_k <= pts[0][0]:
        return pts[0][1] * 1e-6
    for (t0, b0), (t1, b1) in itertools.pairwise(pts):
        if temp_k <= t1:
            return (b0 + (b1 - b0) * (temp_k - t0) / (t1 - t0)) * 1e-6
    return pts[-1][1] * 1e-6


@dataclass(frozen=True, slots=True)
class Reference:
    """The declared reference for every m3 of gas the system shows (default 0 °C, 1 atm)."""

    temp_c: float = 0.0
    pressure_kpa: float = 101.325

    @property
    def gas_density(self) -> float:
        """O2 gas density in kg/m3 at this reference: real gas, Z = 1 + B·p/(R·T) (1.429 at
        0 °C, 1 atm; 1.331 at 20 °C)."""
        temp_k = self.temp_c + 273.15
        p = self.pressure_kpa * 1000.0
        z = 1.0 + _virial_b_m3(temp_k) * p / (GAS_CONSTANT * temp_k)
        return p * O2_MOLAR_MASS_KG / (z * GAS_CONSTANT * temp_k)

    @property
    def label(self) -> str:
        """Short label for API documents, e.g. 'm3 @ 0 °C, 1 atm' (101.325 kPa, which a
        Vietnamese reader takes for 101 325), else 'm3 @ 20 °C, 101.3 kPa'; the pages use the
        locale-aware `api.i18n.gas_unit`."""
        if abs(self.pressure_kpa - 101.325) < 1e-9:
            return f"m3 @ {self.temp_c:g} °C, 1 atm"
        return f"m3 @ {self.temp_c:g} °C, {self.pressure_kpa:g} kPa"

    def kg_to_m3(self, kg: float) -> float:
        """Mass of oxygen to gas volume at this reference (1 kg ≈ 0.700 Nm3)."""
        return kg / self.gas_density

    def m3_to_kg(self, m3: float) -> float:
        """Gas volume at this reference to mass of oxygen."""
        return m3 * self.gas_density

    def liquid_m3_to_kg(self, m3_liquid: float) -> float:
        """Volume of liquid oxygen to mass (1 m3 LOX = 1,141 kg)."""
        return m3_liquid * LOX_DENSITY_KG_PER_L * 1000.0

    def liquid_m3_to_gas_m3(self, m3_liquid: float) -> float:
        """Volume of liquid oxygen to its gas equivalent at this reference (≈ 799 at Nm3)."""
        return self.kg_to_m3(self.liquid_m3_to_kg(m3_liquid))


NORMAL: Final = Reference()


# --------------------------------------------------------------------------------------------
# Messages


class Quality(StrEnum):
    """Quality of one reading, decided where the reading was taken (or by ingest, for a value
    outside the sensor's registered valid range: out_of_range)."""

    GOOD = "good"
    STALE = "stale"
    OUT_OF_RANGE = "out_of_range"
    COMM_ERROR = "comm_error"


# How each quality is stored (readings.quality, smallint); 0 is the only "good".
QUALITY_CODE: Final[dict[Quality, int]] = {
    Quality.GOOD: 0,
    Quality.STALE: 1,
    Quality.OUT_OF_RANGE: 2,
    Quality.COMM_ERROR: 3,
}


# --------------------------------------------------------------------------------------------
# Domains: what a reading may carry to be stored. The decoders check the types (strict JSON:
# a number is a number, a time is an ISO 8601 string with a zone); ingest checks each reading
# against these domains after unit conversion and dead-letters the reading with its reason.

# The earliest reading time accepted by default (setting OXY_INGEST_TS_FLOOR): nothing of this
# platform was measured before it, and an older time is a gateway clock that was never set.
TS_FLOOR_DEFAULT: Final = datetime(2020, 1, 1, tzinfo=UTC)
# How far ahead of the centre's clock a reading may be (setting OXY_INGEST_MAX_FUTURE_S).
MAX_FUTURE_DEFAULT: Final = timedelta(minutes=5)
# Largest magnitude of a stored value in its canonical unit (inH2O, bar, degC, %, kg, Nm3/h):
# no oxygen sensor reads anywhere near it, and it keeps every sum, product and JSON document
# built from readings finite. Infinity and NaN fail the same test.
VALUE_LIMIT: Final = 1e12


@dataclass(frozen=True, slots=True)
class Domain:
    """The time window a reading's timestamp must fall in, relative to the centre's clock."""

    ts_floor: datetime = TS_FLOOR_DEFAULT
    max_future: timedelta = MAX_FUTURE_DEFAULT

    def ts_problem(self, ts: datetime, now: datetime) -> str | None:
        """Why `ts` cannot be stored, or None (never raises, whatever the year or offset)."""
        # Differences of aware datetimes never overflow (datetime + timedelta can, near year 1
        # or 9999, which is the OverflowError that once stopped ingest).
        if ts - self.ts_floor < timedelta(0):
            return f"timestamp {ts.isoformat()} is before {self.ts_floor.date().isoformat()}"
        if ts - now > self.max_future:
            return f"timestamp {ts.isoformat()} is in the future"
        return None


def value_problem(value: float) -> str | None:
    """Why a converted value cannot be stored, or None (infinite, NaN or absurdly large)."""
    if -VALUE_LIMIT <= value <= VALUE_LIMIT:
        return None
    if math.isnan(value) or math.isinf(value):
        return f"value is not finite after unit conversion ({value!r})"
    return f"value {value!r} is beyond the contract's limit of ±{VALUE_LIMIT:g}"


def _utc_ms(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone (UTC, ending in Z)")
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 with an offset that leaves the calendar
        raise ValueError("timestamp is outside the years 1..9999 in UTC") from None
    return value.replace(microsecond=(value.microsecond // 1000) * 1000)


# Strict: a JSON string only (an integer epoch is refused, not guessed at).
UtcTime = Annotated[datetime, Field(strict=True), AfterValidator(_utc_ms)]
WireTime = Annotated[AwareDatetime, Field(strict=True)]
# Strict: a JSON number only (true/false and "1.5" are refused); integers are numbers.
WireValue = Annotated[float, Field(strict=True)]
Seq = Annotated[int, Field(ge=0, strict=True)]
Code = Annotated[str, Field(pattern=f"^{_CODE}$")]


def format_ts(value: datetime) -> str:
    """UTC, millisecond precision, 'Z' suffix: the wire form of every timestamp."""
    value = _utc_ms(value)
    # Not strftime("%Y"): glibc writes year 1 as "1", which is no RFC 3339 time (the whole
    # message would be refused with it, good readings included).
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
        f"{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}Z"
    )


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    @field_serializer("*", when_used="json", check_fields=False)
    def _ser(self, value: object) -> object:
        return format_ts(value) if isinstance(value, datetime) else value


class Reading(_Message):
    """One sample of one sensor. A bad value travels as null with its quality, never as NaN.

    Its field types are all checked inside pydantic-core (no Python call per reading, which is
    what lets ingest decode hundreds of thousands of readings a second); the two checks that
    types cannot say (a known unit, a value when the quality is good) run once per message in
    :class:`DataMessage`. The timestamp must carry a zone; the wire form is UTC with
    milliseconds (:func:`format_ts`).
    """

    sensor: Code
    ts: WireTime
    value: WireValue | None
    unit: str
    q: Quality = Quality.GOOD


def reading_problem(r: Reading) -> str | None:
    """Why a reading breaks the contract beyond its field types, or None."""
    return _problem(r.unit, r.value, r.q)


def _problem(unit: str, value: float | None, q: Quality) -> str | None:
    if unit not in UNITS:
        return f"unknown unit {unit!r}"
    if value is None and q is Quality.GOOD:
        return "a reading of quality 'good' must carry a value"
    return None


class DataMessage(_Message):
    """A batch of readings from one gateway; `seq` increases by one per message (gaps show)."""

    v: Literal[1] = CONTRACT_VERSION
    gw: Code
    seq: Seq
    sent_at: UtcTime
    readings: Annotated[list[Reading], Field(min_length=1, max_length=MAX_READINGS_PER_MESSAGE)]
    # End-to-end acknowledgement (both or neither): the outbox stream `seq` belongs to, and the
    # lowest `seq` the gateway may still send in it (everything below is confirmed or evicted).
    epoch: Annotated[int, Field(ge=0)] | None = None
    floor: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _check_readings(self) -> DataMessage:
        for i, r in enumerate(self.readings):
            problem = reading_problem(r)
            if problem:
                raise ValueError(f"readings.{i}: {problem}")
        return self


class SensorDecl(_Message):
    """One sensor as a birth declares it for contract v2 data: its position in the birth's list
    is the index v2 readings carry; `unit` is the unit its values travel in; `res` the quantum
    they are counted in (an integer n on the wire means n × res), 0 for plain floats."""

    code: Code
    unit: str
    res: Annotated[float, Field(ge=0, le=1e6, strict=False)] = 0.0


class StateMessage(_Message):
    """Birth (retained, online=true) or death (the MQTT Will, online=false) of a gateway.

    A gateway that sends contract v2 data declares its sensors in the birth (`sensors`, at most
    MAX_V2_SENSORS) under a `schema` number (:func:`schema_id` of the list): every v2 data
    message names the schema its indices refer to."""

    v: Literal[1] = CONTRACT_VERSION
    gw: Code
    online: bool
    bd_seq: Annotated[int, Field(ge=0)]
    version: str | None = None
    config_hash: str | None = None
    ts: UtcTime | None = None
    schema_: int | None = Field(default=None, alias="schema", ge=0, lt=2**32)
    sensors: Annotated[list[SensorDecl], Field(max_length=4096)] | None = None

    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, frozen=True, populate_by_name=True
    )

    @model_validator(mode="after")
    def _check_sensors(self) -> StateMessage:
        if (self.sensors is None) != (self.schema_ is None):
            raise ValueError("schema and sensors go together")
        if self.sensors is not None:
            assert self.schema_ is not None
            if len({s.code for s in self.sensors}) != len(self.sensors):
                raise ValueError("sensors: a code is declared twice")
            for i, s in enumerate(self.sensors):
                if s.unit not in UNITS:
                    raise ValueError(f"sensors.{i}: unknown unit {s.unit!r}")
            if schema_id(self.sensors) != self.schema_:
                raise ValueError("schema does not match the declared sensors")
        return self


class DeviceHealth(_Message):
    """Health of one polled device (a Modbus slave) as the gateway sees it."""

    device: str
    state: Literal["ok", "failing", "unknown"]
    last_good_poll: UtcTime | None = None
    error: str | None = None
    # Radio devices (LoRaWAN, via firmware_bridge): battery and signal quality of the last uplink.
    battery_pct: float | None = None
    rssi_dbm: float | None = None
    snr_db: float | None = None


class StatusMessage(_Message):
    """Periodic gateway health: outbox depth and age, evictions (never silent), devices."""

    v: Literal[1] = CONTRACT_VERSION
    gw: Code
    ts: UtcTime
    outbox_depth: Annotated[int, Field(ge=0)]
    outbox_oldest: UtcTime | None = None
    evicted_total: Annotated[int, Field(ge=0)] = 0
    published_total: Annotated[int, Field(ge=0)] = 0
    devices: list[DeviceHealth] = Field(default_factory=list)
    alarms: list[str] = Field(default_factory=list)


Message = DataMessage | StateMessage | StatusMessage
_MODEL_FOR_KIND: Final[dict[TopicKind, type[DataMessage | StateMessage | StatusMessage]]] = {
    TopicKind.DATA: DataMessage,
    TopicKind.STATE: StateMessage,
    TopicKind.STATUS: StatusMessage,
}


def encode(message: DataMessage | StateMessage | StatusMessage) -> bytes:
    """Serialise a message to its JSON wire form (UTF-8); a birth without v2 declarations is
    exactly the v1 birth (no schema/sensors keys: a centre older than v2 accepts it)."""
    if isinstance(message, StateMessage):
        if message.sensors is None:
            return message.model_dump_json(exclude={"schema_", "sensors"}).encode()
        return message.model_dump_json(by_alias=True).encode()
    return message.model_dump_json(exclude_none=False).encode()


def encode_data(
    gw: str,
    seq: int,
    sent_at: datetime,
    readings: list[Reading],
    *,
    epoch: int | None = None,
    floor: int | None = None,
) -> tuple[bytes, int]:
    """Encode a data message of as many of `readings` (from the first) as fit in
    MAX_PAYLOAD_BYTES; returns the payload and how many readings it holds. `epoch` and
    `floor` are the end-to-end acknowledgement's stream and lowest seq still sendable.

    Gateways build every data message with it, so none is ever larger than ingest accepts or
    than the broker's packet limit (oxy.broker.MAX_PACKET_BYTES, which leaves room for the
    longest topic and the MQTT headers): the broker would drop such a message by closing the
    gateway's connection, and the gateway would resend it for ever. One reading always fits.
    """
    n = min(len(readings), MAX_READINGS_PER_MESSAGE)
    while True:
        msg = DataMessage(
            gw=gw, seq=seq, sent_at=sent_at, readings=readings[:n], epoch=epoch, floor=floor
        )
        payload = encode(msg)
        if len(payload) <= MAX_PAYLOAD_BYTES or n == 1:
            return payload, n
        n = max(1, min(n - 1, int(n * MAX_PAYLOAD_BYTES / len(payload) * 0.98)))


def decode(
    topic_name: str, payload: bytes
) -> tuple[Topic, DataMessage | StateMessage | StatusMessage]:
    """Parse and validate a message for its topic; raise ContractError with a readable reason."""
    t = parse_topic(topic_name)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    if t.kind is TopicKind.DATA_V2:
        raise ContractError("a v2 data message needs its birth: use decode_v2 and expand_v2")
    model = _MODEL_FOR_KIND[t.kind]
    try:
        msg = model.model_validate_json(payload)
    except ValidationError as exc:
        raise ContractError(_describe(exc)) from None
    if msg.gw != t.gateway:
        raise ContractError(f"gateway {msg.gw!r} in payload does not match topic {topic_name!r}")
    return t, msg


# --------------------------------------------------------------------------------------------
# Data messages as plain records: ingest's hot path


@with_config(ConfigDict(extra="forbid", allow_inf_nan=False))
class ReadingRecord(TypedDict):
    """A :class:`Reading` validated into a dict (no ``q`` means good)."""

    sensor: Code
    ts: WireTime
    value: WireValue | None
    unit: str
    q: NotRequired[Quality]


@with_config(ConfigDict(extra="forbid", allow_inf_nan=False))
class DataRecord(TypedDict):
    """A :class:`DataMessage` validated into dicts: the same field types and limits."""

    v: NotRequired[Literal[1]]
    gw: Code
    seq: Seq
    sent_at: UtcTime
    readings: Annotated[
        list[ReadingRecord], Field(min_length=1, max_length=MAX_READINGS_PER_MESSAGE)
    ]
    epoch: NotRequired[Annotated[int, Field(ge=0)] | None]
    floor: NotRequired[Annotated[int, Field(ge=0)] | None]


_DATA_RECORD: Final = TypeAdapter(DataRecord)


def decode_record(
    topic_name: str, payload: bytes
) -> tuple[Topic, DataRecord | StateMessage | StatusMessage]:
    """:func:`decode`, with a data message as a :class:`DataRecord` instead of model instances.

    The same checks (tests/test_contract.py runs every rejection through both), at about half
    the cost per reading — dicts are built faster than models and are cheaper to keep alive and
    free. Ingest decodes every message with it; everything else uses :func:`decode`.
    """
    t = parse_topic(topic_name)
    if t.kind is TopicKind.DATA_V2:
        raise ContractError("a v2 data message needs its birth: use decode_v2 and expand_v2")
    if t.kind is not TopicKind.DATA:
        t, msg = decode(topic_name, payload)
        if isinstance(msg, StateMessage | StatusMessage):
            return t, msg
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        record = _DATA_RECORD.validate_json(payload)
    except ValidationError as exc:
        raise ContractError(_describe(exc)) from None
    readings = record["readings"]
    # Both checks at C speed first; the loop that names the reading only when one fails.
    good = Quality.GOOD
    if not {r["unit"] for r in readings} <= UNITS.keys() or any(
        r["value"] is None and r.get("q", good) is good for r in readings
    ):
        for i, r in enumerate(readings):
            problem = _problem(r["unit"], r["value"], r.get("q", good))
            if problem:
                raise ContractError(f"readings.{i}: {problem}")
    if record["gw"] != t.gateway:
        raise ContractError(
            f"gateway {record['gw']!r} in payload does not match topic {topic_name!r}"
        )
    return t, record


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{loc}: {err['msg']}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def is_finite(value: float | None) -> bool:
    """True for a real, finite number (the only kind of value that may travel as 'good')."""
    return value is not None and math.isfinite(value)


# --------------------------------------------------------------------------------------------
# End-to-end acknowledgement (docs/ingest.md, "End-to-end acknowledgement")

ACK_SUFFIX: Final = "data/ack"


def ack_topic(site: str, gateway: str) -> str:
    """`oxy/v1/<site>/<gateway>/data/ack`: where ingest confirms what the centre has committed."""
    return topic(site, gateway, TopicKind.DATA) + "/ack"


def parse_ack_topic(name: str) -> tuple[str, str]:
    """(site, gateway) of an ack topic; ContractError for anything else."""
    if not name.endswith("/" + ACK_SUFFIX):
        raise ContractError(f"topic {name!r} is not an ack topic")
    t = parse_topic(name[: -len("/ack")])
    return t.site, t.gateway


class AckMessage(_Message):
    """The centre's watermark for one gateway's outbox stream (`epoch`).

    Every data message of the stream with `seq` <= `seq` here has been committed (or handled:
    dead-lettered, quarantined) by ingest, or lies below the stream's floor. `high` is the
    highest `seq` committed so far: `high` > `seq` means a gap the gateway should re-send.
    """

    v: Literal[1] = CONTRACT_VERSION
    gw: Code
    epoch: Annotated[int, Field(ge=0)]
    seq: Annotated[int, Field(ge=-1)]
    high: Annotated[int, Field(ge=-1)]
    ts: UtcTime


def decode_ack(topic_name: str, payload: bytes) -> AckMessage:
    """Parse an ack message for its topic; ContractError with the reason otherwise."""
    _site, gateway = parse_ack_topic(topic_name)
    try:
        msg = AckMessage.model_validate_json(payload)
    except ValidationError as exc:
        raise ContractError(_describe(exc)) from None
    if msg.gw != gateway:
        raise ContractError(f"gateway {msg.gw!r} in payload does not match topic {topic_name!r}")
    return msg


def encode_ack(message: AckMessage) -> bytes:
    """The JSON wire form of an ack message."""
    return message.model_dump_json().encode()


# --------------------------------------------------------------------------------------------
# Contract v2: compact data messages (docs/gateway.md, "Contract v2")
#
# Topic ``oxy/v1/<site>/<gateway>/data2`` (the same ACL prefix, subscription and ack topic as
# v1 data). Payload: one version byte (2), one flags byte (bit 0: the rest is zlib-deflated),
# then a MessagePack array
#
#     [seq, epoch, floor, schema, sent_ms, t0_ms, groups, bad]
#
# * seq, epoch, floor: as in v1 (epoch and floor both nil or both set);
# * schema: the birth's schema number (StateMessage.schema) whose `sensors` the indices name;
# * sent_ms, t0_ms: Unix milliseconds; every reading's time is t0_ms + its offset dt;
# * groups: ``[dt, i, n, i, n, ...]`` — good readings taken at t0+dt: sensor index i, value n
#   (an integer n means n × the sensor's declared `res`; a float is the value itself);
# * bad: ``[dt, i, q, n|nil]`` — readings whose quality is not good (q: QUALITY_CODE 1..3).
#
# The unit is the declared one (no unit per reading), quality travels only when not good.

V2_VERSION: Final = 2
V2_DEFLATE: Final = 0x01
MAX_V2_SENSORS: Final = 4096
# Unix milliseconds of 0001-01-01 and 9999-12-31T23:59:59.999 (UTC): datetimes exist between.
_MS_MIN: Final = -62_135_596_800_000
_MS_MAX: Final = 253_402_300_799_999
_UNIX: Final = datetime(1970, 1, 1, tzinfo=UTC)
_QUALITY_OF_CODE: Final = {code: q for q, code in QUALITY_CODE.items()}
_BAD_CODES: Final = frozenset(c for c in _QUALITY_OF_CODE if c)
_NUMBER = (int, float)


def schema_id(sensors: Sequence[SensorDecl]) -> int:
    """The schema number of a declaration list: CRC-32 of its canonical JSON (a new number for
    any change of order, code, unit or resolution)."""
    text = json.dumps([[s.code, s.unit, s.res] for s in sensors], separators=(",", ":"))
    return zlib.crc32(text.encode())


def ms_of(ts: datetime) -> int:
    """Unix milliseconds of an aware datetime (the wire's millisecond precision)."""
    return (_utc_ms(ts) - _UNIX) // timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class V2Data:
    """A v2 data message checked for its form (types, ranges); its indices are resolved
    against the birth by :func:`expand_v2`."""

    seq: int
    epoch: int | None
    floor: int | None
    schema: int
    sent_ms: int
    t0_ms: int
    groups: list[list[Any]]
    bad: list[list[Any]]
    readings: int


def encode_v2(
    decls: Sequence[SensorDecl],
    schema: int,
    seq: int,
    sent_ms: int,
    items: Sequence[tuple[int, int, float | None, int]],
    *,
    epoch: int | None = None,
    floor: int | None = None,
    deflate: bool = False,
) -> tuple[bytes, int]:
    """Encode (sensor index, ts_ms, value, quality code) items as one v2 data message; returns
    the payload and how many items (from the first) it holds (at most
    MAX_READINGS_PER_MESSAGE; a v2 message of that many readings is far below
    MAX_PAYLOAD_BYTES). A good reading needs a finite value (ContractError otherwise)."""
    n = min(len(items), MAX_READINGS_PER_MESSAGE)
    if n == 0:
        raise ContractError("a data message carries at least one reading")
    chosen = items[:n]
    t0 = min(it[1] for it in chosen)
    groups: dict[int, list[Any]] = {}
    bad: list[list[Any]] = []
    for i, ts, raw, q in chosen:
        res = decls[i].res
        value: float | int | None = raw
        if raw is not None:
            if not math.isfinite(raw):
                raise ContractError(f"sensor {decls[i].code}: value {raw!r} is not finite")
            if res > 0:
                count = round(raw / res)
                if abs(count) < 2**53:
                    value = count
        if q:
            bad.append([ts - t0, i, q, value])
            continue
        if value is None:
            raise ContractError(f"sensor {decls[i].code}: a good reading needs a value")
        g = groups.get(ts)
        if g is None:
            groups[ts] = [ts - t0, i, value]
        else:
            g += (i, value)
    body = msgpack.packb([seq, epoch, floor, schema, sent_ms, t0, list(groups.values()), bad])
    if deflate:
        return bytes((V2_VERSION, V2_DEFLATE)) + zlib.compress(body, 6), n
    return bytes((V2_VERSION, 0)) + body, n


def _is_int(x: object, lo: int, hi: int) -> bool:
    return type(x) is int and lo <= x <= hi


def _v2_body(payload: bytes) -> Any:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    if len(payload) < 3 or payload[0] != V2_VERSION:
        raise ContractError("not a v2 data message: the first byte must be 2 (the version)")
    flags, body = payload[1], payload[2:]
    if flags & ~V2_DEFLATE:
        raise ContractError(f"unknown flags 0x{flags:02x} in a v2 data message")
    if flags & V2_DEFLATE:
        inflater = zlib.decompressobj()
        try:
            body = inflater.decompress(body, MAX_PAYLOAD_BYTES)
        except zlib.error as exc:
            raise ContractError(f"deflated body cannot be inflated: {exc}") from None
        if inflater.unconsumed_tail:
            raise ContractError(f"inflated body exceeds {MAX_PAYLOAD_BYTES} bytes")
        if not inflater.eof:
            raise ContractError("deflated body is truncated")
    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises several types (ExtraData, FormatError, ...)
        raise ContractError(f"body is not one MessagePack value: {type(exc).__name__}") from None


def decode_v2(topic_name: str, payload: bytes) -> tuple[Topic, V2Data]:
    """Parse a v2 data message for its topic and check its form; ContractError with the reason
    otherwise. The indices are checked against the birth by :func:`expand_v2`."""
    t = parse_topic(topic_name)
    if t.kind is not TopicKind.DATA_V2:
        raise ContractError(f"topic {topic_name!r} is not a v2 data topic")
    doc = _v2_body(payload)
    if type(doc) is not list or len(doc) != 8:
        raise ContractError(
            "message: expected [seq, epoch, floor, schema, sent_ms, t0_ms, groups, bad]"
        )
    seq, epoch, floor, schema, sent_ms, t0, groups, bad = doc
    if not _is_int(seq, 0, 2**63 - 1):
        raise ContractError("seq: expected an integer >= 0")
    if (epoch is None) != (floor is None):
        raise ContractError("epoch and floor: both or neither")
    if epoch is not None and not (_is_int(epoch, 0, 2**63 - 1) and _is_int(floor, 0, 2**63 - 1)):
        raise ContractError("epoch and floor: expected integers >= 0")
    if not _is_int(schema, 0, 2**32 - 1):
        raise ContractError("schema: expected an integer 0..2^32-1")
    if not _is_int(sent_ms, _MS_MIN, _MS_MAX):
        raise ContractError("sent_ms: expected Unix milliseconds within the years 1..9999")
    if not _is_int(t0, _MS_MIN, _MS_MAX):
        raise ContractError("t0_ms: expected Unix milliseconds within the years 1..9999")
    if type(groups) is not list or type(bad) is not list:
        raise ContractError("groups and bad: expected arrays")
    count = 0
    span = _MS_MAX - t0
    top = MAX_V2_SENSORS - 1
    for k, g in enumerate(groups):
        if type(g) is not list or len(g) < 3 or len(g) % 2 != 1:
            raise ContractError(f"groups.{k}: expected [dt, index, value, index, value, ...]")
        if not _is_int(g[0], 0, span):
            raise ContractError(f"groups.{k}: offset must be an integer >= 0 within the calendar")
        idx, vals = g[1::2], g[2::2]
        if not all(type(i) is int for i in idx) or min(idx) < 0 or max(idx) > top:
            raise ContractError(f"groups.{k}: sensor indices must be integers 0..{top}")
        if not all(type(v) in _NUMBER for v in vals):
            raise ContractError(f"groups.{k}: a good reading's value must be a number")
        if not all(math.isfinite(v) for v in vals if type(v) is float):
            raise ContractError(f"groups.{k}: a value is not finite")
        count += len(idx)
    for k, b in enumerate(bad):
        if type(b) is not list or len(b) != 4:
            raise ContractError(f"bad.{k}: expected [dt, index, quality, value or nil]")
        dt, i, q, v = b
        if not _is_int(dt, 0, span) or not _is_int(i, 0, top):
            raise ContractError(f"bad.{k}: offset >= 0 and sensor index 0..{top} expected")
        if type(q) is not int or q not in _BAD_CODES:
            raise ContractError(f"bad.{k}: quality must be one of {sorted(_BAD_CODES)}")
        if v is not None and (type(v) not in _NUMBER or not math.isfinite(v)):
            raise ContractError(f"bad.{k}: value must be a finite number or nil")
        count += 1
    if not 1 <= count <= MAX_READINGS_PER_MESSAGE:
        raise ContractError(f"readings: expected 1..{MAX_READINGS_PER_MESSAGE}, got {count}")
    data = V2Data(seq, epoch, floor, schema, sent_ms, t0, groups, bad, count)
    return t, data


def _inverse(res: float) -> float:
    if res <= 0:
        return 1.0
    inv = 1.0 / res
    return float(round(inv)) if abs(inv - round(inv)) < 1e-9 * inv else inv


def expand_v2(
    gw: str, data: V2Data, decls: Sequence[SensorDecl]
) -> tuple[DataRecord | None, list[str]]:
    """The v2 message as the :class:`DataRecord` a v1 message decodes to, with its indices
    resolved against the birth's declarations (code, unit, value × res), and the reasons of
    readings that cannot be resolved (an index the birth does not declare). None when no
    reading is left."""
    n = len(decls)
    codes = [d.code for d in decls]
    units = [d.unit for d in decls]
    # n × res, computed as n / (1/res) when 1/res is a whole number (0.01 → 100): 12346 / 100
    # is the double nearest 123.46, 12346 × 0.01 is not.
    inverse = [_inverse(d.res) for d in decls]
    problems: list[str] = []
    out: list[ReadingRecord] = []
    t0 = data.t0_ms
    stamps: dict[int, datetime] = {}

    def at(dt: int) -> datetime:
        ts = stamps.get(dt)
        if ts is None:
            ts = stamps[dt] = _UNIX + timedelta(milliseconds=t0 + dt)
        return ts

    for k, g in enumerate(data.groups):
        ts = at(g[0])
        it = iter(g)
        next(it)
        for i, v in zip(it, it, strict=True):
            if i >= n:
                problems.append(
                    f"groups.{k}: index {i} is not declared by schema {data.schema} ({n} sensors)"
                )
                continue
            out.append(
                {
                    "sensor": codes[i],
                    "ts": ts,
                    "value": v / inverse[i] if type(v) is int else v,
                    "unit": units[i],
                }
            )
    for k, (dt, i, q, v) in enumerate(data.bad):
        if i >= n:
            problems.append(
                f"bad.{k}: index {i} is not declared by schema {data.schema} ({n} sensors)"
            )
            continue
        value = None if v is None else v / inverse[i] if type(v) is int else v
        out.append(
            {
                "sensor": codes[i],
                "ts": at(dt),
                "value": value,
                "unit": units[i],
                "q": _QUALITY_OF_CODE[q],
            }
        )
    if not out:
        return None, problems
    record: DataRecord = {
        "gw": gw,
        "seq": data.seq,
        "sent_at": _UNIX + timedelta(milliseconds=data.sent_ms),
        "readings": out,
        "epoch": data.epoch,
        "floor": data.floor,
    }
    return record, problems


def v2_stream(payload: bytes) -> tuple[int, int, int | None] | None:
    """(seq, epoch, floor) of a v2 data message whose body can be read although it broke the
    contract further on (it still counts for the end-to-end acknowledgement), else None."""
    try:
        doc = _v2_body(payload)
    except ContractError:
        return None
    if type(doc) is not list or len(doc) < 3:
        return None
    seq, epoch, floor = doc[0], doc[1], doc[2]
    if not (_is_int(seq, 0, 2**63 - 1) and _is_int(epoch, 0, 2**63 - 1)):
        return None
    return seq, epoch, floor if _is_int(floor, 0, 2**63 - 1) else None


class RebirthRequest(_Message):
    """Ingest asks a gateway to publish its birth again (topic ``.../data/rebirth``, QoS 1, not
    retained): a v2 data message named a schema the centre has no birth for. `seq` is the
    message that could not be resolved; it was not acknowledged, so the gateway re-sends it
    (and everything unconfirmed) after the new birth."""

    v: Literal[1] = CONTRACT_VERSION
    gw: Code
    epoch: Annotated[int, Field(ge=0)] | None = None
    seq: Annotated[int, Field(ge=0)]
    schema_: int = Field(alias="schema", ge=0, lt=2**32)
    ts: UtcTime

    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, frozen=True, populate_by_name=True
    )


REBIRTH_SUFFIX: Final = "data/rebirth"


def rebirth_topic(site: str, gateway: str) -> str:
    """`oxy/v1/<site>/<gateway>/data/rebirth`: where ingest asks for a birth (six levels, like
    the ack topic, so ingest's own `+/+/+` filter never receives it)."""
    return topic(site, gateway, TopicKind.DATA) + "/rebirth"


def encode_rebirth(message: RebirthRequest) -> bytes:
    """The JSON wire form of a rebirth request."""
    return message.model_dump_json(by_alias=True).encode()


def decode_rebirth(topic_name: str, payload: bytes) -> RebirthRequest:
    """Parse a rebirth request; ContractError with the reason otherwise."""
    try:
        msg = RebirthRequest.model_validate_json(payload)
    except ValidationError as exc:
        raise ContractError(_describe(exc)) from None
    if not topic_name.endswith("/" + REBIRTH_SUFFIX) or f"/{msg.gw}/" not in topic_name:
        raise ContractError(f"rebirth request for {msg.gw!r} on topic {topic_name!r}")
    return msg
