"""Contract v2 data messages into rows, straight from their indices (no record per reading).

A v2 message names its sensors by index into the birth's declarations, so everything ingest
decides per sensor — the registered sensor, the unit conversion to its canonical unit, the
resolution — is decided once per (gateway, schema) into a plan and reused for every reading of
every message until the registry changes. Per reading what remains is an index lookup, one
multiplication and the same range and domain checks as v1 (ingest.resolve._data): stored, or
dead-lettered (its reason returned), or quarantined (a declared sensor the registry lacks).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg

from ingest.batch import Decoded, Rows
from ingest.registry import GatewayInfo, SensorCache, SensorInfo
from oxy.contract import (
    QUALITY_CODE,
    QUANTITY_DIMENSION,
    UNITS,
    VALUE_LIMIT,
    Domain,
    Quality,
    SensorDecl,
    Topic,
    V2Data,
    value_problem,
)

_UNIX: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_OUT_OF_RANGE: Final = QUALITY_CODE[Quality.OUT_OF_RANGE]
_COMM_ERROR: Final = QUALITY_CODE[Quality.COMM_ERROR]


@dataclass(frozen=True, slots=True)
class Slot:
    """What index i of a schema is for one registry view: the sensor (None: not registered),
    value = wire × mul + add in its canonical unit (mul folds the resolution in), or why it
    cannot be converted."""

    code: str
    unit: str
    sensor: SensorInfo | None
    mul: float
    div: float
    add: float
    problem: str | None


def plan(
    decls: tuple[SensorDecl, ...],
    gw: GatewayInfo,
    cache: SensorCache,
    conn: psycopg.Connection[Any],
) -> tuple[GatewayInfo, list[Slot]]:
    """The slots of a declaration for this registry view (and the gateway after any reload)."""
    slots = []
    for d in decls:
        s = gw.sensors.get(d.code)
        if s is None:
            gw, s = cache.sensor(gw, d.code, conn)
        unit = UNITS[d.unit]  # the birth was checked: a known unit
        problem = None
        if s is not None and unit.dimension != QUANTITY_DIMENSION[s.quantity]:
            problem = f"unit {d.unit!r} does not measure {s.quantity.value}"
        # n × res as n / (1/res) when 1/res is whole (12346 / 100 is the double nearest 123.46).
        inv = 1.0 / d.res if d.res > 0 else 1.0
        whole = abs(inv - round(inv)) < 1e-9 * inv
        div = float(round(inv)) if whole else 1.0
        mul = unit.scale if whole else unit.scale * (d.res if d.res > 0 else 1.0)
        slots.append(Slot(d.code, d.unit, s, mul, div, unit.offset, problem))
    return gw, slots


def rows_of(
    d: Decoded,
    t: Topic,
    msg: V2Data,
    slots: list[Slot],
    *,
    domain: Domain,
    now: datetime,
    rows: Rows,
) -> list[str]:
    """Append the message's readings to `rows`; return the reasons of those refused."""
    item = d.inbound
    received = item.received_at
    floor_ms = (domain.ts_floor - _UNIX) // _MS
    horizon_ms = (now + domain.max_future - _UNIX) // _MS
    append = rows.readings.append
    latest, oldest = rows.latest, rows.oldest
    n = len(slots)
    bad: list[str] = []
    limit = VALUE_LIMIT
    good = QUALITY_CODE[Quality.GOOD]

    def one(where: str, i: int, ts: datetime, raw: Any, quality: int) -> None:
        if i >= n:
            bad.append(f"{where}: index {i} is not declared by schema {msg.schema} ({n} sensors)")
            return
        slot = slots[i]
        value = None
        if raw is not None:
            value = raw / slot.div * slot.mul + slot.add if type(raw) is int else (
                raw * slot.mul + slot.add
            )  # fmt: skip
        s = slot.sensor
        if s is None:
            rows.quarantine.append(
                (received, item.topic, t.site, t.gateway, slot.code, ts, value, slot.unit,
                 quality, f"unknown sensor {slot.code!r} for gateway {t.gateway!r}", None)
            )  # fmt: skip
            return
        if slot.problem is not None:
            bad.append(f"{where} ({slot.code}): {slot.problem}")
            return
        if value is not None and not s.lo <= value <= s.hi:
            if not -limit <= value <= limit:
                bad.append(f"{where} ({slot.code}): {value_problem(value)}")
                return
            if quality != _COMM_ERROR:
                quality = _OUT_OF_RANGE
        sid = s.id
        row = (sid, ts, value, quality, received)
        append(row)
        newest = latest.get(sid)
        if newest is None:
            latest[sid] = row
            oldest[sid] = ts
        elif ts > newest[1]:
            latest[sid] = row
        elif ts < oldest[sid]:
            oldest[sid] = ts

    t0 = msg.t0_ms
    stamps: dict[int, datetime | None] = {}

    def stamp(where: str, dt: int) -> datetime | None:
        if dt in stamps:
            return stamps[dt]
        ms = t0 + dt
        ts = _UNIX + ms * _MS if floor_ms <= ms <= horizon_ms else None
        stamps[dt] = ts
        return ts

    def out_of_domain(where: str, dt: int) -> None:
        ms = t0 + dt
        when = (
            datetime.fromtimestamp(ms / 1000, UTC)
            if -62135596800000 < ms < 253402300800000
            else None
        )
        problem = domain.ts_problem(when, now) if when is not None else None
        bad.append(f"{where}: {problem or f'timestamp {ms} ms is outside the calendar'}")

    for k, g in enumerate(msg.groups):
        ts = stamp(f"groups.{k}", g[0])
        if ts is None:
            out_of_domain(f"groups.{k}", g[0])
            continue
        it = iter(g)
        next(it)
        for i, raw in zip(it, it, strict=True):
            one(f"groups.{k}", i, ts, raw, good)
    for k, (dt, i, q, raw) in enumerate(msg.bad):
        ts = stamp(f"bad.{k}", dt)
        if ts is None:
            out_of_domain(f"bad.{k}", dt)
            continue
        one(f"bad.{k}", i, ts, raw, q)
    return bad
