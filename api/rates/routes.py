"""Reporting-rate JSON API and CSV/XLSX exports: BYT national per province, one province per
facility with those that have not reported (the pages are pages.py).

Every route declares its policy; the data layer is given the caller's visible facilities as well,
so an SYT officer never counts another province's facilities."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import CfgDep, DbDep, LocaleDep, NowDep, PrincipalDep
from api.errors import FILE_RESPONSES
from api.policy import Scope, policy
from api.rates.public import ProvinceRatePublic, ReportingRatePublic
from api.reports import exports
from api.reports.exports import ExportKind

from .http import NATIONAL_READERS, PROVINCE_READERS, DaysQ, national, province
from .rate import DEFAULT_DAYS, not_reported

router = APIRouter(prefix="/api", tags=["reporting rate"])

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


def _flat(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Export rows: the first (primary) contact in its own columns."""
    out = []
    for r in rows:
        c = r["contacts"][0] if r.get("contacts") else {}
        out.append(
            {**r, "contact": c.get("full_name"), "phone": c.get("phone"), "email": c.get("email")}
        )
    return out


@router.get(
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
    return await national(conn, me, cfg, now, days)


@router.get(
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
    fig = await national(conn, me, cfg, now, days)
    title = f"reporting-rate-{fig['first_day']}-{fig['last_day']}"
    return exports.download(kind, title, PARENT_COLUMNS, fig["parents"], locale=locale)


@router.get(
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
    fig = await province(conn, me, org_id, cfg=cfg, now=now, days=days)
    return {**fig, "not_reported": not_reported(fig)}


@router.get(
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
    fig = await province(conn, me, org_id, cfg=cfg, now=now, days=days)
    title = f"reporting-rate-{org_id}-{fig['first_day']}-{fig['last_day']}"
    rows = _flat(fig["facilities"])
    return exports.download(kind, title, FACILITY_COLUMNS, rows, locale=locale)
