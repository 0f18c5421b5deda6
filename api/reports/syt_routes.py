"""The SYT report's JSON routes: compose, send to BYT, sent reports, exports, PDF.

Every route declares its policy (api.policy); refused input answers through the
handlers of api.refusals (422 field by field, 409 with why)."""

from __future__ import annotations

import logging
import re
from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import HTMLResponse, Response

from api.accounting.config import AccountingConfig
from api.accounting.windows import default_syt_day
from api.audit import audit
from api.deps import CfgDep, DbDep, ExportDep, LocaleDep, NowDep, PrincipalDep
from api.errors import COMMON_RESPONSES, FILE_RESPONSES
from api.policy import Scope, policy
from api.reports.exports import ExportKind
from api.reports.http import (
    SYT_READERS,
    check_parent,
    org_code,
    sent_public,
)
from api.reports.public import (
    FacilityFiguresPublic,
    SentReportPublic,
    SytChangePublic,
    SytReportPublic,
    SytReportStatePublic,
    SytRevisionPublic,
    SytSnapshotPublic,
)
from api.scope import Principal, Role

from . import exports, letterhead, pdf, syt
from .filters import StatusFilter, SytFilters

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["reports"])


# --------------------------------------------------------------------------------------------
# SYT report


def _filters(status_: str, facility_ids: list[int] | None) -> SytFilters:
    try:
        return SytFilters(status=StatusFilter(status_), facility_ids=facility_ids or None)
    except ValueError:
        raise HTTPException(422, "status must be all, enough or needs_more") from None


def syt_report_public(rep: syt.SytReport) -> SytReportPublic:
    """The report as its answer; a report never saved has no id nor dates (left out)."""
    out = SytReportPublic(
        org_id=rep.org_id,
        report_day=rep.report_day,
        # Every filter set (the answer states them all, defaults too).
        filters=SytFilters.model_validate(rep.filters.model_dump()),
        fields=rep.fields,
        completeness=rep.completeness,
        facilities=[FacilityFiguresPublic.model_validate(f.as_dict()) for f in rep.facilities],
        units=rep.units,
        state=rep.state,
        revision=rep.revision,
        locked=rep.locked,
        entered=rep.entered,
        changed_since_sent=rep.changed_since_sent,
        changes=[SytChangePublic(item=c.item, sent=c.sent, now=c.now) for c in rep.changes],
        as_sent=(
            SytSnapshotPublic.model_validate(rep.as_sent.document_sent) if rep.as_sent else None
        ),
        revisions=[SytRevisionPublic.model_validate(asdict(r)) for r in rep.revisions],
    )
    if rep.id is None:
        return out
    # Set, so that the answer carries them (null or not).
    return out.model_copy(
        update={
            "id": rep.id,
            "sent_at": rep.sent_at,
            "approved_at": rep.approved_at,
            "sent_back_reason": rep.sent_back_reason,
        }
    )


async def _live(
    conn: DbDep, me: Principal, org_id: int, day: date, *, cfg: AccountingConfig, now: datetime
) -> syt.SytReport:
    """The SYT report of `day` with its live figures, as the caller may see them (404 for an
    organisation that is no reporting parent): what the exports and the print routes show."""
    await check_parent(conn, org_id)
    return await syt.details(conn, org_id, day, visible=me.facility_ids, cfg=cfg, now=now)


@router.get(
    "/syt/{org_id}/report",
    response_model=SytReportPublic,
    response_model_exclude_unset=True,
    dependencies=[policy(roles=SYT_READERS, scope=Scope.PROVINCE)],
    summary="SYT report to BYT for date D (default yesterday): seed fields 1–16, live",
)
async def get_syt_report(
    *,
    org_id: int,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    day: Annotated[date | None, Query()] = None,
    status_filter: Annotated[str | None, Query(alias="status")] = None,
    facility_ids: Annotated[list[int] | None, Query()] = None,
) -> SytReportPublic:
    """Live figures (fields 5–11, 13, 14), entered fields (12, 15, 16), state and history."""
    await check_parent(conn, org_id)
    d = day or default_syt_day(now, cfg)
    filters = (
        _filters(status_filter or "all", facility_ids) if (status_filter or facility_ids) else None
    )
    rep = await syt.details(
        conn, org_id, d, visible=me.facility_ids, cfg=cfg, now=now, filters=filters
    )
    return syt_report_public(rep)


@router.put(
    "/syt/{org_id}/reports/{day}",
    response_model=SytReportStatePublic,
    dependencies=[policy(roles=(Role.SYT,), scope=Scope.PROVINCE)],
    summary="Save the SYT's fields 12, 15, 16 and filters (refused once approved)",
)
async def put_syt_report(
    *,
    org_id: int,
    day: date,
    body: syt.SytReportIn,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
) -> SytReportStatePublic:
    """Save a revision of the SYT's own fields."""
    await check_parent(conn, org_id)
    async with conn.transaction():
        out = await syt.save(conn, org_id, day, body, author=me.username, cfg=cfg, now=now)
        await audit(conn, me, "save", "syt_report", out.id, out.before, out.after, org_id=org_id)
    return SytReportStatePublic(revision=out.revision, id=out.id, state=out.state)


@router.post(
    "/syt/{org_id}/reports/{day}/send",
    response_model=SytReportStatePublic,
    dependencies=[policy(roles=(Role.SYT,), scope=Scope.PROVINCE)],
    summary="Send the report to BYT: freezes the live figures as a new revision",
)
async def send_syt_report(
    *,
    org_id: int,
    day: date,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    confirm_incomplete: Annotated[bool, Query()] = False,
) -> SytReportStatePublic:
    """Send (or send again) to the Ministry. Figures that leave out a facility answer 409 with
    the list (`incomplete`) unless `confirm_incomplete=true`."""
    await check_parent(conn, org_id)
    async with conn.transaction():
        out = await syt.send(
            conn,
            org_id,
            day,
            author=me.username,
            visible=me.facility_ids,
            cfg=cfg,
            now=now,
            confirm_incomplete=confirm_incomplete,
        )
        await audit(conn, me, "send", "syt_report", out.id, None, asdict(out), org_id=org_id)
    return SytReportStatePublic(revision=out.revision, id=out.id, state=out.state)


@router.get(
    "/syt/{org_id}/reports",
    response_model=list[SentReportPublic],
    dependencies=[policy(roles=SYT_READERS, scope=Scope.PROVINCE)],
    summary="Reports this SYT has sent, with their state and number of revisions",
)
async def list_sent(
    *,
    org_id: int,
    conn: DbDep,
    first: Annotated[date | None, Query()] = None,
    last: Annotated[date | None, Query()] = None,
) -> list[SentReportPublic]:
    """The sent-reports list (details and history: GET /api/syt/{org_id}/report?day=...)."""
    rows = await syt.sent_list(conn, parents=frozenset({org_id}), first=first, last=last)
    return [sent_public(r) for r in rows]


@router.get(
    "/syt/{org_id}/reports.{kind}",
    dependencies=[policy(roles=SYT_READERS, scope=Scope.PROVINCE)],
    summary="Export the sent-reports list (csv or xlsx)",
    response_class=Response,
    responses=FILE_RESPONSES,
)
async def export_sent(*, org_id: int, kind: ExportKind, conn: DbDep, export: ExportDep) -> Response:
    """CSV or XLSX of the sent reports."""
    rows = await syt.sent_list(conn, parents=frozenset({org_id}))
    return export(kind, f"syt-{org_id}-sent", exports.SENT_COLUMNS, [asdict(r) for r in rows])


@router.get(
    "/syt/{org_id}/reports/{day}/facilities.{kind}",
    dependencies=[policy(roles=SYT_READERS, scope=Scope.PROVINCE)],
    summary="Export the SYT report's facility list (csv or xlsx)",
    response_class=Response,
    responses=FILE_RESPONSES,
)
async def export_syt_facilities(
    *,
    org_id: int,
    day: date,
    kind: ExportKind,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    export: ExportDep,
) -> Response:
    """CSV or XLSX of the facilities with their live figures."""
    live = await _live(conn, me, org_id, day, cfg=cfg, now=now)
    return export(
        kind,
        f"syt-{org_id}-{day}",
        exports.facility_columns(),
        [f.as_dict() for f in live.facilities],
    )


@router.get(
    "/syt/{org_id}/reports/{day}/fields.{kind}",
    dependencies=[policy(roles=SYT_READERS, scope=Scope.PROVINCE)],
    summary="Export the SYT report's seed fields 1–16 (csv or xlsx), as printed",
    response_class=Response,
    responses=FILE_RESPONSES,
)
async def export_syt_fields(
    *,
    org_id: int,
    day: date,
    kind: ExportKind,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    export: ExportDep,
) -> Response:
    """CSV or XLSX of the seed fields (live figures), one row per field of the field table."""
    live = await _live(conn, me, org_id, day, cfg=cfg, now=now)
    rows = exports.syt_field_rows(live, export.locale)
    return export(kind, f"syt-{org_id}-{day}-fields", exports.SYT_FIELD_COLUMNS, rows)


@router.get(
    "/syt/{org_id}/reports/{day}/print",
    dependencies=[policy(roles=SYT_READERS, scope=Scope.PROVINCE)],
    response_class=HTMLResponse,
    responses={**COMMON_RESPONSES, 200: {"description": "The printable page (text/html)"}},
    summary="Printable SYT report (print-styled HTML; the PDF is at print.pdf)",
)
async def print_syt_report(
    *,
    org_id: int,
    day: date,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    locale: LocaleDep,
) -> HTMLResponse:
    """An A4 page for printing or 'Save as PDF'."""
    report = await _live(conn, me, org_id, day, cfg=cfg, now=now)
    head = await letterhead.load(conn, org_id, day)
    return HTMLResponse(exports.syt_print_html(report, head, locale))


@router.get(
    "/syt/{org_id}/reports/{day}/print.pdf",
    dependencies=[policy(roles=SYT_READERS, scope=Scope.PROVINCE)],
    response_class=Response,
    responses={200: {"content": {pdf.PDF_TYPE: {}}, "description": "The report as a PDF"}},
    summary="SYT report as an A4 PDF for official submission",
)
async def print_syt_report_pdf(
    *,
    org_id: int,
    day: date,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    locale: LocaleDep,
) -> Response:
    """The same content as the printable page, as a PDF download (signature block included)."""
    report = await _live(conn, me, org_id, day, cfg=cfg, now=now)
    head = await letterhead.load(conn, org_id, day)
    try:
        body = pdf.syt_report_pdf(report, head, locale)
    except pdf.FontMissing as exc:
        logger.error("%s", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    code = re.sub(r"[^a-z0-9]+", "-", (await org_code(conn, org_id)).lower()).strip("-")
    filename = f"bao-cao-syt-{code}-{day.isoformat()}.pdf"
    return Response(
        body,
        media_type=pdf.PDF_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
