"""The application factory: `create_app(settings)` builds the whole API and web UI."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from api.auth import LOGIN_DB_SLOTS
from api.csrf import csrf_protect
from api.dates import date_guard, declare_range
from api.errors import COMMON_RESPONSES, add_error_schemas
from api.headers import SecurityHeaders
from api.i18n import DEFAULT_LOCALE
from api.policy import PasswordChangeRequired
from api.pool_check import check_connection
from api.refusals import FAMILIES
from api.settings import load_centre_settings
from api.web.assets import check_assets
from oxy.settings import Settings, load_settings

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"

ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


async def _configure(conn: AsyncConnection[Any]) -> None:
    # Times are UTC in the database; local time is applied only at the UI's edges.
    await conn.execute("SET TIME ZONE 'UTC'")
    await conn.commit()


def routers() -> list[APIRouter]:
    """Every router the application mounts, grouped by feature, in matching order.

    Imported here, when an application is built (the menu is listed in api.web.nav.MENU). Every
    route must declare a policy (api.policy; tests/api/test_policy_matrix.py fails on one that
    does not)."""
    from api import health
    from api.accounting import pages as tank_pages
    from api.accounting import routes as accounting
    from api.accounts import audit_pages as audit_views
    from api.accounts import pages as account
    from api.accounts import routes as account_api
    from api.accounts import users_pages as admin_users
    from api.admin import pages as admin_pages
    from api.alerts import pages as alert_pages
    from api.alerts import routes as alerts
    from api.coordination import (
        assignments_routes,
        deliveries_routes,
        requests_routes,
        suggestions_routes,
    )
    from api.coordination import pages as coordination_pages
    from api.directory import routes as directory
    from api.engineer import actions as engineer_actions
    from api.engineer import pages as engineer
    from api.rates import pages as rate_pages
    from api.rates import routes as rates
    from api.reports import (
        byt_pages,
        byt_routes,
        facility_routes,
        supplier_pages,
        supplier_routes,
        syt_pages,
        syt_routes,
    )
    from api.reports import facility_pages as report_pages
    from api.web import assets, pages

    return [
        # Platform: health, sign-in, own account, accounts, audit trail, directory.
        health.router,
        pages.router,
        account_api.router,
        account.router,
        admin_users.router,
        audit_views.router,
        directory.router,
        # Accounting: tank figures, series, corrections.
        accounting.router,
        # Alerts: pages, then the JSON API.
        alert_pages.router,
        alerts.router,
        # Coordination: the JSON API, then the pages.
        requests_routes.router,
        assignments_routes.router,
        deliveries_routes.router,
        suggestions_routes.router,
        coordination_pages.router,
        # Engineers: actions, then the gateway pages.
        engineer_actions.router,
        engineer.router,
        # Reporting rate: the JSON API, then the pages.
        rates.router,
        rate_pages.router,
        # Reports: facility, SYT, BYT, suppliers (JSON).
        facility_routes.router,
        syt_routes.router,
        byt_routes.router,
        supplier_routes.router,
        # Role pages: built assets, tanks, reports, SYT, BYT, suppliers, administration.
        assets.router,
        tank_pages.router,
        report_pages.router,
        syt_pages.router,
        byt_pages.router,
        supplier_pages.router,
        admin_pages.router,
    ]


async def warm_up(app: FastAPI) -> None:
    """Compile the page templates and the translation catalogs and let FastAPI build its route
    tables (it does so lazily, router by router, on the first request that reaches each) before
    the first visitor: the first load of a page after a restart otherwise pays for them
    (bench/web_pages.py "cold", bench/login.py's first burst)."""
    from api import i18n
    from api.web.templating import environment

    env = environment()
    for name in env.list_templates(extensions=["html"]):
        env.get_template(name)
    # The catalogs are compiled from the .po files at first use (tens of ms on the event loop):
    # not in the first burst of logins, whose error pages are the first translated answers.
    for locale in i18n.SUPPORTED:
        i18n.translations(locale)
    # One request no route answers walks every router once; its 404 is discarded.
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/.well-known/oxy-warm-up",
        "raw_path": b"/.well-known/oxy-warm-up",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"accept", b"application/json")],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        del message

    try:
        await app(scope, receive, send)
    except Exception:  # a warm-up never stops the server starting
        logger.warning("warm-up request failed", exc_info=True)
    # What the start built (routes, templates, catalogs, modules) stays for the process's life:
    # frozen out of the collector's sight, a full collection during a burst of requests no
    # longer walks it. Measured with 50 concurrent wrong passwords (bench/login.py, quiet):
    # /health p99 110-127 ms without, 32 ms with.
    gc.collect()
    gc.freeze()


def create_served_app() -> FastAPI:
    """`create_app` as `oxy api run` serves it (the factory of its worker processes): with the
    periodic job that computes the accounting windows ahead."""
    return create_app(windows_ahead=True)


def create_app(settings: Settings | None = None, *, windows_ahead: bool = False) -> FastAPI:
    """Build the FastAPI application (pool opened in the lifespan; the settings tree on
    app.state, read through the typed dependencies of api.deps). `windows_ahead`: run the job
    that keeps the tanks' accounting windows stored (api.accounting.ahead), waiting for its
    first round before serving — what `oxy api run` does; off for the tests' apps."""
    settings = settings or load_settings()
    if not settings.database_url:
        raise ValueError("create_app needs settings.database_url (oxy api run resolves it)")
    # The whole settings tree is validated here: a bad OXY_* value stops the start, not a request.
    centre = load_centre_settings(settings)

    pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
        settings.database_url,
        open=False,
        min_size=1,
        max_size=settings.api_pool_max,
        # Every checkout waits at most this long, then PoolTimeout: a 503 (below).
        timeout=settings.api_pool_wait_s,
        configure=_configure,
        # A connection broken while the database was away is noticed at checkout and replaced
        # (the pool reconnects in the background), so the API recovers without a restart; the
        # check costs a round trip only when the server has hung up (api.pool_check).
        check=check_connection,
        kwargs={"connect_timeout": 5},
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open(wait=True, timeout=30)
        # Connections for a login burst (the login slots, /health, a page) stay open even after
        # idle hours, made in the background: the pool otherwise grows one connection at a time
        # while requests wait, and the first burst after a quiet spell waited for it
        # (bench/login.py: /health p99 280 ms in a first attack burst, 90 ms in the next one).
        await pool.resize(min(settings.api_pool_max, LOGIN_DB_SLOTS + 2), settings.api_pool_max)
        logger.info("database pool open")
        await warm_up(app)
        try:
            if windows_ahead:
                from api.accounting.ahead import windows_ahead as job

                async with job(str(settings.database_url), centre.accounting) as ahead:
                    app.state.windows_ahead = ahead
                    yield
            else:
                yield
        finally:
            await pool.close()

    app = FastAPI(
        title="Oxy platform API",
        summary="Medical-oxygen telemetry and supply coordination",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI needs inline scripts from a CDN; our CSP forbids both
        redoc_url=None,
        dependencies=[Depends(csrf_protect), Depends(date_guard)],
        responses=COMMON_RESPONSES,
    )
    app.state.settings = settings
    app.state.centre = centre
    app.state.pool = pool
    app.state.windows_ahead = None  # the job's state once started (None: not run here)

    # Fail at start-up, with the command to run, rather than serve pages without their scripts.
    check_assets()
    for router in routers():
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(SecurityHeaders)
    _install_error_handlers(app)
    _declare_date_range(app)
    return app


def _declare_date_range(app: FastAPI) -> None:
    """The OpenAPI document carries the accepted date range (api.dates.declare_range)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = declare_range(add_error_schemas(build()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
        "accept", ""
    )


def _install_error_handlers(app: FastAPI) -> None:
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 401 and _wants_html(request) and request.method == "GET":
            target = "/login?next=" + request.url.path
            return RedirectResponse(target, status_code=303)
        if isinstance(exc, PasswordChangeRequired) and not request.url.path.startswith("/api/"):
            return RedirectResponse("/account", status_code=303)
        if _wants_html(request) and exc.status_code in (403, 404):
            from api.web.pages import error_page

            return await error_page(request, exc.status_code)
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if _wants_html(request):
            from api.web.pages import error_page

            return await error_page(request, 422, _safe_errors(exc))
        return JSONResponse({"detail": _safe_errors(exc)}, status_code=422)

    async def data_error(request: Request, exc: Exception) -> Response:
        # Input the database refuses as data (a NUL byte in text, a number out of range) is the
        # client's error, whichever handler let it through.
        logger.info("database refused input on %s: %s", request.url.path, exc)
        return JSONResponse({"detail": "invalid value"}, status_code=422)

    async def database_away(request: Request, exc: Exception) -> Response:
        # The database is unreachable (pool wait timed out, connection lost): a 503 the client
        # may retry, never a 500; the pool reconnects by itself.
        logger.warning("database unavailable on %s: %s", request.url.path, exc)
        from api.deps import RETRY_AFTER_S

        headers = {"Retry-After": str(RETRY_AFTER_S)}
        request.state.principal = None  # the error page must not try the database again
        if _wants_html(request):
            from api.web.pages import error_page

            page = await error_page(request, 503)
            page.headers.update(headers)
            return page
        return JSONResponse(
            {"detail": {"code": "database_unavailable", "message": "database unavailable"}},
            status_code=503,
            headers=headers,
        )

    def refusal(answer: Callable[[Any, str], tuple[int, Any]]) -> ExceptionHandler:
        # A domain refusal (api.refusals): its status and detail in the caller's language.
        async def handler(request: Request, exc: Exception) -> Response:
            from api.deps import get_locale

            try:
                locale = await get_locale(request)
            except Exception:  # never fail while answering a refusal
                locale = DEFAULT_LOCALE
            code, detail = answer(exc, locale)
            if _wants_html(request) and code in (403, 404):
                from api.web.pages import error_page

                return await error_page(request, code)
            return JSONResponse({"detail": detail}, status_code=code)

        return handler

    for family, answer in FAMILIES:
        app.add_exception_handler(family, refusal(answer))
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(psycopg.OperationalError, database_away)
    app.add_exception_handler(psycopg.InterfaceError, database_away)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(psycopg.errors.DataError, data_error)


def _safe_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Never echo submitted values back (they may be passwords).
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
