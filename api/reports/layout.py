"""The SYT report's field lines (seed fields 1–16) with labels from the i18n catalogs and values
with their units: one layout shared by the print page and the PDF."""

from __future__ import annotations

from datetime import date
from typing import Any

from api.i18n import format_date, format_number, gettext


def num(v: Any, locale: str, digits: int = 0) -> str:
    """A number in the locale's format, or a dash."""
    return format_number(v, locale, digits) if isinstance(v, int | float) else "—"


def day_of(report: dict[str, Any]) -> date:
    """The report's day."""
    return date.fromisoformat(report["report_day"])


def field_rows(report: dict[str, Any], locale: str) -> list[tuple[str, str, str]]:
    """(number, label, value with unit) for seed fields 1–16, labels from the catalogs."""

    def _(msg: str) -> str:
        return gettext(locale, msg)

    f = report["fields"]
    gas = report["units"]["gas"]
    per_day = _("%(unit)s/day") % {"unit": gas}
    entered = report.get("entered") or {}
    filters = report["filters"]
    names = {x["facility_id"]: x["name"] for x in report["facilities"]}
    chosen = filters.get("facility_ids") or []
    status_label = {"all": _("All"), "enough": _("Enough"), "needs_more": _("Needs more")}
    own_cap = (entered.get("15") or {}).get("nm3")
    own_need = (entered.get("16") or {}).get("nm3_per_day")
    return [
        (
            "1",
            _("Filter by current status"),
            status_label.get(filters["status"], filters["status"]),
        ),
        (
            "2",
            _("Choose facilities (none chosen: all)"),
            ", ".join(names.get(i, str(i)) for i in chosen) if chosen else _("All"),
        ),
        ("3", _("Report date"), format_date(day_of(report), locale)),
        ("5", _("Current patients"), num(f["5"], locale)),
        ("6", _("New patients today"), num(f["6"], locale)),
        ("7", _("Discharged (morning and 16:00 reports)"), num(f["7"], locale)),
        ("8", _("Facilities that have not sent their report"), num(f["8"], locale)),
        (
            "9",
            _("Liquid oxygen refilled"),
            f"{num(f['9']['m3_liquid'], locale, 2)} {_('m3 liquid')} = "
            f"{num(f['9']['kg'], locale)} kg ≈ {num(f['9']['nm3'], locale)} {gas}",
        ),
        ("10", _("Facilities under this department"), num(f["10"], locale)),
        ("11", _("Gas oxygen (cylinders) refilled"), f"{num(f['11'], locale)} {gas}"),
        ("12", _("Situation notice to the Ministry"), entered.get("12") or "—"),
        (
            "13",
            _("Storage capacity of the facilities that reported"),
            f"{num(f['13']['reporting_nm3'], locale)} {gas}; "
            f"{_('all facilities (registry)')}: {num(f['13']['registry_all_nm3'], locale)} {gas}",
        ),
        ("14", _("Average daily need"), f"{num(f['14'], locale)} {per_day}"),
        (
            "15",
            _("Storage capacity of the facilities (department's figure)"),
            f"{num(own_cap, locale)} {gas}",
        ),
        (
            "16",
            _("Average daily need (department's figure, per day)"),
            f"{num(own_need, locale)} {per_day}",
        ),
    ]
