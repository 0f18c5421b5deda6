"""The facility daily report (16:00) form: pre-filled from telemetry, the source of each figure
shown, field errors next to the fields. Built on api.reports.facility (validation, revisions)."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from api import i18n
from api.accounting.therapy import Therapy
from api.accounting.windows import local_today
from api.audit import audit
from api.deps import CfgDep, DbDep, LocaleDep, NowDep, PrincipalDep, Role, Scope, policy
from api.reports import facility as frep
from api.reports import rules
from api.reports.errors import Locked, ValidationFailed
from api.reports.messages import text
from api.reports.units import EntryUnit
from api.web.forms import (
    FormErrors,
    number_field,
    past_day,
    quantity_field,
    read_form,
    redirect_saved,
    text_field,
)
from api.web.templating import render

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

VIEW_ROLES = (Role.FACILITY, Role.SYT, Role.BYT, Role.ADMIN)
FILE_ROLES = (Role.FACILITY,)

# Form name, label (message id), kind (liquid / gas), the units offered (first is the default).
QUANTITIES: tuple[tuple[str, str, str, tuple[EntryUnit, ...]], ...] = (
    (
        "stock_liquid",
        "Liquid oxygen in stock at 16:00",
        "liquid",
        (EntryUnit.KG, EntryUnit.M3_LIQUID, EntryUnit.NM3),
    ),
    (
        "refilled_liquid",
        "Liquid oxygen refilled (16:00 yesterday to 16:00 today)",
        "liquid",
        (EntryUnit.KG, EntryUnit.M3_LIQUID, EntryUnit.NM3),
    ),
    ("stock_gas", "Gas in cylinders in stock", "gas", (EntryUnit.NM3, EntryUnit.KG)),
    ("refilled_gas", "Gas cylinders refilled", "gas", (EntryUnit.NM3, EntryUnit.KG)),
    ("capacity", "Storage capacity", "gas", (EntryUnit.NM3, EntryUnit.M3_LIQUID, EntryUnit.KG)),
    (
        "avg_need",
        "Average daily need (per day)",
        "gas",
        (EntryUnit.NM3, EntryUnit.M3_LIQUID, EntryUnit.KG),
    ),
)
UNIT_LABELS: dict[str, str] = {
    "kg": "kg LOX",
    "m3_liquid": "m3 liquid",
    "nm3": "Nm3 gas",
    "t": "t LOX",
}
THERAPY_LABELS: dict[str, str] = {
    "mask": "Mask",
    "hfnc": "High-flow nasal cannula (HFNC)",
    "niv": "Non-invasive ventilation",
    "invasive": "Invasive ventilation",
    "ecmo": "ECMO",
}
# Figure (FacilityFigures attribute) shown beside each quantity field, and its unit.
PREFILLED: dict[str, tuple[str, str]] = {
    "stock_liquid": ("stock_liquid_kg", "kg"),
    "refilled_liquid": ("refilled_liquid_kg", "kg"),
    "stock_gas": ("stock_gas_nm3", "Nm3"),
    "refilled_gas": ("refilled_gas_nm3", "Nm3"),
    "capacity": ("capacity_nm3", "Nm3"),
    "avg_need": ("avg_need_nm3", "Nm3"),
}
SOURCE_LABELS: dict[str, str] = {
    "telemetry": "from the tank sensors",
    "entered": "entered by staff",
    "override": "changed by staff, with a reason",
    "registry": "from the registry",
    "estimate": "estimated from patients on oxygen",
}


# The figures the rules require (api/reports/rules.py), checked before anything else is judged.
REQUIRED = frozenset(r.left for r in rules.FACILITY_RULES if r.op is rules.Op.REQUIRED)


def _form_field(name: str) -> str:
    # The data layer names therapies `on_oxygen.<therapy>`; the form names them `o2_<therapy>`.
    if name.startswith("on_oxygen."):
        return "o2_" + name.split(".")[1]
    return name.split(".", maxsplit=1)[0]


@router.get("/facility/report", dependencies=[policy(roles=FILE_ROLES, scope=Scope.SELF)])
async def my_report(me: PrincipalDep) -> Response:
    """Facility staff: today's report of their own facility."""
    return RedirectResponse(f"/facilities/{me.org_id}/report", status_code=303)


async def _render(
    request: Request,
    conn: Any,
    facility_id: int,
    day: date,
    *,
    me: Any,
    locale: str,
    cfg: Any,
    now: Any,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    warnings: dict[str, str] | None = None,
    status_code: int = 200,
    lock_message: str | None = None,
    morning_typed: str | None = None,
) -> Response:
    found = await frep.facility_ref(conn, facility_id)
    if found is None:
        raise HTTPException(404, "not found")
    view = await frep.report_view(conn, facility_id, day, cfg=cfg, now=now)
    figures = view.figures
    entered = view.entered_units
    values: dict[str, Any] = {}
    if form is None:
        # Pre-fill from the latest revision as typed (figures with the unit typed).
        snap = view.revisions[-1].snapshot if view.revisions else {}
        for name in ("patients_current", "patients_new", "discharged_evening", "notes"):
            values[name] = snap.get(name)
        for t in Therapy:
            values["o2_" + t.value] = snap.get("o2_" + t.value)
        for name, *_ in QUANTITIES:
            e = entered.get(name)
            if e:
                values[name] = i18n.format_number(e.value, locale, 3).rstrip("0").rstrip(",.")
                values[name + "_unit"] = e.unit
        for k, reason in view.overrides.items():
            values["reason_" + k] = reason
    else:
        values = form
    lock = view.locked
    return render(
        request,
        "reports/facility_report.html",
        {
            "facility": found[0],
            "day": day,
            "today": local_today(now, cfg),
            "yesterday": local_today(now, cfg) - timedelta(days=1),
            "view": view,
            "figures": figures,
            "values": values,
            "errors": errors or {},
            "warnings": warnings or {},
            # A refused morning figure is shown as typed, not replaced by the stored one.
            "morning_typed": morning_typed,
            "confirmed": figures.warnings,
            "quantities": QUANTITIES,
            "unit_labels": UNIT_LABELS,
            "therapies": [(t.value, THERAPY_LABELS[t.value]) for t in Therapy],
            "prefilled": PREFILLED,
            "source_labels": SOURCE_LABELS,
            "lock_message": lock_message or (text(lock, locale) if lock else None),
            "can_file": me.role in FILE_ROLES and lock is None,
            "reference": cfg.reference,
        },
        locale=locale,
        principal=me,
        status_code=status_code,
    )


@router.get(
    "/facilities/{facility_id}/report",
    dependencies=[policy(roles=VIEW_ROLES, scope=Scope.FACILITY)],
)
async def report_page(
    *,
    request: Request,
    facility_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
    day: str | None = None,
) -> Response:
    """The 16:00 report of day D (default today), with telemetry figures and their sources."""
    d = past_day(day, local_today(now, cfg))
    return await _render(request, conn, facility_id, d, me=me, locale=locale, cfg=cfg, now=now)


def parse_report(form: dict[str, Any], errors: FormErrors) -> frep.FacilityReportIn | None:
    """The report body from the form fields, recording field errors in `errors`."""
    data: dict[str, Any] = {}
    for name in ("patients_current", "patients_new", "discharged_evening"):
        v = number_field(form, name, errors, integer=True, required=name in REQUIRED)
        data[name] = None if v is None else int(v)
    on_o2: dict[Therapy, int] = {}
    for t in Therapy:
        v = number_field(form, "o2_" + t.value, errors, integer=True)
        if v is not None:
            on_o2[t] = int(v)
    data["on_oxygen"] = on_o2
    reasons: dict[str, str] = {}
    for name, _label, _kind, units in QUANTITIES:
        qty = quantity_field(form, name, units, errors)
        if qty is not None:
            data[name] = qty
        reason = text_field(form, "reason_" + name, errors)
        if reason:
            reasons[name] = reason
    data["reasons"] = reasons
    confirm: dict[str, str] = {}
    for key, value in form.items():
        if key.startswith("confirm_") and isinstance(value, str) and value.strip():
            # The form's names are the rules' field names (therapies: `o2_<therapy>`).
            confirm[key.removeprefix("confirm_")] = value.strip()
    data["confirm"] = confirm
    notes = text_field(form, "notes", errors)
    data["notes"] = notes or None
    if errors:
        return None
    return frep.FacilityReportIn(**data)


@router.post(
    "/facilities/{facility_id}/report",
    dependencies=[policy(roles=FILE_ROLES, scope=Scope.FACILITY)],
)
async def file_report(
    *,
    request: Request,
    facility_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
) -> Response:
    """File (or edit) the 16:00 report; all-or-nothing with every refused field explained."""
    form = await read_form(request)
    d = past_day(form.get("day"), local_today(now, cfg))
    errors = FormErrors(locale)
    body = parse_report(form, errors)
    lock_message = None
    if body is not None:
        try:
            saved = await frep.file_report(
                conn, facility_id, d, body, author=me.username, cfg=cfg, now=now
            )
        except ValidationFailed as exc:
            errors.refused(exc.errors, _form_field)
        except Locked as exc:
            lock_message = text(exc.key, locale)
        else:
            await audit(
                conn,
                me,
                "file",
                "facility_report",
                saved.id,
                saved.before,
                {**saved.snapshot, "report_day": d, "revision": saved.revision},
                org_id=facility_id,
            )
            msg = i18n.gettext(locale, "Report saved (revision %(n)d).") % {"n": saved.revision}
            return await redirect_saved(
                conn, f"/facilities/{facility_id}/report?day={d.isoformat()}", msg
            )
    return await _render(
        request,
        conn,
        facility_id,
        d,
        me=me,
        locale=locale,
        cfg=cfg,
        now=now,
        form=form,
        errors=errors.errors,
        warnings=errors.warnings,
        status_code=422,
        lock_message=lock_message,
    )


@router.post(
    "/facilities/{facility_id}/report/morning",
    dependencies=[policy(roles=FILE_ROLES, scope=Scope.FACILITY)],
)
async def morning_update(
    *,
    request: Request,
    facility_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
) -> Response:
    """The short morning update: discharges since 16:00 yesterday, as of 08:00."""
    form = await read_form(request)
    d = past_day(form.get("day"), local_today(now, cfg))
    errors = FormErrors(locale)
    value = number_field(form, "discharged_morning", errors, required=True, integer=True)
    lock_message = None
    if value is not None and not errors:
        try:
            saved = await frep.morning_update(
                conn,
                facility_id,
                d,
                frep.MorningUpdateIn(discharged_morning=int(value)),
                author=me.username,
                cfg=cfg,
                now=now,
            )
        except ValidationFailed as exc:
            errors.refused(exc.errors)
        except Locked as exc:
            lock_message = text(exc.key, locale)
        else:
            await audit(
                conn,
                me,
                "morning_update",
                "facility_report",
                saved.id,
                {"discharged_morning": (saved.before or {}).get("discharged_morning")},
                {"report_day": d, "discharged_morning": int(value)},
                org_id=facility_id,
            )
            return await redirect_saved(
                conn,
                f"/facilities/{facility_id}/report?day={d.isoformat()}",
                i18n.gettext(locale, "Morning update saved."),
            )
    return await _render(
        request,
        conn,
        facility_id,
        d,
        me=me,
        locale=locale,
        cfg=cfg,
        now=now,
        errors=errors.errors,
        status_code=422,
        lock_message=lock_message,
        morning_typed=str(form.get("discharged_morning") or ""),
    )
