"""The Administrator's registry forms: facilities, tanks, calibration versions, gateways and
sensors. Facilities, tanks and calibration tables go through the bulk import's own validator
(api.registry.importer) and its upsert SQL, so a record typed here is checked exactly like a row of
an imported spreadsheet; sensors are checked against the wire contract's quantities and units."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection

from api import i18n
from api.db import fetch_one
from api.registry import importer as ri
from api.web.forms import FormErrors
from oxy.calibration import CalibrationTable
from oxy.contract import ContractError, Quantity, to_canonical

logger = logging.getLogger(__name__)

# The message shown next to the field for each of the import validator's issue codes; a code
# not listed here is shown as REFUSED.
_C = ri.IssueCode
ISSUE_MESSAGES: dict[ri.IssueCode, str] = {
    _C.REQUIRED: "This field is required.",
    _C.BAD_CODE: "Use letters, digits, '.', '_' or '-' (at most 64), without spaces.",
    _C.DECIMAL_COMMA: "Use a point as the decimal separator, e.g. 2.5",
    _C.NOT_FINITE: "Enter a number.",
    _C.NOT_A_NUMBER: "Enter a number.",
    _C.NEGATIVE: "The value must not be negative.",
    _C.NOT_POSITIVE: "The value must be greater than zero.",
    _C.NOT_WHOLE: "Enter a whole number.",
    _C.LAT_LON_PAIR: "Enter both latitude and longitude.",
    _C.OUTSIDE_VIETNAM: "The position is outside Vietnam.",
    _C.NOT_A_DATE: "Enter a valid date.",
    _C.NOT_A_TIMESTAMP: "Enter a valid date.",
    _C.UNKNOWN_PROVINCE: "Unknown province code.",
    _C.UNKNOWN_PARENT: (
        "The reporting parent must be a provincial health department or a ministry health office."
    ),
    _C.BAD_PARENT: (
        "The reporting parent must be a provincial health department or a ministry health office."
    ),
    _C.ICU_ABOVE_BEDS: "ICU beds must not exceed beds.",
    _C.ENDS_BEFORE_START: "The end must not be before the start.",
    _C.NOT_A_CHOICE: "Choose one of the listed values.",
    _C.CODE_OF_OTHER_KIND: "This code is already used.",
    _C.CODE_CASE_CLASH: "This code is already used.",
    _C.DP_TWICE: "A DP value appears twice.",
    _C.DUPLICATE_CODE: "This code is already used.",
    _C.DUPLICATE_TANK: "This code is already used.",
    _C.DUPLICATE_CONTACT: "This code is already used.",
    _C.MIN_USABLE_NOT_BELOW_CAPACITY: "The minimum usable amount must be below the capacity.",
    _C.UNKNOWN_FACILITY: "Choose a facility.",
    _C.CONTENTS_DECREASE: "Contents must not decrease as DP rises.",
    _C.ABOVE_CAPACITY: "Contents exceed the tank's capacity.",
    _C.CALIBRATION_TOO_FEW: "A calibration table needs at least two points.",
}
REFUSED = "This value is refused."

FACILITY_FIELDS: tuple[str, ...] = tuple(c.name for c in ri.COLUMNS["facilities"])
TANK_FORM_FIELDS: tuple[str, ...] = (
    "code",
    "name",
    "capacity_kg",
    "diameter_m",
    "min_usable_kg",
    "max_pressure_bar",
)
FACILITY_TYPES: tuple[str, ...] = (
    "hospital",
    "field_hospital",
    "treatment_centre",
    "clinic",
    "other",
)

FACILITY_FOR_EDIT = """
SELECT o.id, o.code, o.name, o.province_code, p.code AS parent_code, f.facility_type, f.address,
       f.latitude, f.longitude, f.beds, f.icu_beds, f.active_from, f.active_to
FROM organisations o JOIN facilities f ON f.org_id = o.id
LEFT JOIN organisations p ON p.id = o.parent_id
WHERE o.id = %(facility)s AND o.kind = 'facility'
"""

TANK_FOR_EDIT = """
SELECT t.id, t.facility_id, o.code AS facility_code, o.name AS facility, t.code, t.name,
       t.capacity_kg, t.orientation, t.diameter_m, t.height_m, t.min_usable_kg,
       t.max_pressure_bar, t.installed_on
FROM tanks t JOIN organisations o ON o.id = t.facility_id WHERE t.id = %(tank)s
"""

FACILITY_OPTIONS = """
SELECT o.id, o.code, o.name FROM organisations o JOIN facilities f ON f.org_id = o.id
ORDER BY o.name
"""

PROVINCE_OPTIONS = "SELECT code, name FROM admin_units ORDER BY name"

LATEST_CALIBRATION = """
SELECT max(version) AS version, max(valid_from) AS valid_from
FROM tank_calibrations WHERE tank_id = %(tank)s
"""

GATEWAY_BY_CODE = "SELECT id FROM gateways WHERE lower(code) = lower(%(code)s)"
INSERT_GATEWAY = """
INSERT INTO gateways (facility_id, code, name) VALUES (%(facility)s, %(code)s, %(name)s)
RETURNING id
"""
GATEWAY = "SELECT id, code, facility_id FROM gateways WHERE id = %(gateway)s"
TANK_OF_FACILITY = "SELECT id FROM tanks WHERE id = %(tank)s AND facility_id = %(facility)s"
INSERT_SENSOR = """
INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit, valid_min, valid_max)
VALUES (%(gateway)s, %(code)s, %(tank)s, %(quantity)s, %(unit)s, %(valid_min)s, %(valid_max)s)
RETURNING id
"""

SENSOR_FOR_EDIT = """
SELECT s.id, s.gateway_id, g.code AS gateway, g.facility_id, o.name AS facility, s.code,
       s.tank_id, s.quantity, s.unit, s.valid_min, s.valid_max
FROM sensors s JOIN gateways g ON g.id = s.gateway_id
JOIN organisations o ON o.id = g.facility_id
WHERE s.id = %(sensor)s
"""
TANKS_OF_FACILITY = (
    "SELECT id, code, name FROM tanks WHERE facility_id = %(facility)s ORDER BY code"
)
UPDATE_SENSOR = """
UPDATE sensors SET code = %(code)s, tank_id = %(tank)s, quantity = %(quantity)s, unit = %(unit)s,
                   valid_min = %(valid_min)s, valid_max = %(valid_max)s
WHERE id = %(sensor)s
"""
# Readings carry no foreign key to sensors (a hypertable), so whether a sensor has telemetry is
# asked here; the tables that do reference it would refuse the delete anyway.
SENSOR_HAS_TELEMETRY = """
SELECT EXISTS (SELECT 1 FROM readings WHERE sensor_id = %(sensor)s)
    OR EXISTS (SELECT 1 FROM sensor_latest WHERE sensor_id = %(sensor)s)
    OR EXISTS (SELECT 1 FROM reading_conflicts WHERE sensor_id = %(sensor)s)
    OR EXISTS (SELECT 1 FROM corrections WHERE sensor_id = %(sensor)s) AS telemetry
"""
DELETE_SENSOR = """
DELETE FROM sensors WHERE id = %(sensor)s
  AND NOT EXISTS (SELECT 1 FROM readings WHERE sensor_id = %(sensor)s)
RETURNING id
"""
HAS_READINGS = (
    "This sensor cannot be deleted: it has stored readings, and deleting it would cut that "
    "telemetry off from the registry. Sensors have no retired state, so it stays registered."
)
QUANTITY_FIXED = (
    "Readings are stored in the unit of the sensor's quantity, so the quantity of a sensor that "
    "has readings cannot change. Add a new sensor for the new quantity."
)


def issue_message(code: ri.IssueCode) -> str:
    """The message id shown for one of the import validator's issue codes."""
    return ISSUE_MESSAGES.get(code, REFUSED)


def form_text(value: object) -> str:
    """A stored value as the text of a form field."""
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


async def load_registry(conn: AsyncConnection[Any]) -> ri.Registry:
    """The registry snapshot the import validator checks references against."""
    results = []
    for query in ri.REGISTRY_QUERIES:
        cur = await conn.execute(query)
        results.append(await cur.fetchall())
    return ri.registry_from_rows(*results)


def _report(v: ri.Validator, errors: FormErrors, form_field: Mapping[str, str]) -> None:
    for issue in v.issues:
        errors.add(form_field.get(issue.column, issue.column), issue_message(issue.code))


def _notes(v: ri.Validator) -> list[str]:
    # The import's only note: a pre-2025 province code replaced by its 2025 code.
    return ["The pre-2025 province code was replaced by its 2025 code."] if v.notes else []


@dataclass(slots=True)
class Checked:
    """A record the import validator accepted (values as the import writes them) and the
    message ids of what it did on the user's behalf."""

    values: dict[str, Any]
    notes: list[str]


async def check_facility(
    conn: AsyncConnection[Any], form: Mapping[str, str], errors: FormErrors, *, existing: str | None
) -> Checked | None:
    """Validate one facility like an imported row; `existing` is the code being edited."""
    registry = await load_registry(conn)
    cells = {name: form.get(name, "") for name in FACILITY_FIELDS}
    if existing is not None:
        cells["code"] = existing  # records are keyed by code: an edit keeps it
    elif any(c.lower() == str(cells["code"]).strip().lower() for c in registry.orgs):
        errors.add("code", "This code is already used.")
    v = ri.validate_rows(registry, "facilities", [cells])
    _report(v, errors, {})
    if errors or not v.records["facilities"]:
        return None
    return Checked(v.records["facilities"][0].values, _notes(v))


async def write_facility(conn: AsyncConnection[Any], values: Mapping[str, Any]) -> int:
    """Upsert a checked facility with the import's SQL; returns its organisation id."""
    cur = await conn.execute(ri.SELECT_ORG_ID, (values["parent_code"],))
    parent = await cur.fetchone()
    assert parent is not None  # the validator found it
    params = {
        "code": values["code"],
        "kind": "facility",
        "name": values["name"],
        "province_code": values["province_code"],
        "parent_id": parent[0],
    }
    await conn.execute(ri.UPSERT_ORG, params)
    cur = await conn.execute(ri.SELECT_ORG_ID, (values["code"],))
    org = await cur.fetchone()
    assert org is not None
    await conn.execute(ri.UPSERT_FACILITY, {**values, "org_id": org[0]})
    return int(org[0])


async def check_tank(
    conn: AsyncConnection[Any],
    form: Mapping[str, str],
    errors: FormErrors,
    *,
    existing: Mapping[str, Any] | None,
) -> Checked | None:
    """Validate one tank like an imported row; `existing` is the tank being edited (its facility,
    code and the columns the form does not show are kept)."""
    registry = await load_registry(conn)
    cells: dict[str, object] = {}
    if existing is not None:
        cells = {c.name: form_text(existing.get(c.name)) for c in ri.COLUMNS["tanks"]}
    cells.update({name: form.get(name, "") for name in TANK_FORM_FIELDS})
    if existing is not None:
        cells["facility_code"], cells["code"] = existing["facility_code"], existing["code"]
    else:
        fac = await _facility_code(conn, form.get("facility_id", ""))
        if fac is None:
            errors.add("facility_id", "Choose a facility.")
            return None
        cells["facility_code"] = fac
        code = str(cells["code"]).strip()
        if any(f == fac and t.lower() == code.lower() for f, t in registry.tanks):
            errors.add("code", "This code is already used.")
    v = ri.validate_rows(registry, "tanks", [cells])
    _report(v, errors, {"facility_code": "facility_id"})
    if errors or not v.records["tanks"]:
        return None
    return Checked(v.records["tanks"][0].values, _notes(v))


async def _facility_code(conn: AsyncConnection[Any], raw: str) -> str | None:
    try:
        fid = int(raw)
    except ValueError:
        return None
    row = await fetch_one(conn, FACILITY_FOR_EDIT, facility=fid)
    return None if row is None else str(row["code"])


async def write_tank(conn: AsyncConnection[Any], values: Mapping[str, Any]) -> int:
    """Upsert a checked tank with the import's SQL; returns its id."""
    cur = await conn.execute(ri.SELECT_ORG_ID, (values["facility_code"],))
    fac = await cur.fetchone()
    assert fac is not None
    await conn.execute(ri.UPSERT_TANK, {**values, "facility_id": fac[0]})
    cur = await conn.execute(ri.SELECT_TANK_ID, (values["facility_code"], values["code"]))
    tank = await cur.fetchone()
    assert tank is not None
    return int(tank[0])


def read_points(text: str) -> list[tuple[str, str]] | None:
    """`dp_inh2o,contents_kg` lines (comma or semicolon; a header line is skipped); None when a
    line does not have exactly two values."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return []
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    rows = [
        [c.strip() for c in r]
        for r in csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    ]
    if rows and rows[0] and not _is_number(rows[0][0]):
        rows = rows[1:]  # the header `dp_inh2o,contents_kg`
    if any(len(r) != 2 for r in rows):
        return None
    return [(r[0], r[1]) for r in rows]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(slots=True)
class NewCalibration:
    """A calibration version the import validator accepted."""

    version: int
    valid_from: datetime
    note: str | None
    table: CalibrationTable


async def check_calibration(
    conn: AsyncConnection[Any],
    tank: Mapping[str, Any],
    text: str,
    valid_from: datetime,
    note: str,
    *,
    errors: FormErrors,
) -> NewCalibration | None:
    """Validate a new calibration version of `tank` (the next version number) like imported
    calibration rows: non-decreasing contents, no repeated DP, within the tank's capacity."""
    latest = await fetch_one(conn, LATEST_CALIBRATION, tank=tank["id"])
    version = int(latest["version"] or 0) + 1 if latest else 1
    if latest and latest["valid_from"] is not None and valid_from <= latest["valid_from"]:
        errors.add("valid_from", "A new version must start after the latest version.")
    points = read_points(text)
    if points is None:
        errors.add("points", "Each line must hold two numbers: DP (inH2O) and contents (kg).")
        return None
    if len(points) < 2:
        errors.add("points", "A calibration table needs at least two points.")
        return None
    rows: Iterable[Mapping[str, object]] = [
        {
            "facility_code": tank["facility_code"],
            "tank_code": tank["code"],
            "version": version,
            "valid_from": valid_from,
            "dp_inh2o": dp,
            "contents_kg": kg,
            "note": note,
        }
        for dp, kg in points
    ]
    v = ri.validate_rows(await load_registry(conn), "calibration_points", rows)
    line = i18n.gettext(errors.locale, "Line")
    for issue in v.issues:
        if issue.column in {"dp_inh2o", "contents_kg", "tank_code"}:
            message = i18n.gettext(errors.locale, issue_message(issue.code))
            errors.errors.setdefault("points", f"{line} {issue.row}: {message}")
        else:
            errors.add(issue.column, issue_message(issue.code))
    group = v.calibrations[0] if v.calibrations else None
    if errors or group is None or group.table is None:
        return None
    return NewCalibration(version, valid_from, note or None, group.table)


async def first_reading_start(
    conn: AsyncConnection[Any], tank_id: int, now: datetime
) -> datetime | None:
    """Start of a first calibration version "from the first reading": the tank's first reading
    (now, when it has none yet); None when the tank already has a version."""
    cur = await conn.execute(ri.HAS_CALIBRATION, (tank_id,))
    has = await cur.fetchone()
    if has and has[0]:
        return None
    cur = await conn.execute(ri.FIRST_READING, {"tank": tank_id})
    row = await cur.fetchone()
    return row[0] if row and row[0] is not None else now


async def readings_before(conn: AsyncConnection[Any], tank_id: int, ts: datetime) -> int:
    """Readings of the tank before `ts` that no calibration version covers."""
    cur = await conn.execute(ri.READINGS_BEFORE, {"tank": tank_id, "ts": ts})
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def write_calibration(conn: AsyncConnection[Any], tank_id: int, new: NewCalibration) -> int:
    """Insert the version and its points with the import's SQL; returns the calibration id."""
    cur = await conn.execute(
        ri.INSERT_CALIBRATION, (tank_id, new.version, new.valid_from, new.note)
    )
    row = await cur.fetchone()
    assert row is not None
    async with conn.cursor() as c:
        await c.executemany(
            ri.INSERT_POINT,
            [(row[0], dp, kg) for dp, kg in zip(new.table.dp, new.table.kg, strict=True)],
        )
    return int(row[0])


def check_code(form: Mapping[str, str], errors: FormErrors) -> str:
    """A registry code typed in a form, checked with the import's rule."""
    raw = form.get("code", "").strip()
    if not raw:
        errors.add("code", "This field is required.")
        return ""
    try:
        return ri.p_code(raw)
    except ri.CellError as exc:
        errors.add("code", issue_message(exc.code))
        return ""


def check_unit(quantity_raw: str, unit: str, errors: FormErrors) -> Quantity | None:
    """The quantity, with `unit` one the wire contract converts to its canonical unit; a
    missing unit is an error of its own (the unit is chosen, never assumed)."""
    try:
        quantity: Quantity | None = Quantity(quantity_raw)
    except ValueError:
        errors.add("quantity", "Choose one of the listed values.")
        quantity = None
    if not unit:  # never guessed (the form has nothing pre-selected on create)
        errors.add("unit", "Choose the unit of the value.")
        return None
    if quantity is None:
        return None
    try:
        to_canonical(quantity, 0.0, unit)
    except ContractError:
        errors.add("unit", "This unit does not measure the chosen quantity.")
        return None
    return quantity


async def insert_gateway(
    conn: AsyncConnection[Any], facility_id: int, code: str, name: str | None
) -> int | None:
    """Register a gateway; None when its code is taken (the database has the last word)."""
    if await fetch_one(conn, GATEWAY_BY_CODE, code=code) is not None:
        return None
    try:
        async with conn.transaction():
            cur = await conn.execute(
                INSERT_GATEWAY, {"facility": facility_id, "code": code, "name": name}
            )
            row = await cur.fetchone()
    except psycopg.errors.UniqueViolation:
        return None
    assert row is not None
    return int(row[0])


async def insert_sensor(conn: AsyncConnection[Any], params: Mapping[str, Any]) -> int | None:
    """Add a sensor to a gateway; None when the gateway already has that code (the unique
    constraint decides, under a savepoint, so two admins saving at once cannot both win)."""
    try:
        async with conn.transaction():
            cur = await conn.execute(INSERT_SENSOR, dict(params))
            row = await cur.fetchone()
    except psycopg.errors.UniqueViolation:
        return None
    assert row is not None
    return int(row[0])


async def has_telemetry(conn: AsyncConnection[Any], sensor_id: int) -> bool:
    """Whether any reading, latest value, conflict or correction refers to the sensor."""
    row = await fetch_one(conn, SENSOR_HAS_TELEMETRY, sensor=sensor_id)
    return bool(row and row["telemetry"])


async def update_sensor(conn: AsyncConnection[Any], params: Mapping[str, Any]) -> bool:
    """Save a sensor's fields; False when another sensor of its gateway has the code."""
    try:
        async with conn.transaction():
            await conn.execute(UPDATE_SENSOR, dict(params))
    except psycopg.errors.UniqueViolation:
        return False
    return True


async def delete_sensor(conn: AsyncConnection[Any], sensor_id: int) -> bool:
    """Delete a sensor that has no telemetry; False (nothing deleted) when it has some."""
    if await has_telemetry(conn, sensor_id):
        return False
    try:
        async with conn.transaction():
            cur = await conn.execute(DELETE_SENSOR, {"sensor": sensor_id})
            row = await cur.fetchone()
    except psycopg.errors.ForeignKeyViolation:
        return False  # telemetry arrived since the check
    return row is not None
