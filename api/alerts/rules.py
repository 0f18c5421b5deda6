"""Alert rules: each looks at the live tables and returns the conditions that hold now.

A rule never writes; the engine (api.alerts.engine) turns conditions into alert transitions.
Thresholds are settings (api.alerts.config.AlertSettings, and the platform's `needs_more_days`).

The `supply` rule is the round's cost at national scale: it reads every monitored tank's
accounting windows of D−6..D+1 (D the last closed report day) once for both days
(`facility_telemetry_days`), recomputing — set-based, api.accounting.telemetry — those the API's
windows-ahead job has not kept fresh (an open window older than the job's interval plus
`open_window_fresh_seconds`: api.accounting.ahead `kept_fresh`), and storing them (a cache,
not an outcome of the rule).
bench/alert_round.py times each rule on a generated national country.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from psycopg import AsyncConnection

from api.accounting.config import AccountingConfig
from api.alerts.config import AlertSettings
from oxy.calibration import CalibrationError, CalibrationTable
from oxy.contract import QUALITY_CODE, VALUE_LIMIT, Quality

logger = logging.getLogger(__name__)
_GOOD = QUALITY_CODE[Quality.GOOD]


class Rule(StrEnum):
    """The conditions the platform watches (issue: alerts and notifications)."""

    DAYS_OF_SUPPLY = "days_of_supply_low"
    CONTENTS_LOW = "contents_below_minimum"
    HEAD_PRESSURE = "head_pressure_out_of_range"
    ABNORMAL_CONSUMPTION = "abnormal_consumption"
    SENSOR_STALE = "sensor_stale"
    SENSOR_BAD = "sensor_bad_quality"
    GATEWAY_OFFLINE = "gateway_offline"
    REPORT_MISSING = "report_missing"
    DELIVERY_OVERDUE = "delivery_overdue"


class Severity(StrEnum):
    """Critical alerts ignore quiet hours and escalate fast."""

    CRITICAL = "critical"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Condition:
    """One rule holding for one subject now."""

    rule: Rule
    subject_kind: str
    subject_id: int
    facility_id: int
    severity: Severity
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int]:
        """The deduplication key: one open alert per condition and subject."""
        return (self.rule.value, self.subject_kind, self.subject_id)


_LEVEL_SENSORS = """
SELECT t.id, t.facility_id, t.min_usable_kg, sl.ts, sl.value, sl.quality, cal.id
FROM sensors s
JOIN tanks t ON t.id = s.tank_id
JOIN gateways g ON g.id = s.gateway_id AND g.revoked_at IS NULL
JOIN sensor_latest sl ON sl.sensor_id = s.id
JOIN LATERAL (
    SELECT c.id FROM tank_calibrations c
    WHERE c.tank_id = t.id AND c.valid_from <= sl.ts
    ORDER BY c.valid_from DESC LIMIT 1
) cal ON true
WHERE s.quantity = 'dp'
"""

_CAL_POINTS = """
SELECT calibration_id, dp_inh2o, contents_kg FROM calibration_points
WHERE calibration_id = ANY(%(ids)s::bigint[])
"""

_PRESSURE_SENSORS = """
SELECT s.id, t.facility_id, t.id, t.max_pressure_bar, sl.value
FROM sensors s
JOIN tanks t ON t.id = s.tank_id
JOIN gateways g ON g.id = s.gateway_id AND g.revoked_at IS NULL
JOIN sensor_latest sl ON sl.sensor_id = s.id
WHERE s.quantity = 'head_pressure' AND sl.quality = quality_code('good')
"""

_SENSOR_HEALTH = """
SELECT s.id, g.facility_id, s.code, g.code, sl.ts, sl.quality
FROM sensors s
JOIN gateways g ON g.id = s.gateway_id AND g.revoked_at IS NULL
JOIN sensor_latest sl ON sl.sensor_id = s.id
"""

_GATEWAYS = """
SELECT g.id, g.facility_id, g.code, gs.online, gs.last_seen
FROM gateways g JOIN gateway_status gs ON gs.gateway_id = g.id
WHERE g.revoked_at IS NULL
"""

_MISSING_REPORTS = """
SELECT f.org_id
FROM facilities f
WHERE f.active_from <= %(day)s AND (f.active_to IS NULL OR f.active_to >= %(day)s)
  AND NOT EXISTS (
      SELECT 1 FROM facility_reports r
      WHERE r.facility_id = f.org_id AND r.report_day = %(day)s AND r.submitted_at IS NOT NULL
  )
"""

_OVERDUE_DELIVERIES = """
SELECT d.id, d.facility_id, d.source_id, d.state, d.amount_kg,
       coalesce(r.needed_by, d.expected_to) AS due
FROM deliveries d
LEFT JOIN assignments a ON a.id = d.assignment_id
LEFT JOIN support_requests r ON r.id = a.request_id
WHERE d.state IN ('dispatched', 'in_transit')
  AND coalesce(r.needed_by, d.expected_to) < %(now)s
"""

_MONITORED_FACILITIES = """
SELECT DISTINCT t.facility_id FROM tanks t JOIN sensors s ON s.tank_id = t.id
WHERE s.quantity = 'dp'
"""


def _usable(value: Any, what: str, subject: object) -> float | None:
    """A stored value as a finite float, or None (logged) for one that is not: a NaN, an
    infinity or an absurd number that reached storage before the contract refused it must not
    stop the evaluation of every other tank (issue 14)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if math.isfinite(number) and abs(number) <= VALUE_LIMIT:
        return number
    logger.warning("alerts: %s of %s is %r, not a usable number; row skipped", what, subject, value)
    return None


async def tank_levels(
    conn: AsyncConnection[Any], now: datetime, cfg: AlertSettings
) -> list[Condition]:
    """Contents under the tank's minimum usable level (from the latest good DP reading)."""
    rows = await (await conn.execute(_LEVEL_SENSORS)).fetchall()
    cal_ids = sorted({int(r[6]) for r in rows})
    points: dict[int, list[tuple[float, float]]] = {}
    for cid, dp, kg in await (await conn.execute(_CAL_POINTS, {"ids": cal_ids})).fetchall():
        points.setdefault(int(cid), []).append((float(dp), float(kg)))
    out = []
    for tank, facility, min_kg, ts, raw, quality, cid in rows:
        value = _usable(raw, "the latest DP reading", f"tank {tank}")
        if quality != _GOOD or value is None:
            continue
        try:
            table = CalibrationTable.from_points(points.get(int(cid), []))
        except CalibrationError:
            logger.warning("tank %s has an unusable calibration table %s", tank, cid)
            continue
        kg = table.contents_kg(value)
        if not math.isfinite(kg):
            logger.warning(
                "alerts: tank %s contents from DP %r is %r; row skipped", tank, value, kg
            )
            continue
        if kg < float(min_kg):
            out.append(
                Condition(
                    Rule.CONTENTS_LOW,
                    "tank",
                    int(tank),
                    int(facility),
                    Severity.CRITICAL,
                    {
                        "contents_kg": round(kg, 1),
                        "min_usable_kg": float(min_kg),
                        "at": ts.isoformat(),
                    },
                )
            )
    return out


async def head_pressure(
    conn: AsyncConnection[Any], now: datetime, cfg: AlertSettings
) -> list[Condition]:
    """Head pressure above the tank's maximum or below the supply floor."""
    out = []
    for sensor, facility, tank, max_bar, raw in await (
        await conn.execute(_PRESSURE_SENSORS)
    ).fetchall():
        value = _usable(raw, "the latest head pressure", f"sensor {sensor}")
        if value is None:
            continue
        high = max_bar is not None and value > float(max_bar)
        low = value < cfg.alert_head_pressure_low_bar
        if high or low:
            severity = (
                Severity.CRITICAL if high and value > 1.1 * float(max_bar) else Severity.WARNING
            )
            out.append(
                Condition(
                    Rule.HEAD_PRESSURE,
                    "tank",
                    int(tank),
                    int(facility),
                    severity,
                    {
                        "pressure_bar": round(float(value), 2),
                        "sensor_id": int(sensor),
                        "max_bar": max_bar,
                        "low_bar": cfg.alert_head_pressure_low_bar,
                    },
                )
            )
    return out


async def sensors(conn: AsyncConnection[Any], now: datetime, cfg: AlertSettings) -> list[Condition]:
    """Sensors whose latest reading is old (stale) or not of good quality."""
    stale_before = now - timedelta(minutes=cfg.alert_sensor_stale_minutes)
    out = []
    for sensor, facility, code, gw, ts, quality in await (
        await conn.execute(_SENSOR_HEALTH)
    ).fetchall():
        detail = {"sensor": code, "gateway": gw, "last_reading": ts.isoformat()}
        if ts < stale_before:
            out.append(
                Condition(
                    Rule.SENSOR_STALE,
                    "sensor",
                    int(sensor),
                    int(facility),
                    Severity.WARNING,
                    detail,
                )
            )
        elif quality != _GOOD:
            out.append(
                Condition(
                    Rule.SENSOR_BAD,
                    "sensor",
                    int(sensor),
                    int(facility),
                    Severity.WARNING,
                    {**detail, "quality": int(quality)},
                )
            )
    return out


async def gateways(
    conn: AsyncConnection[Any], now: datetime, cfg: AlertSettings
) -> list[Condition]:
    """Gateways that sent their Will (offline) or have been silent too long."""
    silent_before = now - timedelta(minutes=cfg.alert_gateway_silent_minutes)
    out = []
    for gw, facility, code, online, last_seen in await (await conn.execute(_GATEWAYS)).fetchall():
        if online is False or last_seen < silent_before:
            out.append(
                Condition(
                    Rule.GATEWAY_OFFLINE,
                    "gateway",
                    int(gw),
                    int(facility),
                    Severity.WARNING,
                    {"gateway": code, "last_seen": last_seen.isoformat(), "will": online is False},
                )
            )
    return out


async def missing_reports(
    conn: AsyncConnection[Any], now: datetime, acc: AccountingConfig
) -> list[Condition]:
    """Facilities without their 16:00 report once the deadline of the latest due day passed."""
    local = now.astimezone(acc.tz)
    day = local.date() if local.hour >= acc.deadline_hour else local.date() - timedelta(days=1)
    rows = await (await conn.execute(_MISSING_REPORTS, {"day": day})).fetchall()
    return [
        Condition(
            Rule.REPORT_MISSING,
            "facility",
            int(fid),
            int(fid),
            Severity.WARNING,
            {"day": day.isoformat()},
        )
        for (fid,) in rows
    ]


async def overdue_deliveries(
    conn: AsyncConnection[Any], now: datetime, cfg: AlertSettings
) -> list[Condition]:
    """Deliveries still on the road after the time the request needed them by."""
    rows = await (await conn.execute(_OVERDUE_DELIVERIES, {"now": now})).fetchall()
    return [
        Condition(
            Rule.DELIVERY_OVERDUE,
            "delivery",
            int(did),
            int(fid),
            Severity.WARNING,
            {"source_id": int(src), "state": state, "amount_kg": float(kg), "due": due.isoformat()},
        )
        for did, fid, src, state, kg, due in rows
    ]


async def supply(
    conn: AsyncConnection[Any], now: datetime, acc: AccountingConfig, cfg: AlertSettings
) -> list[Condition]:
    """Days of supply under the threshold, and consumption abnormal against own history."""
    from api.accounting.ahead import kept_fresh
    from api.accounting.stock import days_of_supply, is_leak
    from api.accounting.telemetry import facility_telemetry_days
    from api.accounting.windows import last_complete_day

    fids = [int(r[0]) for r in await (await conn.execute(_MONITORED_FACILITIES)).fetchall()]
    if not fids:
        return []
    done = last_complete_day(now, acc)
    # Both days at once: the tanks' windows D−6..D+1 are read (and the stale ones recomputed)
    # once, not twice over the six days the two share. An open window is read as fresh while
    # the API's windows-ahead job keeps it (`kept_fresh`): the round does not redo its work,
    # nor, for as long, the job's next round after a cut-off or midnight (`closing_grace`).
    kept = kept_fresh(acc)
    both = await facility_telemetry_days(
        conn, fids, [done, done + timedelta(days=1)], acc, now=now, fresh=kept, closing_grace=kept
    )
    current, closed = both[done + timedelta(days=1)], both[done]
    out = []
    for fid in fids:
        t = current[fid]
        dos = days_of_supply(t.usable_kg, t.avg_daily_kg)
        if dos is not None and dos < acc.needs_more_days:
            severity = Severity.CRITICAL if dos < cfg.alert_critical_days else Severity.WARNING
            out.append(
                Condition(
                    Rule.DAYS_OF_SUPPLY,
                    "facility",
                    fid,
                    fid,
                    severity,
                    {
                        "days": round(dos, 2),
                        "usable_kg": t.usable_kg,
                        "avg_daily_kg": t.avg_daily_kg,
                        "threshold": acc.needs_more_days,
                    },
                )
            )
        c = closed[fid]
        if c.consumption_kg is not None and is_leak(c.consumption_kg, c.history_kg, acc):
            out.append(
                Condition(
                    Rule.ABNORMAL_CONSUMPTION,
                    "facility",
                    fid,
                    fid,
                    Severity.WARNING,
                    {
                        "day": done.isoformat(),
                        "consumption_kg": c.consumption_kg,
                        "history_kg": list(c.history_kg),
                    },
                )
            )
    return out


async def evaluate_rules(
    conn: AsyncConnection[Any],
    now: datetime,
    cfg: AlertSettings,
    acc: AccountingConfig,
    only: Sequence[Rule] | None = None,
) -> list[Condition]:
    """Every condition that holds at `now` (all rules, or `only` those named)."""
    wanted = set(only) if only else set(Rule)
    out: list[Condition] = []
    if Rule.CONTENTS_LOW in wanted:
        out += await tank_levels(conn, now, cfg)
    if Rule.HEAD_PRESSURE in wanted:
        out += await head_pressure(conn, now, cfg)
    if wanted & {Rule.SENSOR_STALE, Rule.SENSOR_BAD}:
        out += [c for c in await sensors(conn, now, cfg) if c.rule in wanted]
    if Rule.GATEWAY_OFFLINE in wanted:
        out += await gateways(conn, now, cfg)
    if Rule.REPORT_MISSING in wanted:
        out += await missing_reports(conn, now, acc)
    if Rule.DELIVERY_OVERDUE in wanted:
        out += await overdue_deliveries(conn, now, cfg)
    if wanted & {Rule.DAYS_OF_SUPPLY, Rule.ABNORMAL_CONSUMPTION}:
        out += [c for c in await supply(conn, now, acc, cfg) if c.rule in wanted]
    return out
