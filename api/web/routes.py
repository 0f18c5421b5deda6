"""The role pages' set-up: their entries in the role menus (api.web.nav.NAV_ITEMS) and the
template filters they use. Imported by create_app (api.app.routers mounts the page routers)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context

from api import i18n
from api.scope import Role
from api.web import labels
from api.web.nav import NAV_ITEMS, NavItem
from api.web.templating import environment

from .assets import check_assets

# Fail at start-up, with the command to run, rather than serve pages without their scripts.
check_assets()

_R = frozenset
PAGE_NAV: tuple[NavItem, ...] = (
    NavItem(
        "/facility/report",
        "Daily report",
        "The 16:00 report, pre-filled from the tank sensors.",
        _R({Role.FACILITY}),
        10,
    ),
    NavItem(
        "/facility",
        "Tanks",
        "Contents over the last 7 days, refills, days of supply and corrections.",
        _R({Role.FACILITY}),
        20,
    ),
    NavItem(
        "/facilities",
        "Facilities",
        "Tanks of the facilities you look after: contents, refills, corrections.",
        _R({Role.ENGINEER}),
        20,
    ),
    NavItem(
        "/syt",
        "Report to the Ministry",
        "Compose the report (fields 1–16) and send it to the Ministry of Health.",
        _R({Role.SYT}),
        10,
    ),
    NavItem(
        "/syt/reports",
        "Sent reports",
        "Reports sent to the Ministry: edit history, edit, details.",
        _R({Role.SYT}),
        20,
    ),
    NavItem(
        "/syt/facilities",
        "Facilities",
        "Your facilities with their status and days of supply.",
        _R({Role.SYT}),
        30,
    ),
    NavItem(
        "/byt",
        "Coordination map",
        "The national map, provinces, supply vs demand; approve or send back reports.",
        _R({Role.BYT, Role.ADMIN}),
        10,
    ),
    NavItem(
        "/supplier",
        "Production and deliveries",
        "Report production, capacity, stock and deliveries to facilities.",
        _R({Role.SUPPLIER}),
        10,
    ),
    NavItem(
        "/admin/facilities",
        "Facilities",
        "Facilities, departments and suppliers in the registry.",
        _R({Role.ADMIN}),
        50,
    ),
    NavItem(
        "/admin/tanks",
        "Tanks and calibration",
        "Liquid-oxygen tanks and their calibration tables.",
        _R({Role.ADMIN}),
        60,
    ),
    NavItem(
        "/admin/gateways",
        "Gateways and sensors",
        "Gateways at the facilities and the sensors they read.",
        _R({Role.ADMIN}),
        70,
    ),
)


def _parse(value: Any) -> Any:
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return value


@pass_context
def _isodt(ctx: Context, value: Any) -> str:
    """An ISO timestamp string (as the report layer returns them) in Vietnam time."""
    return i18n.format_datetime(_parse(value), ctx.get("locale", i18n.DEFAULT_LOCALE))


@pass_context
def _isodate(ctx: Context, value: Any) -> str:
    """An ISO date string as dd/MM/yyyy."""
    d = value
    if isinstance(value, str):
        try:
            d = date.fromisoformat(value)
        except ValueError:
            d = None
    return i18n.format_date(d, ctx.get("locale", i18n.DEFAULT_LOCALE))


@pass_context
def _diffval(ctx: Context, value: Any) -> str:
    """A value from a revision diff, readable (quantities with their unit, numbers per locale)."""
    return labels.readable(value, ctx.get("locale", i18n.DEFAULT_LOCALE))


@pass_context
def _fieldname(ctx: Context, value: Any) -> str:
    """A stored field name (`patients_current`, `field.9.kg`...) as its catalogue label."""
    return labels.field_label(str(value), ctx.get("locale", i18n.DEFAULT_LOCALE))


@pass_context
def _auditaction(ctx: Context, value: Any) -> str:
    return labels.action_label(str(value), ctx.get("locale", i18n.DEFAULT_LOCALE))


@pass_context
def _auditentity(ctx: Context, value: Any) -> str:
    return labels.entity_label(str(value), ctx.get("locale", i18n.DEFAULT_LOCALE))


environment().filters.setdefault("diffval", _diffval)
environment().filters.setdefault("isodt", _isodt)
environment().filters.setdefault("fieldname", _fieldname)
environment().filters.setdefault("vlabel", _diffval)
environment().filters.setdefault("auditaction", _auditaction)
environment().filters.setdefault("auditentity", _auditentity)
environment().globals.setdefault("entity_labels", labels.ENTITY_LABELS)
environment().filters.setdefault("isodate", _isodate)

for _item in PAGE_NAV:
    if _item not in NAV_ITEMS:
        NAV_ITEMS.append(_item)
