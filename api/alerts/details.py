"""An alert's `details` as readable lines: a translated label and a value with its unit.

The rules (api.alerts.rules) store their details as JSON with English snake_case keys and raw
numbers; e-mails and the alerts page show them through this one table instead. Labels and units
are English message ids translated by the alerts catalog (api/i18n/locales/vi/LC_MESSAGES/
alerts.po). A key the table does not know is shown as it is, so a new rule never breaks a notice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from api.i18n import format_date, format_datetime, format_number, gettext
from oxy.contract import QUALITY_CODE, Quality

logger = logging.getLogger(__name__)

Formatter = Callable[[Any, str], str]


@dataclass(frozen=True, slots=True)
class DetailField:
    """How one detail key reads: its label (an English message id) and its value formatter."""

    label: str
    value_fn: Formatter


def _number(digits: int, unit: str | None = None, *, whole: bool = False) -> Formatter:
    """`whole`: a setting such as a threshold reads "3 days", not "3.0 days", when integral."""

    def fmt(value: Any, locale: str) -> str:
        if value is None:
            return "—"
        number = float(value)
        shown = 0 if whole and number.is_integer() else digits
        text = format_number(number, locale, shown)
        return f"{text} {gettext(locale, unit)}" if unit else text

    return fmt


def _numbers(digits: int, unit: str) -> Formatter:
    one = _number(digits)

    def fmt(value: Any, locale: str) -> str:
        if not value:
            return "—"
        # "; " because the Vietnamese decimal separator is a comma.
        return "; ".join(one(v, locale) for v in value) + f" {gettext(locale, unit)}"

    return fmt


def _when(value: Any, locale: str) -> str:
    return format_datetime(datetime.fromisoformat(str(value)) if value else None, locale)


def _day(value: Any, locale: str) -> str:
    return format_date(date.fromisoformat(str(value)) if value else None, locale)


def _text(value: Any, locale: str) -> str:
    return "—" if value is None or value == "" else str(value)


def _yes_no(value: Any, locale: str) -> str:
    return gettext(locale, "Yes" if value else "No")


def _choice(labels: Mapping[Any, str]) -> Formatter:
    def fmt(value: Any, locale: str) -> str:
        label = labels.get(value)
        return gettext(locale, label) if label else _text(value, locale)

    return fmt


# sql/0002_readings.sql: 0 good, 1 stale, 2 out_of_range, 3 comm_error.
# Keyed by the stored code (oxy.contract.QUALITY_CODE), as alert details carry it.
QUALITY_LABELS: Final[dict[Any, str]] = {
    QUALITY_CODE[Quality.GOOD]: "Good",
    QUALITY_CODE[Quality.STALE]: "Stale value",
    QUALITY_CODE[Quality.OUT_OF_RANGE]: "Out of range",
    QUALITY_CODE[Quality.COMM_ERROR]: "Communication error",
}
DELIVERY_STATE_LABELS: Final[dict[Any, str]] = {
    "dispatched": "Dispatched",
    "in_transit": "In transit",
}

KG = _number(0, "kg")
BAR = _number(2, "bar")
DAYS = _number(1, "days")

# In the order a reader wants them; each key is what a rule in api.alerts.rules writes.
FIELDS: Final[dict[str, DetailField]] = {
    # days_of_supply_low
    "days": DetailField("Days of supply left", DAYS),
    "threshold": DetailField("Alert threshold", _number(1, "days", whole=True)),
    "usable_kg": DetailField("Usable oxygen in the tanks", KG),
    "avg_daily_kg": DetailField("Average daily consumption", _number(0, "kg/day")),
    # contents_below_minimum
    "contents_kg": DetailField("Tank contents", KG),
    "min_usable_kg": DetailField("Minimum usable level", KG),
    # head_pressure_out_of_range
    "pressure_bar": DetailField("Head pressure", BAR),
    "max_bar": DetailField("Maximum allowed pressure", BAR),
    "low_bar": DetailField("Minimum supply pressure", BAR),
    # abnormal_consumption, report_missing
    "day": DetailField("Day", _day),
    "consumption_kg": DetailField("Consumption that day", KG),
    "history_kg": DetailField("Consumption on the previous days", _numbers(0, "kg")),
    # sensor_stale, sensor_bad_quality, gateway_offline
    "sensor": DetailField("Sensor code", _text),
    "gateway": DetailField("Gateway code", _text),
    "quality": DetailField("Reading quality", _choice(QUALITY_LABELS)),
    "last_reading": DetailField("Last reading", _when),
    "last_seen": DetailField("Last heard from", _when),
    "will": DetailField("Offline notice received (MQTT last will)", _yes_no),
    # delivery_overdue
    "amount_kg": DetailField("Amount", KG),
    "due": DetailField("Needed by", _when),
    "state": DetailField("Delivery state", _choice(DELIVERY_STATE_LABELS)),
    "source_id": DetailField("Supplying organisation (id)", _text),
    # identifiers and reading times last
    "at": DetailField("Reading time", _when),
    "sensor_id": DetailField("Sensor (id)", _text),
}

# A key whose meaning depends on the rule that wrote it.
RULE_FIELDS: Final[dict[tuple[str, str], DetailField]] = {
    ("report_missing", "day"): DetailField("Report day", _day),
    ("abnormal_consumption", "day"): DetailField("Day of the consumption", _day),
}

_ORDER: Final[dict[str, int]] = {key: i for i, key in enumerate(FIELDS)}


def detail_lines(
    rule: str, details: Mapping[str, Any] | None, locale: str
) -> list[tuple[str, str]]:
    """(label, value) pairs of an alert's details in `locale`; unknown keys keep their name."""
    if not isinstance(details, Mapping):
        return []
    out = []
    for key in sorted(details, key=lambda k: (_ORDER.get(k, len(_ORDER)), k)):
        value = details[key]
        spec = RULE_FIELDS.get((rule, key)) or FIELDS.get(key)
        if spec is None:
            out.append((key, _text(value, locale)))
            continue
        try:
            text = spec.value_fn(value, locale)
        except Exception as exc:  # a malformed value must never stop a notice from going out
            logger.warning("alert detail %s=%r does not format: %s", key, value, exc)
            text = _text(value, locale)
        out.append((gettext(locale, spec.label), text))
    return out
