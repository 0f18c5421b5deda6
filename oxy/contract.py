"""The wire contract: topics, message schemas, units and oxygen reference conditions.

This is the single source that `gateway`, `firmware_bridge` and `ingest` import. It is versioned:
the topic carries `v1` and every message carries `"v": 1`; a message of another version is
dead-lettered by ingest, never guessed at.

Topics (Sparkplug-inspired, JSON payloads, see shared ARCHITECTURE.md):

* ``oxy/v1/<site>/<gateway>/data``   — :class:`DataMessage`, QoS 1, not retained
* ``oxy/v1/<site>/<gateway>/state``  — :class:`StateMessage`, retained birth; the MQTT Will
  publishes ``online: false`` with the same ``bd_seq``
* ``oxy/v1/<site>/<gateway>/status`` — :class:`StatusMessage`, health, outbox depth, evictions
* ``oxy/v1/<site>/<gateway>/data/ack`` — :class:`AckMessage`, published by ingest only (retained):
  the highest contiguous data ``seq`` of the gateway's outbox stream the centre has committed
  (end-to-end acknowledgement, docs/ingest.md). Six levels, so ingest's own ``+/+/+`` filter
  never receives it.

``<site>`` is the facility code from the registry, ``<gateway>`` the gateway code.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Final, Literal, NotRequired

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
    """The three per-gateway topics."""

    DATA = "data"
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
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


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


class StateMessage(_Message):
    """Birth (retained, online=true) or death (the MQTT Will, online=false) of a gateway."""

    v: Literal[1] = CONTRACT_VERSION
    gw: Code
    online: bool
    bd_seq: Annotated[int, Field(ge=0)]
    version: str | None = None
    config_hash: str | None = None
    ts: UtcTime | None = None


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
    """Serialise a message to its JSON wire form (UTF-8)."""
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
