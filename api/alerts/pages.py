"""The alerts page (list, acknowledge, resolve with a note) and the menu entry; the header badge
is filled by /static/src/alerts-badge.js from GET /api/alerts/count."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from psycopg.rows import dict_row
from starlette.responses import Response

from api import i18n
from api.alerts import engine
from api.alerts.details import detail_lines
from api.alerts.notify import RULE_TITLES
from api.alerts.queries import ALERT_IN_SCOPE, ALERT_LIST, WATCHERS
from api.audit import audit
from api.deps import DbDep, LocaleDep, NowDep, PrincipalDep, Scope, policy
from api.scope import Principal, scope_params
from api.web.pages import safe_next
from api.web.templating import flash, render

router = APIRouter(include_in_schema=False)


async def _check(conn: DbDep, me: Principal, alert_id: int) -> None:
    cur = await conn.execute(ALERT_IN_SCOPE, {"id": alert_id, **scope_params(me)})
    if await cur.fetchone() is None:
        raise HTTPException(404, "not found")


@router.get("/alerts", dependencies=[policy(roles=WATCHERS, scope=Scope.NATIONAL)])
async def alerts_page(
    *, request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """Active alerts first, then the latest resolved ones, in the caller's scope."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(ALERT_LIST, {**scope_params(me), "state": None, "limit": 300})
    rows = await cur.fetchall()
    for r in rows:
        r["title"] = i18n.gettext(locale, RULE_TITLES.get(str(r["rule"]), str(r["rule"])))
        r["detail_lines"] = detail_lines(str(r["rule"]), r["details"], locale)
    return render(request, "alerts/alerts.html", {"rows": rows}, locale=locale, principal=me)


async def _back(request: Request) -> str:
    """Where the form came from (`next`: a local path, e.g. an engineer's gateway page), else
    the alerts page; never another site."""
    target = str((await request.form()).get("next", "") or "")
    return target if target and safe_next(target) == target else "/alerts"


@router.post("/alerts/{alert_id}/ack", dependencies=[policy(roles=WATCHERS, scope=Scope.NATIONAL)])
async def ack_form(
    *,
    request: Request,
    alert_id: int,
    conn: DbDep,
    me: PrincipalDep,
    now: NowDep,
    locale: LocaleDep,
) -> Response:
    """Acknowledge from the alerts page or from the page of the alarm's gateway or tank."""
    await _check(conn, me, alert_id)
    response = RedirectResponse(await _back(request), status_code=303)
    try:
        await engine.acknowledge(conn, alert_id, me.user_id, now)
    except engine.AlertStateError:
        flash(response, i18n.gettext(locale, "Only an open alert can be acknowledged."), "error")
        return response
    await audit(conn, me, "acknowledge", "alert", alert_id)
    await conn.commit()
    flash(response, i18n.gettext(locale, "Alert acknowledged."), "success")
    return response


@router.post(
    "/alerts/{alert_id}/resolve", dependencies=[policy(roles=WATCHERS, scope=Scope.NATIONAL)]
)
async def resolve_form(
    *,
    request: Request,
    alert_id: int,
    conn: DbDep,
    me: PrincipalDep,
    now: NowDep,
    locale: LocaleDep,
) -> Response:
    """Resolve by hand from the alerts page or from the page of the alarm's gateway or tank;
    the note is required."""
    await _check(conn, me, alert_id)
    note = str((await request.form()).get("note", "")).strip()
    response = RedirectResponse(await _back(request), status_code=303)
    if not note:
        flash(response, i18n.gettext(locale, "Say what was done: a note is required."), "error")
        return response
    try:
        await engine.resolve(conn, alert_id, me.user_id, note, now)
    except engine.AlertStateError:
        flash(response, i18n.gettext(locale, "The alert is already resolved."), "error")
        return response
    await audit(conn, me, "resolve", "alert", alert_id, None, {"note": note})
    await conn.commit()
    flash(response, i18n.gettext(locale, "Alert resolved."), "success")
    return response
