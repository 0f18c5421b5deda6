"""A correction's effect before it is saved: the readings in its window, the value converted
from the unit the user picked, and the figures it changes.

The preview applies the correction inside a savepoint that is always rolled back, and computes
the same facility figures (api.accounting.telemetry.facility_telemetry) before and after: refills
and consumption of every report day the window touches, and the days of supply and status of the
latest report day. A correction that creates a refill or flips the status needs an explicit
confirmation to be saved (`needs_confirmation`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from psycopg import AsyncConnection

from . import corrections as corr
from .config import AccountingConfig
from .stock import days_of_supply, status
from .telemetry import FacilityTelemetry, calibrations, facility_telemetry
from .windows import report_day_of

# The longest correction that can be previewed (and so saved): its report days are recomputed.
MAX_RANGE = timedelta(days=31)
# Readings shown around the window (context either side) and at most this many points.
READINGS_MARGIN = timedelta(minutes=30)
MAX_POINTS = 400


class ValueUnit(StrEnum):
    """The unit a replacement value is typed in."""

    SENSOR = "sensor"  # the sensor's own unit (inH2O for a DP gauge)
    KG = "kg"  # kg of LOX in the tank
    PCT = "pct"  # % of the tank's capacity


@dataclass(frozen=True, slots=True)
class SensorInfo:
    """What converting a value for a sensor needs."""

    sensor_id: int
    tank_id: int
    facility_id: int
    quantity: str
    unit: str
    capacity_kg: float


_SENSOR = """
SELECT s.id, s.tank_id, t.facility_id, s.quantity, s.unit, t.capacity_kg
FROM sensors s JOIN tanks t ON t.id = s.tank_id WHERE s.id = %(sensor)s
"""
_READINGS = """
SELECT ts, value FROM readings
WHERE sensor_id = %(sensor)s AND ts >= %(start)s AND ts <= %(end)s AND value IS NOT NULL
ORDER BY ts
"""


async def sensor_info(conn: AsyncConnection[Any], sensor_id: int) -> SensorInfo | None:
    """The sensor with its tank (None for a sensor on no tank)."""
    cur = await conn.execute(_SENSOR, {"sensor": sensor_id})
    r = await cur.fetchone()
    if r is None or r[1] is None:
        return None
    return SensorInfo(int(r[0]), int(r[1]), int(r[2]), str(r[3]), str(r[4]), float(r[5]))


async def to_sensor_unit(
    conn: AsyncConnection[Any], info: SensorInfo, value: float, unit: ValueUnit, at: datetime
) -> float:
    """`value` typed in `unit`, in the sensor's own unit (through the tank's calibration valid
    at `at` for a DP gauge). Raises CorrectionError when it cannot be converted."""
    if unit is ValueUnit.SENSOR:
        return value
    kg = value if unit is ValueUnit.KG else info.capacity_kg * value / 100.0
    if info.quantity == "contents":
        return kg
    if info.quantity == "level_pct":
        if info.capacity_kg <= 0:
            raise corr.CorrectionError("correction.error.unit", "value_unit")
        return 100.0 * kg / info.capacity_kg
    if info.quantity == "dp":
        table = (await calibrations(conn, [info.tank_id])).get(info.tank_id)
        cal = table.at(at) if table else None
        if cal is None:
            raise corr.CorrectionError("correction.error.no_calibration", "value_unit")
        return cal.dp_for(kg)
    raise corr.CorrectionError("correction.error.unit", "value_unit")


async def readings_in(
    conn: AsyncConnection[Any], sensor_id: int, ts_from: datetime, ts_to: datetime
) -> list[tuple[str, float]]:
    """The raw readings in the window (with some context), thinned to at most MAX_POINTS."""
    async with conn.cursor() as cur:
        await cur.execute(
            _READINGS,
            {
                "sensor": sensor_id,
                "start": ts_from - READINGS_MARGIN,
                "end": ts_to + READINGS_MARGIN,
            },
        )
        rows = await cur.fetchall()
    step = max(1, len(rows) // MAX_POINTS)
    return [(ts.isoformat(), float(v)) for ts, v in rows[::step]]


@dataclass(frozen=True, slots=True)
class DayEffect:
    """One report day's telemetry figures before → after."""

    day: str
    refills_before: int
    refills_after: int
    refilled_kg_before: float | None
    refilled_kg_after: float | None
    consumption_kg_before: float | None
    consumption_kg_after: float | None


@dataclass(frozen=True, slots=True)
class Preview:
    """The effect of a correction, computed but not saved."""

    sensor_unit: str
    value_typed: float | None
    value_unit: str
    value_sensor: float | None  # the value stored (the sensor's unit)
    readings: list[tuple[str, float]]
    days: list[DayEffect]
    latest_day: str
    days_of_supply_before: float | None
    days_of_supply_after: float | None
    status_before: str
    status_after: str
    refills_created: int
    refills_removed: int
    needs_confirmation: bool
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


async def _figures(
    conn: AsyncConnection[Any],
    facility_id: int,
    days: list[date],
    cfg: AccountingConfig,
    now: datetime,
) -> dict[date, FacilityTelemetry]:
    out = {}
    for d in days:
        out[d] = (await facility_telemetry(conn, [facility_id], d, cfg, now=now))[facility_id]
    return out


def _round(v: float | None, digits: int = 1) -> float | None:
    return None if v is None else round(v, digits)


def _dos(
    t: FacilityTelemetry, previous: FacilityTelemetry, cfg: AccountingConfig
) -> tuple[float | None, str]:
    """Days of supply and status as the tank page shows them: the open window's close is the
    latest contents, and until the window has a reading (just after the cutoff) the previous
    day's close stands for it — not "unknown" for the minutes after 16:00."""
    usable = t.usable_kg if t.usable_kg is not None else previous.usable_kg
    days = days_of_supply(usable, t.avg_daily_kg)
    return days, status(days, cfg.needs_more_days).value


async def preview(
    conn: AsyncConnection[Any],
    *,
    sensor_id: int,
    ts_from: datetime,
    ts_to: datetime,
    action: corr.CorrectionAction,
    value: float | None,
    unit: ValueUnit,
    reason: str,
    author: str,
    cfg: AccountingConfig,
    now: datetime,
) -> Preview:
    """Convert, check and apply the correction in a savepoint always rolled back; compare."""
    info = await sensor_info(conn, sensor_id)
    if info is None:
        raise corr.CorrectionError("correction.error.sensor", "sensor_id")
    corr.check(ts_from, ts_to, action, value, reason)
    if ts_to - ts_from > MAX_RANGE:
        raise corr.CorrectionError("correction.error.range_too_long", "ts_from")
    stored = (
        await to_sensor_unit(conn, info, value, unit, ts_from)
        if value is not None and action is corr.CorrectionAction.REPLACE
        else None
    )
    latest = report_day_of(now, cfg)
    first = report_day_of(ts_from, cfg)
    last = min(report_day_of(ts_to, cfg), latest)
    # The days the window touches, and the week the latest day's average reads.
    affected = _days(first, max(first, last))
    wanted = sorted({*affected, latest - timedelta(days=1), latest})
    before = await _figures(conn, info.facility_id, wanted, cfg, now)
    async with conn.transaction(force_rollback=True):
        await corr.create(
            conn,
            sensor_id=sensor_id,
            ts_from=ts_from,
            ts_to=ts_to,
            action=action,
            value=stored,
            reason=reason,
            author=author,
            cfg=cfg,
            now=now,
        )
        after = await _figures(conn, info.facility_id, wanted, cfg, now)
    effects = [
        DayEffect(
            d.isoformat(),
            before[d].refills,
            after[d].refills,
            _round(before[d].refilled_kg),
            _round(after[d].refilled_kg),
            _round(before[d].consumption_kg),
            _round(after[d].consumption_kg),
        )
        for d in affected
    ]
    created = sum(max(0, e.refills_after - e.refills_before) for e in effects)
    removed = sum(max(0, e.refills_before - e.refills_after) for e in effects)
    previous = latest - timedelta(days=1)
    dos_b, st_b = _dos(before[latest], before[previous], cfg)
    dos_a, st_a = _dos(after[latest], after[previous], cfg)
    return Preview(
        sensor_unit=info.unit,
        value_typed=value,
        value_unit=unit.value,
        value_sensor=None if stored is None else round(stored, 3),
        readings=await readings_in(conn, sensor_id, ts_from, ts_to),
        days=effects,
        latest_day=latest.isoformat(),
        days_of_supply_before=None if dos_b is None else round(dos_b, 2),
        days_of_supply_after=None if dos_a is None else round(dos_a, 2),
        status_before=st_b,
        status_after=st_a,
        refills_created=created,
        refills_removed=removed,
        needs_confirmation=created > 0 or st_a != st_b,
    )
