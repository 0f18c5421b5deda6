"""What engineers do from their pages: replay a gateway's quarantined readings once the registry
knows their sensors (ingest.quarantine.replay limited to that gateway, audited in the same
transaction), and the alarms shown on the gateway and tank pages (acknowledged through the
alerts service's own form, POST /alerts/{id}/ack, which returns to the page)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

import psycopg
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from api import i18n
from api.alerts.details import detail_lines
from api.alerts.notify import RULE_TITLES
from api.audit import audit_sync
from api.db import fetch_all
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


def _replay(url: str, me: Principal, gw: dict[str, Any]) -> dict[str, int]:
    """The replay and its audit record in one transaction (ingest's code is synchronous)."""
    # Imported here: a script run from bench/ has its own `ingest` module first on sys.path.
    from ingest.quarantine import replay

    with psycopg.connect(url) as conn, conn.transaction():
        before = conn.execute(q.STILL_UNKNOWN, {"code": gw["code"]}).fetchone()
        result = asdict(replay(conn, gateway=str(gw["code"])))
        after = conn.execute(q.STILL_UNKNOWN, {"code": gw["code"]}).fetchone()
        # What stays besides the readings kept with a reason: their sensor is still unknown.
        result["still_unknown"] = (int(after[0]) if after else 0) - result["kept"]
        audit_sync(
            conn,
            me,
            "replay_quarantine",
            "gateway",
            gw["id"],
            {"quarantined": int(before[0]) if before else 0},
            result,
            org_id=int(gw["facility_id"]),
        )
    return result


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
    # The request's own connection holds no lock the replay needs; release it all the same.
    await conn.commit()
    url = str(request.app.state.settings.database_url)
    result = await asyncio.to_thread(_replay, url, me, gw)
    response = RedirectResponse(f"/facilities/{facility_id}/gateways/{gateway_id}", 303)
    flash(response, replay_message(result, locale), "success" if result["released"] else "info")
    return response


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
