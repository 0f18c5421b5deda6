"""What a decoded foreign message turns into, before it is published: plain value objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from firmware_bridge.config import Point
from firmware_bridge.errors import PayloadError
from oxy.contract import Quality, Reading


@dataclass(frozen=True, slots=True)
class GatewayRef:
    """The platform gateway (site, gateway code) a foreign device is mapped to."""

    site: str
    gateway: str


@dataclass(frozen=True, slots=True)
class Health:
    """Health of a radio device from its last uplink."""

    device: str
    ts: datetime
    battery_pct: float | None = None
    rssi_dbm: float | None = None
    snr_db: float | None = None


@dataclass(frozen=True, slots=True)
class Unknown:
    """A message from a device the configuration does not map: quarantined, never dropped."""

    device: str
    ts: datetime | None
    reason: str
    detail: object  # JSON-able view of what was received
    # One row per device, with a count and the last time seen, instead of one per message (a
    # Sparkplug node whose own metrics are not mapped sends them with every NBIRTH and NDATA).
    aggregate: bool = False


@dataclass(frozen=True, slots=True)
class StateChange:
    """A mapped gateway went online (birth) or offline (death)."""

    ref: GatewayRef
    online: bool
    bd_seq: int


@dataclass
class Outcome:
    """Everything one foreign message produces; published before the message is acknowledged."""

    readings: dict[GatewayRef, list[Reading]] = field(default_factory=dict)
    states: list[StateChange] = field(default_factory=list)
    health: list[tuple[GatewayRef, Health]] = field(default_factory=list)
    alarms: list[tuple[GatewayRef, str]] = field(default_factory=list)
    cleared: list[GatewayRef] = field(default_factory=list)  # gateways whose alarms are over
    unknown: list[Unknown] = field(default_factory=list)
    commands: list[tuple[str, bytes]] = field(default_factory=list)  # back to the foreign broker
    dead: list[str] = field(default_factory=list)  # reasons to dead-letter (the message is kept)

    def add_reading(self, ref: GatewayRef, reading: Reading) -> None:
        """Queue a reading for the gateway it is mapped to."""
        self.readings.setdefault(ref, []).append(reading)


def point_reading(point: Point, ts: datetime, value: float | None) -> Reading:
    """A wire reading for a mapped point: scaled, and null with comm_error when absent."""
    if value is None:
        return Reading(
            sensor=point.sensor, ts=ts, value=None, unit=point.unit, q=Quality.COMM_ERROR
        )
    try:
        return Reading(
            sensor=point.sensor, ts=ts, value=value * point.scale + point.offset, unit=point.unit
        )
    except ValueError as exc:  # pydantic: out-of-range timestamp, non-finite after scaling
        raise PayloadError(f"sensor {point.sensor}: {exc}") from None
