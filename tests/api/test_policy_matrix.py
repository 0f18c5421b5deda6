"""The access matrix, generated from the application's own route table: every route × every
role (and anonymous) × in-scope / out-of-scope object → the expected allow or deny.

The expectation comes from an oracle written here from MISSION.md's "Who belongs where", not from
the code under test; the route list comes from `create_app()`, so a new route is covered (or,
lacking a policy, fails) without editing this file.
"""

from __future__ import annotations

import datetime as dt
import typing
from dataclasses import dataclass

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import digest
from api.policy import Policy, RouteInfo, Scope, route_table
from api.scope import Role
from oxy.settings import Settings
from tests.api.conftest import World

# Framework routes that are not application endpoints.
FRAMEWORK_PATHS = {"/openapi.json", "/static"}
NATIONAL = {"admin", "byt"}


def routes_without_policy(app: FastAPI) -> list[str]:
    """Every route of `app` that declares no policy (framework routes excepted)."""
    missing = []
    for r in route_table(app):
        if r.is_api and r.policy is None:
            missing.append(f"{sorted(r.methods)} {r.path}")
        elif not r.is_api and r.path not in FRAMEWORK_PATHS:
            missing.append(f"non-API route {r.path}")
    return missing


@pytest.fixture(scope="module")
def app_routes() -> list[RouteInfo]:
    """The application's endpoints (built without a running database)."""
    app = create_app(Settings(database_url="postgresql://unused@127.0.0.1:1/x"))
    return [r for r in route_table(app) if r.is_api]


def test_every_route_declares_a_policy() -> None:
    app = create_app(Settings(database_url="postgresql://unused@127.0.0.1:1/x"))
    assert routes_without_policy(app) == []


def test_a_route_without_policy_is_caught() -> None:
    app = create_app(Settings(database_url="postgresql://unused@127.0.0.1:1/x"))
    rogue = APIRouter()

    @rogue.get("/api/rogue")
    async def rogue_route() -> dict[str, str]:
        return {"secret": "x"}

    app.include_router(rogue)
    assert routes_without_policy(app) == ["['GET'] /api/rogue"]


def test_matrix_covers_the_role_screens_actions(app_routes: list[RouteInfo]) -> None:
    """Issue 17's map data and engineers' actions are in the route table the matrix walks."""
    paths = {(r.path, m) for r in app_routes for m in r.methods}
    assert ("/map/data", "GET") in paths
    assert ("/facilities/{facility_id}/gateways/{gateway_id}/quarantine/replay", "POST") in paths
    assert ("/facilities/{facility_id}/tanks/{tank_id}/quarantine/replay", "POST") in paths
    assert ("/alerts/{alert_id}/ack", "POST") in paths
    assert ("/alerts/{alert_id}/resolve", "POST") in paths


def test_scoped_path_parameters_are_enforced(app_routes: list[RouteInfo]) -> None:
    """A route taking a facility/org/supplier id must scope it, or be national-only."""
    scoped = {
        "facility_id": Scope.FACILITY,
        "org_id": Scope.PROVINCE,
        "supplier_id": Scope.SUPPLIER,
    }
    bad = []
    for r in app_routes:
        pol = r.policy
        assert pol is not None
        for name, _ in r.path_params:
            if name not in scoped or pol.param == name:
                continue
            if not {role.value for role in pol.roles} <= NATIONAL:
                bad.append(f"{r.path}: {name} unscoped for {sorted(pol.roles)}")
    assert bad == []


# ------------------------------------------------------------------------------ the oracle


@dataclass(frozen=True)
class Case:
    """One principal's view of the registry."""

    role: str | None  # None: anonymous
    facilities: frozenset[str]  # "in" / "out"
    parents: frozenset[str]
    suppliers: frozenset[str]


BOTH = frozenset({"in", "out"})
IN = frozenset({"in"})
NONE: frozenset[str] = frozenset()

CASES = {
    "anonymous": Case(None, NONE, NONE, NONE),
    "admin": Case("admin", BOTH, BOTH, BOTH),
    "byt": Case("byt", BOTH, BOTH, BOTH),
    "syt": Case("syt", IN, IN, NONE),
    "facility": Case("facility", IN, NONE, NONE),
    "supplier": Case("supplier", NONE, NONE, IN),
    "engineer": Case("engineer", IN, NONE, NONE),
}


def visible(case: Case, pol: Policy, which: str) -> bool:
    """Whether the object `which` ("in"/"out") of the route's scope kind is visible."""
    if pol.scope == Scope.FACILITY:
        return which in case.facilities
    if pol.scope == Scope.PROVINCE:
        return which in case.parents
    if pol.scope == Scope.SUPPLIER:
        return which in case.suppliers
    return True


def scoped_value(w: World, pol: Policy, which: str) -> int:
    """The id of the in-scope / out-of-scope object for the route's scope parameter."""
    table = {
        Scope.FACILITY: (w.fac_in, w.fac_out),
        Scope.PROVINCE: (w.syt_in, w.syt_out),
        Scope.SUPPLIER: (w.sup_in, w.sup_out),
    }
    pair = table[pol.scope]
    return pair[0] if which == "in" else pair[1]


def fill_path(route: RouteInfo, w: World, pol: Policy, which: str) -> tuple[str, bool]:
    """The route's path with every parameter filled; True if it has parameters besides scope."""
    values: dict[str, str] = {}
    extra = False
    for name, ann in route.path_params:
        if name == pol.param:
            values[name] = str(scoped_value(w, pol, which))
            continue
        extra = True
        args = typing.get_args(ann)
        base = args[0] if args else ann
        if name == "user_id":
            values[name] = str(w.victim)
        elif name == "gateway_id":
            values[name] = str(w.gw_in if which == "in" else w.gw_out)
        elif base is int:
            values[name] = "999999"
        elif base is dt.date:
            values[name] = (dt.date.today() - dt.timedelta(days=1)).isoformat()
        else:
            values[name] = "x"
    return route.path.format(**values), extra


def expected(case: Case, pol: Policy, which: str) -> str:
    """'allow', 'unauth' (401), 'forbidden' (403) or 'hidden' (404)."""
    if pol.scope == Scope.PUBLIC:
        return "allow"
    if case.role is None:
        return "unauth"
    if Role(case.role) not in pol.roles:
        return "forbidden"
    if pol.param is not None and not visible(case, pol, which):
        return "hidden"
    return "allow"


def _token(w: World, role: str) -> str:
    """A bearer token for the role's user, inserted directly (the token API has its own tests)."""
    import psycopg

    secret = f"oxy_matrix-{role}-{w.users[role]}"
    with psycopg.connect(w.db_url) as conn:
        conn.execute(
            "INSERT INTO api_tokens (user_id, name, token_hash, prefix) VALUES (%s, 'm', %s, 'x') "
            "ON CONFLICT (token_hash) DO NOTHING",
            (w.users[role], digest(secret)),
        )
    return secret


def test_route_matrix(client: TestClient, world: World, app_routes: list[RouteInfo]) -> None:
    headers_of: dict[str, dict[str, str]] = {
        # Anonymous unsafe requests pass CSRF (double-submit) so that the policy is what answers.
        "anonymous": {"x-csrf-token": "anon-token", "cookie": "oxy_csrf=anon-token"},
    }
    for name in CASES:
        if name != "anonymous":
            headers_of[name] = {"authorization": f"Bearer {_token(world, name)}"}

    failures: list[str] = []
    checked = 0
    # Read-only methods first, so that a write (e.g. disabling the spare account) cannot change
    # what a later read sees; writes are sent without a body and stop at validation when allowed.
    ordered = sorted(app_routes, key=lambda r: (r.methods != {"GET"}, r.path))
    for route in ordered:
        pol = route.policy
        assert pol is not None
        for method in sorted(route.methods - {"HEAD"}):
            for which in ("in", "out") if pol.param else ("in",):
                path, extra = fill_path(route, world, pol, which)
                for name, case in CASES.items():
                    want = expected(case, pol, which)
                    r = client.request(
                        method, path, headers=headers_of[name], follow_redirects=False
                    )
                    checked += 1
                    got = r.status_code
                    ok = {
                        "unauth": got == 401,
                        "forbidden": got == 403,
                        "hidden": got == 404,
                        # Allowed: past the policy. A 404 is a denial unless the route has other
                        # parameters (our filler ids may simply not exist).
                        "allow": got not in (401, 403) and (got != 404 or extra) and got < 500,
                    }[want]
                    if not ok:
                        failures.append(
                            f"{method} {path} as {name} ({which}): want {want}, got {got}"
                        )
    assert checked > 100
    assert failures == [], "\n".join(failures)
