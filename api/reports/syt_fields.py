"""The SYT report's seed fields 1–16 as one declarative table.

Each field has its number, its label (the catalog msgid), its unit, where it comes from, and
functions for its value: the figure each facility contributes (summed, unknown ones left out),
the aggregate's value from that sum, and how it is shown (value, detail). The aggregate
(api.reports.syt), the composer's field cards (template filter `syt_cards`), the print page
and the PDF (api.reports.layout) all read this table; no other place spells a field's label,
unit or format.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from api.i18n import format_date, format_number, gettext

from .units import kg_to_liquid_m3

if TYPE_CHECKING:
    from api.accounting.config import AccountingConfig

    from .figures import FacilityFigures
    from .filters import SytFilters
    from .public import SytEnteredPublic, SytFieldsPublic


class FieldSource(StrEnum):
    """Where a seed field's value comes from."""

    FILTER = "filter"  # the report's own filters (1, 2)
    DAY = "day"  # the report day (3)
    FACILITIES = "facilities"  # a sum over the facilities' figures (5–7, 9, 11, 13, 14)
    DEPARTMENT = "department"  # a count of the department's facilities (8, 10)
    ENTERED = "entered"  # typed by the department (12, 15, 16)


class FieldUnit(StrEnum):
    """The unit a seed field is stated in."""

    NONE = "none"  # text, a date, a choice
    PATIENTS = "patients"
    FACILITIES = "facilities"
    LIQUID = "m3_liquid"  # m3 of liquid (with kg and gas beside it)
    GAS = "gas"  # m3 of gas at the declared reference
    GAS_PER_DAY = "gas_per_day"


class Named(Protocol):
    """A facility as field 2 names it."""

    @property
    def facility_id(self) -> int: ...
    @property
    def name(self) -> str: ...


class SytShown(Protocol):
    """What the field table shows of a report: the live one (api.reports.syt.SytReport) or the
    copy sent (api.reports.syt.SytSnapshot)."""

    @property
    def report_day(self) -> date: ...
    @property
    def filters(self) -> SytFilters: ...
    @property
    def fields(self) -> SytFieldsPublic: ...
    @property
    def facilities(self) -> Sequence[Named]: ...
    @property
    def units(self) -> Mapping[str, str]: ...
    @property
    def entered(self) -> SytEnteredPublic | None: ...


Gettext = Callable[[str], str]
# (report, gettext, locale) -> (value, detail or None)
Shown = Callable[[SytShown, Gettext, str], tuple[str, str | None]]
# (sum over the facilities that have the figure or None, the facilities, config) -> value
Value = Callable[[float | None, "Sequence[FacilityFigures]", "AccountingConfig"], Any]


def num(v: Any, locale: str, digits: int = 0) -> str:
    """A number in the locale's format, or a dash."""
    return format_number(v, locale, digits) if isinstance(v, int | float) else "—"


def _r(v: float | None, digits: int = 1) -> float | None:
    return None if v is None else round(v, digits)


def _gas(report: SytShown) -> str:
    return report.units.get("gas") or "Nm3"


def _per_day(report: SytShown, _: Gettext) -> str:
    return _("%(unit)s/day") % {"unit": _gas(report)}


@dataclass(frozen=True, slots=True)
class SytField:
    """One seed field of the SYT report."""

    no: str
    label: str  # catalog msgid
    unit: FieldUnit
    source: FieldSource
    show: Shown
    # FACILITIES: each facility's figure, summed over those that reported it.
    per_facility: Callable[[FacilityFigures], float | None] | None = None
    # FACILITIES / DEPARTMENT: the aggregate's value (from the sum, or from the facilities).
    value: Value | None = None
    detail_sep: str = " "  # between value and detail on one line (print page, PDF)
    card: bool = False  # shown as a computed card in the composer and details pages

    def text(self, report: SytShown, locale: str) -> str:
        """The value with its detail on one line (print page, PDF)."""
        value, detail = self.show(report, lambda m: gettext(locale, m), locale)
        return value if detail is None else f"{value}{self.detail_sep}{detail}"


def _count(figure: Callable[[SytFieldsPublic], int | None]) -> Shown:
    return lambda rep, _, loc: (num(figure(rep.fields), loc), None)


def _patients(total: float | None, _figs: Sequence[FacilityFigures], _cfg: Any) -> int | None:
    return None if total is None else int(total)


def _liquid(total: float | None, _figs: Sequence[FacilityFigures], cfg: AccountingConfig) -> Any:
    return {
        "kg": _r(total),
        "m3_liquid": None if total is None else _r(kg_to_liquid_m3(total), 3),
        "nm3": None if total is None else _r(cfg.reference.kg_to_m3(total)),
    }


def _capacity(total: float | None, figs: Sequence[FacilityFigures], _cfg: Any) -> Any:
    return {
        "reporting_nm3": _r(total),
        "registry_all_nm3": _r(sum(f.registry_capacity_nm3 or 0.0 for f in figs)),
    }


def _status(rep: SytShown, _: Gettext, _loc: str) -> tuple[str, str | None]:
    wanted = rep.filters.status
    labels = {"all": _("All"), "enough": _("Enough"), "needs_more": _("Needs more")}
    return labels.get(wanted, wanted), None


def _chosen(rep: SytShown, _: Gettext, _loc: str) -> tuple[str, str | None]:
    names = {x.facility_id: x.name for x in rep.facilities}
    chosen = rep.filters.facility_ids or []
    return (", ".join(names.get(i, str(i)) for i in chosen) if chosen else _("All")), None


def _day(rep: SytShown, _: Gettext, loc: str) -> tuple[str, str | None]:
    return format_date(rep.report_day, loc), None


def _show_liquid(rep: SytShown, _: Gettext, loc: str) -> tuple[str, str | None]:
    f = rep.fields.refilled_liquid
    return (
        f"{num(f.m3_liquid, loc, 2)} {_('m3 liquid')}",
        f"= {num(f.kg, loc)} kg ≈ {num(f.nm3, loc)} {_gas(rep)}",
    )


def _show_gas(figure: Callable[[SytFieldsPublic], float | None]) -> Shown:
    return lambda rep, _, loc: (f"{num(figure(rep.fields), loc)} {_gas(rep)}", None)


def _show_capacity(rep: SytShown, _: Gettext, loc: str) -> tuple[str, str | None]:
    f = rep.fields.capacity
    return (
        f"{num(f.reporting_nm3, loc)} {_gas(rep)}",
        f"{_('all facilities (registry)')}: {num(f.registry_all_nm3, loc)} {_gas(rep)}",
    )


def _show_need(rep: SytShown, _: Gettext, loc: str) -> tuple[str, str | None]:
    return f"{num(rep.fields.avg_need_nm3, loc)} {_per_day(rep, _)}", None


def _show_notice(rep: SytShown, _: Gettext, _loc: str) -> tuple[str, str | None]:
    return (rep.entered.notice if rep.entered else None) or "—", None


def _show_own_capacity(rep: SytShown, _: Gettext, loc: str) -> tuple[str, str | None]:
    own = rep.entered.own_capacity.nm3 if rep.entered else None
    return f"{num(own, loc)} {_gas(rep)}", None


def _show_own_need(rep: SytShown, _: Gettext, loc: str) -> tuple[str, str | None]:
    own = rep.entered.own_need.nm3_per_day if rep.entered else None
    return f"{num(own, loc)} {_per_day(rep, _)}", None


SF, U = FieldSource, FieldUnit

# Seed fields 1–16 (4 is not a field of the seed form), in the form's order.
FIELDS: tuple[SytField, ...] = (
    SytField("1", "Filter by current status", U.NONE, SF.FILTER, _status),
    SytField("2", "Choose facilities (none chosen: all)", U.NONE, SF.FILTER, _chosen),
    SytField("3", "Report date", U.NONE, SF.DAY, _day),
    SytField(
        "5",
        "Current patients",
        U.PATIENTS,
        SF.FACILITIES,
        _count(lambda f: f.current_patients),
        lambda f: f.patients_current,
        _patients,
        card=True,
    ),
    SytField(
        "6",
        "New patients today",
        U.PATIENTS,
        SF.FACILITIES,
        _count(lambda f: f.new_patients),
        lambda f: f.patients_new,
        _patients,
        card=True,
    ),
    SytField(
        "7",
        "Discharged (morning and 16:00 reports)",
        U.PATIENTS,
        SF.FACILITIES,
        _count(lambda f: f.discharged),
        lambda f: f.discharged,
        _patients,
        card=True,
    ),
    SytField(
        "8",
        "Facilities that have not sent their report",
        U.FACILITIES,
        SF.DEPARTMENT,
        _count(lambda f: f.not_reported),
        value=lambda _t, figs, _c: sum(1 for f in figs if not f.reported),
        card=True,
    ),
    SytField(
        "9",
        "Liquid oxygen refilled",
        U.LIQUID,
        SF.FACILITIES,
        _show_liquid,
        lambda f: f.refilled_liquid_kg,
        _liquid,
        card=True,
    ),
    SytField(
        "10",
        "Facilities under this department",
        U.FACILITIES,
        SF.DEPARTMENT,
        _count(lambda f: f.facilities),
        value=lambda _t, figs, _c: len(figs),
        card=True,
    ),
    SytField(
        "11",
        "Gas oxygen (cylinders) refilled",
        U.GAS,
        SF.FACILITIES,
        _show_gas(lambda f: f.refilled_gas_nm3),
        lambda f: f.refilled_gas_nm3,
        lambda t, _f, _c: _r(t),
        card=True,
    ),
    SytField("12", "Situation notice to the Ministry", U.NONE, SF.ENTERED, _show_notice),
    SytField(
        "13",
        "Storage capacity of the facilities that reported",
        U.GAS,
        SF.FACILITIES,
        _show_capacity,
        lambda f: f.capacity_nm3,
        _capacity,
        detail_sep="; ",
        card=True,
    ),
    SytField(
        "14",
        "Average daily need",
        U.GAS_PER_DAY,
        SF.FACILITIES,
        _show_need,
        lambda f: f.avg_need_nm3,
        lambda t, _f, _c: _r(t),
        card=True,
    ),
    SytField(
        "15",
        "Storage capacity of the facilities (department's figure)",
        U.GAS,
        SF.ENTERED,
        _show_own_capacity,
    ),
    SytField(
        "16",
        "Average daily need (department's figure, per day)",
        U.GAS_PER_DAY,
        SF.ENTERED,
        _show_own_need,
    ),
)
BY_NO: dict[str, SytField] = {f.no: f for f in FIELDS}
SUMMED: tuple[SytField, ...] = tuple(f for f in FIELDS if f.source is FieldSource.FACILITIES)


def rows(report: SytShown, locale: str) -> list[tuple[str, str, str]]:
    """(number, label, value with unit) of every field: the print page and the PDF."""
    return [(f.no, gettext(locale, f.label), f.text(report, locale)) for f in FIELDS]


def cards(report: SytShown, locale: str) -> list[tuple[str, str, str, str | None]]:
    """(number, label, value, detail) of the computed fields: the composer and details pages."""
    out = []
    for f in FIELDS:
        if f.card:
            value, detail = f.show(report, lambda m: gettext(locale, m), locale)
            out.append((f.no, gettext(locale, f.label), value, detail))
    return out
