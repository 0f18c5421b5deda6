"""The user's own account page: password, language and API tokens (the JSON is routes.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from starlette.responses import Response

from api import i18n
from api.audit import audit
from api.auth import SESSION_COOKIE, HashingBusy, issue_token, throttled_verify
from api.deps import DbDep, LocaleDep, PrincipalDep
from api.users import UserError, change_own_password, set_locale
from api.web.pages import client_ip
from api.web.templating import flash, render

from .service import SELF, TEMPORARY_OK, own_tokens, revoke_token

router = APIRouter()


@router.get("/account", include_in_schema=False, dependencies=TEMPORARY_OK)
async def account_page(
    request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """Password, language and tokens."""
    return render(
        request,
        "accounts/account.html",
        {"tokens": await own_tokens(conn, me.user_id)},
        locale=locale,
        principal=me,
    )


@router.post("/account/password", include_in_schema=False, dependencies=TEMPORARY_OK)
async def account_password(
    *,
    request: Request,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    current_password: Annotated[str, Form(max_length=256)],
    new_password: Annotated[str, Form(max_length=256)],
    confirm_password: Annotated[str, Form(max_length=256)],
) -> Response:
    """Change my password: the current one is checked under the login throttle; other sessions
    and all API tokens are revoked."""
    response = RedirectResponse("/account", status_code=303)
    if new_password != confirm_password:
        flash(response, i18n.gettext(locale, "The two new passwords differ."), "error")
        return response
    pool: AsyncConnectionPool[AsyncConnection[Any]] = request.app.state.pool
    try:
        checked = await throttled_verify(pool, me.username, current_password, client_ip(request))
    except HashingBusy as busy:
        flash(response, i18n.gettext(locale, "The server is busy. Try again in a moment."), "error")
        response.headers["Retry-After"] = str(busy.retry_after_s)
        return response
    if checked.locked_for_s:
        msg = i18n.gettext(locale, "Too many failed attempts. Try again in %(seconds)d seconds.")
        flash(response, msg % {"seconds": checked.locked_for_s}, "error")
        response.headers["Retry-After"] = str(checked.locked_for_s)
        return response
    if checked.user_id != me.user_id:
        flash(response, i18n.gettext(locale, "The current password is wrong."), "error")
        return response
    try:
        await change_own_password(
            conn, me, current_password, new_password, request.cookies.get(SESSION_COOKIE)
        )
    except UserError as exc:
        flash(response, i18n.gettext(locale, str(exc)), "error")
        return response
    flash(response, i18n.gettext(locale, "Password changed."), "success")
    return response


@router.post("/account/locale", include_in_schema=False, dependencies=TEMPORARY_OK)
async def account_locale(
    conn: DbDep, me: PrincipalDep, language: Annotated[str, Form(max_length=5)]
) -> Response:
    """Store my preferred language."""
    lang = i18n.normalize(language) or i18n.DEFAULT_LOCALE
    await set_locale(conn, me, lang)
    response = RedirectResponse("/account", status_code=303)
    response.set_cookie(
        i18n.LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True, path="/"
    )
    return response


@router.post("/account/tokens", include_in_schema=False, dependencies=SELF)
async def account_new_token(
    request: Request,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    name: Annotated[str, Form(min_length=1, max_length=100)],
) -> Response:
    """Issue a token and show its secret once."""
    issued = await issue_token(conn, me.user_id, name.strip() or "token")
    await audit(
        conn, me, "create", "api_token", issued.id, None, {"name": issued.name}, org_id=me.org_id
    )
    return render(
        request,
        "accounts/account.html",
        {"tokens": await own_tokens(conn, me.user_id), "new_token": issued.secret},
        locale=locale,
        principal=me,
    )


@router.post("/account/tokens/{token_id}/revoke", include_in_schema=False, dependencies=SELF)
async def account_revoke_token(
    token_id: int, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """Revoke one of my tokens."""
    await revoke_token(conn, me, token_id)
    response = RedirectResponse("/account", status_code=303)
    flash(response, i18n.gettext(locale, "Token revoked."), "success")
    return response
