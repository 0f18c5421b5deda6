"""FastAPI dependencies every router uses: database, settings, principal, locale, policy.

from api.deps import DbDep, PrincipalDep, policy, Scope, Role

@router.get("/api/facilities/{facility_id}/x",
            dependencies=[policy(roles=[Role.BYT, Role.SYT], scope=Scope.FACILITY)])
async def x(facility_id: int, conn: DbDep, me: PrincipalDep) -> ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api.accounting.config import AccountingConfig
from api.alerts.config import AlertSettings
from api.auth import SESSION_COOKIE, principal_from_session, principal_from_token
from api.i18n import DEFAULT_LOCALE, LANG_COOKIE, gas_unit, normalize
from api.policy import NotAuthenticated, Policy, Scope, policy, set_principal_resolver
from api.reports.exports import Exporter
from api.scope import Principal, Role
from api.settings import CentreSettings
from oxy.settings import Settings

__all__ = [
    "AlertCfgDep",
    "CentreDep",
    "CfgDep",
    "DbDep",
    "ExportDep",
    "LocaleDep",
    "NowDep",
    "OptionalPrincipalDep",
    "Policy",
    "PrincipalDep",
    "Role",
    "Scope",
    "SettingsDep",
    "get_conn",
    "policy",
    "require",
]


def get_settings(request: Request) -> Settings:
    """The application's platform settings."""
    settings: Settings = request.app.state.settings
    return settings


def get_centre(request: Request) -> CentreSettings:
    """The application's settings tree, built and validated once in `create_app`."""
    centre: CentreSettings = request.app.state.centre
    return centre


def get_accounting_config(request: Request) -> AccountingConfig:
    """The accounting config of the settings tree."""
    return get_centre(request).accounting


def get_alert_settings(request: Request) -> AlertSettings:
    """The alert settings of the settings tree."""
    return get_centre(request).alerts


def clock() -> datetime:
    """Now, in UTC: one value per request, so that every figure of an answer agrees."""
    return datetime.now(UTC)


# What a 503 tells the client to wait before retrying.
RETRY_AFTER_S = 5


def db_connection(request: Request) -> Any:
    """A pooled connection (async context manager). It waits at most the pool's timeout,
    `OXY_API_POOL_WAIT_S` (api.app), before the 503 for a database away or saturated."""
    pool: AsyncConnectionPool[AsyncConnection[Any]] = request.app.state.pool
    return pool.connection()


async def get_conn(request: Request) -> AsyncIterator[AsyncConnection[Any]]:
    """One pooled connection per request; committed when the handler returns normally."""
    async with db_connection(request) as conn:
        yield conn


SettingsDep = Annotated[Settings, Depends(get_settings)]
CentreDep = Annotated[CentreSettings, Depends(get_centre)]
CfgDep = Annotated[AccountingConfig, Depends(get_accounting_config)]
AlertCfgDep = Annotated[AlertSettings, Depends(get_alert_settings)]
NowDep = Annotated[datetime, Depends(clock)]
# scope="function": the connection is committed and returned before the response is sent, so
# a client that follows a redirect (e.g. after login) always sees what the handler wrote.
DbDep = Annotated[AsyncConnection[Any], Depends(get_conn, scope="function")]


async def _authenticate(request: Request) -> Principal | None:
    """Resolve the caller from a bearer token or the session cookie (cached on the request)."""
    if hasattr(request.state, "principal"):
        cached: Principal | None = request.state.principal
        return cached
    principal: Principal | None = None
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        async with db_connection(request) as conn:
            principal = await principal_from_token(conn, auth[7:].strip())
        if principal is None:
            # A bad token is an error, never a silent fall-back to the cookie.
            request.state.principal = None
            raise NotAuthenticated()
    elif cookie := request.cookies.get(SESSION_COOKIE):
        async with db_connection(request) as conn:
            principal = await principal_from_session(conn, cookie)
    request.state.principal = principal
    return principal


set_principal_resolver(_authenticate)


async def optional_principal(request: Request) -> Principal | None:
    """The caller, or None when not logged in."""
    return await _authenticate(request)


async def current_principal(request: Request) -> Principal:
    """The caller; 401 when not logged in."""
    principal = await _authenticate(request)
    if principal is None:
        raise NotAuthenticated()
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]
OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]


def require(*roles: Role | str) -> Callable[..., Any]:
    """A dependency callable admitting only `roles` (403 otherwise); returns the principal."""
    allowed = frozenset(Role(r) for r in roles)

    async def dependency(principal: PrincipalDep) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "forbidden for this role")
        return principal

    return dependency


async def get_locale(request: Request) -> str:
    """The UI language: ?lang=, then the language cookie, then the user's preference, then vi."""
    chosen = normalize(request.query_params.get("lang")) or normalize(
        request.cookies.get(LANG_COOKIE)
    )
    if chosen:
        return chosen
    principal = None
    if _has_credentials(request):
        try:
            principal = await _authenticate(request)
        except NotAuthenticated:
            principal = None
    if principal is not None and normalize(principal.locale):
        return principal.locale
    settings: Settings = request.app.state.settings
    return normalize(settings.default_locale) or DEFAULT_LOCALE


def _has_credentials(request: Request) -> bool:
    return bool(request.cookies.get(SESSION_COOKIE)) or bool(request.headers.get("authorization"))


LocaleDep = Annotated[str, Depends(get_locale)]


async def get_exporter(locale: LocaleDep, cfg: CfgDep) -> Exporter:
    """The export helper in the caller's language, gas figures at the reference conditions."""
    ref = cfg.reference
    return Exporter(locale=locale, gas=gas_unit(ref.temp_c, ref.pressure_kpa, locale))


ExportDep = Annotated[Exporter, Depends(get_exporter)]
