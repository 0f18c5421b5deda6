"""Administrator pages: facilities, tanks with their calibration tables, gateways and sensors
(the accounts page is api.accounts.users_pages): lists, and forms to create and edit them. The
checks and writes are in admin_registry; every write is audited in its own transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from psycopg import AsyncConnection
from starlette.datastructures import UploadFile
from starlette.responses import Response

from api import i18n
from api.admin import registry as reg
from api.audit import audit
from api.db import fetch_all, fetch_one
from api.deps import DbDep, LocaleDep, NowDep, PrincipalDep, Role, Scope, policy
from api.scope import Principal
from api.web import crud, page_exports
from api.web import queries as q
from api.web.crud import Record
from api.web.forms import FormErrors, local_datetime_field, number_field, read_form, redirect_saved
from api.web.templating import render
from oxy.contract import UNITS, Quantity

router = APIRouter(include_in_schema=False)

ADMIN = (Role.ADMIN,)
ADMIN_ONLY = policy(roles=ADMIN, scope=Scope.NATIONAL)

Conn = AsyncConnection[Any]  # the request's connection (DbDep)


@router.get("/admin/facilities", dependencies=[policy(roles=ADMIN, scope=Scope.NATIONAL)])
async def facilities(
    *, request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """Every facility with its reporting parent, beds, position, tanks and gateways."""
    rows = await fetch_all(conn, q.ADMIN_FACILITIES)
    if kind := page_exports.requested(request):
        cols = page_exports.ADMIN_FACILITY_COLUMNS
        return page_exports.download(kind, "facilities", cols, rows, locale=locale)
    parents = await fetch_all(conn, q.REPORTING_PARENTS)
    suppliers = await fetch_all(conn, q.SUPPLIERS)
    return render(
        request,
        "admin/admin_facilities.html",
        {"rows": rows, "parents": parents, "suppliers": suppliers},
        locale=locale,
        principal=me,
    )


@router.get("/admin/tanks", dependencies=[policy(roles=ADMIN, scope=Scope.NATIONAL)])
async def tanks(*, request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep) -> Response:
    """Every tank with its current calibration version."""
    rows = await fetch_all(conn, q.ADMIN_TANKS)
    if kind := page_exports.requested(request):
        return page_exports.download(
            kind, "tanks", page_exports.ADMIN_TANK_COLUMNS, rows, locale=locale
        )
    return render(request, "admin/admin_tanks.html", {"rows": rows}, locale=locale, principal=me)


@router.get(
    "/admin/tanks/{tank_id}/calibration", dependencies=[policy(roles=ADMIN, scope=Scope.NATIONAL)]
)
async def calibration(
    *, request: Request, tank_id: int, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """A tank's calibration (strapping) tables, every version: DP (inH2O) to contents (kg)."""
    return await _calibration_page(request, conn, me, locale, tank_id, {}, {})


async def _calibration_page(  # noqa: PLR0917
    request: Request,
    conn: Conn,
    me: Principal,
    locale: str,
    tank_id: int,
    form: dict[str, str],
    errors: dict[str, str],
    uncovered: int = 0,
) -> Response:
    tank = next((t for t in await fetch_all(conn, q.ADMIN_TANKS) if t["id"] == tank_id), None)
    if tank is None:
        raise HTTPException(404, "not found")
    points = await fetch_all(conn, q.CALIBRATION_POINTS, tank=tank_id)
    versions: dict[int, dict[str, object]] = {}
    for p in points:
        v = versions.setdefault(
            p["version"],
            {
                "version": p["version"],
                "valid_from": p["valid_from"],
                "note": p["note"],
                "points": [],
            },
        )
        v["points"].append((p["dp_inh2o"], p["contents_kg"]))  # type: ignore[attr-defined]
    return render(
        request,
        "admin/admin_calibration.html",
        {
            "tank": tank,
            "versions": list(versions.values()),
            "form": form,
            "errors": errors,
            "uncovered": uncovered,
        },
        locale=locale,
        principal=me,
        status_code=422 if errors or uncovered else 200,
    )


@router.get("/admin/gateways", dependencies=[policy(roles=ADMIN, scope=Scope.NATIONAL)])
async def gateways(
    *, request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """Gateways (last reading received) and their sensors, with forms to add both."""
    if kind := page_exports.requested(request):
        rows = await fetch_all(conn, q.ADMIN_GATEWAYS)
        cols = page_exports.ADMIN_GATEWAY_COLUMNS
        return page_exports.download(kind, "gateways", cols, rows, locale=locale)
    return await _gateways_page(request, conn, me, locale, {}, {})


async def _gateways_page(  # noqa: PLR0917
    request: Request,
    conn: Conn,
    me: Principal,
    locale: str,
    form: dict[str, str],
    errors: dict[str, str],
) -> Response:
    return render(
        request,
        "admin/admin_gateways.html",
        {
            "gateways": await fetch_all(conn, q.ADMIN_GATEWAYS),
            "sensors": await fetch_all(conn, q.ADMIN_SENSORS),
            "facilities": await fetch_all(conn, reg.FACILITY_OPTIONS),
            "tanks": await fetch_all(conn, q.ADMIN_TANKS),
            "quantities": [x.value for x in Quantity],
            "units": sorted(UNITS),
            "form": form,
            "errors": errors,
        },
        locale=locale,
        principal=me,
        status_code=422 if errors else 200,
    )


# ------------------------------------------------------------------------------- facilities


async def _facility_form(  # noqa: PLR0917
    request: Request,
    conn: Conn,
    me: Principal,
    locale: str,
    form: dict[str, str],
    errors: dict[str, str],
    facility: Record | None,
) -> Response:
    return render(
        request,
        "admin/admin_facility_form.html",
        {
            "facility": facility,
            "form": form,
            "errors": errors,
            "parents": await fetch_all(conn, q.REPORTING_PARENTS),
            "provinces": await fetch_all(conn, reg.PROVINCE_OPTIONS),
            "types": reg.FACILITY_TYPES,
        },
        locale=locale,
        principal=me,
        status_code=422 if errors else 200,
    )


async def _check_facility(
    conn: Conn, form: dict[str, str], errors: FormErrors, row: Record | None
) -> reg.Checked | None:
    existing = None if row is None else str(row["code"])
    return await reg.check_facility(conn, form, errors, existing=existing)


async def _write_facility(conn: Conn, checked: crud.Checked, row: Record | None) -> int:
    org_id = await reg.write_facility(conn, checked.values)
    return org_id if row is None else int(row["id"])


async def _load_facility(conn: Conn, item_id: int) -> Record | None:
    return await fetch_one(conn, reg.FACILITY_FOR_EDIT, facility=item_id)


crud.mount(
    router,
    crud.Entity(
        kind="facility",
        path="/admin/facilities",
        policy=ADMIN_ONLY,
        page=_facility_form,
        load=_load_facility,
        form_of=lambda row, _locale: {n: reg.form_text(row.get(n)) for n in reg.FACILITY_FIELDS},
        check=_check_facility,
        write=_write_facility,
        org_of=lambda row: int(row["id"]),
        saved_to=lambda _id, _created: "/admin/facilities",
        blank=lambda _request: {},
    ),
)


# ------------------------------------------------------------------------------------ tanks


async def _tank_form(  # noqa: PLR0917
    request: Request,
    conn: Conn,
    me: Principal,
    locale: str,
    form: dict[str, str],
    errors: dict[str, str],
    tank: Record | None,
) -> Response:
    return render(
        request,
        "admin/admin_tank_form.html",
        {
            "tank": tank,
            "form": form,
            "errors": errors,
            "facilities": await fetch_all(conn, reg.FACILITY_OPTIONS),
        },
        locale=locale,
        principal=me,
        status_code=422 if errors else 200,
    )


async def _check_tank(
    conn: Conn, form: dict[str, str], errors: FormErrors, row: Record | None
) -> reg.Checked | None:
    return await reg.check_tank(conn, form, errors, existing=row)


async def _write_tank(conn: Conn, checked: crud.Checked, row: Record | None) -> int:
    tank_id = await reg.write_tank(conn, checked.values)
    return tank_id if row is None else int(row["id"])


async def _load_tank(conn: Conn, item_id: int) -> Record | None:
    return await fetch_one(conn, reg.TANK_FOR_EDIT, tank=item_id)


TANKS = crud.Entity(
    kind="tank",
    path="/admin/tanks",
    policy=ADMIN_ONLY,
    page=_tank_form,
    load=_load_tank,
    form_of=lambda row, _locale: {n: reg.form_text(row.get(n)) for n in reg.TANK_FORM_FIELDS},
    check=_check_tank,
    write=_write_tank,
    org_of=lambda row: int(row["facility_id"]),
    # A new tank goes on to its first calibration table.
    saved_to=lambda tank_id, created: (
        f"/admin/tanks/{tank_id}/calibration" if created else "/admin/tanks"
    ),
    blank=lambda request: {"facility_id": request.query_params.get("facility", "")},
)
crud.mount(router, TANKS)


@router.post("/admin/tanks/{tank_id}/calibration", dependencies=[ADMIN_ONLY])
async def calibration_add(
    *,
    request: Request,
    tank_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    now: NowDep,
) -> Response:
    """Add a new calibration version (versions are never edited: history stays as computed)."""
    tank = await TANKS.record(conn, tank_id)
    raw = await request.form()
    form = {k: v for k, v in raw.items() if isinstance(v, str)}
    upload = raw.get("points_file")
    text = form.get("points", "")
    if isinstance(upload, UploadFile) and upload.filename:
        try:
            text = (await upload.read()).decode("utf-8-sig")
        except UnicodeDecodeError:
            text = ""
        form["points"] = text
    errors = FormErrors(locale)
    # The start is an explicit choice: from the tank's first reading (a first version only), or
    # a date and time. Readings it would leave without a calibration are shown before saving.
    valid_from: datetime | None = None
    mode = form.get("valid_from_mode", "")
    if mode == "date":
        valid_from = local_datetime_field(form, "valid_from", errors)
    elif mode == "first_reading":
        valid_from = await reg.first_reading_start(conn, tank_id, now)
        if valid_from is None:
            errors.add("valid_from_mode", "Only a first version starts at the first reading.")
    else:
        errors.add("valid_from_mode", "Choose: from the first reading, or from a date and time.")
    note = form.get("note", "").strip()
    new = None
    if not errors and valid_from is not None:
        new = await reg.check_calibration(conn, tank, text, valid_from, note, errors=errors)
    if new is None:
        if not errors:
            errors.add("points", "This value is refused.")
        return await _calibration_page(request, conn, me, locale, tank_id, form, errors.errors)
    left = await reg.readings_before(conn, tank_id, new.valid_from)
    if left and form.get("confirm_uncovered") != "1":
        return await _calibration_page(request, conn, me, locale, tank_id, form, {}, left)
    cal_id = await reg.write_calibration(conn, tank_id, new)
    await audit(
        conn,
        me,
        "create",
        "tank_calibration",
        cal_id,
        after={
            "tank_id": tank_id,
            "version": new.version,
            "valid_from": new.valid_from,
            "note": new.note,
            "points": list(zip(new.table.dp, new.table.kg, strict=True)),
        },
        org_id=tank["facility_id"],
    )
    message = i18n.gettext(locale, "Saved.")
    left = await reg.readings_before(conn, tank_id, new.valid_from)
    if left:
        warning = i18n.gettext(
            locale, "Warning: %(n)s earlier readings have no calibration (no contents)."
        )
        message += " " + warning % {"n": i18n.format_number(left, locale)}
    return await redirect_saved(conn, f"/admin/tanks/{tank_id}/calibration", message)


# ------------------------------------------------------------------------ gateways, sensors


def _choice(form: dict[str, str], name: str, allowed: set[int], errors: FormErrors) -> int:
    try:
        value = int(form.get(name, ""))
    except ValueError:
        value = -1
    if value not in allowed:
        errors.add(name, "Choose one of the listed values.")
    return value


@router.post("/admin/gateways", dependencies=[ADMIN_ONLY])
async def gateway_create(
    *, request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """Register a gateway for a facility (its MQTT credentials come from `oxy devices add`)."""
    form = await read_form(request)
    errors = FormErrors(locale)
    facilities = {int(f["id"]) for f in await fetch_all(conn, reg.FACILITY_OPTIONS)}
    facility = _choice(form, "gw_facility_id", facilities, errors)
    sub = FormErrors(locale)
    code = reg.check_code({"code": form.get("gw_code", "")}, sub)
    errors.errors.update({f"gw_{k}": v for k, v in sub.errors.items()})
    name = form.get("gw_name", "").strip() or None
    gateway_id = None
    if not errors:
        gateway_id = await reg.insert_gateway(conn, facility, code, name)
        if gateway_id is None:
            errors.add("gw_code", "This code is already used.")
    if gateway_id is None:
        return await _gateways_page(request, conn, me, locale, form, errors.errors)
    after = {"facility_id": facility, "code": code, "name": name}
    await audit(conn, me, "create", "gateway", gateway_id, after=after, org_id=facility)
    return await redirect_saved(conn, "/admin/gateways", i18n.gettext(locale, "Saved."))


async def _sensor_values(
    conn: Conn, form: dict[str, str], errors: FormErrors, gateway: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The sensor fields a form typed (code, tank of the gateway's facility, quantity with a unit
    that measures it, valid range), or None with errors recorded next to the fields."""
    code = reg.check_code(form, errors)
    tank_id: int | None = None
    if form.get("tank_id"):
        try:
            tank_id = int(form["tank_id"])
        except ValueError:
            tank_id = -1
        if gateway is not None and not await fetch_one(
            conn, reg.TANK_OF_FACILITY, tank=tank_id, facility=gateway["facility_id"]
        ):
            errors.add("tank_id", "Choose a tank of the gateway's facility.")
    quantity = reg.check_unit(form.get("quantity", ""), form.get("unit", ""), errors)
    low = number_field(form, "valid_min", errors, minimum=None)
    high = number_field(form, "valid_max", errors, minimum=None)
    if low is not None and high is not None and high <= low:
        errors.add("valid_max", "The maximum must be above the minimum.")
    if errors or gateway is None or quantity is None:
        return None
    return {
        "gateway": gateway["id"],
        "code": code,
        "tank": tank_id,
        "quantity": quantity.value,
        "unit": form["unit"],
        "valid_min": low,
        "valid_max": high,
    }


@router.post("/admin/sensors", dependencies=[ADMIN_ONLY])
async def sensor_create(
    *, request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """Add a sensor to a gateway: its quantity, a unit that measures it, its valid range."""
    form = await read_form(request)
    errors = FormErrors(locale)
    gateways = {int(g["id"]) for g in await fetch_all(conn, q.ADMIN_GATEWAYS)}
    gateway_id = _choice(form, "gateway_id", gateways, errors)
    gateway = await fetch_one(conn, reg.GATEWAY, gateway=gateway_id) if gateway_id > 0 else None
    params = await _sensor_values(conn, form, errors, gateway)
    sensor_id = None
    if params is not None:
        sensor_id = await reg.insert_sensor(conn, params)
        if sensor_id is None:
            errors.add("code", "This code is already used.")
    if sensor_id is None or gateway is None:
        return await _gateways_page(request, conn, me, locale, form, errors.errors)
    await audit(
        conn, me, "create", "sensor", sensor_id, after=params, org_id=gateway["facility_id"]
    )
    return await redirect_saved(conn, "/admin/gateways", i18n.gettext(locale, "Saved."))


SENSOR_FORM_FIELDS = ("code", "tank_id", "quantity", "unit", "valid_min", "valid_max")


def _sensor_form_values(row: dict[str, Any], locale: str) -> dict[str, str]:
    form = {name: reg.form_text(row.get(name)) for name in SENSOR_FORM_FIELDS}
    if locale == "vi":  # read back by number_field: ',' is the Vietnamese decimal mark
        for name in ("valid_min", "valid_max"):
            form[name] = form[name].replace(".", ",")
    return form


async def _sensor_form(  # noqa: PLR0917
    request: Request,
    conn: Conn,
    me: Principal,
    locale: str,
    form: dict[str, str],
    errors: dict[str, str],
    sensor: Record | None,
    *,
    refusal: str | None = None,
) -> Response:
    assert sensor is not None  # a sensor is added on the gateways page, never on this form
    status = 200
    if refusal is not None:
        status = 409
    elif errors:
        status = 422
    return render(
        request,
        "admin/admin_sensor_form.html",
        {
            "sensor": sensor,
            "form": form,
            "errors": errors,
            "refusal": refusal,
            "telemetry": await reg.has_telemetry(conn, sensor["id"]),
            "tanks": await fetch_all(conn, reg.TANKS_OF_FACILITY, facility=sensor["facility_id"]),
            "quantities": [x.value for x in Quantity],
            "units": sorted(UNITS),
        },
        locale=locale,
        principal=me,
        status_code=status,
    )


async def _check_sensor(
    conn: Conn, form: dict[str, str], errors: FormErrors, row: Record | None
) -> reg.Checked | None:
    """The sensor's fields; the quantity of a sensor with readings stays, as its readings are
    stored in that quantity's unit."""
    assert row is not None
    gateway = {"id": row["gateway_id"], "facility_id": row["facility_id"]}
    params = await _sensor_values(conn, form, errors, gateway)
    if params is None:
        return None
    if params["quantity"] != row["quantity"] and await reg.has_telemetry(conn, row["id"]):
        errors.add("quantity", reg.QUANTITY_FIXED)
    return reg.Checked(values=params, notes=[])


async def _write_sensor(conn: Conn, checked: crud.Checked, row: Record | None) -> int | None:
    assert row is not None
    sensor_id = int(row["id"])
    saved = await reg.update_sensor(conn, {**checked.values, "sensor": sensor_id})
    return sensor_id if saved else None


async def _load_sensor(conn: Conn, item_id: int) -> Record | None:
    return await fetch_one(conn, reg.SENSOR_FOR_EDIT, sensor=item_id)


def _sensor_before(row: Record) -> dict[str, Any]:
    return {"gateway": row["gateway"], **{k: row[k] for k in SENSOR_FORM_FIELDS}}


def _sensor_after(checked: crud.Checked, row: Record | None) -> dict[str, Any]:
    assert row is not None
    values = checked.values
    after = {k: values["tank" if k == "tank_id" else k] for k in SENSOR_FORM_FIELDS}
    return {"gateway": row["gateway"], **after}


# Code, tank, quantity, unit and valid range of a sensor (its gateway stays), audited before and
# after; a sensor is added on the gateways page (sensor_create).
SENSORS = crud.Entity(
    kind="sensor",
    path="/admin/sensors",
    policy=ADMIN_ONLY,
    page=_sensor_form,
    load=_load_sensor,
    form_of=_sensor_form_values,
    check=_check_sensor,
    write=_write_sensor,
    org_of=lambda row: int(row["facility_id"]),
    saved_to=lambda _id, _created: "/admin/gateways",
    audit_before=_sensor_before,
    audit_after=_sensor_after,
)
crud.mount(router, SENSORS)


@router.post("/admin/sensors/{sensor_id}/delete", dependencies=[ADMIN_ONLY])
async def sensor_delete(
    *, request: Request, sensor_id: int, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """Delete a sensor that never stored telemetry; one with readings is refused (kept)."""
    row = await SENSORS.record(conn, sensor_id)
    if not await reg.delete_sensor(conn, sensor_id):
        form = _sensor_form_values(row, locale)
        refusal = i18n.gettext(locale, reg.HAS_READINGS)
        return await _sensor_form(request, conn, me, locale, form, {}, row, refusal=refusal)
    await audit(conn, me, "delete", "sensor", sensor_id, before=row, org_id=row["facility_id"])
    return await redirect_saved(conn, "/admin/gateways", i18n.gettext(locale, "Sensor deleted."))
