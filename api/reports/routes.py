"""HTTP routes of the reporting chain: facility daily report, SYT report, BYT, suppliers, exports.

Every route declares its policy (roles + the scoped path parameter); the data layer is given the
caller's visible facilities as well, so an SYT officer's queries never reach another province.
Refused figures answer 422 with one message per field; a locked report answers 409 with why.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from api.accounting.config import AccountingConfig
from api.accounting.routes import not_found
from api.accounting.windows import default_syt_day
from api.audit import audit
from api.deps import CfgDep, DbDep, ExportDep, LocaleDep, NowDep, PrincipalDep
from api.errors import FILE_RESPONSES, JSON_ERRORS
from api.policy import Scope, policy
from api.public import RevisionPublic
from api.reports.exports import ExportKind
from api.reports.public import (
    FacilityReportPublic,
    FacilityReportSavedPublic,
    NationalPublic,
    SentReportPublic,
    SupplierReportPublic,
    SupplierReportSavedPublic,
    SytDecisionPublic,
    SytReportPublic,
    SytReportStatePublic,
)
from api.scope import NATIONAL_ROLES, Principal, Role

from . import exports, facility, letterhead, national, pdf, supplier, syt
from .messages import text

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["reports"])

FACILITY_READERS = (Role.ADMIN, Role.BYT, Role.SYT, Role.FACILITY, Role.ENGINEER)
SYT_READERS = (Role.ADMIN, Role.BYT, Role.SYT)
NATIONAL_READERS = (Role.ADMIN, Role.BYT)


async def _check_facility(conn: DbDep, facility_id: int) -> None:
    if await facility.facility_ref(conn, facility_id) is None:
        raise not_found()


async def _org_code(conn: DbDep, org_id: int) -> str:
    cur = await conn.execute("SELECT code FROM organisations WHERE id = %(id)s", {"id": org_id})
    row = await cur.fetchone()
    return str(row[0]) if row else str(org_id)


async def _check_parent(conn: DbDep, org_id: int) -> None:
    cur = await conn.execute(
        "SELECT 1 FROM organisations WHERE id = %(id)s AND kind IN ('syt', 'ministry_office')",
        {"id": org_id},
    )
    if await cur.fetchone() is None:
        raise not_found()


# --------------------------------------------------------------------------------------------
# Facility daily report


@router.get(
    "/facilities/{facility_id}/reports/{day}",
    response_model=FacilityReportPublic,
    response_model_exclude_unset=True,
    dependencies=[policy(roles=FACILITY_READERS, scope=Scope.FACILITY)],
    summary="Facility daily report for day D (16:00 D−1 → 16:00 D), live and pre-filled",
)
async def get_facility_report(
    facility_id: int, day: date, conn: DbDep, cfg: CfgDep, now: NowDep
) -> dict[str, Any]:
    """The report with its live figures, pre-filled telemetry, lock reason and revisions."""
    await _check_facility(conn, facility_id)
    return await facility.report_view(conn, facility_id, day, cfg=cfg, now=now)


@router.put(
    "/facilities/{facility_id}/reports/{day}",
    response_model=FacilityReportSavedPublic,
    dependencies=[policy(roles=(Role.FACILITY, Role.ADMIN), scope=Scope.FACILITY)],
    summary="File or edit the 16:00 report (a new revision; reasons for changed pre-fills)",
)
async def put_facility_report(
    *,
    facility_id: int,
    day: date,
    body: facility.FacilityReportIn,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    locale: LocaleDep,
) -> dict[str, Any]:
    """All-or-nothing: refused fields are listed one by one, nothing is stored."""
    await _check_facility(conn, facility_id)
    async with conn.transaction():
        saved = await facility.file_report(
            conn, facility_id, day, body, author=me.username, cfg=cfg, now=now
        )
        snap = facility.snapshot(saved)
        await audit(
            conn,
            me,
            "file",
            "facility_report",
            f"{facility_id}/{day}",
            saved["before"],
            snap,
            org_id=facility_id,
        )
    return {
        "revision": saved["revision"],
        "late": saved["late"],
        "warnings": [{**w, "message": text(w["key"], locale)} for w in saved.get("warnings") or []],
    }


@router.put(
    "/facilities/{facility_id}/reports/{day}/morning",
    response_model=RevisionPublic,
    dependencies=[policy(roles=(Role.FACILITY, Role.ADMIN), scope=Scope.FACILITY)],
    summary="Morning update: discharges as of 08:00 (added to the 16:00 report's discharges)",
)
async def put_morning_update(
    *,
    facility_id: int,
    day: date,
    body: facility.MorningUpdateIn,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
) -> dict[str, Any]:
    """Record the morning discharge figure."""
    await _check_facility(conn, facility_id)
    async with conn.transaction():
        saved = await facility.morning_update(
            conn,
            facility_id,
            day,
            body,
            author=me.username,
            cfg=cfg,
            now=now,
        )
        await audit(
            conn,
            me,
            "morning_update",
            "facility_report",
            f"{facility_id}/{day}",
            {"discharged_morning": (saved["before"] or {}).get("discharged_morning")},
            {"discharged_morning": body.discharged_morning},
            org_id=facility_id,
        )
    return {"revision": saved["revision"]}


# --------------------------------------------------------------------------------------------
# SYT report


def _filters(status_: str, facility_ids: list[int] | None) -> syt.SytFilters:
    try:
        return syt.SytFilters(status=syt.StatusFilter(status_), facility_ids=facility_ids or None)
    except ValueError:
        raise HTTPException(422, "status must be all, enough or needs_more") from None


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
) -> dict[str, Any]:
    """Live figures (fields 5–11, 13, 14), entered fields (12, 15, 16), state and history."""
    await _check_parent(conn, org_id)
    d = day or default_syt_day(now, cfg)
    filters = (
        _filters(status_filter or "all", facility_ids) if (status_filter or facility_ids) else None
    )
    return await syt.details(
        conn, org_id, d, visible=me.facility_ids, cfg=cfg, now=now, filters=filters
    )


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
) -> dict[str, Any]:
    """Save a revision of the SYT's own fields."""
    await _check_parent(conn, org_id)
    async with conn.transaction():
        out = await syt.save(conn, org_id, day, body, author=me.username, cfg=cfg, now=now)
        before, after = out.pop("before"), out.pop("after")
        await audit(conn, me, "save", "syt_report", out["id"], before, after, org_id=org_id)
    return out


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
) -> dict[str, Any]:
    """Send (or send again) to the Ministry. Figures that leave out a facility answer 409 with
    the list (`incomplete`) unless `confirm_incomplete=true`."""
    await _check_parent(conn, org_id)
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
        await audit(conn, me, "send", "syt_report", out["id"], None, out, org_id=org_id)
    return out


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
) -> list[dict[str, Any]]:
    """The sent-reports list (details and history: GET /api/syt/{org_id}/report?day=...)."""
    return await syt.sent_list(conn, parents=frozenset({org_id}), first=first, last=last)


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
    return export(kind, f"syt-{org_id}-sent", exports.SENT_COLUMNS, rows)


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
    await _check_parent(conn, org_id)
    live = await syt.details(conn, org_id, day, visible=me.facility_ids, cfg=cfg, now=now)
    return export(kind, f"syt-{org_id}-{day}", exports.facility_columns(), live["facilities"])


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
    await _check_parent(conn, org_id)
    live = await syt.details(conn, org_id, day, visible=me.facility_ids, cfg=cfg, now=now)
    rows = exports.syt_field_rows(live, export.locale)
    return export(kind, f"syt-{org_id}-{day}-fields", exports.SYT_FIELD_COLUMNS, rows)


@router.get(
    "/syt/{org_id}/reports/{day}/print",
    dependencies=[policy(roles=SYT_READERS, scope=Scope.PROVINCE)],
    response_class=HTMLResponse,
    responses={**JSON_ERRORS, 200: {"description": "The printable page (text/html)"}},
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
    await _check_parent(conn, org_id)
    report = await syt.details(conn, org_id, day, visible=me.facility_ids, cfg=cfg, now=now)
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
    await _check_parent(conn, org_id)
    report = await syt.details(conn, org_id, day, visible=me.facility_ids, cfg=cfg, now=now)
    head = await letterhead.load(conn, org_id, day)
    try:
        body = pdf.syt_report_pdf(report, head, locale)
    except pdf.FontMissing as exc:
        logger.error("%s", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    code = re.sub(r"[^a-z0-9]+", "-", (await _org_code(conn, org_id)).lower()).strip("-")
    filename = f"bao-cao-syt-{code}-{day.isoformat()}.pdf"
    return Response(
        body,
        media_type=pdf.PDF_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


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
) -> dict[str, Any]:
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
            out,
            org_id=found[0],
        )
    return out


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
) -> dict[str, Any]:
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
) -> dict[str, Any]:
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
) -> list[dict[str, Any]]:
    """Sent reports of every reporting parent."""
    return await syt.sent_list(conn, parents=None, first=first, last=last)


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
    return export(kind, "syt-reports", exports.SENT_COLUMNS, rows)


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
) -> dict[str, Any]:
    """Per reporting parent and national totals; supply vs demand vs production capacity."""
    d = day or default_syt_day(now, cfg)
    return await national.national_view(
        conn, d, visible=me.facility_ids, cfg=cfg, now=now, include_facilities=facilities, by=by
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


# --------------------------------------------------------------------------------------------
# Suppliers


@router.put(
    "/suppliers/{supplier_id}/reports/{day}",
    response_model=SupplierReportSavedPublic,
    dependencies=[policy(roles=(Role.SUPPLIER,), scope=Scope.SUPPLIER)],
    summary="Supplier daily report: production, capacity, LOX stock, cylinders, deliveries",
)
async def put_supplier_report(
    *,
    supplier_id: int,
    day: date,
    body: supplier.SupplierReportIn,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
) -> dict[str, Any]:
    """Store the supplier's report (a new revision)."""
    async with conn.transaction():
        out = await supplier.save(
            conn,
            supplier_id,
            day,
            body,
            author=me.username,
            cfg=cfg,
            now=now,
        )
        before = out.pop("before")
        await audit(
            conn,
            me,
            "file",
            "supplier_report",
            out["id"],
            before,
            body.model_dump(mode="json"),
            org_id=supplier_id,
        )
    return out


async def _supplier_view(
    conn: DbDep, me: Principal, supplier_id: int, day: date, *, cfg: AccountingConfig, now: datetime
) -> dict[str, Any]:
    """The supplier's report of the day (404 when it has none); refills to national roles only."""
    out = await _supplier_view_or_none(conn, me, supplier_id, day, cfg=cfg, now=now)
    if out is None:
        raise not_found()
    return out


async def _supplier_view_or_none(
    conn: DbDep, me: Principal, supplier_id: int, day: date, *, cfg: AccountingConfig, now: datetime
) -> dict[str, Any] | None:
    return await supplier.view(
        conn,
        supplier_id,
        day,
        cfg=cfg,
        now=now,
        show_facility_figures=me.role in NATIONAL_ROLES,
    )


@router.get(
    "/suppliers/{supplier_id}/reports/{day}",
    response_model=SupplierReportPublic,
    response_model_exclude_unset=True,
    dependencies=[policy(roles=(Role.SUPPLIER, Role.BYT, Role.ADMIN), scope=Scope.SUPPLIER)],
    summary="Supplier report with deliveries cross-checked against facilities' refills",
)
async def get_supplier_report(
    *, supplier_id: int, day: date, conn: DbDep, me: PrincipalDep, cfg: CfgDep, now: NowDep
) -> dict[str, Any]:
    """The report; facility refill figures are shown to national roles only."""
    return await _supplier_view(conn, me, supplier_id, day, cfg=cfg, now=now)


@router.get(
    "/suppliers/{supplier_id}/reports/{day}/deliveries.{kind}",
    dependencies=[policy(roles=(Role.SUPPLIER, Role.BYT, Role.ADMIN), scope=Scope.SUPPLIER)],
    summary="Export a supplier's deliveries of a day with the cross-check (csv or xlsx)",
    response_class=Response,
    responses=FILE_RESPONSES,
)
async def export_deliveries(
    *,
    supplier_id: int,
    day: date,
    kind: ExportKind,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    export: ExportDep,
) -> Response:
    """CSV or XLSX of the deliveries; headings only for a day the supplier has not reported
    (the page links the file for every day)."""
    out = await _supplier_view_or_none(conn, me, supplier_id, day, cfg=cfg, now=now)
    if out is None:
        cur = await conn.execute(
            "SELECT 1 FROM suppliers WHERE org_id = %(id)s", {"id": supplier_id}
        )
        if await cur.fetchone() is None:
            raise not_found()
    return export(
        kind,
        f"deliveries-{supplier_id}-{day}",
        exports.delivery_columns(),
        out["deliveries"] if out else [],
    )
