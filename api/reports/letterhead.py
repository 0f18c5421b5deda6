"""The heading and signature of the printed SYT report, after Nghị định 30/2020/NĐ-CP
(administrative documents, Phụ lục I): governing body above the issuing department, number and
symbol, national motto, place and date, "Kính gửi", and the signer's title and name.

One source for the print page (`exports.syt_print_html`) and the PDF (`pdf.syt_report_pdf`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from psycopg import AsyncConnection

from api.i18n import gettext, to_local

if TYPE_CHECKING:
    from .syt import SytReport

# The symbol of a report (BC) by a Department of Health (SYT), NĐ 30/2020 Phụ lục III.
SYMBOL = "BC-SYT"
# The number is given by the department's records office when the report is issued.
NUMBER_BLANK = "......."
_CITY_PREFIX = "Thành phố "


@dataclass(frozen=True, slots=True)
class Letterhead:
    """Who issues the report and who signs it."""

    department: str  # the issuing body's name, e.g. "Sở Y tế Thành phố Hồ Chí Minh"
    org_kind: str  # organisations.kind: 'syt' or 'ministry_office'
    province: str | None = None  # admin_units.name, e.g. "Thành phố Hồ Chí Minh"
    province_kind: str | None = None  # admin_units.kind: 'city' or 'province'
    signer: str | None = None  # display name of the person who sent the report

    def governing(self, locale: str) -> str | None:
        """The governing body line, e.g. "UBND THÀNH PHỐ HỒ CHÍ MINH", "UBND TỈNH CAO BẰNG"."""
        if not self.province:
            return None
        unit = (
            self.province
            if self.province_kind == "city"
            else gettext(locale, "%(name)s Province") % {"name": self.province}
        )
        return (gettext(locale, "People's Committee of %(unit)s") % {"unit": unit}).upper()

    def number(self, locale: str) -> str:
        """ "Số: ......./BC-SYT" (the number left for the records office)."""
        return gettext(locale, "No.: %(number)s/%(symbol)s") % {
            "number": NUMBER_BLANK,
            "symbol": SYMBOL,
        }

    def place(self) -> str | None:
        """The place name before the date: a province by its name, a centrally-run city by its
        name without "Thành phố" (Hà Nội), except Hồ Chí Minh City, written in full."""
        if not self.province:
            return None
        if self.province.startswith(_CITY_PREFIX) and "Hồ Chí Minh" not in self.province:
            return self.province.removeprefix(_CITY_PREFIX)
        return self.province

    def place_and_date(self, when: date | None, locale: str) -> str:
        """ "Thành phố Hồ Chí Minh, ngày 05 tháng 12 năm 2026"; dots for a report not sent."""
        parts = (
            {"day": f"{when.day:02d}", "month": f"{when.month:02d}", "year": str(when.year)}
            if when
            else {"day": "......", "month": "......", "year": "........"}
        )
        parts["place"] = self.place() or "........"
        return gettext(locale, "%(place)s, date %(day)s month %(month)s year %(year)s") % parts

    def signer_title(self, locale: str) -> str:
        """The signer's title: the Director of a Department of Health, else the unit's head."""
        return gettext(locale, "Director" if self.org_kind == "syt" else "Head of the unit").upper()


def issued_on(report: SytReport) -> date | None:
    """The date the report was sent, in Vietnam time (None for a report not sent)."""
    sent = report.sent_at
    return to_local(datetime.fromisoformat(sent)).date() if sent else None


_QUERY = """
SELECT o.name, o.kind, a.name AS province, a.kind AS province_kind,
       (SELECT u.display_name FROM syt_reports r JOIN users u ON u.username = r.sent_by
        WHERE r.org_id = o.id AND r.report_day = %(day)s) AS signer
FROM organisations o LEFT JOIN admin_units a ON a.code = o.province_code
WHERE o.id = %(id)s
"""


async def load(conn: AsyncConnection[Any], org_id: int, day: date) -> Letterhead:
    """The letterhead of reporting parent `org_id`'s report of `day`."""
    cur = await conn.execute(_QUERY, {"id": org_id, "day": day})
    row = await cur.fetchone()
    if row is None:
        return Letterhead(department=str(org_id), org_kind="syt")
    name, kind, province, province_kind, signer = row
    return Letterhead(
        department=str(name),
        org_kind=str(kind),
        province=province,
        province_kind=province_kind,
        signer=signer,
    )
