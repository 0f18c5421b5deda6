"""Support requests (JSON): a facility or its SYT asks for oxygen; coordinators list, escalate."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.coordination.http import (
    COORDINATORS,
    REQUEST_READERS,
    REQUESTERS,
    Id,
    iso,
    request_json,
    request_public,
)
from api.coordination.public import (
    SupportRequestDetailPublic,
    SupportRequestPublic,
)
from api.deps import CfgDep, DbDep, ExportDep, LocaleDep, NowDep, PrincipalDep
from api.errors import FILE_RESPONSES
from api.policy import Scope, policy
from api.reports.exports import ExportKind

from . import assignments as asg
from . import deliveries as dlv
from . import support

router = APIRouter(prefix="/api", tags=["coordination"])


# ---------------------------------------------------------------------------- support requests


@router.post(
    "/facilities/{facility_id}/support-requests",
    dependencies=[policy(roles=REQUESTERS, scope=Scope.FACILITY)],
    summary="Ask for oxygen for a facility (its staff, or its SYT on its behalf)",
    status_code=201,
    response_model=SupportRequestPublic,
)
async def create_request(
    *,
    facility_id: Id,
    body: support.RequestIn,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
) -> SupportRequestPublic:
    """Store a request; its urgency comes from the facility's live days of supply."""
    r = await support.create_request(conn, me, facility_id, body, cfg=cfg, now=now)
    return request_public(r, cfg)


@router.get(
    "/facilities/{facility_id}/support-requests",
    dependencies=[policy(roles=REQUEST_READERS, scope=Scope.FACILITY)],
    summary="A facility's support requests",
    response_model=list[SupportRequestPublic],
)
async def facility_requests(
    facility_id: Id, conn: DbDep, me: PrincipalDep, cfg: CfgDep
) -> list[SupportRequestPublic]:
    """The facility's requests, most urgent first."""
    rows = await support.fetch_requests(conn, me, facility_id=facility_id)
    return [request_public(r, cfg) for r in rows]


@router.get(
    "/coordination/requests",
    dependencies=[policy(roles=REQUEST_READERS, scope=Scope.NATIONAL)],
    summary="Support requests in the caller's scope (filters: state, escalated, province)",
    response_model=list[SupportRequestPublic],
)
async def list_requests(
    *,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    state: Annotated[list[str] | None, Query()] = None,
    escalated: bool | None = None,
    province: Annotated[str | None, Query(max_length=8)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[SupportRequestPublic]:
    """Requests the caller may see: BYT all, an SYT its facilities', a facility its own."""
    rows = await support.fetch_requests(
        conn, me, states=state, escalated=escalated, province=province, limit=limit
    )
    return [request_public(r, cfg) for r in rows]


REQUEST_COLUMNS = [
    ("id", "Request"),
    ("facility_code", "Facility code"),
    ("facility_name", "Facility"),
    ("province_code", "Province"),
    ("form", "Form"),
    ("amount_value", "Amount as typed"),
    ("amount_unit", "Unit as typed"),
    ("amount_kg", "Amount (kg LOX)"),
    ("assigned_kg", "Assigned (kg)"),
    ("remaining_kg", "Remaining (kg)"),
    ("needed_by", "Needed by (UTC)"),
    ("days_of_supply", "Days of supply"),
    ("urgency", "Urgency"),
    ("state", "State"),
    ("escalated", "Escalated"),
    ("created_by", "Created by"),
    ("created_at", "Created at (UTC)"),
]


@router.get(
    "/coordination/requests.{kind}",
    dependencies=[policy(roles=REQUEST_READERS, scope=Scope.NATIONAL)],
    summary="Export the support requests in the caller's scope (csv or xlsx)",
    response_class=Response,
    responses=FILE_RESPONSES,
)
async def export_requests(
    kind: ExportKind, conn: DbDep, me: PrincipalDep, export: ExportDep
) -> Response:
    """CSV or XLSX of the requests list."""
    rows = await support.fetch_requests(conn, me, limit=5000)
    return export(kind, "support-requests", REQUEST_COLUMNS, [iso(asdict(r)) for r in rows])


@router.get(
    "/coordination/requests/{request_id}",
    dependencies=[policy(roles=REQUEST_READERS, scope=Scope.NATIONAL)],
    summary="One support request with its assignments and deliveries",
    response_model=SupportRequestDetailPublic,
)
async def get_request(
    request_id: Id, conn: DbDep, me: PrincipalDep, cfg: CfgDep, locale: LocaleDep
) -> SupportRequestDetailPublic:
    """The request (404 outside the caller's scope), its parts and their deliveries."""
    r = await support.get_request(conn, me, request_id)
    parts = await asg.fetch_assignments(conn, me, request_id=request_id)
    delivered = []
    for a in parts:
        if a.delivery_id is not None:
            delivered.extend(await dlv.fetch_deliveries(conn, me, delivery_id=a.delivery_id))
    return SupportRequestDetailPublic.model_validate(
        {
            **request_json(r, cfg),
            "assignments": [iso(asdict(a)) for a in parts],
            "deliveries": [iso(asdict(dlv.render(d, locale))) for d in delivered],
        }
    )


@router.post(
    "/coordination/requests/{request_id}/escalate",
    dependencies=[policy(roles=COORDINATORS, scope=Scope.NATIONAL)],
    summary="Escalate to BYT what the SYT cannot cover in its province",
    response_model=SupportRequestPublic,
)
async def escalate_request(
    *,
    request_id: Id,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    body: support.EscalateIn | None = None,
) -> SupportRequestPublic:
    """Hand the uncovered rest of the request to the Ministry."""
    r = await support.escalate(conn, me, request_id, body or support.EscalateIn(), now)
    return request_public(r, cfg)


@router.post(
    "/coordination/requests/{request_id}/cancel",
    dependencies=[policy(roles=REQUESTERS, scope=Scope.NATIONAL)],
    summary="Withdraw a support request",
    response_model=SupportRequestPublic,
)
async def cancel_request(
    *,
    request_id: Id,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
) -> SupportRequestPublic:
    """Cancel the request and its assignments not yet dispatched."""
    r = await support.cancel(conn, me, request_id, now)
    return request_public(r, cfg)
