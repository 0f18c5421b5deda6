"""Message ids of the reports package: stable keys, each with its English message id.

The English text is the gettext message id (api.i18n); the Vietnamese translation lives in
api/i18n/locales/vi/LC_MESSAGES/reports.po. Responses carry the key and the translated text.
"""

from __future__ import annotations

from typing import Final

from api.i18n import gettext

MESSAGES: Final[dict[str, str]] = {
    "report.error.negative": "The figure must be a number zero or above.",
    "report.error.not_integer": "The figure must be a whole number.",
    "report.error.on_oxygen_exceeds_patients": "More patients on oxygen than current patients.",
    "report.error.discharged_exceeds_patients": (
        "More patients discharged than yesterday's patients plus new ones."
    ),
    "report.error.refill_exceeds_capacity": "The refill is larger than the facility's tanks.",
    "report.error.stock_exceeds_capacity": "The stock is larger than the facility's tanks.",
    "report.error.no_tank": "The facility has no liquid-oxygen tank registered.",
    "report.error.unit": "Choose the unit of the figure (kg, m3 liquid or Nm3).",
    "report.error.override_reason_required": (
        "A figure filled in from the tank sensors can only be changed with a reason."
    ),
    "report.error.notes_too_long": "The notes are too long (2000 characters at most).",
    "report.error.future_day": "A report cannot be filed for a future day.",
    "report.error.not_active": "The facility is not active on that day.",
    "report.error.required": "This figure is required.",
    "report.error.morning_not_open": (
        "The morning update of that day opens at 16:00 the day before."
    ),
    "report.error.morning_closed": (
        "The 16:00 report of that day is filed: put the discharges in that report."
    ),
    "report.error.invalid_text": "The text contains a character that cannot be stored.",
    "report.error.too_large": "The figure is far too large to be right: check it.",
    "report.error.new_exceeds_current": "More new patients than current patients.",
    "report.warning.over_beds": "More current patients than the facility's beds.",
    "report.warning.over_registry_capacity": ("Far above the storage capacity in the registry."),
    "report.warning.confirm": "Check the figure; if it is right, confirm it with a reason.",
    "registry.error.icu_beds": "More intensive-care beds than beds.",
    "supplier.error.production_above_capacity": (
        "Production is far above the supplier's full capacity."
    ),
    "supplier.warning.production_above_capacity": "Production is above the full capacity.",
    "report.locked.approved": "Locked: the SYT report of that day was approved by the Ministry.",
    "report.locked.past_deadline": "Locked: the report is past its edit window.",
    "report.locked.closed": "Locked: the facility is closed.",
    "report.warning.implausible": "Unusual figure compared with this facility's own history.",
    "report.warning.leak": "Consumption is abnormally high compared with this tank's history.",
    "syt.error.notice_required": "The situation notice to the Ministry is required.",
    "syt.error.not_sent": "Only a report sent to the Ministry can be approved or sent back.",
    "syt.error.changed_since_sent": (
        "The report changed since it was sent: the department must send it again before approval."
    ),
    "syt.error.confirm_approval": "Tick the confirmation to approve the report as sent.",
    "syt.error.incomplete": (
        "Some figures do not include every facility: confirm to go on with incomplete figures."
    ),
    "syt.error.reason_required": "Sending a report back needs a reason.",
    "syt.locked.approved": "Locked: approved by the Ministry.",
    "supplier.error.capacity_order": "Full capacity must be at least the normal capacity.",
    "supplier.error.duplicate_facility": "A facility appears twice in the deliveries.",
    "supplier.error.unknown_facility": "Unknown recipient facility.",
    "correction.error.naive_time": "Times must carry a time zone.",
    "correction.error.range": "The end of the range is before its start.",
    "correction.error.reason_required": "A correction needs a reason.",
    "correction.error.value": "A replacement value must be a number zero or above.",
    "correction.error.value_not_allowed": "Marking readings invalid takes no value.",
    "correction.error.confirm": (
        "This correction creates a refill or changes the status: confirm it to save it."
    ),
    "correction.error.unit": "This sensor's value cannot be given in that unit.",
    "correction.error.no_calibration": "The tank has no calibration for that time.",
    "correction.error.sensor": "Choose a sensor of this tank.",
    "correction.error.range_too_long": (
        "A correction covers at most 31 days: split a longer range."
    ),
    "correction.error.future": "A correction cannot cover a time in the future.",
    "correction.error.out_of_range": "The value is outside what the sensor can read.",
}


def text(key: str, locale: str) -> str:
    """The message of `key` in `locale` (its English id if untranslated)."""
    return gettext(locale, MESSAGES.get(key, key))
