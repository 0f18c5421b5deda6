"""Alert lifecycle: open → acknowledged → resolved, deduplicated, flapping-suppressed, escalated.

`apply()` takes the conditions that hold at `now` (from api.alerts.rules) and makes the
transitions; every transition is an `alert_events` row, and the events that people must hear
about are queued in `alert_notifications` once per (event, channel, target). The clock is a
parameter, so tests drive time explicitly.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from api.alerts.config import AlertSettings
from api.alerts.rules import Condition, Severity

logger = logging.getLogger(__name__)

TZ = ZoneInfo("Asia/Ho_Chi_Minh")

# Who hears an alert at each escalation level: 0 the facility (and its engineers), 1 + its SYT,
# 2 + the Ministry. An escalation notifies only the audience it adds.
_AUDIENCE = """
SELECT u.id, u.role, s.channel, s.target, s.min_severity, s.quiet_start, s.quiet_end
FROM users u
JOIN alert_subscriptions s ON s.user_id = u.id AND s.enabled
-- Facility staff have no webhooks (routes.WEBHOOK_ROLES); one stored before that rule is ignored.
WHERE u.is_active AND (s.channel <> 'webhook' OR u.role <> 'facility') AND (
      (%(level_from)s <= 0 AND 0 <= %(level_to)s AND (
          (u.role = 'facility' AND u.org_id = %(facility)s)
          OR (u.role = 'engineer' AND (u.national OR EXISTS (
              SELECT 1 FROM user_facilities uf
              WHERE uf.user_id = u.id AND uf.facility_id = %(facility)s)))))
   OR (%(level_from)s <= 1 AND 1 <= %(level_to)s AND u.role = 'syt' AND u.org_id = (
          SELECT parent_id FROM organisations WHERE id = %(facility)s))
   OR (%(level_from)s <= 2 AND 2 <= %(level_to)s AND u.role = 'byt')
)
"""


@dataclass
class Outcome:
    """What one evaluation changed (for logs and tests)."""

    opened: int = 0
    resolved: int = 0
    escalated: int = 0
    flapped: int = 0
    queued: int = 0


async def _event(
    conn: AsyncConnection[Any],
    alert: dict[str, Any],
    kind: str,
    *,
    now: datetime,
    level: int,
    actor: int | None = None,
    note: str | None = None,
) -> int:
    cur = await conn.execute(
        "INSERT INTO alert_events (alert_id, at, kind, level, actor_id, note) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (alert["id"], now, kind, level, actor, note),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def _deliver_at(
    now: datetime, severity: str, quiet_start: int | None, quiet_end: int | None
) -> datetime:
    """When to send: now, or the end of the subscriber's quiet hours (never for critical)."""
    if severity == Severity.CRITICAL or quiet_start is None or quiet_end is None:
        return now
    if quiet_start == quiet_end:
        return now
    local = now.astimezone(TZ)
    h = local.hour
    inside = (
        (quiet_start <= h < quiet_end)
        if quiet_start < quiet_end
        else (h >= quiet_start or h < quiet_end)
    )
    if not inside:
        return now
    end = local.replace(hour=quiet_end, minute=0, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end


async def _queue(
    conn: AsyncConnection[Any],
    alert: dict[str, Any],
    event_id: int,
    *,
    now: datetime,
    levels: tuple[int, int],
) -> int:
    cur = await conn.execute(
        _AUDIENCE,
        {"facility": alert["facility_id"], "level_from": levels[0], "level_to": levels[1]},
    )
    queued = 0
    for _uid, _role, channel, target, min_sev, q_start, q_end in await cur.fetchall():
        if min_sev == Severity.CRITICAL and alert["severity"] != Severity.CRITICAL:
            continue
        at = _deliver_at(now, alert["severity"], q_start, q_end)
        res = await conn.execute(
            "INSERT INTO alert_notifications (event_id, channel, target, next_attempt_at) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (event_id, channel, target) DO NOTHING",
            (event_id, channel, target, at),
        )
        queued += res.rowcount
    return queued


def _details_json(c: Condition) -> str:
    """The condition's details as JSON; a non-finite number (which jsonb refuses, and which
    once failed every evaluation round) becomes null, logged."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            logger.warning(
                "alert %s/%s: non-finite detail %r stored as null", c.rule, c.subject_id, value
            )
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(c.details), default=str, allow_nan=False)


def _escalate_after(cfg: AlertSettings, severity: str) -> timedelta:
    minutes = (
        cfg.alert_escalate_critical_minutes
        if severity == Severity.CRITICAL
        else cfg.alert_escalate_warning_minutes
    )
    return timedelta(minutes=minutes)


async def apply(
    conn: AsyncConnection[Any],
    conditions: Sequence[Condition],
    now: datetime,
    cfg: AlertSettings,
) -> Outcome:
    """Turn the conditions holding at `now` into alert transitions, in one transaction."""
    out = Outcome()
    async with conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("SELECT * FROM alerts WHERE state <> 'resolved' FOR UPDATE")
        open_alerts = {
            (a["rule"], a["subject_kind"], a["subject_id"]): a for a in await cur.fetchall()
        }
        holding: set[tuple[str, str, int]] = set()
        # The alerts still holding are updated together after the loop (one pipelined batch):
        # a whole country's round holds thousands (every facility without its report), and one
        # statement each took 2 s of the round (bench/alert_round.py, run_once − evaluate).
        still: list[tuple[datetime, str, str, int, int]] = []
        for c in conditions:
            if c.key in holding:
                continue
            holding.add(c.key)
            alert = open_alerts.get(c.key)
            if alert is None:
                await cur.execute(
                    "INSERT INTO alerts (rule, subject_kind, subject_id, facility_id, severity, "
                    "opened_at, last_true_at, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                    "RETURNING *",
                    (
                        c.rule.value,
                        c.subject_kind,
                        c.subject_id,
                        c.facility_id,
                        c.severity.value,
                        now,
                        now,
                        _details_json(c),
                    ),
                )
                alert = await cur.fetchone()
                assert alert is not None
                ev = await _event(conn, alert, "opened", now=now, level=0)
                out.queued += await _queue(conn, alert, ev, now=now, levels=(0, 0))
                out.opened += 1
                continue
            flapped = alert["cleared_since"] is not None
            severity = (
                Severity.CRITICAL.value
                if Severity.CRITICAL in (c.severity, alert["severity"])
                else c.severity.value
            )
            still.append((now, _details_json(c), severity, int(flapped), alert["id"]))
            alert["severity"] = severity
            alert["cleared_since"] = None
            out.flapped += int(flapped)
        if still:
            await cur.executemany(
                "UPDATE alerts SET last_true_at = %s, details = %s, severity = %s, "
                "cleared_since = NULL, flaps = flaps + %s WHERE id = %s",
                still,
            )
        clear_after = timedelta(minutes=cfg.alert_clear_minutes)
        for key, alert in open_alerts.items():
            if key in holding:
                continue
            if alert["cleared_since"] is None:
                await conn.execute(
                    "UPDATE alerts SET cleared_since = %s WHERE id = %s", (now, alert["id"])
                )
                alert["cleared_since"] = now
            if now - alert["cleared_since"] >= clear_after:
                await conn.execute(
                    "UPDATE alerts SET state = 'resolved', resolved_at = %s, "
                    "resolution_note = 'condition cleared' WHERE id = %s",
                    (now, alert["id"]),
                )
                ev = await _event(
                    conn, alert, "resolved", now=now, level=alert["level"], note="condition cleared"
                )
                out.queued += await _queue(conn, alert, ev, now=now, levels=(0, alert["level"]))
                out.resolved += 1
        for key, alert in open_alerts.items():
            if key not in holding or alert["state"] != "open" or alert["level"] >= 2:
                continue
            due = alert["opened_at"] + _escalate_after(cfg, alert["severity"]) * (
                alert["level"] + 1
            )
            if now >= due:
                level = alert["level"] + 1
                await conn.execute(
                    "UPDATE alerts SET level = %s WHERE id = %s", (level, alert["id"])
                )
                ev = await _event(conn, alert, "escalated", now=now, level=level)
                out.queued += await _queue(conn, alert, ev, now=now, levels=(level, level))
                out.escalated += 1
    if out.opened or out.resolved or out.escalated:
        logger.info(
            "alerts: %d opened, %d resolved, %d escalated, %d notifications queued",
            out.opened,
            out.resolved,
            out.escalated,
            out.queued,
        )
    return out


class AlertStateError(ValueError):
    """The transition is not allowed from the alert's current state."""


async def acknowledge(
    conn: AsyncConnection[Any], alert_id: int, user_id: int, now: datetime
) -> None:
    """Mark an open alert as seen by `user_id` (stops its escalation)."""
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE alerts SET state = 'acknowledged', acknowledged_by = %s, acknowledged_at = %s "
            "WHERE id = %s AND state = 'open' RETURNING id, level",
            (user_id, now, alert_id),
        )
        row = await cur.fetchone()
        if row is None:
            raise AlertStateError("only an open alert can be acknowledged")
        await _event(
            conn, {"id": alert_id}, "acknowledged", now=now, level=int(row[1]), actor=user_id
        )


async def resolve(
    conn: AsyncConnection[Any], alert_id: int, user_id: int, note: str, now: datetime
) -> None:
    """Resolve by hand, with a note (the condition may still hold: a person decided)."""
    if not note.strip():
        raise AlertStateError("resolving an alert by hand needs a note")
    async with conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "UPDATE alerts SET state = 'resolved', resolved_at = %s, resolved_by = %s, "
            "resolution_note = %s WHERE id = %s AND state <> 'resolved' RETURNING *",
            (now, user_id, note.strip(), alert_id),
        )
        alert = await cur.fetchone()
        if alert is None:
            raise AlertStateError("the alert is already resolved")
        ev = await _event(
            conn, alert, "resolved", now=now, level=alert["level"], actor=user_id, note=note.strip()
        )
        await _queue(conn, alert, ev, now=now, levels=(0, alert["level"]))
