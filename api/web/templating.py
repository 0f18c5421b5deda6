"""Jinja2 rendering with translations, locale-aware filters, CSRF and flash messages.

Each feature package keeps its templates in its own `api/<package>/templates/` folder, and a
template's name is `<package>/<file>`: `coordination/coord_list.html` is
`api/coordination/templates/coord_list.html`, so a name says where its file is and two packages
cannot shadow each other. The shared layout and macros are the web package's own
(`web/base.html`, `web/_macros.html`, `web/_map.html`). Render with
`render(request, "<package>/x.html", {...})` from a handler.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, PrefixLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from starlette.responses import HTMLResponse, Response

from api import i18n
from api.accounting.stock import DOS_HORIZON_DAYS
from api.csrf import csrf_token, set_csrf_cookie
from api.scope import Principal
from api.web.nav import items_for

API_DIR = Path(__file__).resolve().parents[1]
FLASH_COOKIE = "oxy_flash"

ROLE_LABELS: dict[str, str] = {
    "admin": "Administrator",
    "byt": "Ministry of Health (BYT)",
    "syt": "Department of Health (SYT)",
    "facility": "Health facility",
    "supplier": "Supplier",
    "engineer": "Engineer",
}


def template_dirs(api_dir: Path = API_DIR) -> dict[str, Path]:
    """Every package's template folder, by package name (`api/<package>/templates`)."""
    return {p.parent.name: p for p in sorted(api_dir.glob("*/templates")) if p.is_dir()}


def template_loader(api_dir: Path = API_DIR) -> PrefixLoader:
    """The one loader: `<package>/<file>` is read from `api/<package>/templates/<file>` only."""
    return PrefixLoader(
        {package: FileSystemLoader(path) for package, path in template_dirs(api_dir).items()}
    )


@pass_context
def _gettext(ctx: Context, message: str) -> str:
    return i18n.gettext(ctx.get("locale", i18n.DEFAULT_LOCALE), message)


@pass_context
def _ngettext(ctx: Context, singular: str, plural: str, n: int) -> str:
    return i18n.ngettext(ctx.get("locale", i18n.DEFAULT_LOCALE), singular, plural, n)


@pass_context
def _num(ctx: Context, value: float | None, digits: int = 0) -> str:
    return i18n.format_number(value, ctx.get("locale", i18n.DEFAULT_LOCALE), digits)


@pass_context
def _dt(ctx: Context, value: Any) -> str:
    return i18n.format_datetime(value, ctx.get("locale", i18n.DEFAULT_LOCALE))


@pass_context
def _date(ctx: Context, value: Any) -> str:
    return i18n.format_date(value, ctx.get("locale", i18n.DEFAULT_LOCALE))


@pass_context
def _syt_cards(ctx: Context, report: Any) -> list[tuple[str, str, str, str | None]]:
    # The SYT report's computed field cards, from the declarative field table.
    from api.reports.syt_fields import cards

    return cards(report, ctx.get("locale", i18n.DEFAULT_LOCALE))


@cache
def environment() -> Environment:
    """The shared Jinja2 environment (autoescaping on, i18n extension installed)."""
    env = Environment(
        loader=template_loader(),
        autoescape=select_autoescape(["html", "xml"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["dos_horizon"] = DOS_HORIZON_DAYS
    env.filters["num"] = _num
    env.filters["dt"] = _dt
    env.filters["date"] = _date
    env.filters["syt_cards"] = _syt_cards
    # The pages' own filters; imported here since their labels read the report modules, which
    # render through this environment.
    from api.web import filters

    filters.register(env)
    return env


def flash(response: Response, message: str, kind: str = "info") -> None:
    """Show `message` (already translated) on the next rendered page."""
    response.set_cookie(
        FLASH_COOKIE, quote(f"{kind}|{message}"), httponly=True, samesite="lax", path="/"
    )


def _take_flash(request: Request) -> tuple[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    kind, _, text = unquote(raw).partition("|")
    return (kind if kind in {"info", "success", "error"} else "info", text[:500])


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    locale: str,
    principal: Principal | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render template `name` with the common layout context."""
    ctx: dict[str, Any] = {
        "request": request,
        "locale": locale,
        "principal": principal,
        "nav": items_for(principal) if principal else [],
        "role_labels": ROLE_LABELS,
        "role_label": ROLE_LABELS.get(principal.role.value, "") if principal else "",
        "csrf_token": csrf_token(request),
        "flash": _take_flash(request),
        "path": request.url.path,
        "languages": [("vi", "Tiếng Việt"), ("en", "English")],
    }
    ctx.update(context or {})
    html = environment().get_template(name).render(ctx)
    response = HTMLResponse(html, status_code=status_code)
    if ctx["flash"]:
        response.delete_cookie(FLASH_COOKIE, path="/")
    set_csrf_cookie(request, response)
    lang = i18n.normalize(request.query_params.get("lang"))
    if lang:  # the language switch: remember the choice
        response.set_cookie(
            i18n.LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True, path="/"
        )
    return response
