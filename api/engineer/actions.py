"""What engineers do from their pages: replay a gateway's or a tank's quarantined readings once
the registry knows their sensors (ingest.quarantine.replay limited to that gateway or to the
tank's sensors, audited in the same transaction), and the alarms shown on the gateway and tank
pages (acknowledged and resolved through the alerts service's own forms, POST
/alerts/{id}/ack and /alerts/{id}/resolve, which return to the page)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from api import i18n
from api.alerts.details import detail_lines
from api.alerts.notify import RULE_TITLES
from api.audit import audit_sync
from api.db import Query, fetch_all, fetch_one
from api.deps import DbDep, LocaleDep, PrincipalDep
from api.policy import Scope, policy
from api.scope import Principal, Role, scope_params
from api.web.templating import flash

from . import queries as q

router = APIRouter(include_in_schema=False)

ROLES = (Role.ENGINEER, Role.ADMIN)
ALARM_ROWS = 50


def alarm_rows(rows: list[dict[str, Any]], locale: str) -> list[dict[str, Any]]:
    """Alarms with their title and details in the reader's language (as on the alerts page)."""
    return [
        {
            **r,
            "title": i18n.gettext(locale, RULE_TITLES.get(str(r["rule"]), str(r["rule"]))),
            "detail_lines": detail_lines(str(r["rule"]), r["details"], locale),
        }
        for r in rows
    ]


async def gateway_alarms(
    conn: Any, facility: int, gateway: int, locale: str
) -> list[dict[str, Any]]:
    """Unresolved alarms of a gateway, its sensors and their tanks."""
    rows = await fetch_all(
        conn, q.ALARMS, facility=facility, gateway=gateway, tank=None, limit=ALARM_ROWS
    )
    return alarm_rows(rows, locale)


async def tank_alarms(conn: Any, facility: int, tank: int, locale: str) -> list[dict[str, Any]]:
    """Unresolved alarms of a tank and its sensors."""
    rows = await fetch_all(
        conn, q.ALARMS, facility=facility, gateway=None, tank=tank, limit=ALARM_ROWS
    )
    return alarm_rows(rows, locale)


@dataclass(frozen=True, slots=True)
class ReplayTarget:
    """What a replay is limited to (a gateway, or a tank's sensors), what counts as still held
    back for it, and where it is audited."""

    entity: str  # "gateway" or "tank"
    entity_id: int
    facility_id: int
    gateway: str | None = None  # the gateway's code
    sensors: tuple[int, ...] | None = None  # the tank's sensor ids
    held_sql: Query = q.STILL_UNKNOWN
    held_params: dict[str, Any] = field(default_factory=dict)


def _replay(url: str, me: Principal, target: ReplayTarget) -> dict[str, int]:
    """The replay and its audit record in one transaction (ingest's code is synchronous)."""
    # Imported here: a script run from bench/ has its own `ingest` module first on sys.path.
    from ingest.quarantine import replay

    with psycopg.connect(url) as conn, conn.transaction():
        before = conn.execute(target.held_sql, target.held_params).fetchone()
        result = asdict(replay(conn, gateway=target.gateway, sensors=target.sensors))
        after = conn.execute(target.held_sql, target.held_params).fetchone()
        # What stays besides the readings kept with a reason: their sensor is still unknown.
        result["still_unknown"] = (int(after[0]) if after else 0) - result["kept"]
        audit_sync(
            conn,
            me,
            "replay_quarantine",
            target.entity,
            target.entity_id,
            {"quarantined": int(before[0]) if before else 0},
            result,
            org_id=target.facility_id,
        )
    return result


async def _replayed(
    request: Request, conn: Any, me: Principal, target: ReplayTarget, *, back: str, locale: str
) -> Response:
    """Run the replay off the event loop and return to the page with what it did."""
    # The request's own connection holds no lock the replay needs; release it all the same.
    await conn.commit()
    url = str(request.app.state.settings.database_url)
    result = await asyncio.to_thread(_replay, url, me, target)
    response = RedirectResponse(back, 303)
    flash(response, replay_message(result, locale), "success" if result["released"] else "info")
    return response


@router.post(
    "/facilities/{facility_id}/gateways/{gateway_id}/quarantine/replay",
    dependencies=[policy(roles=ROLES, scope=Scope.FACILITY)],
)
async def replay_quarantine(
    *,
    request: Request,
    facility_id: int,
    gateway_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
) -> Response:
    """Store this gateway's quarantined readings whose sensor the registry knows now."""
    rows = await fetch_all(
        conn, q.GATEWAYS, **scope_params(me), gateway=gateway_id, facility=facility_id
    )
    if not rows:
        raise HTTPException(404, "not found")
    gw = rows[0]
    target = ReplayTarget(
        "gateway",
        int(gw["id"]),
        int(gw["facility_id"]),
        gateway=str(gw["code"]),
        held_params={"code": gw["code"]},
    )
    back = f"/facilities/{facility_id}/gateways/{gateway_id}"
    return await _replayed(request, conn, me, target, back=back, locale=locale)


@router.post(
    "/facilities/{facility_id}/tanks/{tank_id}/quarantine/replay",
    dependencies=[policy(roles=ROLES, scope=Scope.FACILITY)],
)
async def replay_tank_quarantine(
    *,
    request: Request,
    facility_id: int,
    tank_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
) -> Response:
    """Store the quarantined readings of this tank's sensors (now in the registry); readings of
    the gateway's other tanks stay for their own pages."""
    tank = await fetch_one(conn, q.TANK, tank=tank_id, facility=facility_id)
    if tank is None:
        raise HTTPException(404, "not found")
    sensors = tuple(int(r["id"]) for r in await fetch_all(conn, q.TANK_SENSOR_IDS, tank=tank_id))
    target = ReplayTarget(
        "tank",
        tank_id,
        facility_id,
        sensors=sensors,
        held_sql=q.QUARANTINE_COUNT_OF_TANK,
        held_params={"tank": tank_id, "limit": None},
    )
    back = f"/facilities/{facility_id}/tanks/{tank_id}/diagnostics"
    return await _replayed(request, conn, me, target, back=back, locale=locale)


def replay_message(result: dict[str, int], locale: str) -> str:
    """What a replay did, in the reader's language."""
    g = i18n.gettext
    n = {k: i18n.format_number(v, locale) for k, v in result.items()}
    parts = [
        g(locale, "Released {released} readings from quarantine ({inserted} new).").format(**n)
    ]
    if result["kept"]:
        parts.append(
            g(locale, "{kept} kept: the value cannot be stored (see the reason).").format(**n)
        )
    if result["still_unknown"]:
        parts.append(
            g(locale, "{still_unknown} still wait for the registry to know their sensor.").format(
                **n
            )
        )
    return " ".join(parts)
