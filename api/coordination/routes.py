"""HTTP routes of the coordination: support requests, assignments, deliveries, suggestions.

JSON only (the web pages are the web UI's). Every route declares its policy; objects reached by
their own id (a request, an assignment, a delivery) are filtered by the caller's scope in the
query itself, so one outside the scope is a 404 like one that does not exist. Every write is
audited in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel

from api.accounting.config import AccountingConfig
from api.coordination.public import (
    AssignmentPublic,
    CoordinationMapPublic,
    DeliveryPublic,
    SuggestionPublic,
    SupportRequestDetailPublic,
    SupportRequestPublic,
)
from api.deps import CfgDep, DbDep, ExportDep, LocaleDep, NowDep, PrincipalDep
from api.errors import FILE_RESPONSES
from api.policy import Scope, policy
from api.reports.exports import ExportKind
from api.scope import Role

from . import assignments as asg
from . import deliveries as dlv
from . import support
from .mapview import map_data
from .suggest import SuggestParams, parse_surge, suggest


class ErrorOut(BaseModel):
    """An error: FastAPI's validation list, a message, or {"errors": [{field, key, message}]}."""

    detail: list[dict[str, Any]] | dict[str, Any] | str


# 422 covers both FastAPI's validation errors and the package's refused input.
router = APIRouter(prefix="/api", tags=["coordination"], responses={422: {"model": ErrorOut}})
Id = Annotated[int, Path(ge=1, le=2**62)]

REQUEST_READERS = (Role.ADMIN, Role.BYT, Role.SYT, Role.FACILITY)
REQUESTERS = (Role.ADMIN, Role.BYT, Role.SYT, Role.FACILITY)
COORDINATORS = (Role.ADMIN, Role.BYT, Role.SYT)
PARTIES = (Role.ADMIN, Role.BYT, Role.SYT, Role.FACILITY, Role.SUPPLIER)
SOURCES = (Role.ADMIN, Role.SUPPLIER, Role.FACILITY)  # a facility may lend from its surplus
RECIPIENTS = (Role.ADMIN, Role.FACILITY)


def _iso(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def _request_json(r: dict[str, Any], cfg: AccountingConfig) -> dict[str, Any]:
    out = _iso(r)
    ref = cfg.reference
    out["amount_nm3"] = ref.kg_to_m3(float(r["amount_kg"]))
    out["remaining_nm3"] = ref.kg_to_m3(float(r["remaining_kg"]))
    out["units"] = {"mass": "kg LOX", "gas": ref.label}
    return out


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
) -> dict[str, Any]:
    """Store a request; its urgency comes from the facility's live days of supply."""
    r = await support.create_request(conn, me, facility_id, body, cfg=cfg, now=now)
    return _request_json(r, cfg)


@router.get(
    "/facilities/{facility_id}/support-requests",
    dependencies=[policy(roles=REQUEST_READERS, scope=Scope.FACILITY)],
    summary="A facility's support requests",
    response_model=list[SupportRequestPublic],
)
async def facility_requests(
    facility_id: Id, conn: DbDep, me: PrincipalDep, cfg: CfgDep
) -> list[dict[str, Any]]:
    """The facility's requests, most urgent first."""
    rows = await support.fetch_requests(conn, me, facility_id=facility_id)
    return [_request_json(r, cfg) for r in rows]


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
) -> list[dict[str, Any]]:
    """Requests the caller may see: BYT all, an SYT its facilities', a facility its own."""
    rows = await support.fetch_requests(
        conn, me, states=state, escalated=escalated, province=province, limit=limit
    )
    return [_request_json(r, cfg) for r in rows]


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
    return export(kind, "support-requests", REQUEST_COLUMNS, [_iso(r) for r in rows])


@router.get(
    "/coordination/requests/{request_id}",
    dependencies=[policy(roles=REQUEST_READERS, scope=Scope.NATIONAL)],
    summary="One support request with its assignments and deliveries",
    response_model=SupportRequestDetailPublic,
)
async def get_request(
    request_id: Id, conn: DbDep, me: PrincipalDep, cfg: CfgDep, locale: LocaleDep
) -> dict[str, Any]:
    """The request (404 outside the caller's scope), its parts and their deliveries."""
    r = await support.get_request(conn, me, request_id)
    out = _request_json(r, cfg)
    parts = await asg.fetch_assignments(conn, me, request_id=request_id)
    out["assignments"] = [_iso(a) for a in parts]
    delivered = []
    for a in parts:
        if a["delivery_id"] is not None:
            delivered.extend(await dlv.fetch_deliveries(conn, me, delivery_id=a["delivery_id"]))
    out["deliveries"] = [_iso(dlv.render(d, locale)) for d in delivered]
    return out


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
) -> dict[str, Any]:
    """Hand the uncovered rest of the request to the Ministry."""
    r = await support.escalate(conn, me, request_id, body or support.EscalateIn(), now)
    return _request_json(r, cfg)


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
) -> dict[str, Any]:
    """Cancel the request and its assignments not yet dispatched."""
    r = await support.cancel(conn, me, request_id, now)
    return _request_json(r, cfg)


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
) -> list[dict[str, Any]]:
    """Create one assignment per part; each source then accepts or declines."""
    rows = await asg.assign(conn, me, request_id, body, cfg=cfg, now=now)
    return [_iso(a) for a in rows]


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
) -> list[dict[str, Any]]:
    """Assignments the caller may see, newest first."""
    return [_iso(a) for a in await asg.fetch_assignments(conn, me, states=state, limit=limit)]


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
) -> list[dict[str, Any]]:
    """What the supplier has been asked to ship."""
    rows = await asg.fetch_assignments(conn, me, source_id=supplier_id, states=state)
    return [_iso(a) for a in rows]


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
    return export(kind, "assignments", ASSIGNMENT_COLUMNS, [_iso(r) for r in rows])


@router.post(
    "/coordination/assignments/{assignment_id}/accept",
    dependencies=[policy(roles=SOURCES, scope=Scope.NATIONAL)],
    summary="The source accepts an assignment",
    response_model=AssignmentPublic,
)
async def accept_assignment(
    assignment_id: Id, conn: DbDep, me: PrincipalDep, now: NowDep
) -> dict[str, Any]:
    """Accept (only the source organisation's staff)."""
    a = await asg.respond(conn, me, assignment_id, accept=True, reason=None, now=now)
    return _iso(a)


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
) -> dict[str, Any]:
    """Decline; the request's part reopens for the coordinator."""
    a = await asg.respond(conn, me, assignment_id, accept=False, reason=body.reason, now=now)
    return _iso(a)


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
) -> dict[str, Any]:
    """Open the delivery (state dispatched)."""
    d = await dlv.dispatch(conn, me, assignment_id, body or dlv.DispatchIn(), cfg=cfg, now=now)
    return _iso(dlv.render(d, locale))


# ---------------------------------------------------------------------------- deliveries


@router.get(
    "/coordination/deliveries",
    dependencies=[policy(roles=PARTIES, scope=Scope.NATIONAL)],
    summary="Deliveries in the caller's scope, with the telemetry match (mismatch flagged)",
    response_model=list[DeliveryPublic],
)
async def list_deliveries(
    *,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    state: Annotated[list[str] | None, Query()] = None,
    match: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[dict[str, Any]]:
    """Deliveries (supplier reports' lines included), latest first; read only."""
    # Supplier-report lines and pending matches are brought up to date by `oxy coordination
    # sync` (api.coordination.service), never by a read.
    rows = await dlv.fetch_deliveries(conn, me, states=state, match=match, limit=limit)
    return [_iso(dlv.render(d, locale)) for d in rows]


DELIVERY_COLUMNS = [
    ("id", "Delivery"),
    ("request_id", "Request"),
    ("supplier_report_id", "Supplier report"),
    ("source_name", "Source"),
    ("facility_code", "Facility code"),
    ("facility_name", "Facility"),
    ("form", "Form"),
    ("amount_kg", "Amount (kg LOX)"),
    ("cylinders", "Cylinders"),
    ("state", "State"),
    ("dispatched_at", "Dispatched (UTC)"),
    ("delivered_at", "Delivered (UTC)"),
    ("confirmed_at", "Confirmed (UTC)"),
    ("match_state", "Telemetry match"),
    ("matched_kg", "Seen by sensors (kg)"),
]


@router.get(
    "/coordination/deliveries.{kind}",
    dependencies=[policy(roles=PARTIES, scope=Scope.NATIONAL)],
    summary="Export the deliveries in the caller's scope (csv or xlsx)",
    response_class=Response,
    responses=FILE_RESPONSES,
)
async def export_deliveries(
    kind: ExportKind, conn: DbDep, me: PrincipalDep, export: ExportDep
) -> Response:
    """CSV or XLSX of the deliveries list."""
    rows = await dlv.fetch_deliveries(conn, me, limit=5000)
    return export(kind, "deliveries", DELIVERY_COLUMNS, [_iso(r) for r in rows])


@router.post(
    "/coordination/deliveries/{delivery_id}/advance",
    dependencies=[policy(roles=SOURCES, scope=Scope.NATIONAL)],
    summary="The source moves a delivery on: in transit, then delivered",
    response_model=DeliveryPublic,
)
async def advance_delivery(
    *,
    delivery_id: Id,
    body: dlv.AdvanceIn,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    locale: LocaleDep,
) -> dict[str, Any]:
    """One step forward; on delivered the refill match runs."""
    d = await dlv.advance(conn, me, delivery_id, body, cfg=cfg, now=now)
    return _iso(dlv.render(d, locale))


@router.post(
    "/coordination/deliveries/{delivery_id}/confirm",
    dependencies=[policy(roles=RECIPIENTS, scope=Scope.NATIONAL)],
    summary="The recipient facility confirms receipt",
    response_model=DeliveryPublic,
)
async def confirm_delivery(
    *,
    delivery_id: Id,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    locale: LocaleDep,
    body: dlv.ConfirmIn | None = None,
) -> dict[str, Any]:
    """Confirm (optionally with the amount counted); the refill match runs."""
    d = await dlv.confirm(conn, me, delivery_id, body or dlv.ConfirmIn(), cfg=cfg, now=now)
    return _iso(dlv.render(d, locale))


# ---------------------------------------------------------------------------- suggestions


@router.get(
    "/coordination/suggestions",
    response_model=SuggestionPublic,
    response_model_exclude_unset=True,
    dependencies=[policy(roles=COORDINATORS, scope=Scope.NATIONAL)],
    summary="Suggested shipments for the caller's scope, explained (a proposal: writes nothing)",
)
async def suggestions(
    *,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    locale: LocaleDep,
    province: Annotated[str | None, Query(max_length=8, description="BYT: one province")] = None,
    down: Annotated[
        list[int] | None, Query(description="what-if: supplier ids out of service")
    ] = None,
    surge: Annotated[
        list[str] | None, Query(description="what-if: province:factor, e.g. 79:1.5")
    ] = None,
    target_days: Annotated[float, Query(gt=0, le=30)] = 3.0,
    horizon_days: Annotated[float, Query(gt=0, le=14)] = 1.0,
) -> dict[str, Any]:
    """Runs the allocation LP on live figures; assign a shipment to make it real."""
    params = SuggestParams(
        province=province if me.role != Role.SYT else None,
        suppliers_down=tuple(down or ()),
        surge=parse_surge(surge or []),
        target_days=target_days,
        horizon_days=horizon_days,
    )
    out = await suggest(conn, me, params, cfg=cfg, now=now, locale=locale)
    result: dict[str, Any] = _jsonable(out)
    return result


@router.get(
    "/coordination/map",
    response_model=CoordinationMapPublic,
    response_model_exclude_unset=True,
    dependencies=[policy(roles=COORDINATORS, scope=Scope.NATIONAL)],
    summary="Coordination map: open requests, flows in flight and (optionally) suggested flows",
)
async def coordination_map(
    *,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    locale: LocaleDep,
    suggested: bool = False,
) -> dict[str, Any]:
    """Everything the map draws, in the caller's scope; suggested flows are proposals only."""
    out: dict[str, Any] = {}
    if suggested:
        # First, while the connection is idle, so that it runs in its read-only transaction.
        plan = await suggest(conn, me, SuggestParams(), cfg=cfg, now=now, locale=locale)
        out["suggested_flows"] = plan["shipments"]
        out["note"] = plan["note"]
    out.update(await map_data(conn, me))
    result: dict[str, Any] = _jsonable(out)
    return result


def _jsonable(v: Any) -> Any:
    """Dates and infinities made JSON-safe (an unbounded tank capacity is null)."""
    import math
    from datetime import date

    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, datetime | date):
        return v.isoformat()
    return v
