"""Deliveries (JSON): suppliers advance them; the receiving facility confirms."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.coordination.http import (
    PARTIES,
    RECIPIENTS,
    SOURCES,
    Id,
    iso,
    public,
)
from api.coordination.public import (
    DeliveryPublic,
)
from api.deps import CfgDep, DbDep, ExportDep, LocaleDep, NowDep, PrincipalDep
from api.errors import FILE_RESPONSES
from api.policy import Scope, policy
from api.reports.exports import ExportKind

from . import deliveries as dlv

router = APIRouter(prefix="/api", tags=["coordination"])


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
) -> list[DeliveryPublic]:
    """Deliveries (supplier reports' lines included), latest first; read only."""
    # Supplier-report lines and pending matches are brought up to date by `oxy coordination
    # sync` (api.coordination.service), never by a read.
    rows = await dlv.fetch_deliveries(conn, me, states=state, match=match, limit=limit)
    return [public(DeliveryPublic, dlv.render(d, locale)) for d in rows]


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
    return export(kind, "deliveries", DELIVERY_COLUMNS, [iso(asdict(r)) for r in rows])


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
) -> DeliveryPublic:
    """One step forward; on delivered the refill match runs."""
    d = await dlv.advance(conn, me, delivery_id, body, cfg=cfg, now=now)
    return public(DeliveryPublic, dlv.render(d, locale))


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
) -> DeliveryPublic:
    """Confirm (optionally with the amount counted); the refill match runs."""
    d = await dlv.confirm(conn, me, delivery_id, body or dlv.ConfirmIn(), cfg=cfg, now=now)
    return public(DeliveryPublic, dlv.render(d, locale))
