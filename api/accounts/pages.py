"""The user's own account: password, language and API tokens (page and JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field
from starlette.responses import Response

from api import i18n
from api.audit import audit
from api.auth import SESSION_COOKIE, HashingBusy, issue_token, throttled_verify
from api.deps import DbDep, LocaleDep, PrincipalDep
from api.policy import Scope, policy
from api.users import UserError, change_own_password, set_locale
from api.web.pages import client_ip
from api.web.templating import flash, render

router = APIRouter()
SELF = [policy(scope=Scope.SELF)]
# What a session on a temporary password may still do: see itself and change the password.
TEMPORARY_OK = [policy(scope=Scope.SELF, temporary_password_ok=True)]


class Me(BaseModel):
    """The caller's identity and scope."""

    user_id: int
    username: str
    display_name: str
    role: str
    org_id: int | None
    national: bool
    facility_ids: list[int] | None
    locale: str


class TokenIn(BaseModel):
    """A new API token request."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    expires_at: datetime | None = None


class TokenOut(BaseModel):
    """An API token as listed (never its secret)."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenIssued(BaseModel):
    """A newly issued token: `token` is shown this once."""

    id: int
    name: str
    token: str


_TOKENS = """
SELECT id, name, prefix, created_at, last_used_at, expires_at, revoked_at
FROM api_tokens WHERE user_id = %(u)s ORDER BY id DESC
"""
_REVOKE = """
UPDATE api_tokens SET revoked_at = now()
WHERE id = %(id)s AND user_id = %(u)s AND revoked_at IS NULL
RETURNING id
"""


async def _tokens(conn: DbDep, user_id: int) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_TOKENS, {"u": user_id})
        return [dict(r) for r in await cur.fetchall()]


async def _revoke(conn: DbDep, me: PrincipalDep, token_id: int) -> None:
    cur = await conn.execute(_REVOKE, {"id": token_id, "u": me.user_id})
    if await cur.fetchone() is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    await audit(conn, me, "revoke", "api_token", token_id, org_id=me.org_id)


# ---------------------------------------------------------------------------- JSON


@router.get("/api/me", response_model=Me, dependencies=TEMPORARY_OK)
async def api_me(me: PrincipalDep) -> Me:
    """Who am I, with my scope."""
    return Me(
        user_id=me.user_id,
        username=me.username,
        display_name=me.display_name,
        role=me.role.value,
        org_id=me.org_id,
        national=me.is_national,
        facility_ids=None if me.facility_ids is None else sorted(me.facility_ids),
        locale=me.locale,
    )


@router.get("/api/tokens", response_model=list[TokenOut], dependencies=SELF)
async def api_tokens(conn: DbDep, me: PrincipalDep) -> list[TokenOut]:
    """My API tokens."""
    return [TokenOut(**r) for r in await _tokens(conn, me.user_id)]


@router.post("/api/tokens", response_model=TokenIssued, status_code=201, dependencies=SELF)
async def api_issue_token(body: TokenIn, conn: DbDep, me: PrincipalDep) -> TokenIssued:
    """Issue a bearer token for scripts and integrations (same role and scope as me)."""
    issued = await issue_token(conn, me.user_id, body.name.strip() or "token", body.expires_at)
    await audit(
        conn, me, "create", "api_token", issued.id, None, {"name": issued.name}, org_id=me.org_id
    )
    return TokenIssued(id=issued.id, name=issued.name, token=issued.secret)


@router.delete("/api/tokens/{token_id}", status_code=204, dependencies=SELF)
async def api_revoke_token(token_id: int, conn: DbDep, me: PrincipalDep) -> Response:
    """Revoke one of my tokens."""
    await _revoke(conn, me, token_id)
    return Response(status_code=204)


# ---------------------------------------------------------------------------- pages


@router.get("/account", include_in_schema=False, dependencies=TEMPORARY_OK)
async def account_page(
    request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """Password, language and tokens."""
    return render(
        request,
        "account.html",
        {"tokens": await _tokens(conn, me.user_id)},
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
        "account.html",
        {"tokens": await _tokens(conn, me.user_id), "new_token": issued.secret},
        locale=locale,
        principal=me,
    )


@router.post("/account/tokens/{token_id}/revoke", include_in_schema=False, dependencies=SELF)
async def account_revoke_token(
    token_id: int, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """Revoke one of my tokens."""
    await _revoke(conn, me, token_id)
    response = RedirectResponse("/account", status_code=303)
    flash(response, i18n.gettext(locale, "Token revoked."), "success")
    return response
