"""BYT's JSON routes: approve or send back an SYT report, every sent report, the national view.

Every route declares its policy (api.policy); refused input answers through the
handlers of api.refusals (422 field by field, 409 with why)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from api.accounting.config import AccountingConfig
from api.accounting.routes import not_found
from api.accounting.windows import default_syt_day
from api.audit import audit
from api.deps import CfgDep, DbDep, ExportDep, NowDep, PrincipalDep
from api.errors import FILE_RESPONSES
from api.policy import Scope, policy
from api.reports.exports import ExportKind
from api.reports.http import (
    NATIONAL_READERS,
    sent_public,
)
from api.reports.public import (
    NationalPublic,
    ProvinceTotalsPublic,
    SentReportPublic,
    SupplyPublic,
    SytDecisionPublic,
    TotalsPublic,
)
from api.scope import Principal, Role

from . import exports, national, syt

router = APIRouter(prefix="/api", tags=["reports"])


# --------------------------------------------------------------------------------------------
# BYT


class SendBack(BaseModel):
    """The reason BYT gives when sending a report back."""

    reason: str


async def _decide(
    conn: DbDep,
    me: Principal,
    report_id: int,
    *,
    approve: bool,
    reason: str | None,
    cfg: AccountingConfig,
    now: datetime,
    confirm_incomplete: bool = False,
) -> SytDecisionPublic:
    found = await syt.report_org(conn, report_id)
    if found is None or not me.can_see_parent(found[0]):
        raise not_found()
    async with conn.transaction():
        out = await syt.decide(
            conn,
            report_id,
            approve=approve,
            author=me.username,
            reason=reason,
            now=now,
            cfg=cfg,
            confirm_incomplete=confirm_incomplete,
        )
        await audit(
            conn,
            me,
            "approve" if approve else "send_back",
            "syt_report",
            report_id,
            None,
            asdict(out),
            org_id=found[0],
        )
    return SytDecisionPublic(
        revision=out.revision,
        id=out.id,
        state=out.state,
        org_id=out.org_id,
        report_day=out.report_day,
    )


@router.post(
    "/byt/syt-reports/{report_id}/approve",
    response_model=SytDecisionPublic,
    dependencies=[policy(roles=(Role.BYT,), scope=Scope.NATIONAL)],
    summary="Approve a sent SYT report (locks it and that day's facility reports)",
)
async def approve(
    *,
    report_id: int,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    confirm_incomplete: Annotated[bool, Query()] = False,
) -> SytDecisionPublic:
    """Approve what was sent (409 when the report changed since it was sent, or when it was sent
    with incomplete figures and `confirm_incomplete` is not true)."""
    return await _decide(
        conn,
        me,
        report_id,
        approve=True,
        reason=None,
        cfg=cfg,
        now=now,
        confirm_incomplete=confirm_incomplete,
    )


@router.post(
    "/byt/syt-reports/{report_id}/send-back",
    response_model=SytDecisionPublic,
    dependencies=[policy(roles=(Role.BYT,), scope=Scope.NATIONAL)],
    summary="Send a report back to the SYT with a reason (reopens it)",
)
async def send_back(
    *,
    report_id: int,
    body: SendBack,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
) -> SytDecisionPublic:
    """Send back."""
    return await _decide(
        conn,
        me,
        report_id,
        approve=False,
        reason=body.reason,
        cfg=cfg,
        now=now,
    )


@router.get(
    "/byt/syt-reports",
    response_model=list[SentReportPublic],
    dependencies=[policy(roles=NATIONAL_READERS, scope=Scope.NATIONAL)],
    summary="Every SYT report sent to BYT",
)
async def all_sent(
    *,
    conn: DbDep,
    first: Annotated[date | None, Query()] = None,
    last: Annotated[date | None, Query()] = None,
) -> list[SentReportPublic]:
    """Sent reports of every reporting parent."""
    return [sent_public(r) for r in await syt.sent_list(conn, parents=None, first=first, last=last)]


@router.get(
    "/byt/syt-reports.{kind}",
    dependencies=[policy(roles=NATIONAL_READERS, scope=Scope.NATIONAL)],
    summary="Export every sent SYT report (csv or xlsx)",
    response_class=Response,
    responses=FILE_RESPONSES,
)
async def export_all_sent(
    *,
    kind: ExportKind,
    conn: DbDep,
    export: ExportDep,
    first: Annotated[date | None, Query()] = None,
    last: Annotated[date | None, Query()] = None,
) -> Response:
    """CSV or XLSX of the sent reports of every reporting parent."""
    rows = await syt.sent_list(conn, parents=None, first=first, last=last)
    return export(kind, "syt-reports", exports.SENT_COLUMNS, [asdict(r) for r in rows])


@router.get(
    "/byt/national",
    response_model=NationalPublic,
    response_model_exclude_unset=True,
    dependencies=[policy(roles=NATIONAL_READERS, scope=Scope.NATIONAL)],
    summary="National view per province for D: reporting rate, patients, stock, need, status",
)
async def national_view(
    *,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    day: Annotated[date | None, Query()] = None,
    facilities: Annotated[bool, Query()] = False,
    by: Annotated[national.Grouping, Query()] = national.Grouping.PARENT,
) -> NationalPublic:
    """Per reporting parent and national totals; supply vs demand vs production capacity."""
    d = day or default_syt_day(now, cfg)
    view = await national.national_view(
        conn, d, visible=me.facility_ids, cfg=cfg, now=now, include_facilities=facilities, by=by
    )
    return national_public(view)


def national_public(view: national.NationalView) -> NationalPublic:
    """The national view as its answer; a row's facilities only when asked for (else unset)."""
    provinces = []
    for r in view.provinces:
        row = r.as_dict()
        if (figs := row.pop("facilities")) is not None:
            row["facilities"] = [f.as_dict() for f in figs]
        provinces.append(ProvinceTotalsPublic.model_validate(row))
    return NationalPublic(
        report_day=view.report_day,
        provinces=provinces,
        nation=TotalsPublic.model_validate(view.nation.as_dict()),
        supply=SupplyPublic.model_validate(asdict(view.supply)),
        units=view.units,
    )


@router.get(
    "/byt/national.{kind}",
    dependencies=[policy(roles=NATIONAL_READERS, scope=Scope.NATIONAL)],
    summary="Export the national view's province list (csv or xlsx)",
    response_class=Response,
    responses=FILE_RESPONSES,
)
async def export_national(
    *,
    kind: ExportKind,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    export: ExportDep,
    day: Annotated[date | None, Query()] = None,
) -> Response:
    """CSV or XLSX of the per-province figures."""
    d = day or default_syt_day(now, cfg)
    view = await national.national_view(conn, d, visible=me.facility_ids, cfg=cfg, now=now)
    rows = exports.province_rows(view, export.locale)
    return export(kind, f"national-{d}", exports.province_columns(), rows)
