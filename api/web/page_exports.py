"""Exports of the lists that pages show, on the page's own route (`?format=csv|xlsx`), so the
file passes the same role and scope check as the page; written by `api.reports.exports`
(values in the caller's language, Vietnam time, formulas neutralised). The buttons are the
`export_links` macro (web/_macros.html) with `param=True`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from fastapi import HTTPException, Request

from api.coordination.suggest import Suggestion
from api.i18n import gettext
from api.reports import exports
from api.reports.exports import download
from api.web.templating import ROLE_LABELS

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


def requested_list(request: Request, lists: Sequence[str]) -> str:
    """Which of a page's lists an export is of (`?list=`, the first when absent); 404 for a
    list the page does not have."""
    name = request.query_params.get("list", lists[0])
    if name not in lists:
        raise HTTPException(404, "not found")
    return name


# The suggested allocation (/coordination/suggestions): per facility with the reasons, and the
# shipments (`list=shipments`).
SUGGESTION_COLUMNS: list[tuple[str, str]] = [
    ("name", "Facility"),
    ("province", "Province"),
    ("days_of_supply", "Days of supply"),
    ("need_kg", "Needed (kg)"),
    ("covered_kg", "Covered (kg)"),
    ("reasons", "Why"),
    ("open_requests", "Open requests"),
]
SHIPMENT_COLUMNS: list[tuple[str, str]] = [
    ("source_name", "Source"),
    ("facility_name", "Facility"),
    ("kg", "Amount (kg LOX)"),
    ("road_km", "Road distance (km)"),
]


def suggestion_rows(plan: Suggestion) -> list[dict[str, Any]]:
    """The plan's facilities as the page shows them: reasons as sentences, requests as numbers."""
    return [
        {
            **asdict(f),
            "reasons": "; ".join(r.message for r in f.reasons),
            "open_requests": ", ".join(f"#{i}" for i in f.open_request_ids) or None,
        }
        for f in plan.facilities
    ]


# One tank's page: its report days (16:00 to 16:00) and the refills (`list=refills`).
TANK_DAY_COLUMNS: list[tuple[str, str]] = [
    ("day", "Day"),
    ("close_kg", "At 16:00 (kg)"),
    ("consumption_kg", "Used (kg)"),
    ("refilled_kg", "Refilled (kg)"),
    ("coverage_pct", "Data (%%)"),
]
REFILL_COLUMNS: list[tuple[str, str]] = [
    ("started_at", "Started"),
    ("ended_at", "Ended"),
    ("before_kg", "Before (kg)"),
    ("after_kg", "After (kg)"),
    ("amount_kg", "Delivered (kg)"),
]


def tank_day_rows(windows: Sequence[tuple[Any, Any]]) -> list[dict[str, Any]]:
    """A tank's report days (WindowFigures): a day without figures is "—" as on the page, with
    the share of the window observed 0."""
    out: list[dict[str, Any]] = []
    for day, w in windows:
        if w is None:
            out.append({"day": day, "coverage_pct": 0.0})
            continue
        out.append(
            {
                "day": day,
                "close_kg": w.close_kg,
                "consumption_kg": w.consumption_kg,
                "refilled_kg": w.refilled_kg,
                "coverage_pct": w.coverage * 100,
            }
        )
    return out


# One gateway's page: its sensors and their last reading.
SENSOR_COLUMNS: list[tuple[str, str]] = [
    ("code", "Sensor"),
    ("quantity", "Quantity"),
    ("tank", "Tank"),
    ("value", "Last value"),
    ("unit", "Unit"),
    ("quality", "Quality"),
    ("ts", "Measured at"),
    ("received_at", "Received at"),
]


# A reading's quality (api.engineer.pages.QUALITY) -> message id, as the page's badge.
QUALITY_LABELS = {
    "good": "quality.good",
    "stale": "quality.stale",
    "out_of_range": "quality.out_of_range",
    "comm_error": "quality.comm_error",
}


def sensor_rows(sensors: Sequence[dict[str, Any]], locale: str) -> list[dict[str, Any]]:
    """Sensors as the page shows them: quantity, unit and quality as words in `locale`."""
    return [
        {
            **s,
            "quantity": labels.readable(s["quantity"], locale) if s.get("quantity") else None,
            "unit": labels.readable(s["unit"], locale) if s.get("unit") else None,
            "quality": gettext(locale, QUALITY_LABELS[s["quality_name"]])
            if s.get("quality_name") in QUALITY_LABELS
            else None,
        }
        for s in sensors
    ]
