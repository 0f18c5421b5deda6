"""The bridge's declarative configuration (TOML): where to listen, how to map, where to publish.

A new vendor needs a `[[sources]]` block, not code. See docs/bridge.md and
deploy/bridge/bridge.example.toml.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from firmware_bridge.errors import BridgeError
from oxy.contract import CODE_RE, MAX_V2_SENSORS, UNITS, SensorDecl

logger = logging.getLogger(__name__)

Protocol = Literal["sparkplug", "chirpstack", "tts", "json", "http"]

_DEFAULT_TOPIC: dict[str, str] = {
    "sparkplug": "spBv1.0/#",
    "chirpstack": "application/+/device/+/event/+",
    "tts": "v3/+/devices/+/up",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _secrets(data: Any, info: ValidationInfo, *names: str) -> Any:
    """`<name>_file` (a file, relative to the configuration's folder) or `<name>_env` (an
    environment variable) instead of the secret itself in the TOML; at most one of the three."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    base = (info.context or {}).get("base")
    for name in names:
        from_file, from_env = out.pop(f"{name}_file", None), out.pop(f"{name}_env", None)
        if sum(x is not None for x in (out.get(name), from_file, from_env)) > 1:
            raise ValueError(f"give only one of `{name}`, `{name}_file` and `{name}_env`")
        if out.get(name) is not None:
            logger.warning(
                "bridge config: a `%s` is written in the file (%s); prefer `%s_file` or `%s_env`",
                name,
                out.get("name") or out.get("client_id") or "onward",
                name,
                name,
            )
        if from_file is not None:
            path = Path(str(from_file))
            if not path.is_absolute() and base is not None:
                path = Path(base) / path
            try:
                out[name] = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"{name}_file {path}: cannot read it ({exc.strerror})") from None
        if from_env is not None:
            value = os.environ.get(str(from_env), "")
            if not value:
                raise ValueError(f"{name}_env: environment variable {from_env} is not set")
            out[name] = value
    return out


class Point(_Model):
    """One value of a device mapped to one platform sensor."""

    sensor: str
    unit: str
    metric: str | None = None  # Sparkplug metric name
    path: str | None = None  # JSON path (LoRaWAN: inside the decoded object; vendor: the body)
    scale: float = 1.0  # value * scale + offset, for raw counts (e.g. 4-20 mA as 0..10000)
    offset: float = 0.0
    # Contract v2 (onward data_format = "v2"): the quantum the value travels in, in `unit`
    # (an integer n on the wire means n × resolution); 0 sends plain floats.
    resolution: Annotated[float, Field(ge=0, le=1e6)] = 0.0

    @field_validator("sensor")
    @classmethod
    def _code(cls, v: str) -> str:
        if not CODE_RE.match(v):
            raise ValueError(f"invalid sensor code {v!r}")
        return v

    @field_validator("unit")
    @classmethod
    def _unit(cls, v: str) -> str:
        if v not in UNITS:
            raise ValueError(f"unknown unit {v!r}; the contract knows {sorted(UNITS)}")
        return v


class Device(_Model):
    """A foreign device (Sparkplug `group/edge[/device]`, a DevEUI, a vendor id) → a gateway."""

    id: str
    site: str
    gateway: str
    points: list[Point] = Field(default_factory=list)
    token_sha256: str | None = None  # HTTP push: sha256 hex of the device's bearer token

    @field_validator("site", "gateway")
    @classmethod
    def _code(cls, v: str) -> str:
        if not CODE_RE.match(v):
            raise ValueError(f"invalid code {v!r}: letters, digits, . _ - (max 64)")
        return v

    @field_validator("token_sha256")
    @classmethod
    def _hex(cls, v: str | None) -> str | None:
        if v is not None and (len(v) != 64 or any(c not in "0123456789abcdef" for c in v.lower())):
            raise ValueError("token_sha256 must be 64 hex digits (sha256 of the token)")
        return v.lower() if v else v


class Source(_Model):
    """One foreign protocol endpoint: a broker subscription or the HTTP push path."""

    name: str
    protocol: Protocol
    # "mqtt": subscribe on a broker; "webhook": the network server's HTTP integration posts
    # its events to `POST /v1/webhook/<name>` (chirpstack and tts only).
    transport: Literal["mqtt", "webhook"] = "mqtt"
    mqtt_url: str | None = None  # default: the onward broker
    mqtt_version: Literal["3.1.1", "5"] = "3.1.1"
    client_id: str | None = None
    username: str | None = None
    password: str | None = None  # or password_file / password_env (a TTS API key, ...)
    # Webhook: the header the network server sends with each request (ChirpStack: a custom
    # header; TTS: the webhook's custom header or its "Downlink API key", X-Downlink-Apikey)
    # and the sha256 of its value (a leading "Bearer " is not part of the token).
    webhook_header: str | None = None
    webhook_token_sha256: str | None = None
    topic: str | None = None
    qos: Annotated[int, Field(ge=0, le=2)] = 1
    # Vendor JSON / HTTP push mapping.
    device_id_path: str | None = None
    device_id_topic_level: int | None = None
    timestamp_path: str | None = None
    timestamp_format: str = "iso8601"
    timezone: str = "UTC"
    # Sparkplug: publish our own STATE as a primary host application (edge nodes that name
    # this host wait for it before publishing, and fall back to other servers without it).
    host_id: str | None = None
    # LoRaWAN: battery inside the decoded object, when the codec reports it.
    battery_path: str | None = None
    devices: list[Device] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _secret(cls, data: Any, info: ValidationInfo) -> Any:
        return _secrets(data, info, "password")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not CODE_RE.match(v):
            raise ValueError(f"invalid source name {v!r}")
        return v

    @field_validator("webhook_token_sha256")
    @classmethod
    def _webhook_hex(cls, v: str | None) -> str | None:
        if v is not None and (len(v) != 64 or any(c not in "0123456789abcdef" for c in v.lower())):
            raise ValueError("webhook_token_sha256 must be 64 hex digits (sha256 of the token)")
        return v.lower() if v else v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @model_validator(mode="after")
    def _check(self) -> Source:
        if self.protocol == "json" and not self.topic:
            raise ValueError("a json source needs `topic`")
        if self.protocol == "json" and not (self.device_id_path or self.device_id_topic_level):
            raise ValueError("a json source needs `device_id_path` or `device_id_topic_level`")
        if self.transport == "webhook":
            if self.protocol not in ("chirpstack", "tts"):
                raise ValueError("transport `webhook` is for chirpstack and tts sources")
            if not (self.webhook_header and self.webhook_token_sha256):
                raise ValueError(
                    "a webhook source needs `webhook_header` and `webhook_token_sha256`"
                )
        seen: set[str] = set()
        for d in self.devices:
            key = self.device_key(d.id)
            if key in seen:
                raise ValueError(f"device {d.id!r} is listed twice")
            seen.add(key)
            for p in d.points:
                if self.protocol == "sparkplug" and not p.metric:
                    raise ValueError(f"device {d.id!r}: a sparkplug point needs `metric`")
                if self.protocol != "sparkplug" and not p.path:
                    raise ValueError(f"device {d.id!r}: point {p.sensor!r} needs `path`")
            if self.protocol == "http" and not d.token_sha256:
                raise ValueError(f"device {d.id!r}: an http device needs `token_sha256`")
        return self

    @property
    def topic_filter(self) -> str:
        """The subscription filter (the protocol's default when not configured)."""
        return self.topic or _DEFAULT_TOPIC.get(self.protocol, "")

    @property
    def zone(self) -> ZoneInfo:
        """Time zone of naive foreign timestamps."""
        return ZoneInfo(self.timezone)

    def device_key(self, device_id: str) -> str:
        """The lookup key of a device id (EUIs are case-insensitive)."""
        return device_id.lower() if self.protocol in ("chirpstack", "tts") else device_id

    def device(self, device_id: str) -> Device | None:
        """The configured device for a foreign id, or None (→ quarantine)."""
        key = self.device_key(device_id)
        for d in self.devices:
            if self.device_key(d.id) == key:
                return d
        return None


class Onward(_Model):
    """The platform broker the bridge publishes the wire contract to."""

    mqtt_url: str  # required: no silent fallback to a local broker
    mqtt_version: Literal["3.1.1", "5"] = "5"
    client_id: str = "oxy-bridge"
    username: str | None = None
    password: str | None = None  # or password_file / password_env
    # End-to-end acknowledgement (docs/bridge.md): data messages stay in the bridge's outbox
    # until ingest's watermark covers them; false = PUBACK only (a centre older than 0075).
    end_to_end_ack: bool = True
    ack_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    ack_timeout_max_s: Annotated[float, Field(gt=0)] = 600.0
    outbox_max_messages: Annotated[int, Field(ge=1)] = 1_000_000
    # Wire format of data messages (docs/bridge.md, "Contract v2"): "v1" (JSON, every field per
    # reading) or "v2" (compact, indices declared in a birth per mapped gateway; needs
    # end_to_end_ack: a message whose birth the centre lacks is re-sent after the rebirth).
    data_format: Literal["v1", "v2"] = "v1"
    deflate: bool = False  # v2 only: zlib-deflate each message body

    @model_validator(mode="before")
    @classmethod
    def _secret(cls, data: Any, info: ValidationInfo) -> Any:
        return _secrets(data, info, "password")

    @model_validator(mode="after")
    def _v2_needs_ack(self) -> Onward:
        if self.data_format == "v2" and not self.end_to_end_ack:
            raise ValueError("data_format 'v2' needs end_to_end_ack = true")
        return self


class Rejects(_Model):
    """Where bad payloads and unknown devices are recorded (the platform database, preferred)."""

    database_url: str | None = None
    sqlite_path: Path | None = None


class Http(_Model):
    """The HTTP push endpoint."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8091
    timeout_s: Annotated[float, Field(gt=0)] = 10.0


class BridgeConfig(_Model):
    """The whole bridge configuration."""

    onward: Onward  # required: where the readings go
    rejects: Rejects = Field(default_factory=Rejects)
    http: Http = Field(default_factory=Http)
    # Per-gateway seq counters and the end-to-end outbox survive restarts when set.
    state_dir: Path | None = None
    sources: list[Source] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> BridgeConfig:
        names = [s.name for s in self.sources]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"source names must be unique: {sorted(dup)}")
        units: dict[tuple[str, str, str], tuple[str, float]] = {}
        for source in self.sources:
            for device in source.devices:
                for p in device.points:
                    key = (device.site, device.gateway, p.sensor)
                    seen = units.setdefault(key, (p.unit, p.resolution))
                    if self.onward.data_format == "v2" and seen != (p.unit, p.resolution):
                        # A v2 birth declares one unit and quantum per sensor of a gateway.
                        raise ValueError(
                            f"sensor {p.sensor} of {device.site}/{device.gateway} is mapped"
                            f" with two units or resolutions: {seen} and"
                            f" {(p.unit, p.resolution)}"
                        )
        for ref, decls in self.declarations().items():
            if self.onward.data_format == "v2" and len(decls) > MAX_V2_SENSORS:
                raise ValueError(
                    f"{ref[0]}/{ref[1]}: data_format 'v2' declares at most {MAX_V2_SENSORS}"
                    " sensors per gateway"
                )
        return self

    def source(self, name: str) -> Source | None:
        """The source called `name`, or None."""
        return next((s for s in self.sources if s.name == name), None)

    def declarations(self) -> dict[tuple[str, str], list[SensorDecl]]:
        """Contract v2: per mapped gateway (site, gateway), the declaration of every sensor its
        points name, in configuration order (index = position; a sensor named twice once)."""
        out: dict[tuple[str, str], dict[str, SensorDecl]] = {}
        for source in self.sources:
            for device in source.devices:
                decls = out.setdefault((device.site, device.gateway), {})
                for p in device.points:
                    if p.sensor not in decls:
                        decls[p.sensor] = SensorDecl(code=p.sensor, unit=p.unit, res=p.resolution)
        return {ref: list(d.values()) for ref, d in out.items()}


def hash_token(token: str) -> str:
    """The sha256 hex of a push token, as stored in `token_sha256`."""
    return hashlib.sha256(token.encode()).hexdigest()


def load_config(path: Path) -> BridgeConfig:
    """Read and validate a TOML configuration; BridgeError with a readable reason otherwise."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BridgeError(f"cannot read bridge config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BridgeError(f"bridge config {path} is not valid TOML: {exc}") from None
    return parse_config(raw, str(path), base=path.parent)


def parse_config(
    raw: dict[str, object], where: str = "config", base: Path | None = None
) -> BridgeConfig:
    """Validate an already-parsed configuration mapping (`*_file` secrets relative to `base`)."""
    try:
        return BridgeConfig.model_validate(raw, context={"base": base})
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}"
            for e in exc.errors(include_url=False)[:5]
        ]
        raise BridgeError(f"bad bridge config {where}: " + "; ".join(problems)) from None
