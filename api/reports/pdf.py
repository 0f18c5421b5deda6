"""The SYT report as a PDF for official submission (A4 portrait, Vietnamese-capable font).

Same content as the print-styled HTML page (`exports.syt_print_html`): seed fields 1–16, state,
revision, sent time, the facility list, plus the signature block of Vietnamese official forms.
The DejaVu Sans TrueType font comes from the npm package `dejavu-fonts-ttf` installed into
`api/static/node_modules` (like every other front-end asset), read when a PDF is made.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import TableCellFillMode
from fpdf.fonts import FontFace

from api.i18n import format_date, format_datetime, gettext
from api.web.assets import INSTALL_COMMAND, NODE_MODULES

from .layout import day_of as _day
from .layout import field_rows as _field_rows
from .layout import num as _num
from .messages import text

logger = logging.getLogger(__name__)

FONT_DIR = NODE_MODULES / "dejavu-fonts-ttf" / "ttf"
FONT_FILES: dict[str, str] = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
FAMILY = "DejaVu"
PDF_TYPE = "application/pdf"


class FontMissing(RuntimeError):
    """The npm-installed TrueType font the PDF needs is not there."""


def font_paths(root: Path = FONT_DIR) -> dict[str, Path]:
    """Style -> font file, or FontMissing naming the install command."""
    paths = {style: root / name for style, name in FONT_FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FontMissing(
            f"PDF font missing ({', '.join(missing)}): run `{INSTALL_COMMAND}` "
            "from the repository root"
        )
    return paths


class _Doc(FPDF):
    """A4 portrait with a page-number footer in the report's language."""

    def __init__(self, locale: str, footer_left: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.locale = locale
        self.footer_left = footer_left

    def footer(self) -> None:
        """Page N / total, and which report this page belongs to."""
        self.set_y(-12)
        self.set_font(FAMILY, "", 7)
        self.cell(0, 5, self.footer_left, align="L")
        self.set_x(self.l_margin)
        # "{nb}" is fpdf2's placeholder for the page count, filled in when the document closes.
        page = gettext(self.locale, "Page %(page)s of %(total)s") % {
            "page": self.page_no(),
            "total": "{nb}",
        }
        self.cell(0, 5, page, align="R")


def _para(pdf: FPDF, w: float, h: float, txt: str, align: str = "L") -> None:
    """A wrapped paragraph, leaving the cursor at the left margin of the next line."""
    pdf.multi_cell(w, h, txt, align=align, new_x="LMARGIN", new_y="NEXT")


def _when(iso: str | None, locale: str) -> str:
    return format_datetime(datetime.fromisoformat(iso), locale) if iso else "—"


def _facility_rows(report: dict[str, Any], locale: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the facility list (the columns that fit A4 portrait)."""

    def _(msg: str) -> str:
        return gettext(locale, msg)

    gas = report["units"]["gas"]
    head = [
        _("Facility"),
        _("Report"),
        _("Patients"),
        _("New"),
        _("Discharged"),
        f"{_('Liquid stock')} (kg)",
        f"{_('Gas stock')} ({gas})",
        f"{_('Average daily need')} ({_('%(unit)s/day') % {'unit': gas}})",
        _("Days of supply"),
        _("Status"),
    ]
    status = {"enough": _("Enough"), "needs_more": _("Needs more")}
    rows = []
    for fac in report["facilities"]:
        reported = (
            (_("late") if fac.get("late") else _("on time"))
            if fac.get("reported")
            else _("not sent")
        )
        rows.append(
            [
                f"{fac['name']} ({fac['code']})",
                reported,
                _num(fac.get("patients_current"), locale),
                _num(fac.get("patients_new"), locale),
                _num(fac.get("discharged"), locale),
                _num(fac.get("stock_liquid_kg"), locale),
                _num(fac.get("stock_gas_nm3"), locale),
                _num(fac.get("avg_need_nm3"), locale),
                _num(fac.get("days_of_supply"), locale, 1),
                status.get(str(fac.get("status")), _("Unknown")),
            ]
        )
    return head, rows


def syt_report_pdf(
    report: dict[str, Any], org_name: str, locale: str, *, province: str | None = None
) -> bytes:
    """The SYT report (`syt.details` output) as an A4 portrait PDF in `locale`."""

    def _(msg: str) -> str:
        return gettext(locale, msg)

    fonts = font_paths()
    day = format_date(_day(report), locale)
    pdf = _Doc(locale, f"{org_name} · {_('Report date')}: {day}")
    pdf.set_title(f"{_('Report to the Ministry of Health')} - {org_name} - {day}")
    pdf.set_author(org_name)
    pdf.set_creator("Oxy")
    for style, path in fonts.items():
        pdf.add_font(FAMILY, style, str(path))
    pdf.set_margins(15, 12, 15)
    pdf.set_auto_page_break(True, margin=16)
    pdf.add_page()
    width = pdf.epw

    # Heading of Vietnamese administrative documents: issuing body left, national motto right.
    top = pdf.get_y()
    pdf.set_font(FAMILY, "B", 9)
    _para(pdf, width * 0.45, 5, org_name.upper(), "C")
    if province:
        pdf.set_font(FAMILY, "", 9)
        _para(pdf, width * 0.45, 5, province, "C")
    left_end = pdf.get_y()
    pdf.set_xy(pdf.l_margin + width * 0.45, top)
    pdf.set_font(FAMILY, "B", 9)
    _para(pdf, width * 0.55, 5, _("SOCIALIST REPUBLIC OF VIET NAM"), "C")
    pdf.set_x(pdf.l_margin + width * 0.45)
    _para(pdf, width * 0.55, 5, _("Independence - Freedom - Happiness"), "C")
    pdf.set_y(max(left_end, pdf.get_y()) + 6)

    pdf.set_font(FAMILY, "B", 14)
    _para(pdf, width, 7, _("Report to the Ministry of Health").upper(), "C")
    pdf.set_font(FAMILY, "", 10)
    _para(pdf, width, 6, f"{_('Report date')}: {day}", "C")
    pdf.ln(2)

    state = _("state." + str(report.get("state", "draft")))
    meta = [
        f"{_('Reporting unit')}: {org_name}"
        + (f" — {_('Province')}: {province}" if province else ""),
        f"{_('Report state')}: {state} · {_('revision')} {report.get('revision', 0)} · "
        f"{_('Sent at')}: {_when(report.get('sent_at'), locale)}"
        + (
            f" · {_('Approved at')}: {_when(report['approved_at'], locale)}"
            if report.get("approved_at")
            else ""
        ),
        _("Units: gas %(gas)s; liquid kg or %(liquid)s")
        % {"gas": report["units"]["gas"], "liquid": report["units"]["liquid_volume"]},
    ]
    pdf.set_font(FAMILY, "", 9)
    for line in meta:
        _para(pdf, width, 5, line)
    if report.get("sent_back_reason") and report.get("state") == "sent_back":
        _para(pdf, width, 5, f"{_('Sent back by the Ministry')}: {report['sent_back_reason']}")
    if report.get("locked"):
        pdf.set_font(FAMILY, "B", 9)
        _para(pdf, width, 5, text(report["locked"], locale))
    pdf.ln(3)

    pdf.set_font(FAMILY, "", 9)
    with pdf.table(
        col_widths=(8, 92, 80),
        first_row_as_headings=False,
        line_height=5.5,
        text_align=("CENTER", "LEFT", "LEFT"),
        cell_fill_color=(240, 240, 240),
        cell_fill_mode=TableCellFillMode.COLUMNS,
    ) as table:
        for no, label, value in _field_rows(report, locale):
            row = table.row()
            row.cell(no)
            row.cell(label)
            row.cell(value)
    pdf.ln(4)

    head, rows = _facility_rows(report, locale)
    pdf.set_font(FAMILY, "B", 11)
    _para(pdf, width, 6, _("Facilities in this report"))
    pdf.ln(1)
    if rows:
        pdf.set_font(FAMILY, "", 7)
        with pdf.table(
            col_widths=(36, 15, 14, 11, 18, 18, 18, 18, 14, 18),
            line_height=4,
            text_align=("LEFT", "LEFT", *(["RIGHT"] * 7), "LEFT"),
            headings_style=FontFace(family=FAMILY, emphasis="BOLD", fill_color=(230, 230, 230)),
        ) as table:
            table.row(head)
            for cells in rows:
                table.row(cells)
    else:
        pdf.set_font(FAMILY, "", 9)
        _para(pdf, width, 5, _("No facility matches the filters."))
    pdf.ln(6)

    # Signature block: preparer left, head of the unit (signs and seals) right.
    if pdf.get_y() > pdf.h - 60:
        pdf.add_page()
    half = width / 2
    pdf.set_font(FAMILY, "", 9)
    pdf.set_x(pdf.l_margin + half)
    pdf.cell(half, 5, _("........, date ...... month ...... year ........"), align="C")
    pdf.ln(6)
    y = pdf.get_y()
    for i, (title, hint) in enumerate(
        (
            (_("Prepared by"), _("(Signature, full name)")),
            (_("Head of the unit"), _("(Signature, full name, seal)")),
        )
    ):
        pdf.set_xy(pdf.l_margin + i * half, y)
        pdf.set_font(FAMILY, "B", 10)
        pdf.cell(half, 5, title.upper(), align="C")
        pdf.set_xy(pdf.l_margin + i * half, y + 5)
        pdf.set_font(FAMILY, "", 8)
        pdf.cell(half, 5, hint, align="C")
    pdf.set_y(y + 30)
    logger.debug("SYT report PDF rendered for %s %s", org_name, report["report_day"])
    return bytes(pdf.output())
