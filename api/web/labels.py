"""Catalogue labels for the internal names that reach the screen: stored field names in edit
histories and the audit trail, audit actions and record types, and readable values (booleans as
Yes/No, JSON objects as "label: value" lines, never JSON text with escapes)."""

from __future__ import annotations

import re
from typing import Any, Final

from api import i18n
from api.reports.facility_pages import QUANTITIES, THERAPY_LABELS

# Stored figure / column names (api.reports.facility.SNAPSHOT_FIELDS, api.reports.syt.COMPARED,
# registry and account fields) -> English message id.
FIELD_LABELS: Final[dict[str, str]] = {
    "patients_current": "Current patients",
    "patients_new": "New patients today",
    "discharged_evening": "Discharged (16:00 report)",
    "discharged_morning": "Discharged in the morning update",
    "discharged": "Discharged",
    "refilled_liquid_kg": "Liquid oxygen refilled (kg)",
    "refilled_gas_nm3": "Gas refilled (Nm3)",
    "stock_liquid_kg": "Liquid oxygen in stock (kg)",
    "stock_gas_nm3": "Gas in stock (Nm3)",
    "capacity_nm3": "Storage capacity (Nm3)",
    "avg_need_nm3": "Average daily need (Nm3/day)",
    "notes": "Notes",
    "overrides": "Reasons for changed figures",
    "entered_units": "Units as typed",
    "warnings": "Confirmed warnings",
    "reported": "Reported",
    "status": "Status",
    "filters": "Filters",
    "state": "State",
    "name": "Name",
    "code": "Code",
    "role": "Role",
    "username": "Username",
    "display_name": "Display name",
    "active": "Active",
    "facility_codes": "Facilities",
    "facility_ids": "Facilities",
    "reason": "Reason",
    "note": "Note",
    "urgency": "Urgency",
    "quantity_nm3": "Quantity (Nm3)",
    "value": "Value",
    "unit": "Unit",
}
for _t, _label in THERAPY_LABELS.items():
    FIELD_LABELS["o2_" + _t] = _label
for _name, _label, _kind, _units in QUANTITIES:
    FIELD_LABELS.setdefault(_name, _label)

# Audit actions (api.audit.audit's `action`) -> English message id.
ACTION_LABELS: Final[dict[str, str]] = {
    "login": "Signed in",
    "logout": "Signed out",
    "create": "Created",
    "update": "Changed",
    "delete": "Deleted",
    "save": "Saved",
    "send": "Sent",
    "file": "Filed",
    "approve": "Approved",
    "approved": "Approved",
    "send_back": "Sent back",
    "sent_back": "Sent back",
    "revert": "Reverted",
    "cancel": "Cancelled",
    "escalate": "Escalated",
    "match": "Matched",
    "set_scope": "Scope changed",
    "withdrawn_by_report": "Withdrawn by a report",
    "reset_password": "Password reset",
    "change_password": "Password changed",
    "revoke": "Revoked",
    "acknowledge": "Acknowledged",
    "resolve": "Resolved",
    "subscribe": "Subscribed",
    "unsubscribe": "Unsubscribed",
}

# Audit record types (`entity`) -> English message id.
ENTITY_LABELS: Final[dict[str, str]] = {
    "session": "Session",
    "user": "Account",
    "api_token": "API token",
    "facility": "Facility",
    "gateway": "Gateway",
    "sensor": "Sensor",
    "tank": "Tank",
    "tank_calibration": "Tank calibration",
    "correction": "Correction",
    "alert": "Alert",
    "alert_subscription": "Alert subscription",
    "facility_report": "Facility report",
    "morning_update": "Morning update",
    "supplier_report": "Supplier report",
    "syt_report": "Department report",
    "assignment": "Supply assignment",
    "delivery": "Delivery",
    "support_request": "Support request",
}

# Stored enum values that appear inside diffs and audit records -> English message id.
VALUE_LABELS: Final[dict[str, str]] = {
    "enough": "Enough",
    "needs_more": "Needs more",
    "unknown": "Unknown",
    "all": "all",
    "draft": "state.draft",
    "sent": "state.sent",
    "approved": "state.approved",
    "sent_back": "state.sent_back",
    # Supplier kinds (organisations' supplier_kind).
    "producer": "Producer",
    "filling_station": "Filling station",
    "distributor": "Distributor",
    # Sensor quantities (oxy.contract.Quantity).
    "dp": "Differential pressure (level)",
    "head_pressure": "Head pressure",
    "line_pressure": "Line pressure",
    "temperature": "Temperature",
    "level_pct": "Level (per cent)",
    "contents": "Contents",
    "flow": "Flow",
    # Facility types (facilities.facility_type).
    "hospital": "Hospital",
    "field_hospital": "Field hospital",
    "treatment_centre": "Treatment centre",
    "clinic": "Clinic",
    "other": "Other",
}

UNIT_SUFFIXES: Final[dict[str, str]] = {
    "kg": "kg",
    "nm3": "Nm3",
    "nm3_per_day": "Nm3/day",
    "m3_liquid": "m3 LOX",
    "t": "t",
    # Sensor units (oxy.contract.UNITS) whose symbol is an identifier.
    "kPa_dp": "kPa (DP)",
    "mbar_dp": "mbar (DP)",
    "degC": "°C",
}


def _lookup(table: dict[str, str], key: str, locale: str) -> str:
    label = table.get(key)
    if label is not None:
        return i18n.gettext(locale, label)
    # Unknown to the catalogue: at least no snake_case on screen.
    return key.replace("_", " ")


def action_label(action: str, locale: str) -> str:
    return _lookup(ACTION_LABELS, action, locale)


def entity_label(entity: str, locale: str) -> str:
    return _lookup(ENTITY_LABELS, entity, locale)


def field_label(key: str, locale: str) -> str:
    """A stored field name as shown: `field.9.kg` -> "Field 9 (kg)",
    `facility.BV-CHORAY.discharged` -> "BV-CHORAY: Discharged", `o2_niv` -> the therapy."""
    key = str(key)
    if key.isdigit():
        return f"{i18n.gettext(locale, 'Field')} {key}"
    if m := re.fullmatch(r"(?:field|entered)\.(\d+)(?:\.([\w]+))?", key):
        out = f"{i18n.gettext(locale, 'Field')} {m.group(1)}"
        if m.group(2):
            out += f" ({UNIT_SUFFIXES.get(m.group(2), field_label(m.group(2), locale))})"
        return out
    if m := re.fullmatch(r"facility\.(.+)\.(\w+)", key):
        return f"{m.group(1)}: {field_label(m.group(2), locale)}"
    return _lookup(FIELD_LABELS, key, locale)


def readable(value: Any, locale: str) -> str:
    """A stored value as text: booleans Yes/No, numbers per locale, objects as labelled pairs."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return i18n.gettext(locale, "Yes" if value else "No")
    if isinstance(value, int | float):
        if float(value).is_integer():
            return i18n.format_number(value, locale, 0)
        shown = i18n.format_number(value, locale, 2)
        return shown.rstrip("0") if shown[-3] in ",." else shown
    if isinstance(value, dict):
        if not value:
            return "—"
        if "value" in value and "unit" in value:  # a quantity as typed
            unit = UNIT_SUFFIXES.get(str(value["unit"]), str(value["unit"]))
            return f"{readable(value['value'], locale)} {unit}"
        if "entered" in value:  # field 15/16: show what was typed
            return readable(value["entered"], locale)
        return "; ".join(
            f"{field_label(k, locale)}: {readable(v, locale)}" for k, v in value.items()
        )
    if isinstance(value, list | tuple):
        return ", ".join(readable(v, locale) for v in value) or "—"
    if isinstance(value, str) and value in UNIT_SUFFIXES:
        return UNIT_SUFFIXES[value]
    if isinstance(value, str) and value in VALUE_LABELS:
        return i18n.gettext(locale, VALUE_LABELS[value])
    return str(value)
