"""Administrator pages: facilities, tanks with their calibration tables, gateways and sensors
(the accounts page is api.views.admin_users). Read-only views of the registry."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import Response

from api.deps import DbDep, LocaleDep, PrincipalDep, Role, Scope, policy
from api.templating import render

from . import queries as q
from .tank_pages import fetch_all

router = APIRouter(include_in_schema=False)

ADMIN = (Role.ADMIN,)


@router.get("/admin/facilities", dependencies=[policy(roles=ADMIN, scope=Scope.NATIONAL)])
async def facilities(
    *, request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """Every facility with its reporting parent, beds, position, tanks and gateways."""
    rows = await fetch_all(conn, q.ADMIN_FACILITIES)
    parents = await fetch_all(conn, q.REPORTING_PARENTS)
    suppliers = await fetch_all(conn, q.SUPPLIERS)
    return render(
        request,
        "pages/admin_facilities.html",
        {"rows": rows, "parents": parents, "suppliers": suppliers},
        locale=locale,
        principal=me,
    )


@router.get("/admin/tanks", dependencies=[policy(roles=ADMIN, scope=Scope.NATIONAL)])
async def tanks(*, request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep) -> Response:
    """Every tank with its current calibration version."""
    rows = await fetch_all(conn, q.ADMIN_TANKS)
    return render(request, "pages/admin_tanks.html", {"rows": rows}, locale=locale, principal=me)


@router.get(
    "/admin/tanks/{tank_id}/calibration", dependencies=[policy(roles=ADMIN, scope=Scope.NATIONAL)]
)
async def calibration(
    *, request: Request, tank_id: int, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """A tank's calibration (strapping) tables, every version: DP (inH2O) to contents (kg)."""
    tank = next((t for t in await fetch_all(conn, q.ADMIN_TANKS) if t["id"] == tank_id), None)
    if tank is None:
        raise HTTPException(404, "not found")
    points = await fetch_all(conn, q.CALIBRATION_POINTS, tank=tank_id)
    versions: dict[int, dict[str, object]] = {}
    for p in points:
        v = versions.setdefault(
            p["version"],
            {
                "version": p["version"],
                "valid_from": p["valid_from"],
                "note": p["note"],
                "points": [],
            },
        )
        v["points"].append((p["dp_inh2o"], p["contents_kg"]))  # type: ignore[attr-defined]
    return render(
        request,
        "pages/admin_calibration.html",
        {"tank": tank, "versions": list(versions.values())},
        locale=locale,
        principal=me,
    )


@router.get("/admin/gateways", dependencies=[policy(roles=ADMIN, scope=Scope.NATIONAL)])
async def gateways(
    *, request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """Gateways (last reading received) and their sensors."""
    return render(
        request,
        "pages/admin_gateways.html",
        {
            "gateways": await fetch_all(conn, q.ADMIN_GATEWAYS),
            "sensors": await fetch_all(conn, q.ADMIN_SENSORS),
        },
        locale=locale,
        principal=me,
    )
