"""Per-route access policy: every route declares who may call it and how its data is scoped.

A route states `dependencies=[policy(roles=..., scope=...)]`. The dependency enforces the policy on
each request (401 not logged in, 403 wrong role, 404 object outside the scope, so that its
existence is not revealed) and carries the declaration, so the matrix test reads it back from
the application's own route table. A route without a policy fails that test.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from api.scope import ALL_ROLES, Principal, Role


class Scope(StrEnum):
    """How a route's data is limited once the role is allowed."""

    PUBLIC = "public"  # no login (login page, health)
    SELF = "self"  # the caller's own account
    NATIONAL = "national"  # role check only; data not tied to a scope parameter
    PROVINCE = "province"  # path parameter `org_id`: a reporting parent (SYT / ministry office)
    FACILITY = "facility"  # path parameter `facility_id`: a facility organisation
    SUPPLIER = "supplier"  # path parameter `supplier_id`: a supplier organisation


DEFAULT_PARAM: dict[Scope, str] = {
    Scope.PROVINCE: "org_id",
    Scope.FACILITY: "facility_id",
    Scope.SUPPLIER: "supplier_id",
}


@dataclass(frozen=True, slots=True)
class Policy:
    """A route's declared access policy."""

    roles: frozenset[Role]
    scope: Scope
    param: str | None = None

    def allows_role(self, role: Role) -> bool:
        """Whether `role` passes the role check."""
        return role in self.roles

    def in_scope(self, principal: Principal, value: int) -> bool:
        """Whether the scoped object `value` (the path parameter) is visible to `principal`."""
        if self.scope == Scope.FACILITY:
            return principal.can_see_facility(value)
        if self.scope == Scope.PROVINCE:
            return principal.can_see_parent(value)
        if self.scope == Scope.SUPPLIER:
            return principal.can_see_supplier(value)
        return True


PrincipalResolver = Callable[[Request], Awaitable[Principal | None]]

_resolver: dict[str, PrincipalResolver] = {}


def set_principal_resolver(fn: PrincipalResolver) -> None:
    """Install the function that authenticates a request (done once by api.deps)."""
    _resolver["fn"] = fn


class NotAuthenticated(HTTPException):
    """401: the request carries no valid session or token."""

    def __init__(self) -> None:
        super().__init__(
            status.HTTP_401_UNAUTHORIZED,
            "not authenticated",
            headers={"WWW-Authenticate": "Bearer"},
        )


class PasswordChangeRequired(HTTPException):
    """403: the session runs on a temporary password; only changing it is allowed (pages are
    redirected to /account by the error handler)."""

    def __init__(self) -> None:
        super().__init__(
            status.HTTP_403_FORBIDDEN,
            {
                "code": "password_change_required",
                "message": "Change the temporary password first (/account).",
            },
        )


def policy(
    *,
    roles: Iterable[Role | str] = ALL_ROLES,
    scope: Scope | str = Scope.SELF,
    param: str | None = None,
    temporary_password_ok: bool = False,
) -> Any:
    """A dependency that enforces, and declares, a route's policy.

    A principal on a temporary password (`must_change_password`) is refused everywhere but on
    the few routes that say `temporary_password_ok` (the account page and the password change).
    """
    sc = Scope(scope)
    decl = Policy(frozenset(Role(r) for r in roles), sc, param or DEFAULT_PARAM.get(sc))

    async def enforce_policy(request: Request) -> Principal | None:
        if decl.scope == Scope.PUBLIC:
            return None
        principal = await _resolver["fn"](request)
        if principal is None:
            raise NotAuthenticated()
        if principal.must_change_password and not temporary_password_ok:
            raise PasswordChangeRequired()
        if not decl.allows_role(principal.role):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "forbidden for this role")
        if decl.param is not None and decl.param in request.path_params:
            try:
                value = int(request.path_params[decl.param])
            except ValueError:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "not found") from None
            if not decl.in_scope(principal, value):
                raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
        return principal

    enforce_policy.__oxy_policy__ = decl  # type: ignore[attr-defined]
    return Depends(enforce_policy)


def _policy_in(dependant: Any) -> Policy | None:
    for dep in getattr(dependant, "dependencies", ()):
        decl = getattr(dep.call, "__oxy_policy__", None)
        if isinstance(decl, Policy):
            return decl
    return None


def policy_of(route: Any) -> Policy | None:
    """The policy a route (an APIRoute or an effective route context) declared, or None."""
    return _policy_in(getattr(route, "dependant", None))


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """One endpoint as served: its full path, methods, path parameters and policy."""

    path: str
    methods: frozenset[str]
    policy: Policy | None
    path_params: tuple[tuple[str, Any], ...]  # (name, annotation)
    is_api: bool


def _flatten(routes: list[BaseRoute]) -> Iterator[tuple[BaseRoute, Any]]:
    """(original route, effective route) pairs, through included routers."""
    try:  # FastAPI ≥ 0.16x mounts included routers lazily
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI copies routes into the app's router
        for r in routes:
            yield r, r
        return
    for ctx in iter_route_contexts(routes):
        yield ctx.original_route, ctx


def route_table(app: FastAPI) -> list[RouteInfo]:
    """Every endpoint the application serves, with the policy each declared."""
    out = []
    for original, effective in _flatten(list(app.routes)):
        if isinstance(original, APIRoute):
            dependant = effective.dependant
            out.append(
                RouteInfo(
                    path=str(effective.path_format),
                    methods=frozenset(effective.methods or ()),
                    policy=_policy_in(dependant),
                    path_params=tuple(
                        (p.name, p.field_info.annotation) for p in dependant.path_params
                    ),
                    is_api=True,
                )
            )
        else:
            path = getattr(effective, "path", None) or getattr(original, "path", "")
            out.append(RouteInfo(str(path), frozenset(), None, (), is_api=False))
    return out
