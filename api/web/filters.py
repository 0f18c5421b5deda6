"""The template filters the role pages use (timestamps and dates from the report layer, revision
diffs, field and audit labels), registered by api.web.templating.environment when it builds
the environment: present in every render, whatever was imported before."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from jinja2 import Environment, pass_context
from jinja2.runtime import Context

from api import i18n
from api.web import labels


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


def register(env: Environment) -> None:
    """Add the filters (and the audit's entity labels) to `env`."""
    env.filters["diffval"] = _diffval
    env.filters["isodt"] = _isodt
    env.filters["fieldname"] = _fieldname
    env.filters["vlabel"] = _diffval
    env.filters["auditaction"] = _auditaction
    env.filters["auditentity"] = _auditentity
    env.filters["isodate"] = _isodate
    env.globals["entity_labels"] = labels.ENTITY_LABELS
