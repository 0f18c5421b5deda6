"""The SYT report as a PDF for official submission (A4 portrait, Vietnamese-capable font).

Same content as the print-styled HTML page (`exports.syt_print_html`): seed fields 1–16, state,
revision, sent time, the facility list, in the layout of Vietnamese administrative documents
(Nghị định 30/2020/NĐ-CP; heading and signer from `api.reports.letterhead`).
The DejaVu Sans TrueType font comes from the npm package `dejavu-fonts-ttf` installed into
`api/static/node_modules` (like every other front-end asset), read when a PDF is made.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fpdf import FPDF
from fpdf.enums import TableCellFillMode
from fpdf.fonts import FontFace

from api.i18n import format_date, format_datetime, gettext
from api.web.assets import INSTALL_COMMAND, NODE_MODULES

from .layout import day_of as _day
from .layout import field_rows as _field_rows
from .layout import num as _num
from .letterhead import Letterhead, issued_on
from .messages import text

if TYPE_CHECKING:
    from .syt import SytReport

logger = logging.getLogger(__name__)

FONT_DIR = NODE_MODULES / "dejavu-fonts-ttf" / "ttf"
FONT_FILES: dict[str, str] = {
    "": "DejaVuSans.ttf",
    "B": "DejaVuSans-Bold.ttf",
    "I": "DejaVuSans-Oblique.ttf",
    "BI": "DejaVuSans-BoldOblique.ttf",
}
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


def _facility_rows(report: SytReport, locale: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the facility list (the columns that fit A4 portrait)."""

    def _(msg: str) -> str:
        return gettext(locale, msg)

    gas = report.units["gas"]
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
    for fac in report.facilities:
        reported = (_("late") if fac.late else _("on time")) if fac.reported else _("not sent")
        rows.append(
            [
                f"{fac.name} ({fac.code})",
                reported,
                _num(fac.patients_current, locale),
                _num(fac.patients_new, locale),
                _num(fac.discharged, locale),
                _num(fac.stock_liquid_kg, locale),
                _num(fac.stock_gas_nm3, locale),
                _num(fac.avg_need_nm3, locale),
                _num(fac.days_of_supply, locale, 1),
                status.get(fac.status.value, _("Unknown")),
            ]
        )
    return head, rows


def _heading(pdf: FPDF, report: SytReport, head: Letterhead, locale: str) -> None:
    """The heading of NĐ 30/2020 (Phụ lục I): governing body, department and number left;
    national motto, place and date right; then the document kind, its summary and "Kính gửi"."""

    def _(msg: str) -> str:
        return gettext(locale, msg)

    width = pdf.epw
    left_w, right_w = width * 0.42, width * 0.58
    top = pdf.get_y()
    if governing := head.governing(locale):
        pdf.set_font(FAMILY, "", 10)
        _para(pdf, left_w, 5, governing, "C")
    pdf.set_font(FAMILY, "B", 10)
    _para(pdf, left_w, 5, head.department.upper(), "C")
    _rule(pdf, pdf.l_margin + left_w / 2, 12)
    pdf.ln(2)
    pdf.set_font(FAMILY, "", 10)
    _para(pdf, left_w, 5, head.number(locale), "C")
    left_end = pdf.get_y()
    pdf.set_xy(pdf.l_margin + left_w, top)
    pdf.set_font(FAMILY, "B", 10)
    _para(pdf, right_w, 5, _("SOCIALIST REPUBLIC OF VIET NAM"), "C")
    pdf.set_x(pdf.l_margin + left_w)
    pdf.set_font(FAMILY, "B", 11)
    _para(pdf, right_w, 5, _("Independence - Freedom - Happiness"), "C")
    _rule(pdf, pdf.l_margin + left_w + right_w / 2, 50)
    pdf.ln(2)
    pdf.set_x(pdf.l_margin + left_w)
    pdf.set_font(FAMILY, "I", 10)
    _para(pdf, right_w, 5, head.place_and_date(issued_on(report), locale), "C")
    pdf.set_y(max(left_end, pdf.get_y()) + 6)

    day = format_date(_day(report), locale)
    pdf.set_font(FAMILY, "B", 14)
    _para(pdf, width, 7, _("REPORT"), "C")
    pdf.set_font(FAMILY, "B", 11)
    _para(pdf, width, 6, _("Medical oxygen supply and use on %(day)s") % {"day": day}, "C")
    _rule(pdf, pdf.l_margin + width / 2, 30)
    pdf.ln(3)
    pdf.set_font(FAMILY, "", 11)
    _para(pdf, width, 6, _("To: Ministry of Health") + ".", "C")
    pdf.ln(2)


def _rule(pdf: FPDF, centre_x: float, length: float) -> None:
    """The short line under the department and the motto (NĐ 30/2020)."""
    y = pdf.get_y() + 0.5
    pdf.line(centre_x - length / 2, y, centre_x + length / 2, y)


def _signature(pdf: FPDF, head: Letterhead, locale: str) -> None:
    """Recipients left; the signer's title, signature space and full name right."""

    def _(msg: str) -> str:
        return gettext(locale, msg)

    width = pdf.epw
    half = width / 2
    y = pdf.get_y() + 4
    pdf.set_xy(pdf.l_margin, y)
    pdf.set_font(FAMILY, "BI", 9)
    pdf.cell(half, 5, _("Recipients:"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, "", 8)
    for line in (_("- As above;"), _("- Archived: records office.")):
        pdf.cell(half, 4, line, new_x="LMARGIN", new_y="NEXT")
    pdf.set_xy(pdf.l_margin + half, y)
    pdf.set_font(FAMILY, "B", 10)
    pdf.cell(half, 5, head.signer_title(locale), align="C")
    pdf.set_xy(pdf.l_margin + half, y + 5)
    pdf.set_font(FAMILY, "I", 8)
    pdf.cell(half, 5, _("(Signature, full name, seal)"), align="C")
    pdf.set_xy(pdf.l_margin + half, y + 28)
    pdf.set_font(FAMILY, "B", 10)
    pdf.cell(half, 5, head.signer or "", align="C")
    pdf.set_y(y + 34)


_FACILITY_WIDTHS = (36, 15, 14, 11, 18, 18, 18, 18, 14, 18)


def _facility_table(pdf: FPDF, head: list[str] | None, rows: list[list[str]]) -> None:
    """Rows of the facility list, under the heading row when `head` is given."""
    pdf.set_font(FAMILY, "", 7)
    with pdf.table(
        col_widths=_FACILITY_WIDTHS,
        line_height=4,
        text_align=("LEFT", "LEFT", *(["RIGHT"] * 7), "LEFT"),
        first_row_as_headings=head is not None,
        headings_style=FontFace(family=FAMILY, emphasis="BOLD", fill_color=(230, 230, 230)),
    ) as table:
        if head is not None:
            table.row(head)
        for cells in rows:
            table.row(cells)


def syt_report_pdf(report: SytReport, head: Letterhead, locale: str) -> bytes:
    """The SYT report (`syt.details` output) as an A4 portrait PDF in `locale`, laid out as an
    administrative document (NĐ 30/2020): the signature block always shares its page with the
    last row of the facility list (that row moves to the next page with it when needed)."""

    def _(msg: str) -> str:
        return gettext(locale, msg)

    fonts = font_paths()
    org_name = head.department
    province = head.province
    day = format_date(_day(report), locale)
    pdf = _Doc(locale, f"{org_name} · {_('Report date')}: {day}")
    pdf.set_title(f"{_('Report to the Ministry of Health')} - {org_name} - {day}")
    pdf.set_author(org_name)
    pdf.set_creator("Oxy")
    for style, path in fonts.items():
        pdf.add_font(FAMILY, style, str(path))
    # NĐ 30/2020 margins: left 30 mm, top 20 mm, right 15 mm, bottom 20 mm.
    pdf.set_margins(30, 20, 15)
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    width = pdf.epw
    _heading(pdf, report, head, locale)

    state = _("state." + report.state)
    meta = [
        f"{_('Reporting unit')}: {org_name}"
        + (f" — {_('Province')}: {province}" if province else ""),
        f"{_('Report date')}: {day}",
        f"{_('Report state')}: {state} · {_('revision')} {report.revision} · "
        f"{_('Sent at')}: {_when(report.sent_at, locale)}"
        + (
            f" · {_('Approved at')}: {_when(report.approved_at, locale)}"
            if report.approved_at
            else ""
        ),
        _("Units: gas %(gas)s; liquid kg or %(liquid)s")
        % {
            "gas": report.units["gas"],
            "liquid": gettext(locale, report.units["liquid_volume"]),
        },
    ]
    pdf.set_font(FAMILY, "", 9)
    for line in meta:
        _para(pdf, width, 5, line)
    if report.sent_back_reason and report.state == "sent_back":
        _para(pdf, width, 5, f"{_('Sent back by the Ministry')}: {report.sent_back_reason}")
    if report.locked:
        pdf.set_font(FAMILY, "B", 9)
        _para(pdf, width, 5, text(report.locked, locale))
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

    cols, rows = _facility_rows(report, locale)

    def _section(doc: FPDF) -> None:
        doc.set_font(FAMILY, "B", 11)
        _para(doc, width, 6, _("Facilities in this report"))
        doc.ln(1)

    if len(rows) > 1:
        _section(pdf)
        _facility_table(pdf, cols, rows[:-1])

    def _tail(doc: FPDF, heading: bool) -> None:
        # The last row (or the empty-list sentence) and the signature, kept on one page; with
        # a one-row list, the section title too.
        if len(rows) <= 1:
            _section(doc)
        if rows:
            _facility_table(doc, cols if heading or len(rows) == 1 else None, rows[-1:])
        else:
            doc.set_font(FAMILY, "", 9)
            _para(doc, width, 5, _("No facility matches the filters."))
        _signature(doc, head, locale)

    with pdf.offset_rendering() as trial:
        _tail(trial, False)  # type: ignore[arg-type]
    if trial.page_break_triggered:
        pdf.add_page()
        _tail(pdf, True)
    else:
        _tail(pdf, False)
    logger.debug("SYT report PDF rendered for %s %s", org_name, report.report_day)
    return bytes(pdf.output())
