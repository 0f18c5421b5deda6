"""The role pages' set-up: the template filters they use, and the check of their built assets.
Imported by create_app (api.app.routers mounts the page routers; api.web.nav lists the menu)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context

from api import i18n
from api.web import labels
from api.web.templating import environment

from .assets import check_assets

# Fail at start-up, with the command to run, rather than serve pages without their scripts.
check_assets()


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
