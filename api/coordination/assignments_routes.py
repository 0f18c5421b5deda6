"""Assignments (JSON): coordinators assign a request; suppliers accept, decline, dispatch."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.coordination.http import (
    COORDINATORS,
    PARTIES,
    SOURCES,
    Id,
    iso,
    public,
)
from api.coordination.public import (
    AssignmentPublic,
    DeliveryPublic,
)
from api.deps import CfgDep, DbDep, ExportDep, LocaleDep, NowDep, PrincipalDep
from api.errors import FILE_RESPONSES
from api.policy import Scope, policy
from api.reports.exports import ExportKind
from api.scope import Role

from . import assignments as asg
from . import deliveries as dlv

router = APIRouter(prefix="/api", tags=["coordination"])


# ---------------------------------------------------------------------------- assignments


@router.post(
    "/coordination/requests/{request_id}/assignments",
    dependencies=[policy(roles=COORDINATORS, scope=Scope.NATIONAL)],
    summary="Assign a request, in whole or in parts (SYT within its province, BYT anywhere)",
    status_code=201,
    response_model=list[AssignmentPublic],
)
async def assign_request(
    *,
    request_id: Id,
    body: asg.AssignIn,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
) -> list[AssignmentPublic]:
    """Create one assignment per part; each source then accepts or declines."""
    rows = await asg.assign(conn, me, request_id, body, cfg=cfg, now=now)
    return [public(AssignmentPublic, a) for a in rows]


@router.get(
    "/coordination/assignments",
    dependencies=[policy(roles=PARTIES, scope=Scope.NATIONAL)],
    summary="Assignments in the caller's scope (a supplier: its own)",
    response_model=list[AssignmentPublic],
)
async def list_assignments(
    conn: DbDep,
    me: PrincipalDep,
    state: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[AssignmentPublic]:
    """Assignments the caller may see, newest first."""
    rows = await asg.fetch_assignments(conn, me, states=state, limit=limit)
    return [public(AssignmentPublic, a) for a in rows]


@router.get(
    "/suppliers/{supplier_id}/assignments",
    dependencies=[policy(roles=(Role.ADMIN, Role.BYT, Role.SUPPLIER), scope=Scope.SUPPLIER)],
    summary="The assignments given to one supplier",
    response_model=list[AssignmentPublic],
)
async def supplier_assignments(
    supplier_id: Id,
    conn: DbDep,
    me: PrincipalDep,
    state: Annotated[list[str] | None, Query()] = None,
) -> list[AssignmentPublic]:
    """What the supplier has been asked to ship."""
    rows = await asg.fetch_assignments(conn, me, source_id=supplier_id, states=state)
    return [public(AssignmentPublic, a) for a in rows]


ASSIGNMENT_COLUMNS = [
    ("id", "Assignment"),
    ("request_id", "Request"),
    ("source_code", "Source code"),
    ("source_name", "Source"),
    ("facility_code", "Facility code"),
    ("facility_name", "Facility"),
    ("form", "Form"),
    ("amount_kg", "Amount (kg LOX)"),
    ("level", "Level"),
    ("state", "State"),
    ("decline_reason", "Decline reason"),
    ("assigned_by", "Assigned by"),
    ("assigned_at", "Assigned at (UTC)"),
    ("needed_by", "Needed by (UTC)"),
]


@router.get(
    "/coordination/assignments.{kind}",
    dependencies=[policy(roles=PARTIES, scope=Scope.NATIONAL)],
    summary="Export the assignments in the caller's scope (csv or xlsx)",
    response_class=Response,
    responses=FILE_RESPONSES,
)
async def export_assignments(
    kind: ExportKind, conn: DbDep, me: PrincipalDep, export: ExportDep
) -> Response:
    """CSV or XLSX of the assignments list."""
    rows = await asg.fetch_assignments(conn, me, limit=5000)
    return export(kind, "assignments", ASSIGNMENT_COLUMNS, [iso(asdict(r)) for r in rows])


@router.post(
    "/coordination/assignments/{assignment_id}/accept",
    dependencies=[policy(roles=SOURCES, scope=Scope.NATIONAL)],
    summary="The source accepts an assignment",
    response_model=AssignmentPublic,
)
async def accept_assignment(
    assignment_id: Id, conn: DbDep, me: PrincipalDep, now: NowDep
) -> AssignmentPublic:
    """Accept (only the source organisation's staff)."""
    a = await asg.respond(conn, me, assignment_id, accept=True, reason=None, now=now)
    return public(AssignmentPublic, a)


@router.post(
    "/coordination/assignments/{assignment_id}/decline",
    dependencies=[policy(roles=SOURCES, scope=Scope.NATIONAL)],
    summary="The source declines an assignment, with a reason",
    response_model=AssignmentPublic,
)
async def decline_assignment(
    *,
    assignment_id: Id,
    body: asg.DeclineIn,
    conn: DbDep,
    me: PrincipalDep,
    now: NowDep,
) -> AssignmentPublic:
    """Decline; the request's part reopens for the coordinator."""
    a = await asg.respond(conn, me, assignment_id, accept=False, reason=body.reason, now=now)
    return public(AssignmentPublic, a)


@router.post(
    "/coordination/assignments/{assignment_id}/dispatch",
    dependencies=[policy(roles=SOURCES, scope=Scope.NATIONAL)],
    summary="The source dispatches an assignment: a delivery opens",
    status_code=201,
    response_model=DeliveryPublic,
)
async def dispatch_assignment(
    *,
    assignment_id: Id,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    locale: LocaleDep,
    body: dlv.DispatchIn | None = None,
) -> DeliveryPublic:
    """Open the delivery (state dispatched)."""
    d = await dlv.dispatch(conn, me, assignment_id, body or dlv.DispatchIn(), cfg=cfg, now=now)
    return public(DeliveryPublic, dlv.render(d, locale))
