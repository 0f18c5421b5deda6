"""BYT pages: the national dashboard (coordination map, per-province table, supply vs demand vs
production capacity) and approve / send back. Built on api.reports.national and api.reports.syt."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from api import i18n
from api.accounting.stock import DOS_HORIZON_DAYS, beyond_horizon
from api.accounting.windows import default_syt_day, local_today
from api.audit import audit
from api.db import fetch_all
from api.deps import CfgDep, DbDep, LocaleDep, NowDep, PrincipalDep, Role, Scope, policy
from api.headers import CSP
from api.reports import national, syt
from api.reports.errors import Conflict, ValidationFailed
from api.reports.figures import FacilityFigures
from api.reports.messages import text
from api.web import queries as q
from api.web.templating import flash, render

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

VIEW_ROLES = (Role.BYT, Role.ADMIN)
DECIDE_ROLES = (Role.BYT,)
CHART_DAYS = 7
# The optional online base layer of the map (static/src/map.js); off until the user enables it.
ONLINE_TILES_HOST = "https://tile.openstreetmap.org"


def map_data(
    facilities: list[dict[str, Any]],
    live: dict[int, FacilityFigures],
    suppliers: list[dict[str, Any]],
    locale: str,
) -> dict[str, Any]:
    """Points for the coordination map: facilities by status, provinces, supplier sites."""
    points = []
    by_province: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in facilities:
        if f["latitude"] is None or f["longitude"] is None:
            continue
        fig = live.get(int(f["id"]))
        days = fig.days_of_supply if fig else None
        p = {
            "id": f["id"],
            "name": f["name"],
            "province": f["province_name"],
            "parent": f["parent_name"],
            "lat": f["latitude"],
            "lon": f["longitude"],
            "status": fig.status.value if fig else "unknown",
            "days": (
                "> " + i18n.format_number(DOS_HORIZON_DAYS, locale)
                if beyond_horizon(days)
                else i18n.format_number(days, locale, 1)
            ),
            "stock": i18n.format_number(fig.stock_liquid_kg if fig else None, locale),
            "need": i18n.format_number(fig.avg_need_nm3 if fig else None, locale),
            "reported": bool(fig and fig.reported),
            # Some monitored tanks silent: the stock stands for the reporting ones only.
            "tanks": (
                i18n.gettext(locale, "%(n)s/%(total)s tanks reporting")
                % {"n": fig.observed_tanks, "total": fig.monitored_tanks}
                if fig and "stock_liquid" in fig.incomplete
                else ""
            ),
            "url": f"/facilities/{f['id']}/tanks",
        }
        points.append(p)
        by_province[f["province_name"] or ""].append(p)
    provinces = []
    for name, members in by_province.items():
        short = sum(1 for m in members if m["status"] == "needs_more")
        known = sum(1 for m in members if m["status"] != "unknown")
        reporting = sum(1 for m in members if m["reported"])
        counts = {"total": len(members)}
        provinces.append(
            {
                "name": name,
                "lat": sum(m["lat"] for m in members) / len(members),
                "lon": sum(m["lon"] for m in members) / len(members),
                "facilities": len(members),
                # What the circle's colour stands for, as the BYT table's "n/m".
                "reporting": reporting,
                "known": known,
                "reporting_text": i18n.gettext(locale, "%(n)s/%(total)s facilities reporting")
                % {"n": reporting, **counts},
                "known_text": i18n.gettext(locale, "%(n)s/%(total)s with days of supply")
                % {"n": known, **counts},
                "needs_more": short,
                "status": "needs_more" if short else ("enough" if known else "unknown"),
            }
        )
    sites = [
        {
            "name": s["name"],
            "kind": s["supplier_kind"],
            "lat": s["latitude"],
            "lon": s["longitude"],
            "normal": i18n.format_number(s["capacity_normal_tpd"], locale, 1),
            "full": i18n.format_number(s["capacity_full_tpd"], locale, 1),
            "contact": s["contact"],
            "phone": s["phone"],
        }
        for s in suppliers
        if s["latitude"] is not None and s["longitude"] is not None
    ]
    return {"facilities": points, "provinces": provinces, "suppliers": sites}


@router.get("/byt", dependencies=[policy(roles=VIEW_ROLES, scope=Scope.NATIONAL)])
async def dashboard(
    *,
    request: Request,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
    day: str | None = None,
) -> Response:
    """The national dashboard: map (live today), provinces for day D, supply vs demand."""
    today = local_today(now, cfg)
    try:
        d = min(date.fromisoformat(day), today) if day else default_syt_day(now, cfg)
    except ValueError:
        d = default_syt_day(now, cfg)
    # D's view makes the table; the map's points (today's view with every facility) and the
    # 7-day chart come apart (GET /map/data, GET /byt/supply-chart), fetched by the page after
    # its first paint, so that the page waits for neither.
    view = await national.national_view(conn, d, visible=me.facility_ids, cfg=cfg, now=now)
    waiting = await syt.sent_list(conn, parents=None, first=d - timedelta(days=30))
    response = render(
        request,
        "reports/byt_dashboard.html",
        {
            "day": d,
            "today": today,
            "view": view,
            "nation": view.nation,
            "supply": view.supply,
            "reports": waiting,
            "reports_by_org": {(r.org_id, r.report_day.isoformat()): r for r in waiting},
        },
        locale=locale,
        principal=me,
    )
    # The optional online layer (off by default) needs its tile host; nothing else changes.
    if ONLINE_TILES_HOST and "img-src 'self' data:" in CSP:
        response.headers["content-security-policy"] = CSP.replace(
            "img-src 'self' data:", f"img-src 'self' data: {ONLINE_TILES_HOST}"
        )
    return response


MAP_ROLES = (Role.BYT, Role.ADMIN, Role.SYT)


@router.get("/map/data", dependencies=[policy(roles=MAP_ROLES, scope=Scope.NATIONAL)])
async def map_points(
    *, conn: DbDep, me: PrincipalDep, locale: LocaleDep, cfg: CfgDep, now: NowDep
) -> dict[str, Any]:
    """The map's points (facilities by today's status, provinces, supplier sites) in the
    caller's scope: the whole country for BYT, its own facilities for a department."""
    today = local_today(now, cfg)
    live = await national.national_view(
        conn, today, visible=me.facility_ids, cfg=cfg, now=now, include_facilities=True
    )
    figures = {f.facility_id: f for row in live.provinces for f in row.facilities or []}
    national_scope = me.facility_ids is None
    facilities = await fetch_all(
        conn,
        q.FACILITIES_IN_SCOPE,
        scope_national=national_scope,
        scope_facilities=sorted(me.facility_ids or ()),
        parent=None,
    )
    suppliers = await fetch_all(conn, q.SUPPLIERS)
    return map_data(facilities, figures, suppliers, locale)


@router.get("/byt/supply-chart", dependencies=[policy(roles=VIEW_ROLES, scope=Scope.NATIONAL)])
async def supply_chart_data(
    *, conn: DbDep, me: PrincipalDep, locale: LocaleDep, cfg: CfgDep, now: NowDep
) -> dict[str, Any]:
    """The dashboard's chart (demand vs production vs capacity over the last 7 days), as JSON."""
    today = local_today(now, cfg)
    # The supply figures of the days only, read set-based for the whole span (national.chart_days),
    # not seven full national views.
    days_ = await national.chart_days(
        conn,
        today - timedelta(days=CHART_DAYS - 1),
        today,
        visible=me.facility_ids,
        cfg=cfg,
        now=now,
    )
    return supply_chart(days_, locale)


def supply_chart(days: dict[date, national.Supply], locale: str) -> dict[str, Any]:
    """Demand vs production vs capacity (t LOX per day) over the days of `days`."""
    labels: list[str] = []
    demand: list[float | None] = []
    produced: list[float | None] = []
    normal: list[float] = []
    full: list[float] = []
    for d, s in sorted(days.items()):
        labels.append(i18n.format_date(d, locale))
        # No facility with a need figure: a gap in the chart, not 0.
        dem = s.demand_t_per_day
        demand.append(None if dem is None else round(dem, 2))
        produced.append(round(s.production_t, 2) if s.supplier_reports else None)
        normal.append(round(s.capacity_normal_t_per_day, 1))
        full.append(round(s.capacity_full_t_per_day, 1))
    g = i18n.gettext
    return {
        "labels": labels,
        "unit": g(locale, "t LOX per day (logarithmic scale)"),
        "series": [
            {"label": g(locale, "Demand (facilities' daily need)"), "values": demand},
            {"label": g(locale, "Supply (production reported)"), "values": produced},
            {"label": g(locale, "Production capacity (normal)"), "values": normal, "dashed": True},
            {"label": g(locale, "Production capacity (full)"), "values": full, "dashed": True},
        ],
    }


async def _decide(
    *,
    request: Request,
    report_id: int,
    conn: Any,
    me: Any,
    locale: str,
    now: Any,
    approve: bool,
    cfg: Any,
) -> Response:
    form = await request.form()
    reason = str(form.get("reason") or "").strip() or None
    where = await syt.report_org(conn, report_id)
    if where is None:
        raise HTTPException(404, "not found")
    org_id, day = where
    response = RedirectResponse(
        f"/provinces/{org_id}/reports/{day.isoformat()}#history", status_code=303
    )
    if approve and form.get("confirm") != "1":
        # Approval locks the department's and its facilities' reports: asked for explicitly.
        flash(response, text("syt.error.confirm_approval", locale), "error")
        return response
    try:
        done = await syt.decide(
            conn,
            report_id,
            approve=approve,
            author=me.username,
            reason=reason,
            now=now,
            cfg=cfg,
            confirm_incomplete=form.get("confirm_incomplete") == "1",
        )
    except ValidationFailed as exc:
        flash(response, text(exc.errors[0].key, locale), "error")
        return response
    except Conflict as exc:
        flash(response, text(exc.key, locale), "error")
        return response
    await audit(conn, me, done.state, "syt_report", report_id, after=asdict(done), org_id=org_id)
    await conn.commit()
    msg = "Report approved." if approve else "Report sent back."
    flash(response, i18n.gettext(locale, msg), "success")
    return response


@router.post(
    "/byt/reports/{report_id}/approve",
    dependencies=[policy(roles=DECIDE_ROLES, scope=Scope.NATIONAL)],
)
async def approve(
    *,
    request: Request,
    report_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    now: NowDep,
    cfg: CfgDep,
) -> Response:
    """Approve a sent SYT report (locks it and its facility reports), after a confirmation."""
    return await _decide(
        request=request,
        report_id=report_id,
        conn=conn,
        me=me,
        locale=locale,
        now=now,
        approve=True,
        cfg=cfg,
    )


@router.post(
    "/byt/reports/{report_id}/send-back",
    dependencies=[policy(roles=DECIDE_ROLES, scope=Scope.NATIONAL)],
)
async def send_back(
    *,
    request: Request,
    report_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    now: NowDep,
    cfg: CfgDep,
) -> Response:
    """Send a report back to its department with a reason (reopens it)."""
    return await _decide(
        request=request,
        report_id=report_id,
        conn=conn,
        me=me,
        locale=locale,
        now=now,
        approve=False,
        cfg=cfg,
    )
