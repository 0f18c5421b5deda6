"""CSRF protection for every unsafe request that relies on the browser's ambient cookie.

Logged in: the token is derived from the session cookie (see `csrf_for_session`), so it is
bound to the session and needs no storage. Not logged in (the login form): double-submit, a
random `oxy_csrf` cookie that the form must echo. Requests authenticated by a bearer token carry
no ambient credential and are exempt. The token travels in the `csrf_token` form field or the
`X-CSRF-Token` header.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import HTTPException, Request, status
from starlette.responses import Response

from api.auth import SESSION_COOKIE, csrf_for_session

CSRF_COOKIE = "oxy_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def csrf_token(request: Request) -> str:
    """The token a form rendered for this request must carry."""
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        return csrf_for_session(session)
    anon = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not anon:
        anon = secrets.token_urlsafe(32)
        request.state.new_csrf = anon  # set on the response by `set_csrf_cookie`
    return str(anon)


def set_csrf_cookie(request: Request, response: Response) -> None:
    """Persist a double-submit token generated while rendering this response."""
    new = getattr(request.state, "new_csrf", None)
    if new:
        response.set_cookie(
            CSRF_COOKIE,
            new,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )


async def csrf_protect(request: Request) -> None:
    """Global dependency: refuse unsafe cookie-authenticated requests without a valid token."""
    if request.method in SAFE_METHODS:
        return
    if request.headers.get("authorization", "")[:7].lower() == "bearer ":
        return
    session = request.cookies.get(SESSION_COOKIE)
    expected = csrf_for_session(session) if session else request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "CSRF token missing or invalid")
