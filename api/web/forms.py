"""Form parsing with per-field errors in the user's language (numbers typed per locale)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from api import i18n


@dataclass
class FormErrors:
    """Field name -> translated message; rendered next to the field."""

    locale: str
    errors: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        """Record the first error of a field (translating the English message id)."""
        self.errors.setdefault(name, i18n.gettext(self.locale, message))

    def __bool__(self) -> bool:
        return bool(self.errors)


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
        return date.fromisoformat(raw) if isinstance(raw, str) and raw else None
    except ValueError:
        errors.add(name, "Enter a valid date.")
        return None


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
    return naive.replace(tzinfo=i18n.TIMEZONE) if naive.tzinfo is None else naive
