"""Login, logout, the role home page (seed screen 1) and error pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from starlette.responses import Response

from api import i18n
from api.auth import SESSION_COOKIE, HashingBusy, attempt_login, end_session
from api.deps import DbDep, LocaleDep, PrincipalDep, get_locale
from api.policy import Scope, policy
from api.web.nav import items_for
from api.web.templating import render

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """A local path to go to after login (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def client_ip(request: Request) -> str | None:
    """The client address as seen by the server (uvicorn applies trusted proxy headers)."""
    return request.client.host if request.client else None


@router.get("/login", dependencies=[policy(scope=Scope.PUBLIC)])
async def login_page(request: Request, locale: LocaleDep, next: str = "/") -> Response:
    """The login form."""
    return render(request, "web/login.html", {"next": safe_next(next)}, locale=locale)


@router.post("/login", dependencies=[policy(scope=Scope.PUBLIC)])
async def login(
    *,
    request: Request,
    locale: LocaleDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    """Check the credentials (throttled), start a session and go on.

    No database connection is held while the password is verified (api.auth.throttled_verify),
    so a burst of logins cannot starve the pool the rest of the API needs.
    """
    pool: AsyncConnectionPool[AsyncConnection[Any]] = request.app.state.pool
    try:
        result = await attempt_login(
            pool,
            username,
            password,
            client_ip(request),
            user_agent=request.headers.get("user-agent"),
            old_session=request.cookies.get(SESSION_COOKIE),  # ended: a fresh id (no fixation)
        )
    except HashingBusy as busy:
        page = render(
            request,
            "web/login.html",
            {
                "next": safe_next(next),
                "error": i18n.gettext(locale, "The server is busy. Try again in a moment."),
                "username": username,
            },
            locale=locale,
            status_code=503,
        )
        page.headers["Retry-After"] = str(busy.retry_after_s)
        return page
    if not result.ok:
        if result.locked_for_s:
            msg = i18n.gettext(
                locale, "Too many failed attempts. Try again in %(seconds)d seconds."
            ) % {"seconds": result.locked_for_s}
            code = 429
        else:
            msg = i18n.gettext(locale, "Wrong username or password.")
            code = 401
        page = render(
            request,
            "web/login.html",
            {"next": safe_next(next), "error": msg, "username": username},
            locale=locale,
            status_code=code,
        )
        if result.locked_for_s:
            page.headers["Retry-After"] = str(result.locked_for_s)
        return page
    # The session was started, the old one ended and the login audited in the statement after
    # the password check (api.auth.attempt_login: one round trip).
    assert result.session is not None
    # A temporary password (new account, reset) is changed first.
    target = "/account" if result.must_change_password else safe_next(next)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        result.session,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


# Public so that an expired session can still clear its cookie; CSRF still applies.
@router.post("/logout", dependencies=[policy(scope=Scope.PUBLIC)])
async def logout(request: Request, conn: DbDep) -> Response:
    """End this session."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await end_session(conn, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/", dependencies=[policy(scope=Scope.SELF)])
async def home(request: Request, me: PrincipalDep, locale: LocaleDep) -> Response:
    """The functions of the user's role (seed screen 1)."""
    return render(
        request, "web/home.html", {"functions": items_for(me)}, locale=locale, principal=me
    )


def _problem_text(problem: dict[str, Any], locale: str) -> str:
    if problem.get("type") == "date_out_of_range":
        from api.dates import DATE_RANGE_MESSAGE, EARLIEST_DAY, latest_day

        return i18n.gettext(locale, DATE_RANGE_MESSAGE) % {
            "earliest": EARLIEST_DAY.isoformat(),
            "latest": latest_day().isoformat(),
        }
    return i18n.gettext(locale, "This value is not valid.")


async def error_page(
    request: Request, status_code: int, problems: list[dict[str, Any]] | None = None
) -> Response:
    """An HTML error page (403 / 404 / 422 / 503) in the user's language; for a 422, the fields
    that were refused and why."""
    try:
        locale = await get_locale(request)
    except Exception:  # never fail while reporting a failure
        locale = i18n.DEFAULT_LOCALE
    principal = getattr(request.state, "principal", None)
    fields = [
        (str(p["loc"][-1]) if p.get("loc") else "?", _problem_text(p, locale))
        for p in problems or []
    ]
    return render(
        request,
        "web/error.html",
        {"status_code": status_code, "fields": fields},
        locale=locale,
        principal=principal,
        status_code=status_code,
    )
