"""Bulk import of the registry from spreadsheets: facilities, suppliers, tanks, calibration tables
and contacts (`oxy registry import`; the format is in docs/registry-import.md).

Every row is validated and every bad row reported with its sheet, row, column and reason. The
import is all-or-nothing by default: it writes inside one transaction and rolls back when any row
is bad (or on `--dry-run`, so a dry run reports exactly what a real run would do). Records are
upserted by their code, so importing the same file twice changes nothing the second time.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from api.reports.messages import MESSAGES
from api.reports.rules import REGISTRY_RULES, check
from oxy import OxyError
from oxy.calibration import CalibrationError, CalibrationTable

logger = logging.getLogger(__name__)

# Order matters: a tank needs its facility, a calibration its tank, a contact its organisation.
KINDS: tuple[str, ...] = ("suppliers", "facilities", "tanks", "calibration_points", "contacts")

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")  # naive times in a file are Vietnam local time

# Vietnam including the Hoàng Sa (~17°N, 112°E) and Trường Sa (6.2–12°N, 111.5–117.3°E)
# archipelagos; mainland from Cà Mau (8.4°N) to Lũng Cú (23.4°N), Điện Biên (102.1°E) east.
LAT_RANGE = (6.0, 23.5)
LON_RANGE = (102.0, 118.0)

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # sql/0001_registry.sql
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_RE = re.compile(r"^\+?[0-9 .()-]+$")

CAPACITY_SLACK = 1.02  # a strapping table may top out slightly above the nameplate capacity


class RegistryImportError(OxyError):
    """A file that cannot be read as a registry import at all (format, not rows)."""


class IssueCode(StrEnum):
    """Why a cell or row is refused, as a stable code (the reason text says it in English with
    the values; a form shows its own message per code, api/web/admin_registry.py)."""

    UNKNOWN_COLUMN = "unknown_column"
    MISSING_COLUMN = "missing_column"
    REQUIRED = "required"
    BAD_CODE = "bad_code"
    DECIMAL_COMMA = "decimal_comma"
    NOT_A_NUMBER = "not_a_number"
    NOT_FINITE = "not_finite"
    NEGATIVE = "negative"
    NOT_POSITIVE = "not_positive"
    NOT_WHOLE = "not_whole"
    VERSION_BELOW_ONE = "version_below_one"
    OUTSIDE_VIETNAM = "outside_vietnam"
    NOT_A_DATE = "not_a_date"
    NOT_A_TIMESTAMP = "not_a_timestamp"
    NOT_YES_NO = "not_yes_no"
    NOT_A_CHOICE = "not_a_choice"
    NOT_AN_EMAIL = "not_an_email"
    NOT_A_PHONE = "not_a_phone"
    UNKNOWN_PROVINCE = "unknown_province"
    DUPLICATE_CODE = "duplicate_code"
    CODE_OF_OTHER_KIND = "code_of_other_kind"
    CODE_CASE_CLASH = "code_case_clash"
    LAT_LON_PAIR = "lat_lon_pair"
    TOO_LARGE = "too_large"
    FULL_BELOW_NORMAL = "full_below_normal"
    UNKNOWN_PARENT = "unknown_parent"
    BAD_PARENT = "bad_parent"
    ICU_ABOVE_BEDS = "icu_above_beds"
    ENDS_BEFORE_START = "ends_before_start"
    UNKNOWN_FACILITY = "unknown_facility"
    DUPLICATE_TANK = "duplicate_tank"
    MIN_USABLE_NOT_BELOW_CAPACITY = "min_usable_not_below_capacity"
    VALID_FROM_DIFFERS = "valid_from_differs"
    UNKNOWN_TANK = "unknown_tank"
    DP_TWICE = "dp_twice"
    CONTENTS_DECREASE = "contents_decrease"
    ABOVE_CAPACITY = "above_capacity"
    CALIBRATION_TOO_FEW = "calibration_too_few"
    CALIBRATION_INVALID = "calibration_invalid"
    UNKNOWN_ORGANISATION = "unknown_organisation"
    DUPLICATE_CONTACT = "duplicate_contact"
    SECOND_PRIMARY = "second_primary"
    VERSION_EXISTS = "version_exists"
    UNRESOLVED = "unresolved"
    REFUSED_BY_DATABASE = "refused_by_database"


class CellError(ValueError):
    """A cell that does not parse: the code of the reason and the reason in English."""

    def __init__(self, code: IssueCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True, slots=True)
class Issue:
    """One bad cell or row: where it is, why it is refused (code and English reason)."""

    source: str
    row: int
    column: str
    reason: str
    code: IssueCode

    def __str__(self) -> str:
        col = f", {self.column}" if self.column else ""
        return f"{self.source} row {self.row}{col}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Note:
    """Something the import did on the user's behalf (a legacy province code mapped)."""

    source: str
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"{self.source} row {self.row}, {self.column}: {self.message}"


@dataclass(slots=True)
class Counts:
    """What happened to the records of one kind."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0


@dataclass(slots=True)
class ImportReport:
    """The outcome of an import: issues, notes, counts per kind and whether anything was stored."""

    issues: list[Issue] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    counts: dict[str, Counts] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    committed: bool = False

    @property
    def ok(self) -> bool:
        """True when no row was refused."""
        return not self.issues

    @property
    def bad_rows(self) -> int:
        """How many distinct rows (header included) have at least one issue."""
        return len({(i.source, i.row) for i in self.issues})

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (`--json`)."""
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "committed": self.committed,
            "bad_rows": self.bad_rows,
            "rows": self.rows,
            "counts": {k: asdict(v) for k, v in self.counts.items()},
            "issues": [asdict(i) for i in self.issues],
            "notes": [asdict(n) for n in self.notes],
        }


# --- reading files ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One data row: where it came from and its cells keyed by normalised column name."""

    source: str
    number: int
    cells: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Sheet:
    """The rows of one kind from one CSV file or one workbook sheet."""

    kind: str
    source: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]


def normalise_header(text: object) -> str:
    """'Province code (mã tỉnh)' → 'province_code': text before '(' or '/', snake_case."""
    s = str(text or "").strip().lower()
    s = re.split(r"[(/]", s, maxsplit=1)[0].strip()
    return re.sub(r"[\s-]+", "_", s)


def infer_kind(columns: Iterable[str]) -> str | None:
    """The kind a header belongs to, from its distinctive columns; None when it fits none."""
    cols = set(columns)
    if {"dp_inh2o", "contents_kg"} <= cols:
        return "calibration_points"
    if {"org_code", "full_name"} <= cols:
        return "contacts"
    if {"facility_code", "code", "capacity_kg"} <= cols:
        return "tanks"
    if {"code", "name", "supplier_kind"} <= cols:
        return "suppliers"
    if {"code", "name", "province_code"} <= cols:
        return "facilities"
    return None


def _kind_of(name: str) -> str | None:
    n = normalise_header(name)
    return n if n in KINDS else None


def read_csv(path: Path, kind: str | None = None) -> Sheet:
    """One CSV file (UTF-8, comma or semicolon separated, header on line 1) as a sheet."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RegistryImportError(f"{path.name}: not UTF-8 text ({exc.reason})") from exc
    lines = text.splitlines()
    if not lines:
        raise RegistryImportError(f"{path.name}: empty file")
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [normalise_header(h) for h in next(reader)]
    rows = []
    line = reader.line_num
    for values in reader:
        # A quoted cell may span lines: a row's number is the line it starts on.
        number, line = line + 1, reader.line_num
        if not any(v.strip() for v in values):
            continue
        rows.append(Row(path.name, number, _cells(header, values)))
    resolved = kind or _kind_of(path.stem) or infer_kind(header)
    if resolved is None:
        raise RegistryImportError(
            f"{path.name}: cannot tell which kind of records this is from its header; "
            f"pass --kind ({', '.join(KINDS)})"
        )
    if resolved not in KINDS:
        raise RegistryImportError(f"unknown kind {resolved!r}; one of {', '.join(KINDS)}")
    return Sheet(resolved, path.name, tuple(header), tuple(rows))


def read_xlsx(path: Path) -> list[Sheet]:
    """Every sheet of a workbook: named after its kind (or recognised by its header); sheets
    whose name starts with '_' or '#' are notes and are skipped."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError and its own errors
        raise RegistryImportError(f"{path.name}: not a readable .xlsx workbook ({exc})") from exc
    sheets = []
    try:
        for ws in book.worksheets:
            if ws.title.startswith(("_", "#")):
                continue
            it = ws.iter_rows(values_only=True)
            first = next(it, None)
            source = f"{path.name}:{ws.title}"
            if first is None:
                continue
            header = [normalise_header(h) for h in first]
            kind = _kind_of(ws.title) or infer_kind(header)
            if kind is None:
                raise RegistryImportError(
                    f"{source}: unknown sheet; name it one of {', '.join(KINDS)} "
                    "(or start its name with '_' to skip it)"
                )
            rows = []
            for number, values in enumerate(it, start=2):
                if not any(v is not None and str(v).strip() for v in values):
                    continue
                rows.append(Row(source, number, _cells(header, list(values))))
            sheets.append(Sheet(kind, source, tuple(header), tuple(rows)))
    finally:
        book.close()
    return sheets


def _cells(header: list[str], values: list[Any]) -> dict[str, object]:
    cells: dict[str, object] = {}
    for name, value in zip(header, values, strict=False):
        if name:
            cells[name] = value.strip() if isinstance(value, str) else value
    return cells


def read_sources(paths: Iterable[Path], kind: str | None = None) -> list[Sheet]:
    """Read CSV and XLSX files into sheets; `kind` forces the kind of every CSV file."""
    sheets: list[Sheet] = []
    for path in paths:
        if not path.is_file():
            raise RegistryImportError(f"{path}: no such file")
        suffix = path.suffix.lower()
        if suffix == ".csv":
            sheets.append(read_csv(path, kind))
        elif suffix in {".xlsx", ".xlsm"}:
            sheets.extend(read_xlsx(path))
        else:
            raise RegistryImportError(f"{path.name}: expected a .csv or .xlsx file")
    return sheets


# --- cell parsers: each returns the value or raises CellError with the reason ------------------


def _blank(v: object) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def p_text(v: object) -> str:
    """Any text."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def p_code(v: object) -> str:
    """A registry code: letters, digits, '.', '_', '-', up to 64 characters."""
    s = p_text(v)
    if not CODE_RE.match(s):
        raise CellError(
            IssueCode.BAD_CODE,
            f"bad code {s!r}: letters, digits, '.', '_' or '-' (max 64), no spaces",
        )
    return s


def p_float(v: object) -> float:
    """A finite number; text must use '.' as the decimal separator."""
    if isinstance(v, bool):
        raise CellError(IssueCode.NOT_A_NUMBER, f"not a number: {v!r}")
    if isinstance(v, int | float):
        x = float(v)
    else:
        s = str(v).strip().replace(" ", "")
        if re.fullmatch(r"-?\d+,\d+", s):
            raise CellError(
                IssueCode.DECIMAL_COMMA, f"not a number: {s!r} (use '.' as the decimal separator)"
            )
        try:
            x = float(s)
        except ValueError:
            raise CellError(IssueCode.NOT_A_NUMBER, f"not a number: {s!r}") from None
    if not math.isfinite(x):
        raise CellError(IssueCode.NOT_FINITE, f"not a finite number: {v!r}")
    return x


def p_nonneg(v: object) -> float:
    """A number ≥ 0."""
    x = p_float(v)
    if x < 0:
        raise CellError(IssueCode.NEGATIVE, f"must not be negative (got {x:g})")
    return x


def p_positive(v: object) -> float:
    """A number > 0."""
    x = p_float(v)
    if x <= 0:
        raise CellError(IssueCode.NOT_POSITIVE, f"must be greater than zero (got {x:g})")
    return x


def p_count(v: object) -> int:
    """A whole number ≥ 0."""
    x = p_float(v)
    if not x.is_integer():
        raise CellError(IssueCode.NOT_WHOLE, f"must be a whole number (got {x:g})")
    if x < 0:
        raise CellError(IssueCode.NEGATIVE, f"must not be negative (got {int(x)})")
    return int(x)


def p_version(v: object) -> int:
    """A calibration version: a whole number ≥ 1."""
    n = p_count(v)
    if n < 1:
        raise CellError(IssueCode.VERSION_BELOW_ONE, "must be 1 or more")
    return n


def p_lat(v: object) -> float:
    """Latitude in degrees, inside Vietnam."""
    x = p_float(v)
    if not LAT_RANGE[0] <= x <= LAT_RANGE[1]:
        raise CellError(
            IssueCode.OUTSIDE_VIETNAM,
            f"latitude {x:g} is outside Vietnam ({LAT_RANGE[0]}–{LAT_RANGE[1]} °N)",
        )
    return x


def p_lon(v: object) -> float:
    """Longitude in degrees, inside Vietnam (with its archipelagos)."""
    x = p_float(v)
    if not LON_RANGE[0] <= x <= LON_RANGE[1]:
        raise CellError(
            IssueCode.OUTSIDE_VIETNAM,
            f"longitude {x:g} is outside Vietnam ({LON_RANGE[0]}–{LON_RANGE[1]} °E)",
        )
    return x


def p_date(v: object) -> date:
    """A date: a spreadsheet date or YYYY-MM-DD."""
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    s = p_text(v)
    try:
        return date.fromisoformat(s)
    except ValueError:
        raise CellError(IssueCode.NOT_A_DATE, f"not a date: {s!r} (use YYYY-MM-DD)") from None


def p_timestamp(v: object) -> datetime:
    """A moment: ISO 8601 or a spreadsheet date/time; without a zone it is Vietnam local time."""
    if isinstance(v, datetime):
        ts = v
    elif isinstance(v, date):
        ts = datetime.combine(v, time())
    else:
        s = p_text(v)
        try:
            ts = datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            raise CellError(
                IssueCode.NOT_A_TIMESTAMP,
                f"not a date/time: {s!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)",
            ) from None
    return ts if ts.tzinfo else ts.replace(tzinfo=LOCAL_TZ)


_TRUE = {"1", "true", "yes", "y", "x", "có", "co", "đúng"}
_FALSE = {"0", "false", "no", "n", "không", "khong", "sai"}


def p_bool(v: object) -> bool:
    """yes/no, true/false, 1/0, x, có/không."""
    if isinstance(v, bool):
        return v
    s = p_text(v).lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise CellError(IssueCode.NOT_YES_NO, f"not yes/no: {s!r}")


def p_choice(*choices: str) -> Callable[[object], str]:
    """One of `choices` (case-insensitive)."""

    def parse(v: object) -> str:
        s = p_text(v).lower().replace(" ", "_")
        if s not in choices:
            raise CellError(
                IssueCode.NOT_A_CHOICE, f"{p_text(v)!r} is not one of {', '.join(choices)}"
            )
        return s

    return parse


def p_email(v: object) -> str:
    """An e-mail address."""
    s = p_text(v)
    if not EMAIL_RE.match(s):
        raise CellError(IssueCode.NOT_AN_EMAIL, f"not an e-mail address: {s!r}")
    return s


def p_phone(v: object) -> str:
    """A phone number: digits with optional +, spaces, dots, dashes, brackets; 8–15 digits."""
    s = p_text(v)
    digits = re.sub(r"\D", "", s)
    if not PHONE_RE.match(s) or not 8 <= len(digits) <= 15:
        raise CellError(IssueCode.NOT_A_PHONE, f"not a phone number: {s!r}")
    return s


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a kind: its name, its parser and whether a value is required."""

    name: str
    parse: Callable[[object], Any]
    required: bool = False


COLUMNS: dict[str, tuple[Column, ...]] = {
    "suppliers": (
        Column("code", p_code, True),
        Column("name", p_text, True),
        Column("supplier_kind", p_choice("producer", "filling_station", "distributor"), True),
        Column("province_code", p_text),
        Column("address", p_text),
        Column("latitude", p_lat),
        Column("longitude", p_lon),
        Column("capacity_normal_tpd", p_nonneg),
        Column("capacity_full_tpd", p_nonneg),
    ),
    "facilities": (
        Column("code", p_code, True),
        Column("name", p_text, True),
        Column("province_code", p_text, True),
        Column("parent_code", p_code),
        Column(
            "facility_type",
            p_choice("hospital", "field_hospital", "treatment_centre", "clinic", "other"),
        ),
        Column("address", p_text),
        Column("latitude", p_lat),
        Column("longitude", p_lon),
        Column("beds", p_count),
        Column("icu_beds", p_count),
        Column("active_from", p_date),
        Column("active_to", p_date),
    ),
    "tanks": (
        Column("facility_code", p_code, True),
        Column("code", p_code, True),
        Column("name", p_text),
        Column("capacity_kg", p_positive, True),
        Column("orientation", p_choice("vertical", "horizontal")),
        Column("diameter_m", p_positive),
        Column("height_m", p_positive),
        Column("min_usable_kg", p_nonneg),
        Column("max_pressure_bar", p_positive),
        Column("installed_on", p_date),
    ),
    "calibration_points": (
        Column("facility_code", p_code, True),
        Column("tank_code", p_code, True),
        Column("version", p_version, True),
        Column("valid_from", p_timestamp),
        Column("dp_inh2o", p_nonneg, True),
        Column("contents_kg", p_nonneg, True),
        Column("note", p_text),
    ),
    "contacts": (
        Column("org_code", p_code, True),
        Column("full_name", p_text, True),
        Column("role", p_text),
        Column("phone", p_phone),
        Column("email", p_email),
        Column("is_primary", p_bool),
    ),
}


# --- validation -------------------------------------------------------------------------------


@dataclass(slots=True)
class Record:
    """A parsed row ready to write."""

    row: Row
    values: dict[str, Any]


@dataclass(slots=True)
class CalibrationGroup:
    """The rows of one calibration version of one tank."""

    facility_code: str
    tank_code: str
    version: int
    valid_from: datetime | None
    note: str | None
    points: list[tuple[float, float, Row]]
    table: CalibrationTable | None = None
    incomplete: bool = False  # a row of this table had a bad point (reported on that row)


@dataclass(slots=True)
class Registry:
    """What the database already holds, for references and duplicate checks."""

    orgs: dict[str, tuple[int, str]]  # code → (id, kind)
    provinces: dict[str, str]  # 2025 code → name
    legacy: dict[str, tuple[str, str]]  # old code → (old name, new code)
    tanks: dict[tuple[str, str], tuple[int, float]]  # (facility code, tank code) → (id, kg)


# What `load_registry` reads, named so that an async caller (the web forms) can run the same.
REGISTRY_QUERIES: tuple[str, str, str, str] = (
    "SELECT code, id, kind FROM organisations",
    "SELECT code, name FROM admin_units",
    "SELECT old_code, old_name, new_code FROM legacy_admin_units",
    "SELECT o.code, t.code, t.id, t.capacity_kg FROM tanks t "
    "JOIN organisations o ON o.id = t.facility_id",
)


def registry_from_rows(
    orgs: Iterable[Any], provinces: Iterable[Any], legacy: Iterable[Any], tanks: Iterable[Any]
) -> Registry:
    """A Registry from the rows of `REGISTRY_QUERIES` (in that order)."""
    return Registry(
        {str(c): (int(i), str(k)) for c, i, k in orgs},
        {str(c): str(n) for c, n in provinces},
        {str(o): (str(n), str(c)) for o, n, c in legacy},
        {(str(fc), str(tc)): (int(i), float(kg)) for fc, tc, i, kg in tanks},
    )


def load_registry(conn: psycopg.Connection[Any]) -> Registry:
    """Read the codes the import refers to."""
    return registry_from_rows(*(conn.execute(q).fetchall() for q in REGISTRY_QUERIES))


def validate_rows(
    registry: Registry, kind: str, rows: Iterable[Mapping[str, object]], source: str = "form"
) -> Validator:
    """Validate records of one kind typed outside a file (the web forms) exactly as an import
    would; rows are numbered from 1. The result holds the issues, notes, records and tables."""
    columns = tuple(c.name for c in COLUMNS[kind])
    sheet = Sheet(
        kind, source, columns, tuple(Row(source, n, dict(r)) for n, r in enumerate(rows, 1))
    )
    validator = Validator(registry)
    validator.run([sheet])
    return validator


class Validator:
    """Parses and checks every row of every sheet, collecting every issue."""

    def __init__(self, registry: Registry) -> None:
        self.reg = registry
        self.issues: list[Issue] = []
        self.notes: list[Note] = []
        self.bad_rows: set[tuple[str, int]] = set()
        self.records: dict[str, list[Record]] = {k: [] for k in KINDS}
        self.calibrations: list[CalibrationGroup] = []
        self.calibration_index: dict[tuple[str, str, int], CalibrationGroup] = {}
        self.org_codes: dict[str, tuple[str, Row]] = {}  # lower(code) → (kind, first row)
        self.tank_keys: dict[tuple[str, str], tuple[float, Row]] = {}
        self.contact_keys: dict[tuple[str, str], Row] = {}
        self.failed: set[str] = set()  # columns of the current row that did not parse
        self.primaries: dict[str, Row] = {}

    def fail(self, row: Row, column: str, code: IssueCode, reason: str) -> None:
        """Record one issue against a row."""
        self.issues.append(Issue(row.source, row.number, column, reason, code))
        self.bad_rows.add((row.source, row.number))

    def is_bad(self, row: Row) -> bool:
        """True when the row already has an issue."""
        return (row.source, row.number) in self.bad_rows

    def run(self, sheets: list[Sheet]) -> None:
        """Validate sheets in dependency order."""
        by_kind: dict[str, list[Sheet]] = {k: [] for k in KINDS}
        for sheet in sheets:
            by_kind[sheet.kind].append(sheet)
        for kind in KINDS:
            for sheet in by_kind[kind]:
                self._check_header(sheet)
                for row in sheet.rows:
                    values = self._parse(kind, sheet, row)
                    if values is not None:
                        getattr(self, f"_check_{kind}")(row, values)
        self._check_calibration_groups()

    def _check_header(self, sheet: Sheet) -> None:
        known = {c.name for c in COLUMNS[sheet.kind]}
        head = Row(sheet.source, 1, {})
        for name in sheet.columns:
            if name and name not in known:
                self.fail(
                    head,
                    name,
                    IssueCode.UNKNOWN_COLUMN,
                    f"unknown column for {sheet.kind} ({', '.join(sorted(known))})",
                )
        for col in COLUMNS[sheet.kind]:
            if col.required and col.name not in sheet.columns:
                self.fail(
                    head,
                    col.name,
                    IssueCode.MISSING_COLUMN,
                    f"required column missing for {sheet.kind}",
                )

    def _parse(self, kind: str, sheet: Sheet, row: Row) -> dict[str, Any] | None:
        """Parse every cell, reporting each bad one; None when the header lacks a required
        column (already reported once for the sheet). A cell that fails is None in the result
        and named in `self.failed`, so the row checks still run on the cells that parsed."""
        if not all(c.name in sheet.columns for c in COLUMNS[kind] if c.required):
            return None
        values: dict[str, Any] = {}
        self.failed = set()
        for col in COLUMNS[kind]:
            raw = row.cells.get(col.name)
            values[col.name] = None
            if _blank(raw):
                if col.required:
                    self.fail(row, col.name, IssueCode.REQUIRED, "required value is empty")
                    self.failed.add(col.name)
                continue
            try:
                values[col.name] = col.parse(raw)
            except CellError as exc:
                self.fail(row, col.name, exc.code, str(exc))
                self.failed.add(col.name)
        return values

    def _province(self, row: Row, column: str, code: str | None) -> str | None:
        """A 2025 province code; a pre-2025 code is mapped (and the mapping noted)."""
        if code is None:
            return None
        c = code.zfill(2) if code.isdigit() else code
        if c in self.reg.provinces:
            return c
        if c in self.reg.legacy:
            old_name, new = self.reg.legacy[c]
            self.notes.append(
                Note(
                    row.source,
                    row.number,
                    column,
                    f"pre-2025 province {c} ({old_name}) mapped to {new} "
                    f"({self.reg.provinces.get(new, '?')})",
                )
            )
            return new
        self.fail(
            row,
            column,
            IssueCode.UNKNOWN_PROVINCE,
            f"unknown province code {code!r} (neither a 2025 nor a pre-2025 code)",
        )
        return None

    def _claim_org_code(self, row: Row, kind: str, code: str) -> bool:
        """Duplicate checks for an organisation code, in the file and against the database."""
        key = code.lower()
        if key in self.org_codes:
            first = self.org_codes[key][1]
            self.fail(
                row,
                "code",
                IssueCode.DUPLICATE_CODE,
                f"duplicate code {code!r} (first at {first.source} row {first.number})",
            )
            return False
        self.org_codes[key] = (kind, row)
        existing = self.reg.orgs.get(code)
        want = "facility" if kind == "facilities" else "supplier"
        if existing and existing[1] != want:
            self.fail(
                row,
                "code",
                IssueCode.CODE_OF_OTHER_KIND,
                f"code {code!r} already belongs to a {existing[1]}, not a {want}",
            )
            return False
        if not existing:
            clash = [c for c in self.reg.orgs if c.lower() == key]
            if clash:
                self.fail(
                    row,
                    "code",
                    IssueCode.CODE_CASE_CLASH,
                    f"code {code!r} differs only in letter case from {clash[0]!r}",
                )
                return False
        return True

    def _check_location(self, row: Row, values: dict[str, Any]) -> None:
        if self.failed & {"latitude", "longitude"}:
            return
        if (values["latitude"] is None) != (values["longitude"] is None):
            missing = "longitude" if values["longitude"] is None else "latitude"
            self.fail(
                row,
                missing,
                IssueCode.LAT_LON_PAIR,
                "latitude and longitude go together; one is missing",
            )

    def _check_limits(self, row: Row, v: dict[str, Any]) -> None:
        """The registry's hard limits from the shared validation rules (api/reports/rules.py)
        that the checks above do not already cover: an implausibly large figure is a row issue."""
        for f in check(REGISTRY_RULES, v):
            if f.rule.key == "report.error.too_large" and f.rule.field not in self.failed:
                self.fail(
                    row,
                    f.rule.field,
                    IssueCode.TOO_LARGE,
                    f"{MESSAGES[f.rule.key]} ({f.left:g} > {f.right:g})",
                )

    def _check_suppliers(self, row: Row, v: dict[str, Any]) -> None:
        if v["code"] is not None:
            self._claim_org_code(row, "suppliers", v["code"])
        v["province_code"] = self._province(row, "province_code", v["province_code"])
        self._check_location(row, v)
        normal, full = v["capacity_normal_tpd"], v["capacity_full_tpd"]
        if normal is not None and full is not None and full < normal:
            self.fail(
                row,
                "capacity_full_tpd",
                IssueCode.FULL_BELOW_NORMAL,
                f"full capacity {full:g} t/day is below normal {normal:g}",
            )
        self._check_limits(row, v)
        self._keep("suppliers", row, v)

    def _check_facilities(self, row: Row, v: dict[str, Any]) -> None:
        if v["code"] is not None:
            self._claim_org_code(row, "facilities", v["code"])
        v["province_code"] = self._province(row, "province_code", v["province_code"])
        parent = v["parent_code"] or (f"SYT-{v['province_code']}" if v["province_code"] else None)
        if parent is not None and "parent_code" not in self.failed:
            found = self.reg.orgs.get(parent)
            in_file = self.org_codes.get(parent.lower())
            if found is None and in_file is not None:
                # Only facilities and suppliers are imported, and neither can be a parent.
                found = (0, "facility" if in_file[0] == "facilities" else "supplier")
            if found is None:
                self.fail(
                    row,
                    "parent_code",
                    IssueCode.UNKNOWN_PARENT,
                    f"unknown reporting parent {parent!r}",
                )
            elif found[1] not in {"syt", "ministry_office"}:
                self.fail(
                    row,
                    "parent_code",
                    IssueCode.BAD_PARENT,
                    f"reporting parent {parent!r} is a {found[1]}; it must be an SYT or a "
                    "ministry health office",
                )
            v["parent_code"] = parent
        self._check_location(row, v)
        beds, icu = v["beds"], v["icu_beds"]
        if beds is not None and icu is not None and icu > beds:
            self.fail(
                row, "icu_beds", IssueCode.ICU_ABOVE_BEDS, f"ICU beds ({icu}) exceed beds ({beds})"
            )
        start, end = v["active_from"], v["active_to"]
        if start and end and end < start:
            self.fail(
                row,
                "active_to",
                IssueCode.ENDS_BEFORE_START,
                f"active_to {end} is before active_from {start}",
            )
        self._check_limits(row, v)
        v["facility_type"] = v["facility_type"] or "hospital"
        self._keep("facilities", row, v)

    def _is_facility(self, code: str) -> bool:
        in_file = self.org_codes.get(code.lower())
        if in_file is not None:
            return in_file[0] == "facilities" and not self.is_bad(in_file[1])
        found = self.reg.orgs.get(code)
        return found is not None and found[1] == "facility"

    def _check_tanks(self, row: Row, v: dict[str, Any]) -> None:
        fac, capacity = v["facility_code"], v["capacity_kg"]
        if fac is None or v["code"] is None:
            return  # already reported; nothing else can be checked against the registry
        if not self._is_facility(fac):
            self.fail(
                row,
                "facility_code",
                IssueCode.UNKNOWN_FACILITY,
                f"unknown facility {fac!r} (not in the registry nor valid in this file)",
            )
        key = (fac, v["code"])
        if key in self.tank_keys:
            first = self.tank_keys[key][1]
            self.fail(
                row,
                "code",
                IssueCode.DUPLICATE_TANK,
                f"duplicate tank {fac}/{v['code']} (first at {first.source} row {first.number})",
            )
        else:
            self.tank_keys[key] = (v["capacity_kg"], row)
        if (
            capacity is not None
            and v["min_usable_kg"] is not None
            and v["min_usable_kg"] >= capacity
        ):
            self.fail(
                row,
                "min_usable_kg",
                IssueCode.MIN_USABLE_NOT_BELOW_CAPACITY,
                f"minimum usable {v['min_usable_kg']:g} kg is not below the capacity",
            )
        v["name"] = v["name"] or v["code"]
        v["orientation"] = v["orientation"] or "vertical"
        v["min_usable_kg"] = v["min_usable_kg"] or 0.0
        self._keep("tanks", row, v)

    def _check_calibration_points(self, row: Row, v: dict[str, Any]) -> None:
        key = (v["facility_code"], v["tank_code"], v["version"])
        if None in key:
            return  # already reported: the row belongs to no table we can check
        group = self.calibration_index.get(key)
        if group is None:
            group = CalibrationGroup(key[0], key[1], key[2], v["valid_from"], v["note"], [])
            self.calibrations.append(group)
            self.calibration_index[key] = group
        elif v["valid_from"] is not None and group.valid_from not in (None, v["valid_from"]):
            self.fail(
                row,
                "valid_from",
                IssueCode.VALID_FROM_DIFFERS,
                "differs from the valid_from of the same version's other rows",
            )
        else:
            group.valid_from = group.valid_from or v["valid_from"]
            group.note = group.note or v["note"]
        if v["dp_inh2o"] is None or v["contents_kg"] is None:
            group.incomplete = True
        else:
            group.points.append((v["dp_inh2o"], v["contents_kg"], row))

    def _tank_capacity(self, fac: str, tank: str) -> float | None:
        in_file = self.tank_keys.get((fac, tank))
        if in_file is not None:
            return None if self.is_bad(in_file[1]) else in_file[0]
        found = self.reg.tanks.get((fac, tank))
        return found[1] if found else None

    def _check_calibration_groups(self) -> None:
        for g in self.calibrations:
            if not g.points:
                continue
            first = g.points[0][2]
            what = f"{g.facility_code}/{g.tank_code} version {g.version}"
            capacity = self._tank_capacity(g.facility_code, g.tank_code)
            if capacity is None:
                for *_, row in g.points:
                    self.fail(
                        row,
                        "tank_code",
                        IssueCode.UNKNOWN_TANK,
                        f"unknown tank {g.facility_code}/{g.tank_code}",
                    )
                continue
            pts = sorted(g.points, key=lambda p: p[0])
            ok = True
            for (dp0, kg0, r0), (dp1, kg1, r1) in itertools.pairwise(pts):
                if dp1 == dp0:
                    self.fail(
                        r1,
                        "dp_inh2o",
                        IssueCode.DP_TWICE,
                        f"DP {dp1:g} appears twice in {what} (also row {r0.number})",
                    )
                    ok = False
                elif kg1 < kg0:
                    self.fail(
                        r1,
                        "contents_kg",
                        IssueCode.CONTENTS_DECREASE,
                        f"{kg1:g} kg at DP {dp1:g} is less than {kg0:g} kg at DP {dp0:g} (row "
                        f"{r0.number}): contents must not decrease as DP rises",
                    )
                    ok = False
            for _dp, kg, row in pts:
                if kg > capacity * CAPACITY_SLACK:
                    self.fail(
                        row,
                        "contents_kg",
                        IssueCode.ABOVE_CAPACITY,
                        f"{kg:g} kg exceeds the tank's capacity {capacity:g} kg",
                    )
                    ok = False
            if not ok:
                continue
            try:
                g.table = CalibrationTable.from_points([(dp, kg) for dp, kg, _ in pts], g.version)
            except CalibrationError as exc:
                # The pairwise checks above leave only a table with too few points or bad values.
                few = len(pts) < 2
                code = IssueCode.CALIBRATION_TOO_FEW if few else IssueCode.CALIBRATION_INVALID
                self.fail(first, "dp_inh2o", code, f"{what}: {exc}")
                continue
            if g.incomplete or any(self.is_bad(r) for *_, r in g.points):
                g.table = None

    def _check_contacts(self, row: Row, v: dict[str, Any]) -> None:
        org = v["org_code"]
        if org is None or v["full_name"] is None:
            return  # already reported
        in_file = self.org_codes.get(org.lower())
        if not ((in_file is not None and not self.is_bad(in_file[1])) or org in self.reg.orgs):
            self.fail(
                row,
                "org_code",
                IssueCode.UNKNOWN_ORGANISATION,
                f"unknown organisation {org!r} (not in the registry nor valid here)",
            )
        key = (org, v["full_name"].lower())
        first = self.contact_keys.get(key)
        if first is not None:
            self.fail(
                row,
                "full_name",
                IssueCode.DUPLICATE_CONTACT,
                f"duplicate contact {v['full_name']!r} for {org} (first at row {first.number})",
            )
        else:
            self.contact_keys[key] = row
        if v["is_primary"]:
            if org in self.primaries:
                self.fail(
                    row,
                    "is_primary",
                    IssueCode.SECOND_PRIMARY,
                    f"{org} already has a primary contact in this file "
                    f"(row {self.primaries[org].number})",
                )
            else:
                self.primaries[org] = row
        v["is_primary"] = bool(v["is_primary"])
        self._keep("contacts", row, v)

    def _keep(self, kind: str, row: Row, values: dict[str, Any]) -> None:
        self.records[kind].append(Record(row, values))


# --- writing ----------------------------------------------------------------------------------

UPSERT_ORG = """
INSERT INTO organisations (code, kind, name, province_code, parent_id)
VALUES (%(code)s, %(kind)s, %(name)s, %(province_code)s, %(parent_id)s)
ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, province_code = EXCLUDED.province_code,
    parent_id = EXCLUDED.parent_id
WHERE (organisations.name, organisations.province_code, organisations.parent_id)
      IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.province_code, EXCLUDED.parent_id)
RETURNING id, (xmax = 0) AS inserted
"""

UPSERT_FACILITY = """
INSERT INTO facilities (org_id, facility_type, address, latitude, longitude, beds, icu_beds,
                        active_from, active_to)
VALUES (%(org_id)s, %(facility_type)s, %(address)s, %(latitude)s, %(longitude)s, %(beds)s,
        %(icu_beds)s, COALESCE(%(active_from)s, facility_first_day(%(org_id)s)), %(active_to)s)
ON CONFLICT (org_id) DO UPDATE SET facility_type = EXCLUDED.facility_type,
    address = EXCLUDED.address, latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,
    beds = EXCLUDED.beds, icu_beds = EXCLUDED.icu_beds, active_from = EXCLUDED.active_from,
    active_to = EXCLUDED.active_to
WHERE (facilities.facility_type, facilities.address, facilities.latitude, facilities.longitude,
       facilities.beds, facilities.icu_beds, facilities.active_from, facilities.active_to)
      IS DISTINCT FROM
      (EXCLUDED.facility_type, EXCLUDED.address, EXCLUDED.latitude, EXCLUDED.longitude,
       EXCLUDED.beds, EXCLUDED.icu_beds, EXCLUDED.active_from, EXCLUDED.active_to)
RETURNING (xmax = 0) AS inserted
"""

UPSERT_SUPPLIER = """
INSERT INTO suppliers (org_id, supplier_kind, address, latitude, longitude, capacity_normal_tpd,
                       capacity_full_tpd)
VALUES (%(org_id)s, %(supplier_kind)s, %(address)s, %(latitude)s, %(longitude)s,
        %(capacity_normal_tpd)s, %(capacity_full_tpd)s)
ON CONFLICT (org_id) DO UPDATE SET supplier_kind = EXCLUDED.supplier_kind,
    address = EXCLUDED.address, latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,
    capacity_normal_tpd = EXCLUDED.capacity_normal_tpd,
    capacity_full_tpd = EXCLUDED.capacity_full_tpd
WHERE (suppliers.supplier_kind, suppliers.address, suppliers.latitude, suppliers.longitude,
       suppliers.capacity_normal_tpd, suppliers.capacity_full_tpd)
      IS DISTINCT FROM
      (EXCLUDED.supplier_kind, EXCLUDED.address, EXCLUDED.latitude, EXCLUDED.longitude,
       EXCLUDED.capacity_normal_tpd, EXCLUDED.capacity_full_tpd)
RETURNING (xmax = 0) AS inserted
"""

UPSERT_TANK = """
INSERT INTO tanks (facility_id, code, name, capacity_kg, orientation, diameter_m, height_m,
                   min_usable_kg, max_pressure_bar, installed_on)
VALUES (%(facility_id)s, %(code)s, %(name)s, %(capacity_kg)s, %(orientation)s, %(diameter_m)s,
        %(height_m)s, %(min_usable_kg)s, %(max_pressure_bar)s, %(installed_on)s)
ON CONFLICT (facility_id, code) DO UPDATE SET name = EXCLUDED.name,
    capacity_kg = EXCLUDED.capacity_kg, orientation = EXCLUDED.orientation,
    diameter_m = EXCLUDED.diameter_m, height_m = EXCLUDED.height_m,
    min_usable_kg = EXCLUDED.min_usable_kg, max_pressure_bar = EXCLUDED.max_pressure_bar,
    installed_on = EXCLUDED.installed_on
WHERE (tanks.name, tanks.capacity_kg, tanks.orientation, tanks.diameter_m, tanks.height_m,
       tanks.min_usable_kg, tanks.max_pressure_bar, tanks.installed_on)
      IS DISTINCT FROM
      (EXCLUDED.name, EXCLUDED.capacity_kg, EXCLUDED.orientation, EXCLUDED.diameter_m,
       EXCLUDED.height_m, EXCLUDED.min_usable_kg, EXCLUDED.max_pressure_bar,
       EXCLUDED.installed_on)
RETURNING (xmax = 0) AS inserted
"""

SELECT_ORG_ID = "SELECT id FROM organisations WHERE code = %s"
SELECT_TANK_ID = (
    "SELECT t.id FROM tanks t JOIN organisations o ON o.id = t.facility_id "
    "WHERE o.code = %s AND t.code = %s"
)
SELECT_CALIBRATION = "SELECT id FROM tank_calibrations WHERE tank_id = %s AND version = %s"
SELECT_POINTS = (
    "SELECT dp_inh2o, contents_kg FROM calibration_points WHERE calibration_id = %s "
    "ORDER BY dp_inh2o"
)
INSERT_CALIBRATION = """
INSERT INTO tank_calibrations (tank_id, version, valid_from, note)
VALUES (%s, %s, COALESCE(%s, now()), %s) RETURNING id
"""
# The tank's first level reading and how many of its readings come before a time: a first
# calibration version left without valid_from starts at the first reading, and readings before
# an explicit start cannot be turned into contents (warned, also on --dry-run).
FIRST_READING = """
SELECT min(r.ts) FROM readings r JOIN sensors s ON s.id = r.sensor_id
WHERE s.tank_id = %(tank)s AND s.quantity = 'dp'
"""
READINGS_BEFORE = """
SELECT count(*) FROM readings r JOIN sensors s ON s.id = r.sensor_id
WHERE s.tank_id = %(tank)s AND s.quantity = 'dp' AND r.ts < %(ts)s
  AND NOT EXISTS (SELECT 1 FROM tank_calibrations k WHERE k.tank_id = %(tank)s
                  AND k.valid_from <= r.ts)
"""
HAS_CALIBRATION = "SELECT EXISTS (SELECT 1 FROM tank_calibrations WHERE tank_id = %s)"
INSERT_POINT = (
    "INSERT INTO calibration_points (calibration_id, dp_inh2o, contents_kg) VALUES (%s, %s, %s)"
)
SELECT_CONTACT = """
SELECT id, full_name, role, phone, email, is_primary FROM contacts
WHERE org_id = %s AND lower(full_name) = lower(%s) ORDER BY id LIMIT 1 FOR UPDATE
"""
INSERT_CONTACT = """
INSERT INTO contacts (org_id, full_name, role, phone, email, is_primary)
VALUES (%s, %s, %s, %s, %s, %s) RETURNING id
"""
UPDATE_CONTACT = """
UPDATE contacts SET full_name = %s, role = %s, phone = %s, email = %s, is_primary = %s
WHERE id = %s
"""
CLEAR_PRIMARY = (
    "UPDATE contacts SET is_primary = false WHERE org_id = %s AND id <> %s AND is_primary"
)


class Writer:
    """Upserts validated records; a database refusal is reported against its row."""

    def __init__(self, conn: psycopg.Connection[Any], report: ImportReport, v: Validator) -> None:
        self.conn = conn
        self.report = report
        self.v = v

    def _counts(self, kind: str) -> Counts:
        return self.report.counts.setdefault(kind, Counts())

    def _tally(self, kind: str, inserted: bool | None) -> None:
        c = self._counts(kind)
        if inserted is None:
            c.unchanged += 1
        elif inserted:
            c.inserted += 1
        else:
            c.updated += 1

    def _guarded(self, kind: str, row: Row, fn: Callable[[], bool | None]) -> None:
        """Run one record's writes in a savepoint so a refusal names its row."""
        try:
            with self.conn.transaction():
                self._tally(kind, fn())
        except _Refused:
            self._counts(kind).skipped += 1
        except _Unresolved as exc:
            self.v.fail(row, "", IssueCode.UNRESOLVED, str(exc))
            self._counts(kind).skipped += 1
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
            diag = exc.diag.message_primary or str(exc)
            column = exc.diag.column_name or ""
            self.v.fail(
                row, column, IssueCode.REFUSED_BY_DATABASE, f"refused by the database: {diag}"
            )
            self._counts(kind).skipped += 1

    def write(self) -> None:
        """Write every good record in dependency order."""
        for kind in ("suppliers", "facilities", "tanks"):
            for rec in self.v.records[kind]:
                if self.v.is_bad(rec.row):
                    self._counts(kind).skipped += 1
                    continue
                write: Callable[[dict[str, Any]], bool | None] = getattr(self, f"_write_{kind}")
                self._guarded(kind, rec.row, partial(write, rec.values))
        for g in self.v.calibrations:
            if g.table is None:
                self._counts("calibration_tables").skipped += 1
                continue
            self._guarded("calibration_tables", g.points[0][2], partial(self._write_calibration, g))
        for rec in self.v.records["contacts"]:
            if self.v.is_bad(rec.row):
                self._counts("contacts").skipped += 1
                continue
            self._guarded("contacts", rec.row, partial(self._write_contact, rec.values))

    def _org_id(self, code: str) -> int:
        row = self.conn.execute(SELECT_ORG_ID, (code,)).fetchone()
        if row is None:  # its own row was refused by the database (reported there)
            raise _Unresolved(f"{code} was not stored (see its row), so this row cannot be")
        return int(row[0])

    def _upsert_org(
        self, v: dict[str, Any], kind: str, parent_id: int | None
    ) -> tuple[int, bool | None]:
        params = {
            "code": v["code"],
            "kind": kind,
            "name": v["name"],
            "province_code": v["province_code"],
            "parent_id": parent_id,
        }
        row = self.conn.execute(UPSERT_ORG, params).fetchone()
        if row is None:
            return self._org_id(v["code"]), None
        return int(row[0]), bool(row[1])

    def _write_suppliers(self, v: dict[str, Any]) -> bool | None:
        org_id, org_change = self._upsert_org(v, "supplier", None)
        row = self.conn.execute(UPSERT_SUPPLIER, {**v, "org_id": org_id}).fetchone()
        return _merge(org_change, None if row is None else bool(row[0]))

    def _write_facilities(self, v: dict[str, Any]) -> bool | None:
        parent_id = self._org_id(v["parent_code"])
        org_id, org_change = self._upsert_org(v, "facility", parent_id)
        row = self.conn.execute(UPSERT_FACILITY, {**v, "org_id": org_id}).fetchone()
        return _merge(org_change, None if row is None else bool(row[0]))

    def _write_tanks(self, v: dict[str, Any]) -> bool | None:
        fac_id = self._org_id(v["facility_code"])
        row = self.conn.execute(UPSERT_TANK, {**v, "facility_id": fac_id}).fetchone()
        return None if row is None else bool(row[0])

    def _write_calibration(self, g: CalibrationGroup) -> bool | None:
        assert g.table is not None
        tank = self.conn.execute(SELECT_TANK_ID, (g.facility_code, g.tank_code)).fetchone()
        if tank is None:  # its own row was refused by the database (reported there)
            raise _Unresolved(
                f"tank {g.facility_code}/{g.tank_code} was not stored (see its row), "
                "so this table cannot be"
            )
        existing = self.conn.execute(SELECT_CALIBRATION, (tank[0], g.version)).fetchone()
        new_points = list(zip(g.table.dp, g.table.kg, strict=True))
        if existing is not None:
            old = [
                (float(a), float(b)) for a, b in self.conn.execute(SELECT_POINTS, (existing[0],))
            ]
            if old == new_points:
                return None
            # A version already used by accounting must never change under it: history would move.
            row = g.points[0][2]
            self.v.fail(
                row,
                "version",
                IssueCode.VERSION_EXISTS,
                f"calibration version {g.version} of {g.facility_code}/{g.tank_code} already "
                "exists with different points; add it as a new version",
            )
            raise _Refused
        valid_from = self._valid_from(g, int(tank[0]))
        cal = self.conn.execute(
            INSERT_CALIBRATION, (tank[0], g.version, valid_from, g.note)
        ).fetchone()
        assert cal is not None
        with self.conn.cursor() as cur:
            cur.executemany(INSERT_POINT, [(cal[0], dp, kg) for dp, kg in new_points])
        return True

    def _valid_from(self, g: CalibrationGroup, tank_id: int) -> datetime | None:
        """The start of a new version: as given; left blank, the tank's first reading for its
        first version (else the import time). Notes when readings before it stay unconverted."""
        row = g.points[0][2]
        has = self.conn.execute(HAS_CALIBRATION, (tank_id,)).fetchone()
        first_version = not (has and has[0])
        valid_from = g.valid_from
        if valid_from is None:
            first = self.conn.execute(FIRST_READING, {"tank": tank_id}).fetchone()
            start: datetime | None = first[0] if first else None
            if first_version and start is not None:
                self.v.notes.append(
                    Note(
                        row.source,
                        row.number,
                        "valid_from",
                        f"blank: valid from the first reading ({start.isoformat()})",
                    )
                )
                return start
            self.v.notes.append(
                Note(
                    row.source,
                    row.number,
                    "valid_from",
                    "blank: valid from the time of this import",
                )
            )
            return None
        left = self.conn.execute(READINGS_BEFORE, {"tank": tank_id, "ts": valid_from}).fetchone()
        if left and left[0]:
            self.v.notes.append(
                Note(
                    row.source,
                    row.number,
                    "valid_from",
                    f"warning: {left[0]} readings of this tank before {valid_from.isoformat()} "
                    "have no calibration and will show no contents; give an earlier valid_from "
                    "or leave it blank (from the first reading)",
                )
            )
        return valid_from

    def _write_contact(self, v: dict[str, Any]) -> bool | None:
        org_id = self._org_id(v["org_code"])
        primary = bool(v["is_primary"])
        found = self.conn.execute(SELECT_CONTACT, (org_id, v["full_name"])).fetchone()
        if found is None:
            row = self.conn.execute(
                INSERT_CONTACT, (org_id, v["full_name"], v["role"], v["phone"], v["email"], primary)
            ).fetchone()
            assert row is not None
            contact_id, result = int(row[0]), True
        else:
            contact_id = int(found[0])
            result = None
            if tuple(found[1:]) != (v["full_name"], v["role"], v["phone"], v["email"], primary):
                self.conn.execute(
                    UPDATE_CONTACT,
                    (v["full_name"], v["role"], v["phone"], v["email"], primary, contact_id),
                )
                result = False
        if primary:
            self.conn.execute(CLEAR_PRIMARY, (org_id, contact_id))
        return result


class _Refused(Exception):
    """Raised inside a savepoint after reporting an issue, to roll that record back."""


class _Unresolved(Exception):
    """A record refers to one the database refused earlier in the same import."""


def _merge(a: bool | None, b: bool | None) -> bool | None:
    """Combine the outcome of the organisation row and its detail row."""
    if a is True or b is True:
        return True
    if a is None and b is None:
        return None
    return False


# --- the whole import -------------------------------------------------------------------------


def _issue_order(sheets: list[Sheet]) -> Callable[[Issue], tuple[int, int, str]]:
    order = {sheet.source: i for i, sheet in enumerate(sheets)}
    return lambda i: (order.get(i.source, len(order)), i.row, i.column)


# Through audit_append (sql/0085): the application's role cannot insert into the trail itself.
AUDIT_INSERT = """
SELECT audit_append(NULL, %s, 'registry.import', 'registry', %s, NULL, NULL, %s)
"""


def _audit(
    conn: psycopg.Connection[Any], actor: str, sheets: list[Sheet], report: ImportReport
) -> None:
    """One audit entry per stored import, in the same transaction (when the trail exists)."""
    from psycopg.types.json import Jsonb

    row = conn.execute(
        "SELECT to_regprocedure('audit_append(bigint, text, text, text, text, bigint, jsonb, "
        "jsonb)') IS NOT NULL"
    ).fetchone()
    if not row or not row[0]:
        return
    sources = sorted({s.source.split(":")[0] for s in sheets})
    after = {
        "sources": sources,
        "counts": {k: asdict(c) for k, c in report.counts.items()},
        "bad_rows_skipped": report.bad_rows,
    }
    conn.execute(AUDIT_INSERT, (actor, ", ".join(sources), Jsonb(after)))


def import_registry(
    conn: psycopg.Connection[Any],
    sheets: list[Sheet],
    *,
    dry_run: bool = False,
    skip_bad_rows: bool = False,
    actor: str = "cli",
) -> ImportReport:
    """Validate and upsert `sheets`; commit only when every row is good (or `skip_bad_rows`).
    `actor` names who imported, for the audit trail."""
    report = ImportReport(dry_run=dry_run)
    for sheet in sheets:
        report.rows[sheet.kind] = report.rows.get(sheet.kind, 0) + len(sheet.rows)
    with conn.transaction():
        validator = Validator(load_registry(conn))
        validator.run(sheets)
        Writer(conn, report, validator).write()
        report.issues = sorted(validator.issues, key=_issue_order(sheets))
        report.notes = validator.notes
        if dry_run or (report.issues and not skip_bad_rows):
            # Leaves the block rolling back: nothing of this import is stored.
            raise psycopg.Rollback()
        _audit(conn, actor, sheets, report)
        report.committed = True
    if report.committed:
        logger.info(
            "registry import stored: %s",
            ", ".join(f"{k} +{c.inserted} ~{c.updated}" for k, c in report.counts.items()),
        )
    return report


def run_import(
    url: str,
    paths: list[Path],
    *,
    kind: str | None = None,
    dry_run: bool = False,
    skip_bad_rows: bool = False,
) -> ImportReport:
    """Read `paths` and import them into the database at `url`."""
    import getpass

    from oxy.database import connect

    try:
        actor = f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in a bare container
        actor = "cli"
    sheets = read_sources(paths, kind)
    with connect(url) as conn:
        return import_registry(
            conn, sheets, dry_run=dry_run, skip_bad_rows=skip_bad_rows, actor=actor
        )


# What each kind holds, for the template's notes sheet (Vietnamese first, English second).
KIND_HELP: dict[str, str] = {
    "suppliers": "Đơn vị cung cấp oxy / Oxygen suppliers (producer, filling_station, distributor)",
    "facilities": "Cơ sở y tế (CSYT) / Treatment facilities",
    "tanks": "Bồn oxy lỏng (LOX) / Liquid-oxygen tanks (kg)",
    "calibration_points": "Bảng barem DP → khối lượng / Strapping tables, one row per point",
    "contacts": "Danh bạ liên hệ / Contacts of any organisation",
}


def write_template(path: Path) -> None:
    """An empty workbook with one sheet per kind (headers, required ones marked) and notes."""
    import openpyxl
    from openpyxl.styles import Font

    book = openpyxl.Workbook()
    notes = book.active
    assert notes is not None
    notes.title = "_huong_dan"
    notes.append(["Mẫu nhập danh mục / Registry import template (docs/registry-import.md)"])
    notes.append(["* = bắt buộc / required; sheets starting with '_' are skipped"])
    for kind in KINDS:
        notes.append([kind, KIND_HELP[kind]])
        ws = book.create_sheet(kind)
        ws.append([c.name for c in COLUMNS[kind]])
        for cell, col in zip(ws[1], COLUMNS[kind], strict=True):
            cell.font = Font(bold=col.required)
            ws.column_dimensions[cell.column_letter].width = max(12, len(col.name) + 2)
    book.save(path)
