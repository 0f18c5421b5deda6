"""Reporting-rate pages: BYT national per province, one province per facility with the
drill-down to those that have not reported (the JSON API and exports are routes.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import CfgDep, DbDep, LocaleDep, NowDep, PrincipalDep
from api.policy import Scope, policy
from api.scope import Role
from api.web.queries import department
from api.web.templating import render

from .http import NATIONAL_READERS, PROVINCE_READERS, DaysQ, national, province
from .rate import DEFAULT_DAYS, not_reported

router = APIRouter(include_in_schema=False)


@router.get(
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
    fig = await national(conn, me, cfg, now, days)
    return render(
        request,
        "rates/reporting_rate.html",
        {
            "fig": fig,
            "org": None,
            "missing": not_reported(fig)[:50],
            "export": "/api/reporting-rate",
        },
        locale=locale,
        principal=me,
    )


@router.get("/syt/reporting-rate", dependencies=[policy(roles=(Role.SYT,), scope=Scope.SELF)])
async def my_rate(me: PrincipalDep) -> Response:
    """SYT officers: straight to their department's reporting rate."""
    return RedirectResponse(f"/provinces/{me.org_id}/reporting-rate", status_code=303)


@router.get(
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
    fig = await province(conn, me, org_id, cfg=cfg, now=now, days=days)
    return render(
        request,
        "rates/reporting_rate.html",
        {
            "fig": fig,
            "org": org,
            "missing": not_reported(fig),
            "export": f"/api/syt/{org_id}/reporting-rate",
        },
        locale=locale,
        principal=me,
    )
