"""Facility tank pages: contents over the last 7 days, refills, days of supply, corrections.

Every figure comes from the accounting data layer (api.accounting): windows, refills, the
contents series with the corrections overlay, days of supply and status.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from psycopg import AsyncConnection
from starlette.responses import Response

from api import i18n
from api.accounting import AccountingConfig, Status, average_daily, days_of_supply, status
from api.accounting import correction_preview as cp
from api.accounting import corrections as corr
from api.accounting.stock import DayUse, usable_kg
from api.accounting.telemetry import calibrations, contents_series, ensure_windows, level_sensors
from api.accounting.windows import days, report_day_of
from api.audit import audit
from api.db import fetch_all, fetch_one
from api.deps import CfgDep, DbDep, LocaleDep, NowDep, PrincipalDep, Role, Scope, policy
from api.reports.messages import text
from api.scope import scope_params
from api.web import page_exports
from api.web import queries as q
from api.web.forms import FormErrors, local_datetime_field, number_field, redirect_saved, text_field
from api.web.templating import flash, render

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

VIEW_ROLES = (Role.FACILITY, Role.SYT, Role.BYT, Role.ADMIN, Role.ENGINEER)
CORRECT_ROLES = (Role.FACILITY, Role.ENGINEER, Role.ADMIN)


@dataclass(frozen=True, slots=True)
class TankStatus:
    """A tank's live figures for its page and the facility's tank list."""

    id: int
    code: str
    name: str
    capacity_kg: float
    min_usable_kg: float
    monitored: bool
    contents_kg: float | None
    usable_kg: float | None
    avg_daily_kg: float | None
    days_of_supply: float | None
    status: Status
    fill_pct: float | None


async def tank_statuses(
    conn: AsyncConnection[Any], tanks: list[dict[str, Any]], cfg: AccountingConfig, now: datetime
) -> tuple[list[TankStatus], dict[tuple[int, date], Any]]:
    """Live figures per tank from the accounting windows of the last 7 report days."""
    today = report_day_of(now, cfg)
    week = days(today - timedelta(days=6), today)
    ids = [int(t["id"]) for t in tanks if t["monitored"]]
    figs = await ensure_windows(conn, ids, week[0], today, cfg, now=now)
    out = []
    for t in tanks:
        contents = usable = avg = dos = None
        if t["monitored"]:
            f = figs.get((t["id"], today))
            # The open window's close is the latest contents; fall back to yesterday's close.
            g = figs.get((t["id"], today - timedelta(days=1)))
            contents = f.close_kg if f and f.close_kg is not None else (g.close_kg if g else None)
            usable = usable_kg(contents, float(t["min_usable_kg"]))
            avg = average_daily(
                [
                    DayUse(w.consumption_kg, w.coverage)
                    if (w := figs.get((t["id"], d)))
                    else DayUse(None, 0.0)
                    for d in week
                ]
            )
            dos = days_of_supply(usable, avg)
        out.append(
            TankStatus(
                int(t["id"]),
                t["code"],
                t["name"],
                float(t["capacity_kg"]),
                float(t["min_usable_kg"]),
                bool(t["monitored"]),
                contents,
                usable,
                avg,
                dos,
                status(dos, cfg.needs_more_days),
                None if contents is None else 100.0 * contents / float(t["capacity_kg"]),
            )
        )
    return out, figs


async def _facility(conn: AsyncConnection[Any], facility_id: int) -> dict[str, Any]:
    row = await fetch_one(conn, q.FACILITY, facility=facility_id)
    if row is None:
        raise HTTPException(404, "not found")
    return row


@router.get(
    "/facility",
    dependencies=[policy(roles=[Role.FACILITY], scope=Scope.SELF)],
)
async def my_facility(me: PrincipalDep) -> Response:
    """Facility staff: straight to their own facility's tanks."""
    return RedirectResponse(f"/facilities/{me.org_id}/tanks", status_code=303)


@router.get(
    "/facilities/{facility_id}/tanks",
    dependencies=[policy(roles=VIEW_ROLES, scope=Scope.FACILITY)],
)
async def tank_list(
    *,
    request: Request,
    facility_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
) -> Response:
    """A facility's tanks with contents, days of supply and status."""
    facility = await _facility(conn, facility_id)
    tanks = await fetch_all(conn, q.FACILITY_TANKS, facility=facility_id)
    statuses, _ = await tank_statuses(conn, tanks, cfg, now)
    if kind := page_exports.requested(request):
        rows = [dataclasses.asdict(t) for t in statuses]
        title = f"tanks-{facility['code']}"
        return page_exports.download(kind, title, page_exports.TANK_COLUMNS, rows, locale=locale)
    return render(
        request,
        "accounting/tanks.html",
        {"facility": facility, "tanks": statuses, "now": now, "cfg": cfg},
        locale=locale,
        principal=me,
    )


def _chart(points: list[Any], locale: str, cfg: AccountingConfig) -> dict[str, Any]:
    return {
        "labels": [i18n.format_datetime(p.ts, locale) for p in points],
        "kg": [round(p.kg, 1) for p in points],
        "label": i18n.gettext(locale, "Contents (kg LOX)"),
    }


async def _tank_context(
    *,
    conn: AsyncConnection[Any],
    facility_id: int,
    tank_id: int,
    cfg: AccountingConfig,
    now: datetime,
    locale: str,
) -> dict[str, Any]:
    facility = await _facility(conn, facility_id)
    tanks = await fetch_all(conn, q.FACILITY_TANKS, facility=facility_id)
    tank = next((t for t in tanks if t["id"] == tank_id), None)
    if tank is None:
        raise HTTPException(404, "not found")
    [st], figs = await tank_statuses(conn, [tank], cfg, now)
    today = report_day_of(now, cfg)
    week = days(today - timedelta(days=6), today)
    windows = [(d, figs.get((tank_id, d))) for d in reversed(week)]
    points: list[Any] = []
    sensors = await level_sensors(conn, [tank_id])
    if tank_id in sensors:
        cals = await calibrations(conn, [tank_id])
        points = await contents_series(
            conn, sensors[tank_id], cals.get(tank_id), now - timedelta(days=7), now
        )
    refills = await fetch_all(conn, q.TANK_REFILLS, tank=tank_id, since=now - timedelta(days=7))
    return {
        "facility": facility,
        "tank": st,
        "windows": windows,
        "refills": refills,
        "chart": _chart(points, locale, cfg),
        "sensors": await fetch_all(conn, q.TANK_SENSORS, tank=tank_id),
        "corrections": await corr.for_tank(conn, tank_id),
        "reference": cfg.reference,
        "now": now,
        "needs_more_days": cfg.needs_more_days,
        # The correction form opens on the last hour, in Vietnam time.
        "default_from": i18n.to_local(now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "default_to": i18n.to_local(now).strftime("%Y-%m-%dT%H:%M"),
    }


@router.get(
    "/facilities/{facility_id}/tanks/{tank_id}",
    dependencies=[policy(roles=VIEW_ROLES, scope=Scope.FACILITY)],
)
async def tank_page(
    *,
    request: Request,
    facility_id: int,
    tank_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
) -> Response:
    """One tank: contents chart, daily windows, refills, days of supply and corrections;
    `?format=csv|xlsx` the report days (or `&list=refills` the refills) as a file."""
    ctx = await _tank_context(
        conn=conn, facility_id=facility_id, tank_id=tank_id, cfg=cfg, now=now, locale=locale
    )
    if kind := page_exports.requested(request):
        title = f"{ctx['facility']['code']}-{ctx['tank'].code}"
        if page_exports.requested_list(request, ("days", "refills")) == "refills":
            return page_exports.download(
                kind,
                f"refills-{title}",
                page_exports.REFILL_COLUMNS,
                ctx["refills"],
                locale=locale,
            )
        return page_exports.download(
            kind,
            f"report-days-{title}",
            page_exports.TANK_DAY_COLUMNS,
            page_exports.tank_day_rows(ctx["windows"]),
            locale=locale,
        )
    ctx.update(form={}, errors={}, can_correct=me.role in CORRECT_ROLES, preview=None, spark=None)
    return render(request, "accounting/tank.html", ctx, locale=locale, principal=me)


@router.post(
    "/facilities/{facility_id}/tanks/{tank_id}/corrections",
    dependencies=[policy(roles=CORRECT_ROLES, scope=Scope.FACILITY)],
)
async def add_correction(
    *,
    request: Request,
    facility_id: int,
    tank_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
) -> Response:
    """Mark a range invalid or replace its value, with a reason (raw readings are kept)."""
    form = dict(await request.form())
    errors = FormErrors(locale)
    sensors = await fetch_all(conn, q.TANK_SENSORS, tank=tank_id)
    sensor_ids = {int(s["id"]) for s in sensors}
    try:
        sensor_id = int(str(form.get("sensor_id", "")))
    except ValueError:
        sensor_id = -1
    if sensor_id not in sensor_ids:
        errors.add("sensor_id", "Choose a sensor of this tank.")
    ts_from = local_datetime_field(form, "ts_from", errors)
    ts_to = local_datetime_field(form, "ts_to", errors)
    action_raw = str(form.get("action", ""))
    action = None
    try:
        action = corr.CorrectionAction(action_raw)
    except ValueError:
        errors.add("action", "Choose what to do with the readings.")
    value = number_field(form, "value", errors, required=action is corr.CorrectionAction.REPLACE)
    if action is corr.CorrectionAction.INVALIDATE:
        value = None
    # A corrected value's unit is chosen, never guessed; an invalidation has no value.
    raw_unit = str(form.get("value_unit") or "")
    try:
        unit = cp.ValueUnit(raw_unit or "sensor")
        if value is not None and not raw_unit:
            raise ValueError(raw_unit)
    except ValueError:
        unit = cp.ValueUnit.SENSOR
        errors.add("value_unit", "Choose the unit of the value.")
    reason = text_field(form, "reason", errors, required=True)
    if not errors and ts_from and ts_to and ts_to < ts_from:
        errors.add("ts_to", "The end must not be before the start.")
    effect = None
    wants_preview = form.get("op") == "preview"
    if not errors and ts_from and ts_to and action is not None:
        try:
            effect = await cp.preview(
                conn,
                sensor_id=sensor_id,
                ts_from=ts_from,
                ts_to=ts_to,
                action=action,
                value=value,
                unit=unit,
                reason=reason,
                author=me.username,
                cfg=cfg,
                now=now,
            )
            if not wants_preview and effect.needs_confirmation and form.get("confirm") != "1":
                raise corr.CorrectionError("correction.error.confirm", "confirm")
            if not wants_preview:
                made = await corr.create(
                    conn,
                    sensor_id=sensor_id,
                    ts_from=ts_from,
                    ts_to=ts_to,
                    action=action,
                    value=effect.value_sensor,
                    reason=reason,
                    author=me.username,
                    cfg=cfg,
                    now=now,
                )
        except corr.CorrectionError as exc:
            errors.errors.setdefault(exc.field or "reason", text(exc.key, locale))
        else:
            if not wants_preview:
                await audit(
                    conn,
                    me,
                    "create",
                    "correction",
                    made.id,
                    after={
                        "sensor_id": sensor_id,
                        "ts_from": ts_from,
                        "ts_to": ts_to,
                        "action": action.value,
                        "value": effect.value_sensor,
                        "typed": {"value": value, "unit": unit.value},
                        "reason": reason,
                    },
                    org_id=facility_id,
                )
                return await redirect_saved(
                    conn,
                    f"/facilities/{facility_id}/tanks/{tank_id}#corrections",
                    i18n.gettext(locale, "Correction saved."),
                )
    ctx = await _tank_context(
        conn=conn, facility_id=facility_id, tank_id=tank_id, cfg=cfg, now=now, locale=locale
    )
    ctx.update(
        form=form,
        errors=errors.errors,
        can_correct=True,
        preview=effect,
        spark=_sparkline(effect.readings, ts_from, ts_to) if effect and ts_from and ts_to else None,
    )
    code = 200 if wants_preview and not errors else 422
    return render(
        request, "accounting/tank.html", ctx, locale=locale, principal=me, status_code=code
    )


def _sparkline(
    readings: list[tuple[str, float]], ts_from: datetime, ts_to: datetime
) -> dict[str, Any] | None:
    """A small SVG chart of the readings (300×80): the polyline and the corrected window."""
    if len(readings) < 2:
        return None
    ts = [datetime.fromisoformat(t).timestamp() for t, _v in readings]
    vs = [v for _t, v in readings]
    t0, t1 = ts[0], ts[-1]
    lo, hi = min(vs), max(vs)
    span_t, span_v = max(t1 - t0, 1.0), max(hi - lo, 1e-9)

    def x(t: float) -> float:
        return round(300 * (t - t0) / span_t, 1)

    points = " ".join(
        f"{x(t)},{round(78 - 76 * (v - lo) / span_v, 1)}" for t, v in zip(ts, vs, strict=True)
    )
    a, b = x(max(t0, ts_from.timestamp())), x(min(t1, ts_to.timestamp()))
    return {"points": points, "x": a, "width": max(1.0, b - a), "low": lo, "high": hi}


@router.post(
    "/facilities/{facility_id}/tanks/{tank_id}/corrections/{correction_id}/revert",
    dependencies=[policy(roles=CORRECT_ROLES, scope=Scope.FACILITY)],
)
async def revert_correction(
    *,
    request: Request,
    facility_id: int,
    tank_id: int,
    correction_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
) -> Response:
    """Revert a correction (kept in the list, marked reverted, with the reason)."""
    form = dict(await request.form())
    reason = str(form.get("revert_reason", "")).strip()
    existing = await corr.get(conn, correction_id)
    owner = await corr.sensor_facility(conn, existing.sensor_id) if existing else None
    if existing is None or owner != facility_id:
        raise HTTPException(404, "not found")
    response = RedirectResponse(
        f"/facilities/{facility_id}/tanks/{tank_id}#corrections", status_code=303
    )
    if not reason:
        flash(response, i18n.gettext(locale, "Give a reason for reverting."), "error")
        return response
    done = await corr.revert(conn, correction_id, author=me.username, reason=reason, cfg=cfg)
    if done is not None:
        await audit(
            conn,
            me,
            "revert",
            "correction",
            correction_id,
            after={"reason": reason},
            org_id=facility_id,
        )
        await conn.commit()
        flash(response, i18n.gettext(locale, "Correction reverted."), "success")
    return response


@router.get(
    "/facilities",
    dependencies=[policy(roles=VIEW_ROLES, scope=Scope.NATIONAL)],
)
async def facility_list(
    *, request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """The facilities in the caller's scope (engineers: their assigned ones), to their tanks."""
    rows = await fetch_all(conn, q.FACILITIES_IN_SCOPE, **scope_params(me), parent=None)
    if kind := page_exports.requested(request):
        cols = page_exports.FACILITY_COLUMNS
        return page_exports.download(kind, "facilities", cols, rows, locale=locale)
    return render(
        request, "accounting/facilities.html", {"rows": rows}, locale=locale, principal=me
    )
