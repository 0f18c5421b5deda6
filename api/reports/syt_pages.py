"""SYT pages: the report composer (seed fields 1–16), send to BYT, sent reports with edit
history / edit / details, and the province's facilities. Built on api.reports.syt."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from api import i18n
from api.accounting.windows import default_syt_day, local_today
from api.audit import audit
from api.deps import CfgDep, DbDep, LocaleDep, NowDep, PrincipalDep, Role, Scope, policy
from api.reports import syt
from api.reports.errors import Conflict, Locked, ValidationFailed
from api.reports.filters import StatusFilter, SytFilters
from api.reports.messages import text
from api.reports.units import EntryUnit
from api.web.forms import FormErrors, past_day, quantity_field, redirect_saved, text_field
from api.web.queries import department
from api.web.templating import render

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

VIEW_ROLES = (Role.SYT, Role.BYT, Role.ADMIN)
EDIT_ROLES = (Role.SYT,)
OWN_UNITS = (EntryUnit.NM3, EntryUnit.M3_LIQUID, EntryUnit.KG)
UNIT_LABELS = {"nm3": "Nm3 gas", "m3_liquid": "m3 liquid", "kg": "kg LOX", "t": "t LOX"}


def _filters(status_raw: str | None, ids: list[str]) -> SytFilters:
    try:
        st = StatusFilter(status_raw or "all")
    except ValueError:
        st = StatusFilter.ALL
    chosen = sorted({int(i) for i in ids if i.isdigit()})
    return SytFilters(status=st, facility_ids=chosen or None)


@router.get("/syt", dependencies=[policy(roles=EDIT_ROLES, scope=Scope.SELF)])
async def my_province(me: PrincipalDep) -> Response:
    """SYT officers: straight to the report composer of their department."""
    return RedirectResponse(f"/provinces/{me.org_id}/report", status_code=303)


async def _composer(
    request: Request,
    conn: Any,
    org_id: int,
    day: date,
    filters: SytFilters | None,
    *,
    me: Any,
    locale: str,
    cfg: Any,
    now: Any,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    lock_message: str | None = None,
    status_code: int = 200,
) -> Response:
    org = await department(conn, org_id)
    rep = await syt.details(
        conn, org_id, day, visible=me.facility_ids, cfg=cfg, now=now, filters=filters
    )
    # Field 2's choices: every facility of the department, whatever the current filter.
    every = await syt.compute(
        conn, org_id, day, SytFilters(), visible=me.facility_ids, cfg=cfg, now=now
    )
    values: dict[str, Any] = dict(form or {})
    if form is None and (ent := rep.entered) is not None:
        values["notice"] = ent.notice or ""
        for name, typed in (
            ("own_capacity", ent.own_capacity.entered),
            ("own_need", ent.own_need.entered),
        ):
            if typed:
                values[name] = i18n.format_number(typed.value, locale, 3).rstrip("0").rstrip(",.")
                values[name + "_unit"] = typed.unit
    lock = rep.locked
    return render(
        request,
        "reports/syt_report.html",
        {
            "org": org,
            "day": day,
            "today": local_today(now, cfg),
            "rep": rep,
            "fields": rep.fields,
            "all_facilities": every.facilities,
            "chosen": set(rep.filters.facility_ids or []),
            "status_filter": rep.filters.status.value,
            "values": values,
            "errors": errors or {},
            "units": OWN_UNITS,
            "unit_labels": UNIT_LABELS,
            "lock_message": lock_message or (text(lock, locale) if lock else None),
            "can_edit": me.role in EDIT_ROLES and lock is None,
            "reference": cfg.reference,
            # Sums that leave out a facility: sending them needs the explicit confirmation.
            "incomplete": syt.missing(rep.completeness),
        },
        locale=locale,
        principal=me,
        status_code=status_code,
    )


@router.get(
    "/provinces/{org_id}/report", dependencies=[policy(roles=VIEW_ROLES, scope=Scope.PROVINCE)]
)
async def composer(
    *,
    request: Request,
    org_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
) -> Response:
    """The report to BYT for day D (default yesterday) with the seed's filters (fields 1–3)."""
    qp = request.query_params
    day = past_day(qp.get("day"), local_today(now, cfg), default_syt_day(now, cfg))
    filters = (
        _filters(qp.get("status"), qp.getlist("facility_ids"))
        if "status" in qp or "facility_ids" in qp
        else None
    )
    return await _composer(
        request, conn, org_id, day, filters, me=me, locale=locale, cfg=cfg, now=now
    )


@router.post(
    "/provinces/{org_id}/report", dependencies=[policy(roles=EDIT_ROLES, scope=Scope.PROVINCE)]
)
async def save_or_send(
    *,
    request: Request,
    org_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
) -> Response:
    """Save fields 12, 15, 16 and the filters; with action=send, also send to BYT."""
    raw = await request.form()
    form = {k: v for k, v in raw.items() if isinstance(v, str)}
    day = past_day(form.get("day"), local_today(now, cfg), default_syt_day(now, cfg))
    filters = _filters(
        form.get("status"), [v for v in raw.getlist("facility_ids") if isinstance(v, str)]
    )
    sending = form.get("action") == "send"
    errors = FormErrors(locale)
    notice = text_field(form, "notice", errors, required=sending)
    cap = quantity_field(form, "own_capacity", OWN_UNITS, errors)
    need = quantity_field(form, "own_need", OWN_UNITS, errors)
    lock_message = None
    if not errors:
        body = syt.SytReportIn(
            notice=notice or None, own_capacity=cap, own_need=need, filters=filters
        )
        try:
            saved: syt.SytStateChange
            saved = done = await syt.save(
                conn, org_id, day, body, author=me.username, cfg=cfg, now=now
            )
            await audit(
                conn, me, "save", "syt_report", done.id, done.before, done.after, org_id=org_id
            )
            if sending:
                saved = await syt.send(
                    conn,
                    org_id,
                    day,
                    author=me.username,
                    visible=me.facility_ids,
                    cfg=cfg,
                    now=now,
                    confirm_incomplete=form.get("confirm_incomplete") == "1",
                )
        except ValidationFailed as exc:
            errors.refused(exc.errors)
        except (Locked, Conflict) as exc:
            lock_message = text(exc.key, locale)
        else:
            if sending:
                await audit(
                    conn,
                    me,
                    "send",
                    "syt_report",
                    saved.id,
                    after={"report_day": day, "revision": saved.revision},
                    org_id=org_id,
                )
            target = (
                f"/provinces/{org_id}/reports/{day.isoformat()}"
                if sending
                else f"/provinces/{org_id}/report?day={day.isoformat()}"
            )
            msg = "Report sent to the Ministry of Health." if sending else "Draft saved."
            return await redirect_saved(conn, target, i18n.gettext(locale, msg))
    return await _composer(
        request,
        conn,
        org_id,
        day,
        filters,
        me=me,
        locale=locale,
        cfg=cfg,
        now=now,
        form=form,
        errors=errors.errors,
        lock_message=lock_message,
        status_code=422,
    )


@router.get(
    "/provinces/{org_id}/reports", dependencies=[policy(roles=VIEW_ROLES, scope=Scope.PROVINCE)]
)
async def sent_reports(
    *, request: Request, org_id: int, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """The reports this department sent to BYT, each with edit history, edit and details."""
    org = await department(conn, org_id)
    rows = await syt.sent_list(conn, parents=frozenset({org_id}))
    return render(
        request, "reports/syt_sent.html", {"org": org, "rows": rows}, locale=locale, principal=me
    )


@router.get(
    "/provinces/{org_id}/reports/{day}",
    dependencies=[policy(roles=VIEW_ROLES, scope=Scope.PROVINCE)],
)
async def report_details(
    *,
    request: Request,
    org_id: int,
    day: str,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
) -> Response:
    """Details of one report: the figures as sent, changes since, and the edit history."""
    try:
        d = date.fromisoformat(day)
    except ValueError:
        raise HTTPException(404, "not found") from None
    org = await department(conn, org_id)
    rep = await syt.details(conn, org_id, d, visible=me.facility_ids, cfg=cfg, now=now)
    if rep.id is None:
        raise HTTPException(404, "not found")
    return render(
        request,
        "reports/syt_details.html",
        {
            "org": org,
            "day": d,
            "rep": rep,
            "fields": rep.fields,
            "lock_message": text(rep.locked, locale) if rep.locked else None,
            "can_edit": me.role in EDIT_ROLES and not rep.locked,
            "can_decide": me.role == Role.BYT and rep.state == "sent",
            # Sent with sums that leave out a facility: approving needs the explicit confirmation.
            "incomplete": syt.missing(rep.as_sent.completeness) if rep.as_sent else {},
        },
        locale=locale,
        principal=me,
    )


@router.get(
    "/provinces/{org_id}/facilities",
    dependencies=[policy(roles=VIEW_ROLES, scope=Scope.PROVINCE)],
)
async def province_facilities(
    *,
    request: Request,
    org_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
) -> Response:
    """The department's facilities today: reported or not, status and days of supply."""
    org = await department(conn, org_id)
    day = local_today(now, cfg)
    live = await syt.compute(
        conn, org_id, day, SytFilters(), visible=me.facility_ids, cfg=cfg, now=now
    )
    return render(
        request,
        "reports/syt_facilities.html",
        {"org": org, "day": day, "facilities": live.facilities},
        locale=locale,
        principal=me,
    )


@router.get("/syt/reports", dependencies=[policy(roles=EDIT_ROLES, scope=Scope.SELF)])
async def my_sent_reports(me: PrincipalDep) -> Response:
    """SYT officers: their department's sent reports."""
    return RedirectResponse(f"/provinces/{me.org_id}/reports", status_code=303)


@router.get("/syt/facilities", dependencies=[policy(roles=EDIT_ROLES, scope=Scope.SELF)])
async def my_facilities(me: PrincipalDep) -> Response:
    """SYT officers: their department's facilities."""
    return RedirectResponse(f"/provinces/{me.org_id}/facilities", status_code=303)
