"""The coordination on screen: requests, suggested allocations with their explanation,
assignments, deliveries — the same services, scope and audit as the JSON routes (routes.py).

SYT and BYT create and follow requests, see suggestions and assign sources; suppliers accept,
decline, dispatch and move deliveries on; facilities ask for oxygen, see what is coming and
confirm receipt. A refusal comes back as a message on the page it was sent from; an object
outside the caller's scope is a 404, as in the API."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TypeVar

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from psycopg.rows import class_row

from api import i18n
from api.deps import CfgDep, DbDep, LocaleDep, NowDep, PrincipalDep
from api.policy import Scope, policy
from api.scope import Principal, Role
from api.web import page_exports
from api.web.forms import parse_number
from api.web.templating import flash, render

from . import assignments as asg
from . import deliveries as dlv
from . import support
from .errors import CoordinationError
from .messages import Message
from .quantities import AmountUnit, Form
from .suggest import SuggestedFacility, SuggestedShipment, SuggestParams, suggest

router = APIRouter(include_in_schema=False)
T = TypeVar("T")

COORDINATORS = (Role.ADMIN, Role.BYT, Role.SYT)
REQUESTERS = (Role.ADMIN, Role.BYT, Role.SYT, Role.FACILITY)
SOURCES = (Role.ADMIN, Role.SUPPLIER, Role.FACILITY)
RECIPIENTS = (Role.ADMIN, Role.FACILITY)
OPEN_STATES = ["open", "partly_assigned", "assigned"]

_FACILITIES = """
SELECT o.id, o.code, o.name FROM organisations o
WHERE o.kind = 'facility' AND (%(scope_national)s OR o.id = ANY(%(scope_facilities)s::bigint[]))
ORDER BY o.code
"""
# Sources a coordinator may assign: suppliers (an SYT: those of the request's province).
_SOURCES = """
SELECT o.id, o.code, o.name, o.province_code FROM organisations o
WHERE o.kind = 'supplier' AND (%(province)s::text IS NULL OR o.province_code = %(province)s)
ORDER BY o.province_code, o.code
"""


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """The suggested allocation as one request's page shows it: its facility's part only."""

    note: Message
    shipments: list[SuggestedShipment]
    facility: SuggestedFacility | None


@dataclass(frozen=True, slots=True)
class Choice:
    """An organisation offered in a form's list (a facility to ask for, a source to assign)."""

    id: int
    code: str
    name: str
    province_code: str | None = None


async def _facilities(conn: DbDep, me: Principal) -> list[Choice]:
    """The facilities `me` may ask oxygen for."""
    params = {
        "scope_national": me.facility_ids is None,
        "scope_facilities": sorted(me.facility_ids or ()),
    }
    async with conn.cursor(row_factory=class_row(Choice)) as cur:
        await cur.execute(_FACILITIES, params)
        return await cur.fetchall()


async def _sources(conn: DbDep, province: str | None) -> list[Choice]:
    """The suppliers a coordinator may assign (in `province`, or all)."""
    async with conn.cursor(row_factory=class_row(Choice)) as cur:
        await cur.execute(_SOURCES, {"province": province})
        return await cur.fetchall()


def _back(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


async def _act(
    done: Awaitable[T], back: str, locale: str, ok: str
) -> tuple[RedirectResponse, T | None]:
    """Run a service call; a refusal becomes an error message on `back`, 404 stays a 404."""
    response = _back(back)
    try:
        result = await done
    except CoordinationError as exc:
        if exc.status == 404:
            raise HTTPException(404, "not found") from None
        flash(response, str(exc.as_dict(locale)["message"]), "error")
        return response, None
    flash(response, i18n.gettext(locale, ok), "success")
    return response, result


def _local_time(raw: str) -> datetime | None:
    """A `datetime-local` field (Vietnam time) as an aware datetime, or None."""
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    return value.replace(tzinfo=i18n.TIMEZONE) if value.tzinfo is None else value


# ------------------------------------------------------------------------------- requests


@router.get("/coordination", dependencies=[policy(roles=COORDINATORS, scope=Scope.NATIONAL)])
async def coordination_page(
    *, request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep, show: str = "open"
) -> Response:
    """Requests in the caller's scope (open first), the form to ask on a facility's behalf,
    the assignments and the deliveries in flight."""
    states = OPEN_STATES if show == "open" else None
    return render(
        request,
        "coordination/coord_list.html",
        {
            "requests": await support.fetch_requests(conn, me, states=states, limit=500),
            "show": show,
            "facilities": await _facilities(conn, me),
            "assignments": await asg.fetch_assignments(conn, me, limit=100),
            "deliveries": [
                dlv.render(d, locale)
                for d in await dlv.fetch_deliveries(
                    conn, me, states=["dispatched", "in_transit", "delivered"], limit=100
                )
            ],
            "forms": [f.value for f in Form],
            "units": [u.value for u in AmountUnit],
        },
        locale=locale,
        principal=me,
    )


@router.post(
    "/coordination/requests", dependencies=[policy(roles=REQUESTERS, scope=Scope.NATIONAL)]
)
async def create_request(
    *, request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep, cfg: CfgDep, now: NowDep
) -> Response:
    """Ask for oxygen for a facility in the caller's scope (a facility: for itself)."""
    form = await request.form()
    back = "/facility/coming" if me.role == Role.FACILITY else "/coordination"
    raw_facility = str(form.get("facility_id") or "")
    facility_id = me.org_id if me.role == Role.FACILITY else None
    if facility_id is None and raw_facility.isdigit():
        facility_id = int(raw_facility)
    g = i18n.translator(locale)
    problems = []
    if facility_id is None or not me.can_see_facility(facility_id):
        problems.append(g("Choose a facility."))
    amount = parse_number(str(form.get("amount") or ""), locale)
    if amount is None or not amount > 0:
        problems.append(g("The amount must be a number above zero."))
    needed_by = _local_time(str(form.get("needed_by") or ""))
    if needed_by is None:
        problems.append(g("Give the date and time the oxygen is needed by."))
    try:
        body = support.RequestIn(
            form=Form(str(form.get("form") or "liquid")),
            amount=support.AmountIn(value=amount or 1.0, unit=AmountUnit(str(form.get("unit")))),
            needed_by=needed_by or now,
            note=str(form.get("note") or "").strip() or None,
        )
    except ValueError:
        problems.append(g("Choose the form of oxygen and the unit of the amount."))
    if problems:
        response = _back(back)
        flash(response, " ".join(problems), "error")
        return response
    assert facility_id is not None
    response, created = await _act(
        support.create_request(conn, me, facility_id, body, cfg=cfg, now=now),
        back,
        locale,
        "Request sent.",
    )
    if created is not None and me.role != Role.FACILITY:
        response.headers["location"] = f"/coordination/requests/{created.id}"
    return response


@router.get(
    "/coordination/requests/{request_id}",
    dependencies=[policy(roles=REQUESTERS, scope=Scope.NATIONAL)],
)
async def request_page(
    *,
    request: Request,
    request_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
    suggested: bool = False,
) -> Response:
    """One request: its parts and deliveries; for coordinators the sources to assign and, on
    demand, the suggested allocation for its facility with the reasons."""
    try:
        r = await support.get_request(conn, me, request_id)
    except CoordinationError:
        raise HTTPException(404, "not found") from None
    parts = await asg.fetch_assignments(conn, me, request_id=request_id)
    deliveries = []
    for a in parts:
        if a.delivery_id is not None:
            deliveries += await dlv.fetch_deliveries(conn, me, delivery_id=a.delivery_id)
    coordinator = me.role in COORDINATORS
    plan: RequestPlan | None = None
    if coordinator and suggested:
        full = await suggest(conn, me, SuggestParams(), cfg=cfg, now=now, locale=locale)
        fid = r.facility_id
        plan = RequestPlan(
            note=full.note,
            shipments=[s for s in full.shipments if s.facility_id == fid],
            facility=next((f for f in full.facilities if f.facility_id == fid), None),
        )
    sources = (
        await _sources(conn, r.province_code if me.role == Role.SYT else None)
        if coordinator
        else []
    )
    return render(
        request,
        "coordination/coord_request.html",
        {
            "r": r,
            "parts": parts,
            "deliveries": [dlv.render(d, locale) for d in deliveries],
            "coordinator": coordinator,
            "sources": sources,
            "plan": plan,
            "gas": i18n.gas_unit(cfg.reference.temp_c, cfg.reference.pressure_kpa, locale),
        },
        locale=locale,
        principal=me,
    )


@router.post(
    "/coordination/requests/{request_id}/assign",
    dependencies=[policy(roles=COORDINATORS, scope=Scope.NATIONAL)],
)
async def assign(
    *,
    request: Request,
    request_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
) -> Response:
    """Give (part of) the request to a source; audited by the service."""
    form = await request.form()
    back = f"/coordination/requests/{request_id}"
    source = str(form.get("source_id") or "")
    kg = parse_number(str(form.get("amount_kg") or ""), locale)
    if not source.isdigit() or kg is None or not kg > 0:
        response = _back(back)
        msg = "Choose a source and an amount above zero."
        flash(response, i18n.gettext(locale, msg), "error")
        return response
    body = asg.AssignIn(
        parts=[
            asg.PartIn(source_id=int(source), amount=support.AmountIn(value=kg, unit=AmountUnit.KG))
        ],
        from_suggestion=form.get("from_suggestion") == "1",
    )
    response, _ = await _act(
        asg.assign(conn, me, request_id, body, cfg=cfg, now=now), back, locale, "Assigned."
    )
    return response


@router.post(
    "/coordination/requests/{request_id}/escalate",
    dependencies=[policy(roles=COORDINATORS, scope=Scope.NATIONAL)],
)
async def escalate(
    *,
    request: Request,
    request_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    now: NowDep,
) -> Response:
    """Hand the uncovered rest to the Ministry."""
    form = await request.form()
    body = support.EscalateIn(note=str(form.get("note") or "").strip()[:2000] or None)
    response, _ = await _act(
        support.escalate(conn, me, request_id, body, now),
        f"/coordination/requests/{request_id}",
        locale,
        "Escalated to the Ministry.",
    )
    return response


@router.post(
    "/coordination/requests/{request_id}/cancel",
    dependencies=[policy(roles=REQUESTERS, scope=Scope.NATIONAL)],
)
async def cancel(
    *, request_id: int, conn: DbDep, me: PrincipalDep, locale: LocaleDep, now: NowDep
) -> Response:
    """Withdraw the request."""
    back = (
        "/facility/coming" if me.role == Role.FACILITY else f"/coordination/requests/{request_id}"
    )
    response, _ = await _act(support.cancel(conn, me, request_id, now), back, locale, "Cancelled.")
    return response


@router.get(
    "/coordination/suggestions", dependencies=[policy(roles=COORDINATORS, scope=Scope.NATIONAL)]
)
async def suggestions_page(
    *,
    request: Request,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
) -> Response:
    """The suggested allocation for the caller's scope, each facility with its reasons;
    `?format=csv|xlsx` the facilities (or `&list=shipments` the shipments) as a file."""
    plan = await suggest(conn, me, SuggestParams(), cfg=cfg, now=now, locale=locale)
    if kind := page_exports.requested(request):
        if page_exports.requested_list(request, ("facilities", "shipments")) == "shipments":
            return page_exports.download(
                kind,
                "suggested-shipments",
                page_exports.SHIPMENT_COLUMNS,
                [asdict(s) for s in plan.shipments],
                locale=locale,
            )
        return page_exports.download(
            kind,
            "suggested-allocation",
            page_exports.SUGGESTION_COLUMNS,
            page_exports.suggestion_rows(plan),
            locale=locale,
        )
    return render(
        request, "coordination/coord_suggestions.html", {"plan": plan}, locale=locale, principal=me
    )


# ------------------------------------------------------------------ sources and recipients


@router.get(
    "/supplier/assignments", dependencies=[policy(roles=(Role.SUPPLIER,), scope=Scope.SELF)]
)
async def supplier_page(
    *, request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """What the supplier has been asked to ship, and its deliveries on the way."""
    return render(
        request,
        "coordination/coord_supplier.html",
        {
            "assignments": await asg.fetch_assignments(conn, me, source_id=me.org_id, limit=200),
            "deliveries": [
                dlv.render(d, locale)
                for d in await dlv.fetch_deliveries(conn, me, source_id=me.org_id, limit=200)
            ],
        },
        locale=locale,
        principal=me,
    )


def _source_back(me: Principal) -> str:
    return "/supplier/assignments" if me.role == Role.SUPPLIER else "/facility/coming"


@router.post(
    "/coordination/assignments/{assignment_id}/accept",
    dependencies=[policy(roles=SOURCES, scope=Scope.NATIONAL)],
)
async def accept(
    *, assignment_id: int, conn: DbDep, me: PrincipalDep, locale: LocaleDep, now: NowDep
) -> Response:
    """The source acknowledges and accepts the assignment."""
    response, _ = await _act(
        asg.respond(conn, me, assignment_id, accept=True, reason=None, now=now),
        _source_back(me),
        locale,
        "Accepted.",
    )
    return response


@router.post(
    "/coordination/assignments/{assignment_id}/decline",
    dependencies=[policy(roles=SOURCES, scope=Scope.NATIONAL)],
)
async def decline(
    *,
    request: Request,
    assignment_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    now: NowDep,
) -> Response:
    """The source declines, with a reason."""
    reason = str((await request.form()).get("reason") or "").strip()[:2000]
    response, _ = await _act(
        asg.respond(conn, me, assignment_id, accept=False, reason=reason, now=now),
        _source_back(me),
        locale,
        "Declined.",
    )
    return response


@router.post(
    "/coordination/assignments/{assignment_id}/dispatch",
    dependencies=[policy(roles=SOURCES, scope=Scope.NATIONAL)],
)
async def dispatch(
    *,
    assignment_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
) -> Response:
    """The source sends the assignment on its way: a delivery opens."""
    response, _ = await _act(
        dlv.dispatch(conn, me, assignment_id, dlv.DispatchIn(), cfg=cfg, now=now),
        _source_back(me),
        locale,
        "Dispatched.",
    )
    return response


@router.post(
    "/coordination/deliveries/{delivery_id}/advance",
    dependencies=[policy(roles=SOURCES, scope=Scope.NATIONAL)],
)
async def advance(
    *,
    request: Request,
    delivery_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
) -> Response:
    """The source moves the delivery on (in transit, delivered)."""
    raw = str((await request.form()).get("state") or "")
    back = _source_back(me)
    try:
        body = dlv.AdvanceIn(state=dlv.DeliveryState(raw))
    except ValueError:
        response = _back(back)
        flash(response, i18n.gettext(locale, "Choose the new state."), "error")
        return response
    response, _ = await _act(
        dlv.advance(conn, me, delivery_id, body, cfg=cfg, now=now), back, locale, "Saved."
    )
    return response


@router.get("/facility/coming", dependencies=[policy(roles=(Role.FACILITY,), scope=Scope.SELF)])
async def facility_page(
    *, request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """What is coming to the facility, its requests, and the form to ask for oxygen."""
    return render(
        request,
        "coordination/coord_facility.html",
        {
            "requests": await support.fetch_requests(conn, me, facility_id=me.org_id, limit=100),
            "deliveries": [
                dlv.render(d, locale)
                for d in await dlv.fetch_deliveries(conn, me, facility_id=me.org_id, limit=100)
            ],
            "lending": await asg.fetch_assignments(conn, me, source_id=me.org_id, limit=100),
            "forms": [f.value for f in Form],
            "units": [u.value for u in AmountUnit],
        },
        locale=locale,
        principal=me,
    )


@router.post(
    "/coordination/deliveries/{delivery_id}/confirm",
    dependencies=[policy(roles=RECIPIENTS, scope=Scope.NATIONAL)],
)
async def confirm(
    *,
    request: Request,
    delivery_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    cfg: CfgDep,
    now: NowDep,
) -> Response:
    """The facility confirms receipt, optionally with the amount counted (kg)."""
    raw = str((await request.form()).get("received_kg") or "").strip()
    back = "/facility/coming"
    body = dlv.ConfirmIn()
    if raw:
        kg = parse_number(raw, locale)
        if kg is None or not kg > 0:
            response = _back(back)
            flash(
                response, i18n.gettext(locale, "The amount must be a number above zero."), "error"
            )
            return response
        body = dlv.ConfirmIn(received=support.AmountIn(value=kg, unit=AmountUnit.KG))
    response, _ = await _act(
        dlv.confirm(conn, me, delivery_id, body, cfg=cfg, now=now),
        back,
        locale,
        "Receipt confirmed.",
    )
    return response
