"""HTTP routes of the alerts: the list and badge count in scope, acknowledge, resolve with a note,
and the caller's own notification subscriptions.

Alerts are addressed by id, so the policy checks the role and every query filters by the
caller's facility scope (an alert outside it answers 404, like one that does not exist).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from api.alerts import engine
from api.alerts import pages as _pages  # noqa: F401  (mounts the HTML page and its menu entry)
from api.alerts.notify import RULE_TITLES
from api.alerts.queries import ALERT_IN_SCOPE, ALERT_LIST, WATCHERS
from api.alerts.webhook_guard import WebhookRefused, allowed_hosts, check_target
from api.audit import audit
from api.deps import AlertCfgDep, DbDep, LocaleDep, NowDep, PrincipalDep
from api.errors import ErrorOut, json_error
from api.i18n import gettext
from api.policy import Scope, policy
from api.scope import Role, scope_params

router = APIRouter(prefix="/api/alerts", tags=["alerts"])

# Webhooks reach outside systems: only roles that answer for a scope (not facility staff).
WEBHOOK_ROLES = frozenset({Role.ADMIN, Role.BYT, Role.SYT, Role.ENGINEER})

StateFilter = Literal["active", "open", "acknowledged", "resolved"]


class AlertOut(BaseModel):
    """An alert as listed: its rule (and title in the caller's language), subject and state."""

    id: int
    rule: str
    title: str
    subject_kind: Literal["facility", "tank", "sensor", "gateway", "delivery"]
    subject_id: int
    facility_id: int
    facility: str
    severity: Literal["critical", "warning"]
    state: Literal["open", "acknowledged", "resolved"]
    level: int = Field(description="0 facility, 1 + SYT, 2 + Ministry")
    opened_at: datetime
    last_true_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    resolution_note: str | None
    flaps: int
    details: dict[str, Any]


class AlertCount(BaseModel):
    """The badge: unresolved alerts in scope, and how many of them are critical."""

    active: int
    critical: int


class StateOut(BaseModel):
    """The alert's state after the action."""

    state: Literal["acknowledged", "resolved"]


class SubscriptionOut(BaseModel):
    """One of the caller's subscriptions."""

    id: int
    channel: Literal["email", "webhook"]
    target: str
    min_severity: Literal["critical", "warning"]
    quiet_start: int | None
    quiet_end: int | None
    enabled: bool


class Created(BaseModel):
    """The id of what was created."""

    id: int


def _visible(me: Any) -> dict[str, Any]:
    return scope_params(me)


@router.get(
    "",
    dependencies=[policy(roles=WATCHERS, scope=Scope.NATIONAL)],
    summary="Alerts in the caller's scope (active first)",
    response_model=list[AlertOut],
)
async def list_alerts(
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    state: Annotated[
        Literal["active", "open", "acknowledged", "resolved"] | None, Query()
    ] = "active",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Alerts with their rule title in the caller's language."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(ALERT_LIST, {**_visible(me), "state": state, "limit": limit})
    rows = await cur.fetchall()
    for r in rows:
        rule = str(r["rule"])
        r["title"] = gettext(locale, RULE_TITLES.get(rule, rule))
    return rows


@router.get(
    "/count",
    dependencies=[policy(roles=WATCHERS, scope=Scope.NATIONAL)],
    summary="Number of unresolved alerts in scope (the badge)",
    response_model=AlertCount,
)
async def count_alerts(conn: DbDep, me: PrincipalDep) -> dict[str, int]:
    """Open and critical counts for the UI badge."""
    cur = await conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE severity = 'critical') FROM alerts "
        "WHERE state <> 'resolved' AND "
        "(%(scope_national)s OR facility_id = ANY(%(scope_facilities)s::bigint[]))",
        _visible(me),
    )
    row = await cur.fetchone()
    assert row is not None
    return {"active": int(row[0]), "critical": int(row[1])}


async def _in_scope(conn: DbDep, me: Any, alert_id: int) -> None:
    cur = await conn.execute(ALERT_IN_SCOPE, {"id": alert_id, **_visible(me)})
    if await cur.fetchone() is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")


class ResolveIn(BaseModel):
    """A hand resolution: the note says what was done."""

    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, Field(min_length=1, max_length=2000)]


@router.post(
    "/{alert_id}/ack",
    dependencies=[policy(roles=WATCHERS, scope=Scope.NATIONAL)],
    summary="Acknowledge an open alert (stops its escalation)",
    response_model=StateOut,
    responses={409: json_error(ErrorOut, "The alert is not open")},
)
async def ack(alert_id: int, conn: DbDep, me: PrincipalDep, now: NowDep) -> dict[str, str]:
    """Acknowledge; 409 if it is not open."""
    await _in_scope(conn, me, alert_id)
    await engine.acknowledge(conn, alert_id, me.user_id, now)
    await audit(conn, me, "acknowledge", "alert", alert_id)
    await conn.commit()
    return {"state": "acknowledged"}


@router.post(
    "/{alert_id}/resolve",
    dependencies=[policy(roles=WATCHERS, scope=Scope.NATIONAL)],
    summary="Resolve an alert by hand, with a note",
    response_model=StateOut,
    responses={409: json_error(ErrorOut, "Already resolved")},
)
async def resolve(
    alert_id: int, body: ResolveIn, conn: DbDep, me: PrincipalDep, now: NowDep
) -> dict[str, str]:
    """Resolve; 409 if already resolved."""
    await _in_scope(conn, me, alert_id)
    await engine.resolve(conn, alert_id, me.user_id, body.note, now)
    await audit(conn, me, "resolve", "alert", alert_id, None, {"note": body.note})
    await conn.commit()
    return {"state": "resolved"}


class SubscriptionIn(BaseModel):
    """One channel the caller wants alerts on."""

    model_config = ConfigDict(extra="forbid")
    channel: Literal["email", "webhook"]
    target: Annotated[str, Field(min_length=3, max_length=2000)]
    min_severity: Literal["critical", "warning"] = "warning"
    quiet_start: Annotated[int | None, Field(ge=0, le=23)] = None
    quiet_end: Annotated[int | None, Field(ge=0, le=23)] = None

    def checked_target(self) -> str:
        """An e-mail address or an http(s) URL, as the channel needs (syntax only)."""
        if self.channel == "webhook":
            return str(HttpUrl(self.target))
        if "@" not in self.target or " " in self.target.strip():
            raise ValueError("target must be an e-mail address")
        return self.target.strip()


@router.get(
    "/subscriptions",
    dependencies=[policy(roles=WATCHERS, scope=Scope.SELF)],
    summary="The caller's alert subscriptions",
    response_model=list[SubscriptionOut],
)
async def my_subscriptions(conn: DbDep, me: PrincipalDep) -> list[dict[str, Any]]:
    """List the caller's own subscriptions."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, channel, target, min_severity, quiet_start, quiet_end, enabled "
        "FROM alert_subscriptions WHERE user_id = %s ORDER BY id",
        (me.user_id,),
    )
    return await cur.fetchall()


@router.post(
    "/subscriptions",
    dependencies=[policy(roles=WATCHERS, scope=Scope.SELF)],
    status_code=status.HTTP_201_CREATED,
    summary="Subscribe the caller to alerts in its scope on a channel",
    response_model=Created,
)
async def subscribe(
    body: SubscriptionIn, conn: DbDep, me: PrincipalDep, alerts: AlertCfgDep, locale: LocaleDep
) -> dict[str, Any]:
    """Create or update a subscription of the caller (one per channel and target).

    Webhooks only for roles that answer for a scope above one facility (not facility staff),
    and only to destinations `webhook_guard` accepts (checked again at every delivery).
    """
    if body.channel == "webhook" and me.role not in WEBHOOK_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "webhooks are not available to this role")
    try:
        target = body.checked_target()
        if body.channel == "webhook":
            await check_target(target, allowed_hosts(alerts.webhook_allowed_hosts))
    except ValueError as exc:
        message = gettext(locale, str(exc)) if isinstance(exc, WebhookRefused) else str(exc)
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            {"errors": [{"field": "target", "message": message}]},
        ) from None
    cur = await conn.execute(
        "INSERT INTO alert_subscriptions (user_id, channel, target, min_severity, quiet_start, "
        "quiet_end) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (user_id, channel, target) DO "
        "UPDATE SET min_severity = EXCLUDED.min_severity, quiet_start = EXCLUDED.quiet_start, "
        "quiet_end = EXCLUDED.quiet_end, enabled = true RETURNING id",
        (me.user_id, body.channel, target, body.min_severity, body.quiet_start, body.quiet_end),
    )
    row = await cur.fetchone()
    assert row is not None
    await audit(conn, me, "subscribe", "alert_subscription", row[0], None, body.model_dump())
    await conn.commit()
    return {"id": int(row[0])}


@router.delete(
    "/subscriptions/{subscription_id}",
    dependencies=[policy(roles=WATCHERS, scope=Scope.SELF)],
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove one of the caller's subscriptions",
)
async def unsubscribe(subscription_id: int, conn: DbDep, me: PrincipalDep) -> None:
    """Delete; 404 if it is not the caller's."""
    cur = await conn.execute(
        "DELETE FROM alert_subscriptions WHERE id = %s AND user_id = %s RETURNING id",
        (subscription_id, me.user_id),
    )
    if await cur.fetchone() is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    await audit(conn, me, "unsubscribe", "alert_subscription", subscription_id)
    await conn.commit()
