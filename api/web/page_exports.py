"""Exports of the lists that pages show, on the page's own route (`?format=csv|xlsx`), so the
file passes the same role and scope check as the page; written by `api.reports.exports`
(values in the caller's language, Vietnam time, formulas neutralised). The buttons are the
`export_links` macro (pages/_macros.html) with `param=True`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException, Request

from api.i18n import gettext
from api.reports import exports
from api.reports.exports import download
from api.templating import ROLE_LABELS

__all__ = ["download", "requested"]

from . import labels


def requested(request: Request) -> str | None:
    """The export kind asked for (None: the page itself); 404 for an unknown kind."""
    kind = request.query_params.get("format")
    if kind is None:
        return None
    if kind not in exports.KINDS:
        raise HTTPException(404, "not found")
    return kind


ADMIN_FACILITY_COLUMNS: list[tuple[str, str]] = [
    ("code", "Code"),
    ("name", "Name"),
    ("province_name", "Province"),
    ("parent_name", "Reporting to"),
    ("beds", "Beds"),
    ("icu_beds", "ICU beds"),
    ("latitude", "Latitude"),
    ("longitude", "Longitude"),
    ("tanks", "Tanks"),
    ("gateways", "Gateways"),
]
# The facilities in the caller's scope (/facilities).
FACILITY_COLUMNS: list[tuple[str, str]] = [
    ("code", "Code"),
    ("name", "Name"),
    ("province_name", "Province"),
    ("parent_name", "Reporting to"),
    ("beds", "Beds"),
]
ADMIN_TANK_COLUMNS: list[tuple[str, str]] = [
    ("facility", "Facility"),
    ("code", "Tank"),
    ("name", "Name"),
    ("capacity_kg", "Capacity (kg)"),
    ("min_usable_kg", "Minimum usable (kg)"),
    ("diameter_m", "Diameter (m)"),
    ("version", "Calibration"),
]
ADMIN_GATEWAY_COLUMNS: list[tuple[str, str]] = [
    ("code", "Code"),
    ("name", "Name"),
    ("facility", "Facility"),
    ("last_seen", "Last reading received"),
    ("revoked_at", "Revoked"),
]

AUDIT_COLUMNS: list[tuple[str, str]] = [
    ("at", "When"),
    ("username", "Who"),
    ("role", "Role"),
    ("action", "Action"),
    ("record", "Record"),
    ("before", "Before"),
    ("after", "After"),
]


def audit_rows(entries: Sequence[dict[str, Any]], locale: str) -> list[dict[str, Any]]:
    """Audit records as the page shows them: labels for roles, actions, record types and
    field names (api.web.labels), never the stored identifiers."""
    out = []
    for e in entries:
        role = e.get("role")
        out.append(
            {
                "at": e.get("at"),
                "username": e.get("username"),
                "role": gettext(locale, ROLE_LABELS.get(role, role)) if role else None,
                "action": labels.action_label(str(e.get("action")), locale),
                "record": f"{labels.entity_label(str(e.get('entity')), locale)} "
                f"{e.get('entity_id') or ''}".strip(),
                "before": labels.readable(e.get("before"), locale),
                "after": labels.readable(e.get("after"), locale),
            }
        )
    return out


TANK_COLUMNS: list[tuple[str, str]] = [
    ("code", "Tank"),
    ("name", "Name"),
    ("monitored", "Monitored"),
    ("contents_kg", "Contents (kg)"),
    ("fill_pct", "Full (%%)"),
    ("avg_daily_kg", "Average use (kg/day)"),
    ("days_of_supply", "Days of supply"),
    ("status", "Status"),
]
GATEWAY_STATE_LABELS = {
    "online": "Online",
    "offline": "Offline",
    "silent": "Silent",
}
ENGINEER_GATEWAY_COLUMNS: list[tuple[str, str]] = [
    ("code", "Gateway"),
    ("facility", "Facility"),
    ("state", "Connection"),
    ("last_seen", "Last seen"),
    ("outbox_depth", "Outbox"),
    ("outbox_oldest", "Oldest in outbox"),
    ("evicted_total", "Evicted"),
    ("version", "Firmware / config"),
]


def gateway_rows(rows: Sequence[dict[str, Any]], locale: str) -> list[dict[str, Any]]:
    """The engineer's gateways with the connection state as a word in `locale`."""
    return [
        {**r, "state": gettext(locale, GATEWAY_STATE_LABELS.get(str(r["state"]), "Never heard"))}
        for r in rows
    ]


ACCOUNT_COLUMNS: list[tuple[str, str]] = [
    ("username", "Username"),
    ("display_name", "Full name"),
    ("role", "Role"),
    ("organisation", "Organisation"),
    ("status", "Status"),
]


def account_rows(users: Sequence[dict[str, Any]], locale: str) -> list[dict[str, Any]]:
    """Accounts as the pages show them: role and status as words in `locale`."""
    return [
        {
            "username": u.get("username"),
            "display_name": u.get("display_name"),
            "role": gettext(locale, ROLE_LABELS.get(str(u.get("role")), str(u.get("role")))),
            "organisation": u.get("org_name") or u.get("org_code"),
            "status": gettext(locale, "Active" if u.get("is_active") else "Disabled"),
        }
        for u in users
    ]
