"""Form parsing with per-field errors in the user's language (numbers typed per locale)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from psycopg import AsyncConnection
from starlette.responses import Response

from api import i18n
from api.dates import DATE_RANGE_MESSAGE, EARLIEST_DAY, check_day, in_range, latest_day
from api.reports.errors import FieldError
from api.reports.facility import QuantityIn
from api.reports.messages import text
from api.reports.rules import INT_MAX
from api.reports.units import EntryUnit
from api.web.templating import flash


@dataclass
class FormErrors:
    """Field name -> translated message; rendered next to the field."""

    locale: str
    errors: dict[str, str] = field(default_factory=dict)
    # Fields refused only by a warning rule: the form offers a reason to confirm them.
    warnings: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        """Record the first error of a field (translating the English message id, or a stable
        key of api.reports.messages such as `report.error.unit`)."""
        self.errors.setdefault(name, text(message, self.locale))

    def refused(
        self, refused: Iterable[FieldError], form_field: Callable[[str], str] | None = None
    ) -> None:
        """Record the figures the reports package refused next to their form fields."""
        for e in refused:
            name = form_field(e.field) if form_field else e.field
            self.errors.setdefault(name, text(e.key, self.locale))
            if (e.params or {}).get("importance") == "warning":
                self.warnings.setdefault(name, text(e.key, self.locale))
            else:
                self.warnings.pop(name, None)

    def __bool__(self) -> bool:
        return bool(self.errors)


async def read_form(request: Request) -> dict[str, str]:
    """The submitted form's text fields (these forms upload no files)."""
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


def past_day(raw: str | None, today: date, default: date | None = None) -> date:
    """The day a page asks for: `default` (today) when missing or not a date, never after today;
    a day before the platform's range is refused (api.dates: a 422 page naming `day`)."""
    fallback = today if default is None else default
    try:
        day = date.fromisoformat(raw) if raw else fallback
    except ValueError:
        day = fallback
    check_day(min(day, today), "day")
    return min(day, today)


async def redirect_saved(conn: AsyncConnection[Any], url: str, message: str) -> Response:
    """Commit what the form saved, then redirect to `url` with `message` (already translated)."""
    await conn.commit()
    response = RedirectResponse(url, status_code=303)
    flash(response, message, "success")
    return response


def parse_number(raw: str | None, locale: str) -> float | None:
    """A number typed by a person: '1.234,5' in Vietnamese, '1,234.5' in English; '' is None."""
    text = (raw or "").strip().replace(" ", "").replace("\u00a0", "")
    if not text:
        return None
    if locale == "vi":
        # Vietnamese groups with '.' and marks decimals with ','; a lone '.' with 1-2 decimals
        # is taken as a decimal point because phones often offer only '.'.
        if "," in text:
            text = text.replace(".", "").replace(",", ".")
        elif text.count(".") == 1 and len(text.split(".")[1]) != 3:
            pass
        else:
            text = text.replace(".", "")
    else:
        text = text.replace(",", "")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


UNIT_MISSING = "Choose the unit of the figure."


def quantity_field(
    form: dict[str, Any], name: str, units: Iterable[EntryUnit], errors: FormErrors
) -> QuantityIn | None:
    """A typed oxygen quantity and its unit (`<name>` and `<name>_unit`): the unit is chosen,
    never guessed (MISSION.md), so a figure without one, or with one not offered, is a field
    error next to the figure; an empty figure needs no unit."""
    value = number_field(form, name, errors)
    raw = form.get(name + "_unit")
    unit = raw.strip() if isinstance(raw, str) else ""
    allowed = {u.value for u in units}
    if (unit and unit not in allowed) or (value is not None and not unit):
        errors.add(name, UNIT_MISSING)
        return None
    return None if value is None else QuantityIn(value=value, unit=EntryUnit(unit))


def number_field(
    form: dict[str, Any],
    name: str,
    errors: FormErrors,
    *,
    required: bool = False,
    integer: bool = False,
    minimum: float | None = 0.0,
) -> float | None:
    """Read one numeric field, recording an error next to it when it is not acceptable."""
    raw = form.get(name)
    try:
        value = parse_number(raw if isinstance(raw, str) else None, errors.locale)
    except ValueError:
        errors.add(name, "Enter a number.")
        return None
    if value is None:
        if required:
            errors.add(name, "This field is required.")
        return None
    if integer and abs(value) > INT_MAX:
        # Beyond what a count column holds: a field error, never a database error page.
        errors.add(name, "The number is too large.")
        return None
    if integer and value != int(value):
        errors.add(name, "Enter a whole number.")
        return None
    if minimum is not None and value < minimum:
        errors.add(name, "The value must not be negative.")
        return None
    return value


def text_field(
    form: dict[str, Any], name: str, errors: FormErrors, *, required: bool = False
) -> str:
    """Read one text field (stripped), recording an error when required and empty."""
    raw = form.get(name)
    value = raw.strip() if isinstance(raw, str) else ""
    if required and not value:
        errors.add(name, "This field is required.")
    return value


def date_field(form: dict[str, Any], name: str, errors: FormErrors) -> date | None:
    """An ISO date from an <input type=date>."""
    raw = form.get(name)
    try:
        day = date.fromisoformat(raw) if isinstance(raw, str) and raw else None
    except ValueError:
        errors.add(name, "Enter a valid date.")
        return None
    if day is not None and not in_range(day):
        _out_of_range(errors, name)
        return None
    return day


def _out_of_range(errors: FormErrors, name: str) -> None:
    errors.errors.setdefault(
        name,
        i18n.gettext(errors.locale, DATE_RANGE_MESSAGE)
        % {"earliest": EARLIEST_DAY.isoformat(), "latest": latest_day().isoformat()},
    )


def local_datetime_field(
    form: dict[str, Any], name: str, errors: FormErrors, *, required: bool = True
) -> datetime | None:
    """A datetime-local value, read as Vietnam time and returned timezone-aware."""
    raw = form.get(name)
    if not isinstance(raw, str) or not raw:
        if required:
            errors.add(name, "This field is required.")
        return None
    try:
        naive = datetime.fromisoformat(raw)
    except ValueError:
        errors.add(name, "Enter a valid date and time.")
        return None
    if not in_range(naive):
        _out_of_range(errors, name)
        return None
    return naive.replace(tzinfo=i18n.TIMEZONE) if naive.tzinfo is None else naive
