"""Reporting-rate routes: the JSON API, CSV/XLSX exports and the pages (BYT national per
province, one province per facility with the drill-down to those that have not reported).

Every route declares its policy; the data layer is given the caller's visible facilities as well,
so an SYT officer never counts another province's facilities."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import CfgDep, DbDep, LocaleDep, NowDep, PrincipalDep
from api.errors import FILE_RESPONSES
from api.policy import Scope, policy
from api.rates.public import ProvinceRatePublic, ReportingRatePublic
from api.reports import exports
from api.reports.exports import ExportKind
from api.scope import Principal, Role
from api.web.queries import department
from api.web.templating import render

from .rate import DEFAULT_DAYS, MAX_DAYS, default_period, not_reported, reporting_rate

api_router = APIRouter(prefix="/api", tags=["reporting rate"])
pages = APIRouter(include_in_schema=False)

NATIONAL_READERS = (Role.ADMIN, Role.BYT)
PROVINCE_READERS = (Role.ADMIN, Role.BYT, Role.SYT)
DaysQ = Annotated[int, Query(ge=1, le=MAX_DAYS, description="Days in the period (default 30)")]

PARENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("code", "Code"),
    ("name", "Department"),
    ("facilities", "Facilities"),
    ("expected", "Expected reports"),
    ("reported", "Reported"),
    ("on_time", "On time"),
    ("late", "Late"),
    ("missing", "Missing"),
    ("reporting_rate", "Reporting rate (per cent)"),
    ("on_time_rate", "On-time rate (per cent)"),
)
FACILITY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("code", "Code"),
    ("name", "Facility"),
    ("parent_name", "Department"),
    ("expected", "Expected reports"),
    ("reported", "Reported"),
    ("on_time", "On time"),
    ("late", "Late"),
    ("missing", "Missing"),
    ("reporting_rate", "Reporting rate (per cent)"),
    ("on_time_rate", "On-time rate (per cent)"),
    ("last_reported", "Last reported"),
    ("contact", "Contact"),
    ("phone", "Phone"),
    ("email", "Email"),
)


async def _national(conn: Any, me: Principal, cfg: Any, now: Any, days: int) -> dict[str, Any]:
    return await reporting_rate(conn, default_period(now, cfg, days), visible=me.facility_ids)


async def _province(
    conn: Any, me: Principal, org_id: int, *, cfg: Any, now: Any, days: int
) -> dict[str, Any]:
    await department(conn, org_id)
    return await reporting_rate(
        conn, default_period(now, cfg, days), visible=me.facility_ids, parents=[org_id]
    )


def _flat(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Export rows: the first (primary) contact in its own columns."""
    out = []
    for r in rows:
        c = r["contacts"][0] if r.get("contacts") else {}
        out.append(
            {**r, "contact": c.get("full_name"), "phone": c.get("phone"), "email": c.get("email")}
        )
    return out


# ------------------------------------------------------------------------------------ JSON API


@api_router.get(
    "/reporting-rate",
    response_model=ReportingRatePublic,
    dependencies=[policy(roles=NATIONAL_READERS, scope=Scope.NATIONAL)],
    summary="National reporting rate over the last N days: per department and per facility",
)
async def national_rate(
    *, conn: DbDep, me: PrincipalDep, cfg: CfgDep, now: NowDep, days: DaysQ = DEFAULT_DAYS
) -> dict[str, Any]:
    """Expected, reported, on time, late and missing facility reports, per reporting parent
    (SYT / ministry office), per facility, per day and in total."""
    return await _national(conn, me, cfg, now, days)


@api_router.get(
    "/reporting-rate.{kind}",
    dependencies=[policy(roles=NATIONAL_READERS, scope=Scope.NATIONAL)],
    summary="Export the national reporting rate per department (csv or xlsx)",
    response_class=Response,
    responses=FILE_RESPONSES,
)
async def national_rate_export(
    *,
    kind: ExportKind,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
    days: DaysQ = DEFAULT_DAYS,
) -> Response:
    """CSV or XLSX of the per-department figures."""
    fig = await _national(conn, me, cfg, now, days)
    title = f"reporting-rate-{fig['first_day']}-{fig['last_day']}"
    return exports.download(kind, title, PARENT_COLUMNS, fig["parents"], locale=locale)


@api_router.get(
    "/syt/{org_id}/reporting-rate",
    response_model=ProvinceRatePublic,
    dependencies=[policy(roles=PROVINCE_READERS, scope=Scope.PROVINCE)],
    summary="Reporting rate of one department's facilities over the last N days",
)
async def province_rate(
    *,
    org_id: int,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    days: DaysQ = DEFAULT_DAYS,
) -> dict[str, Any]:
    """Per facility (with its registry contacts), per day and in total; `not_reported` lists
    the facilities with a missing report, most missing first."""
    fig = await _province(conn, me, org_id, cfg=cfg, now=now, days=days)
    return {**fig, "not_reported": not_reported(fig)}


@api_router.get(
    "/syt/{org_id}/reporting-rate.{kind}",
    dependencies=[policy(roles=PROVINCE_READERS, scope=Scope.PROVINCE)],
    summary="Export one department's reporting rate per facility (csv or xlsx)",
    response_class=Response,
    responses=FILE_RESPONSES,
)
async def province_rate_export(
    *,
    org_id: int,
    kind: ExportKind,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
    days: DaysQ = DEFAULT_DAYS,
) -> Response:
    """CSV or XLSX of the per-facility figures with each facility's primary contact."""
    fig = await _province(conn, me, org_id, cfg=cfg, now=now, days=days)
    title = f"reporting-rate-{org_id}-{fig['first_day']}-{fig['last_day']}"
    rows = _flat(fig["facilities"])
    return exports.download(kind, title, FACILITY_COLUMNS, rows, locale=locale)


# ---------------------------------------------------------------------------------------- pages


@pages.get(
    "/byt/reporting-rate", dependencies=[policy(roles=NATIONAL_READERS, scope=Scope.NATIONAL)]
)
async def national_page(
    *,
    request: Request,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
    days: DaysQ = DEFAULT_DAYS,
) -> Response:
    """Per department: expected, reported, on time, late, missing; each links to its facilities."""
    fig = await _national(conn, me, cfg, now, days)
    return render(
        request,
        "pages/reporting_rate.html",
        {
            "fig": fig,
            "org": None,
            "missing": not_reported(fig)[:50],
            "export": "/api/reporting-rate",
        },
        locale=locale,
        principal=me,
    )


@pages.get("/syt/reporting-rate", dependencies=[policy(roles=(Role.SYT,), scope=Scope.SELF)])
async def my_rate(me: PrincipalDep) -> Response:
    """SYT officers: straight to their department's reporting rate."""
    return RedirectResponse(f"/provinces/{me.org_id}/reporting-rate", status_code=303)


@pages.get(
    "/provinces/{org_id}/reporting-rate",
    dependencies=[policy(roles=PROVINCE_READERS, scope=Scope.PROVINCE)],
)
async def province_page(
    *,
    request: Request,
    org_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
    days: DaysQ = DEFAULT_DAYS,
) -> Response:
    """One department's facilities, and the drill-down to those that have not reported with
    their contacts."""
    org = await department(conn, org_id)
    fig = await _province(conn, me, org_id, cfg=cfg, now=now, days=days)
    return render(
        request,
        "pages/reporting_rate.html",
        {
            "fig": fig,
            "org": org,
            "missing": not_reported(fig),
            "export": f"/api/syt/{org_id}/reporting-rate",
        },
        locale=locale,
        principal=me,
    )
