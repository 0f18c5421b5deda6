"""Supplier pages: the daily production report and the deliveries to facilities, each delivery
cross-checked against the facility's refill. Built on api.reports.supplier."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from api import i18n
from api.accounting.windows import local_today
from api.audit import audit
from api.db import fetch_all, fetch_one
from api.deps import CfgDep, DbDep, LocaleDep, NowDep, PrincipalDep, Role, Scope, policy
from api.reports import supplier as srep
from api.reports.errors import ValidationFailed
from api.reports.units import EntryUnit
from api.web import queries as q
from api.web.forms import (
    FormErrors,
    number_field,
    past_day,
    quantity_field,
    read_form,
    redirect_saved,
)
from api.web.templating import render

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

VIEW_ROLES = (Role.SUPPLIER, Role.BYT, Role.ADMIN)
FILE_ROLES = (Role.SUPPLIER,)
DELIVERY_ROWS = 5
LIQUID_UNITS = (EntryUnit.KG, EntryUnit.TONNE, EntryUnit.M3_LIQUID)
GAS_UNITS = (EntryUnit.NM3, EntryUnit.KG)
UNIT_LABELS = {"kg": "kg LOX", "t": "t LOX", "m3_liquid": "m3 liquid", "nm3": "Nm3 gas"}


@router.get("/supplier", dependencies=[policy(roles=FILE_ROLES, scope=Scope.SELF)])
async def my_supplier(me: PrincipalDep) -> Response:
    """Supplier staff: straight to their own daily report."""
    return RedirectResponse(f"/suppliers/{me.org_id}/report", status_code=303)


async def _render(
    request: Request,
    conn: Any,
    supplier_id: int,
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
) -> Response:
    sup = await fetch_one(conn, q.SUPPLIER, supplier=supplier_id)
    if sup is None:
        raise HTTPException(404, "not found")
    view = await srep.view(
        conn,
        supplier_id,
        day,
        cfg=cfg,
        now=now,
        show_facility_figures=me.role in (Role.BYT, Role.ADMIN),
    )
    values: dict[str, Any] = dict(form or {})
    if form is None and view is not None:
        typed: tuple[tuple[str, float | None], ...] = (
            ("production_t", view.production_t),
            ("capacity_normal_tpd", view.capacity_normal_tpd),
            ("capacity_full_tpd", view.capacity_full_tpd),
            ("cylinders_filled", view.cylinders_filled),
        )
        for name, figure in typed:
            if figure is not None:
                values[name] = i18n.format_number(figure, locale, 3).rstrip("0").rstrip(",.")
        if view.lox_stock_kg is not None:
            values["lox_stock"] = i18n.format_number(view.lox_stock_kg, locale)
            values["lox_stock_unit"] = "kg"
        for i, d in enumerate(view.deliveries):
            values[f"d{i}_facility"] = str(d.facility_id)
            values[f"d{i}_liquid"] = i18n.format_number(d.liquid_kg, locale) if d.liquid_kg else ""
            values[f"d{i}_liquid_unit"] = "kg"
            values[f"d{i}_gas"] = i18n.format_number(d.gas_nm3, locale) if d.gas_nm3 else ""
            values[f"d{i}_cylinders"] = str(d.cylinders or "")
    elif form is None:
        values["capacity_normal_tpd"] = i18n.format_number(sup["capacity_normal_tpd"], locale, 1)
        values["capacity_full_tpd"] = i18n.format_number(sup["capacity_full_tpd"], locale, 1)
    facilities = await fetch_all(
        conn, q.FACILITIES_IN_SCOPE, scope_national=True, scope_facilities=[], parent=None
    )
    rows = max(DELIVERY_ROWS, len(view.deliveries) + 2 if view else 0)
    return render(
        request,
        "reports/supplier_report.html",
        {
            "supplier": sup,
            "day": day,
            "today": local_today(now, cfg),
            "view": view,
            "values": values,
            "errors": errors or {},
            "warnings": warnings or {},
            "facilities": facilities,
            "rows": range(rows),
            "liquid_units": LIQUID_UNITS,
            "gas_units": GAS_UNITS,
            "unit_labels": UNIT_LABELS,
            "can_file": me.role in FILE_ROLES,
        },
        locale=locale,
        principal=me,
        status_code=status_code,
    )


@router.get(
    "/suppliers/{supplier_id}/report",
    dependencies=[policy(roles=VIEW_ROLES, scope=Scope.SUPPLIER)],
)
async def report_page(
    *,
    request: Request,
    supplier_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
    day: str | None = None,
) -> Response:
    """Production, capacity, stock and deliveries of day D (default today)."""
    d = past_day(day, local_today(now, cfg))
    return await _render(request, conn, supplier_id, d, me=me, locale=locale, cfg=cfg, now=now)


def parse_report(form: dict[str, Any], errors: FormErrors) -> srep.SupplierReportIn | None:
    """The supplier report from the form, recording field errors next to the fields."""
    production = number_field(form, "production_t", errors, required=True)
    normal = number_field(form, "capacity_normal_tpd", errors)
    full = number_field(form, "capacity_full_tpd", errors)
    stock = quantity_field(form, "lox_stock", LIQUID_UNITS, errors)
    cylinders = number_field(form, "cylinders_filled", errors, integer=True)
    deliveries = []
    i = 0
    while f"d{i}_facility" in form:
        fac = str(form.get(f"d{i}_facility") or "")
        liquid = quantity_field(form, f"d{i}_liquid", LIQUID_UNITS, errors)
        gas = quantity_field(form, f"d{i}_gas", GAS_UNITS, errors)
        cyl = number_field(form, f"d{i}_cylinders", errors, integer=True)
        if fac.isdigit():
            deliveries.append(
                srep.DeliveryIn(
                    facility_id=int(fac), liquid=liquid, gas=gas, cylinders=int(cyl or 0)
                )
            )
        elif liquid or gas or cyl:
            errors.add(f"d{i}_facility", "Choose the facility that received the delivery.")
        i += 1
    if errors or production is None:
        return None
    confirm = {
        k.removeprefix("confirm_"): v.strip()
        for k, v in form.items()
        if k.startswith("confirm_") and isinstance(v, str) and v.strip()
    }
    return srep.SupplierReportIn(
        confirm=confirm,
        production_t=production,
        capacity_normal_tpd=normal,
        capacity_full_tpd=full,
        lox_stock=stock,
        cylinders_filled=None if cylinders is None else int(cylinders),
        deliveries=deliveries,
    )


def _form_field(name: str) -> str:
    # The data layer names a delivery's fields `deliveries.<i>.<field>`; the form `d<i>_<field>`.
    parts = name.split(".")
    if parts[0] != "deliveries":
        return name
    return f"d{parts[1]}_{'facility' if parts[2] == 'facility_id' else parts[2]}"


@router.post(
    "/suppliers/{supplier_id}/report",
    dependencies=[policy(roles=FILE_ROLES, scope=Scope.SUPPLIER)],
)
async def save_report(
    *,
    request: Request,
    supplier_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
) -> Response:
    """Save the production and delivery report (all or nothing, a revision each time)."""
    form = await read_form(request)
    d = past_day(form.get("day"), local_today(now, cfg))
    errors = FormErrors(locale)
    body = parse_report(form, errors)
    if body is not None:
        try:
            saved = await srep.save(
                conn, supplier_id, d, body, author=me.username, cfg=cfg, now=now
            )
        except ValidationFailed as exc:
            errors.refused(exc.errors, _form_field)
        else:
            await audit(
                conn,
                me,
                "file",
                "supplier_report",
                saved.id,
                saved.before,
                {**body.model_dump(mode="json"), "report_day": d, "revision": saved.revision},
                org_id=supplier_id,
            )
            return await redirect_saved(
                conn,
                f"/suppliers/{supplier_id}/report?day={d.isoformat()}",
                i18n.gettext(locale, "Report saved (revision %(n)d).") % {"n": saved.revision},
            )
    return await _render(
        request,
        conn,
        supplier_id,
        d,
        me=me,
        locale=locale,
        cfg=cfg,
        now=now,
        form=form,
        errors=errors.errors,
        warnings=errors.warnings,
        status_code=422,
    )
