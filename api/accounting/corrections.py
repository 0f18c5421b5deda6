"""Corrections of readings: an overlay with a reason, never an edit of the raw readings.

A correction marks a sensor's readings over [ts_from, ts_to] invalid, or replaces their value.
Reverting keeps the row (who, when, why), so the history of every derived figure stays auditable.
Derived figures are recomputed from raw + overlay: the stored windows it touches are dropped.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from .config import AccountingConfig
from .telemetry import invalidate

logger = logging.getLogger(__name__)


class CorrectionAction(StrEnum):
    """What a correction does to the readings in its range."""

    INVALIDATE = "invalidate"
    REPLACE = "replace"


class CorrectionError(ValueError):
    """A correction that cannot be made; `key` is the i18n message id."""

    def __init__(self, key: str, field: str | None = None) -> None:
        super().__init__(key)
        self.key = key
        self.field = field


@dataclass(frozen=True, slots=True)
class Correction:
    """One correction as stored."""

    id: int
    sensor_id: int
    ts_from: datetime
    ts_to: datetime
    action: CorrectionAction
    value: float | None
    reason: str
    created_by: str
    created_at: datetime
    reverted_at: datetime | None
    reverted_by: str | None
    revert_reason: str | None


# The columns a Correction is read from, composed into each query (psycopg.sql, never f-strings).
_COLUMNS = sql.SQL(", ").join(
    sql.Identifier(name)
    for name in (
        "id",
        "sensor_id",
        "ts_from",
        "ts_to",
        "action",
        "value",
        "reason",
        "created_by",
        "created_at",
        "reverted_at",
        "reverted_by",
        "revert_reason",
    )
)
_INSERT = sql.SQL("""
INSERT INTO corrections (sensor_id, ts_from, ts_to, action, value, reason, created_by)
VALUES (%(sensor)s, %(ts_from)s, %(ts_to)s, %(action)s, %(value)s, %(reason)s, %(author)s)
RETURNING {columns}
""").format(columns=_COLUMNS)
_REVERT = sql.SQL("""
UPDATE corrections SET reverted_at = now(), reverted_by = %(author)s, revert_reason = %(reason)s
WHERE id = %(id)s AND reverted_at IS NULL
RETURNING {columns}
""").format(columns=_COLUMNS)
_GET = sql.SQL("SELECT {columns} FROM corrections WHERE id = %(id)s").format(columns=_COLUMNS)
_LIST = sql.SQL("""
SELECT {columns} FROM corrections
WHERE sensor_id IN (SELECT id FROM sensors WHERE tank_id = %(tank)s)
ORDER BY created_at DESC, id DESC
""").format(columns=_COLUMNS)
SENSOR_FACILITY = """
SELECT g.facility_id, s.tank_id FROM sensors s JOIN gateways g ON g.id = s.gateway_id
WHERE s.id = %(sensor)s
"""
TANK_FACILITY = "SELECT facility_id FROM tanks WHERE id = %(tank)s"
# The values a sensor can read: its declared valid range, else (a DP gauge in inH2O) 0 up to the
# full tank's DP from its calibration tables, 5 % over.
SENSOR_RANGE = """
SELECT s.valid_min, s.valid_max, s.unit,
       CASE WHEN s.quantity = 'dp' AND s.unit = 'inH2O' THEN
           (SELECT 1.05 * max(p.dp_inh2o) FROM tank_calibrations c
            JOIN calibration_points p ON p.calibration_id = c.id WHERE c.tank_id = s.tank_id)
       END AS calibrated_max
FROM sensors s WHERE s.id = %(sensor)s
"""
# A correction may reach a little into the future (clocks differ), not more.
FUTURE_SLACK = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class SensorRange:
    """The values a sensor can read (None: not known) and its unit."""

    low: float | None
    high: float | None
    unit: str


async def sensor_range(conn: AsyncConnection[Any], sensor_id: int) -> SensorRange:
    """The valid range of a sensor's values (declared, else from the tank's calibration)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(SENSOR_RANGE, {"sensor": sensor_id})
        r = await cur.fetchone()
    if r is None:
        return SensorRange(None, None, "")
    high = r["valid_max"] if r["valid_max"] is not None else r["calibrated_max"]
    return SensorRange(r["valid_min"], None if high is None else float(high), r["unit"])


def check_against(ts_to: datetime, value: float | None, rng: SensorRange, now: datetime) -> None:
    """Refuse a window in the future and a value the sensor cannot read."""
    if ts_to > now + FUTURE_SLACK:
        raise CorrectionError("correction.error.future", "ts_to")
    if value is None:
        return
    if (rng.low is not None and value < rng.low) or (rng.high is not None and value > rng.high):
        raise CorrectionError("correction.error.out_of_range", "value")


def _row(r: dict[str, Any]) -> Correction:
    return Correction(
        r["id"],
        r["sensor_id"],
        r["ts_from"],
        r["ts_to"],
        CorrectionAction(r["action"]),
        r["value"],
        r["reason"],
        r["created_by"],
        r["created_at"],
        r["reverted_at"],
        r["reverted_by"],
        r["revert_reason"],
    )


def check(
    ts_from: datetime, ts_to: datetime, action: CorrectionAction, value: float | None, reason: str
) -> None:
    """Refuse an impossible correction with the i18n key of the reason."""
    if ts_from.tzinfo is None or ts_to.tzinfo is None:
        raise CorrectionError("correction.error.naive_time", "ts_from")
    if ts_to < ts_from:
        raise CorrectionError("correction.error.range", "ts_to")
    if not reason.strip():
        raise CorrectionError("correction.error.reason_required", "reason")
    if action is CorrectionAction.REPLACE and (
        value is None or not math.isfinite(value) or value < 0
    ):
        raise CorrectionError("correction.error.value", "value")
    if action is CorrectionAction.INVALIDATE and value is not None:
        raise CorrectionError("correction.error.value_not_allowed", "value")


async def sensor_facility(conn: AsyncConnection[Any], sensor_id: int) -> int | None:
    """The facility a sensor belongs to (through its gateway), for scope checks."""
    cur = await conn.execute(SENSOR_FACILITY, {"sensor": sensor_id})
    row = await cur.fetchone()
    return int(row[0]) if row else None


async def tank_facility(conn: AsyncConnection[Any], tank_id: int) -> int | None:
    """The facility a tank belongs to, for scope checks."""
    cur = await conn.execute(TANK_FACILITY, {"tank": tank_id})
    row = await cur.fetchone()
    return int(row[0]) if row else None


async def create(
    conn: AsyncConnection[Any],
    *,
    sensor_id: int,
    ts_from: datetime,
    ts_to: datetime,
    action: CorrectionAction,
    value: float | None,
    reason: str,
    author: str,
    cfg: AccountingConfig,
    now: datetime | None = None,
) -> Correction:
    """Store a correction and drop the derived windows it touches (caller commits and audits)."""
    check(ts_from, ts_to, action, value, reason)
    check_against(ts_to, value, await sensor_range(conn, sensor_id), now or datetime.now(UTC))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _INSERT,
            {
                "sensor": sensor_id,
                "ts_from": ts_from,
                "ts_to": ts_to,
                "action": action.value,
                "value": value,
                "reason": reason.strip(),
                "author": author,
            },
        )
        row = await cur.fetchone()
    assert row is not None
    await invalidate(conn, sensor_id, ts_from, ts_to, cfg)
    logger.info("correction %s on sensor %s by %s (%s)", row["id"], sensor_id, author, action.value)
    return _row(row)


async def revert(
    conn: AsyncConnection[Any],
    correction_id: int,
    *,
    author: str,
    reason: str,
    cfg: AccountingConfig,
) -> Correction | None:
    """Revert an active correction (kept, marked reverted); None if missing or already reverted."""
    if not reason.strip():
        raise CorrectionError("correction.error.reason_required", "reason")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _REVERT, {"id": correction_id, "author": author, "reason": reason.strip()}
        )
        row = await cur.fetchone()
    if row is None:
        return None
    await invalidate(conn, row["sensor_id"], row["ts_from"], row["ts_to"], cfg)
    logger.info("correction %s reverted by %s", correction_id, author)
    return _row(row)


async def get(conn: AsyncConnection[Any], correction_id: int) -> Correction | None:
    """One correction by id."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_GET, {"id": correction_id})
        row = await cur.fetchone()
    return _row(row) if row else None


async def for_tank(conn: AsyncConnection[Any], tank_id: int) -> list[Correction]:
    """Every correction (active and reverted) of a tank's sensors, newest first."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_LIST, {"tank": tank_id})
        return [_row(r) for r in await cur.fetchall()]
