"""Exports: CSV and XLSX for every list, and a print-styled HTML page of the SYT report.

The HTML page (A4, for the browser's print) links to the PDF of the same report made by
`api.reports.pdf` for official submission; every column header carries its unit.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from fastapi.responses import Response
from openpyxl import Workbook

from api.i18n import DEFAULT_LOCALE, format_date, gettext, to_local

from .layout import day_of, field_rows
from .letterhead import Letterhead, issued_on
from .messages import text

if TYPE_CHECKING:
    from .national import NationalView
    from .syt import SytReport

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ExportKind(StrEnum):
    """The formats of a list export (`….{kind}`): another kind is a 422 naming `kind`."""

    CSV = "csv"
    XLSX = "xlsx"


KINDS = tuple(k.value for k in ExportKind)


# Stored values written as words in the caller's language (English message ids).
VALUE_LABELS: dict[str, str] = {
    "enough": "Enough",
    "needs_more": "Needs more",
    "unknown": "Unknown",
    "draft": "state.draft",
    "sent": "state.sent",
    "approved": "state.approved",
    "sent_back": "state.sent_back",
    "critical": "urgency.critical",
    "high": "urgency.high",
    "normal": "urgency.normal",
    "dispatched": "cstate.dispatched",
    "in_transit": "cstate.in_transit",
    "delivered": "cstate.delivered",
    "confirmed": "cstate.confirmed",
}
# A text cell starting with one of these is read as a formula by spreadsheet programs.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# An unknown figure is written as the pages show it, "—" (never an empty cell, which a spreadsheet
# sums as 0), followed by the reason the page gives when the row carries one (`unknown`: a reason
# for the whole row, or per figure keyed by its name without the unit suffix, as
# api.reports.figures and api.accounting.telemetry.Unknown record it).
UNKNOWN = "—"
WHY_UNKNOWN: dict[str, str] = {
    "no_telemetry": "No telemetry for this day",
    "calibration_missing": "Readings without a valid calibration",
    "not_reported": "Not reported",
}
_UNIT_SUFFIX = re.compile(r"_(kg|nm3|pct|km)$")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)")


def _local_time(v: datetime) -> str:
    """A date-time in Vietnam time (the time the pages show), minutes precision."""
    return to_local(v).strftime("%Y-%m-%d %H:%M")


def _cell(v: Any, locale: str = DEFAULT_LOCALE) -> Any:
    """A value as written to a file: numbers as numbers, booleans and states as words in
    `locale`, times in Vietnam time."""
    if isinstance(v, bool):
        return gettext(locale, "Yes" if v else "No")
    if isinstance(v, float):
        return round(v, 3)
    if isinstance(v, datetime):
        return _local_time(v)
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, dict | list):
        return str(v)
    if isinstance(v, str):
        if v in VALUE_LABELS:
            return gettext(locale, VALUE_LABELS[v])
        if _ISO_DATETIME.fullmatch(v):
            try:
                return _local_time(datetime.fromisoformat(v.replace("Z", "+00:00")))
            except ValueError:
                return v
    return v


def unknown_text(reason: str | None, locale: str = DEFAULT_LOCALE) -> str:
    """ "—", with the reason in `locale` when it is one the pages explain."""
    if reason in WHY_UNKNOWN:
        return f"{UNKNOWN} ({gettext(locale, WHY_UNKNOWN[reason])})"
    return UNKNOWN


def _reason(row: dict[str, Any], key: str) -> str | None:
    """Why `row[key]` is unknown, when the row says so."""
    why = row.get("unknown")
    if isinstance(why, dict):
        why = why.get(key) or why.get(_UNIT_SUFFIX.sub("", key))
    return why if isinstance(why, str) else None


def value(row: dict[str, Any], key: str, locale: str = DEFAULT_LOCALE) -> Any:
    """The cell of `key` in `row`: `_cell` of the value, or "—" and the reason when unknown."""
    v = row.get(key)
    if v is None:
        return unknown_text(_reason(row, key), locale)
    return _cell(v, locale)


def _text_safe(v: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, neutralised with a leading
    apostrophe (OWASP's CSV injection advice); numbers are left as they are."""
    if isinstance(v, str) and v.startswith(FORMULA_START):
        return "'" + v
    return v


def to_csv(
    columns: Sequence[tuple[str, str]],
    rows: Sequence[dict[str, Any]],
    locale: str = DEFAULT_LOCALE,
) -> bytes:
    """CSV (UTF-8 with BOM so spreadsheet programs read Vietnamese): header labels, then rows."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([_text_safe(label) for _, label in columns])
    for r in rows:
        w.writerow([_text_safe(value(r, k, locale)) for k, _ in columns])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(
    title: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[dict[str, Any]],
    locale: str = DEFAULT_LOCALE,
) -> bytes:
    """One-sheet XLSX workbook with labelled columns; every text cell is stored as text (a name
    such as `=HYPERLINK(...)` is never a formula)."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title[:31]
    ws.append([label for _, label in columns])
    for r in rows:
        ws.append([value(r, k, locale) for k, _ in columns])
    for row in ws.iter_rows():
        for c in row:
            if isinstance(c.value, str):
                c.data_type = "s"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def localize(
    columns: Sequence[tuple[str, str]], locale: str, **params: str
) -> list[tuple[str, str]]:
    """Column headings in `locale`: English message ids through the catalogs (api/i18n), with
    `%(gas)s` filled in from `params`."""
    return [(key, gettext(locale, label) % params) for key, label in columns]


def download(
    kind: ExportKind | str,
    title: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[dict[str, Any]],
    *,
    locale: str,
    **params: str,
) -> Response:
    """The rows as an attachment `<title>.<kind>`, kind one of KINDS (csv or xlsx), headed in
    the caller's language."""
    columns = localize(columns, locale, **params)
    kind = ExportKind(kind)  # ValueError for anything else
    if kind == ExportKind.CSV:
        body, media = to_csv(columns, rows, locale), CSV_TYPE
    else:
        body, media = to_xlsx(title, columns, rows, locale), XLSX_TYPE
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{title}.{kind.value}"'},
    )


@dataclass(frozen=True, slots=True)
class Exporter:
    """`download` bound to the caller's language and the gas unit of the reference conditions
    (labels may name it as `{gas}`): the one export helper of the JSON routes (api.deps)."""

    locale: str
    gas: str

    def __call__(
        self,
        kind: ExportKind | str,
        title: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[dict[str, Any]],
    ) -> Response:
        """The rows as an attachment `<title>.<kind>`."""
        return download(kind, title, columns, rows, locale=self.locale, gas=self.gas)


def facility_columns() -> list[tuple[str, str]]:
    """Columns of a facility list (SYT report body), each label with its unit."""
    return [
        ("code", "Code"),
        ("name", "Facility"),
        ("reported", "Reported"),
        ("late", "Late"),
        ("patients_current", "Current patients"),
        ("patients_new", "New"),
        ("discharged", "Discharged"),
        ("refilled_liquid_kg", "Liquid refilled (kg)"),
        ("refilled_gas_nm3", "Gas refilled (%(gas)s)"),
        ("stock_liquid_kg", "Liquid stock (kg)"),
        ("stock_gas_nm3", "Gas stock (%(gas)s)"),
        ("capacity_nm3", "Capacity (%(gas)s)"),
        ("avg_need_nm3", "Avg need (%(gas)s/day)"),
        ("days_of_supply", "Days of supply"),
        ("status", "Status"),
    ]


def province_columns() -> list[tuple[str, str]]:
    """Columns of the national view's per-province list."""
    return [
        ("province_code", "Province code"),
        ("name", "Reporting parent"),
        ("expected", "Expected"),
        ("reported", "Reported"),
        ("on_time", "On time"),
        ("patients_current", "Patients"),
        # Beside each sum, how many of the expected facilities it stands for (the pages' "n/m").
        ("patients_current_counted", "Patients: facilities counted"),
        ("stock_nm3", "Stock (%(gas)s)"),
        ("stock_nm3_counted", "Stock: facilities counted"),
        ("need_nm3_per_day", "Need (%(gas)s/day)"),
        ("need_nm3_per_day_counted", "Need: facilities counted"),
        ("days_of_supply", "Days of supply"),
        ("needs_more", "Facilities needing more"),
        ("status", "Status"),
    ]


def province_rows(view: NationalView, locale: str) -> list[dict[str, Any]]:
    """The national view's province rows and the nation's, each with its sums' contributors."""
    nation = {**view.nation.as_dict(), "name": gettext(locale, "Nation")}
    return [
        {
            **row,
            **{f"{k}_counted": row["contributors"].get(k) for k in _COUNTED},
        }
        for row in [*(r.as_dict() for r in view.provinces), nation]
    ]


_COUNTED = ("patients_current", "stock_nm3", "need_nm3_per_day")


# The SYT report's seed fields, one row each, from the declarative table (api.reports.syt_fields).
SYT_FIELD_COLUMNS: list[tuple[str, str]] = [
    ("no", "Field"),
    ("label", "Report to the Ministry of Health"),
    ("value", "Value"),
]


def syt_field_rows(report: SytReport, locale: str) -> list[dict[str, Any]]:
    """Seed fields 1–16 as export rows (number, label, value with unit), as printed."""
    return [{"no": n, "label": label, "value": v} for n, label, v in field_rows(report, locale)]


SENT_COLUMNS: list[tuple[str, str]] = [
    ("report_day", "Report date"),
    ("org_name", "Reporting parent"),
    ("state", "State"),
    ("revision", "Revision"),
    ("sent_at", "Sent at (Vietnam time)"),
    ("sent_by", "Sent by"),
    ("approved_at", "Approved at (Vietnam time)"),
    ("revisions", "Revisions"),
]


def delivery_columns() -> list[tuple[str, str]]:
    """Columns of a supplier's deliveries with the cross-check."""
    return [
        ("code", "Code"),
        ("name", "Recipient facility"),
        ("liquid_kg", "Liquid (kg)"),
        ("gas_nm3", "Gas (%(gas)s)"),
        ("cylinders", "Cylinders"),
        ("match", "Matches the facility's refill"),
        ("facility_refilled_liquid_kg", "Facility's refill (kg)"),
    ]


def syt_print_html(report: SytReport, head: Letterhead, locale: str) -> str:
    """A print-styled A4 page of the SYT report (fields 1–16 and the facility list) in the
    layout of administrative documents (NĐ 30/2020), like the PDF."""
    e = html.escape
    org_name = head.department
    gas = report.units["gas"]
    locked = report.locked
    lines = field_rows(report, locale)
    rows = "".join(
        f"<tr><th>{e(n)}</th><td>{e(label)}</td><td>{e(str(v))}</td></tr>" for n, label, v in lines
    )
    cols = localize(facility_columns(), locale, gas=gas)
    head_cells = "".join(f"<th>{e(label)}</th>" for _, label in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{e(str(value(fac, k, locale)))}</td>" for k, _ in cols) + "</tr>"
        for fac in (f.as_dict() for f in report.facilities)
    )
    state = e(gettext(locale, "state." + report.state))
    revision = e(str(report.revision))
    lock = f"<p class='lock'>{e(text(locked, locale))}</p>" if locked else ""
    governing = head.governing(locale)
    day = format_date(day_of(report), locale)
    iso_day = report.report_day.isoformat()

    def _(msg: str) -> str:
        return e(gettext(locale, msg))

    return f"""<!doctype html>
<html lang="{e(locale)}"><head><meta charset="utf-8">
<title>{_("Report to the Ministry of Health")} {e(org_name)} {e(iso_day)}</title>
<style>
@page {{ size: A4 landscape; margin: 20mm 15mm 20mm 30mm; }}
body {{ font-family: "Times New Roman", "DejaVu Serif", serif; font-size: 11pt; }}
table {{ border-collapse: collapse; width: 100%; margin-bottom: 8mm; }}
th, td {{ border: 1px solid #444; padding: 2px 4px; text-align: left; }}
.letterhead {{ display: flex; justify-content: space-between; text-align: center; }}
.letterhead p {{ margin: 0; }}
.dept, .motto {{ font-weight: bold; }}
.place {{ font-style: italic; margin-top: 2mm !important; }}
.title {{ text-align: center; font-weight: bold; margin: 6mm 0 0; }}
.to {{ text-align: center; }}
.end {{ display: flex; justify-content: space-between; break-inside: avoid; }}
.signer {{ text-align: center; min-width: 40%; }}
.signer .name {{ margin-top: 22mm; font-weight: bold; }}
.lock {{ font-weight: bold; }}
@media print {{ .noprint {{ display: none; }} }}
@media screen {{ body {{ max-width: 297mm; margin: auto; }} }}
</style></head><body>
<p class="noprint"><a href="print.pdf" download>{e(gettext(locale, "Download PDF"))}</a></p>
<header class="letterhead">
<div>{f"<p>{e(governing)}</p>" if governing else ""}
<p class="dept">{e(org_name.upper())}</p><p>{e(head.number(locale))}</p></div>
<div><p class="motto">{_("SOCIALIST REPUBLIC OF VIET NAM")}</p>
<p class="motto"><u>{_("Independence - Freedom - Happiness")}</u></p>
<p class="place">{e(head.place_and_date(issued_on(report), locale))}</p></div>
</header>
<h1 class="title">{_("REPORT")}<br>
{e(gettext(locale, "Medical oxygen supply and use on %(day)s") % {"day": day})}</h1>
<p class="to">{_("To: Ministry of Health")}.</p>
<p>{_("Report date")}: {e(day)} · {_("State")}: {state}
 · {_("Revision")}: {revision}</p>
<p>{_("Gas unit")}: {e(gas)}; {_("liquid oxygen")}: kg, {_("m3 LOX (liquid, 1.141 kg/L)")}</p>
{lock}
<table>{rows}</table>
<table><thead><tr>{head_cells}</tr></thead><tbody>{body}</tbody></table>
<section class="end">
<div><p><b><i>{_("Recipients:")}</i></b></p><p>{_("- As above;")}</p>
<p>{_("- Archived: records office.")}</p></div>
<div class="signer"><p><b>{e(head.signer_title(locale))}</b></p>
<p><i>{_("(Signature, full name, seal)")}</i></p>
<p class="name">{e(head.signer or "")}</p></div>
</section>
</body></html>"""
