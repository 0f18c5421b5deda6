"""The SYT report's field lines (seed fields 1–16) with labels from the i18n catalogs and values
with their units: one layout shared by the print page and the PDF."""

from __future__ import annotations

from datetime import date

from . import syt_fields
from .syt_fields import SytShown, num

__all__ = ["day_of", "field_rows", "num"]


def day_of(report: SytShown) -> date:
    """The report's day."""
    return report.report_day


def field_rows(report: SytShown, locale: str) -> list[tuple[str, str, str]]:
    """(number, label, value with unit) for seed fields 1–16, from the declarative field table
    (api.reports.syt_fields), labels from the catalogs."""
    return syt_fields.rows(report, locale)
