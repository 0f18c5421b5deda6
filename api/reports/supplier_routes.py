"""Suppliers' JSON routes: the daily production report and the deliveries, with their export.

Every route declares its policy (api.policy); refused input answers through the
handlers of api.refusals (422 field by field, 409 with why)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime

from fastapi import APIRouter
from fastapi.responses import Response

from api.accounting.config import AccountingConfig
from api.accounting.routes import not_found
from api.audit import audit
from api.deps import CfgDep, DbDep, ExportDep, NowDep, PrincipalDep
from api.errors import FILE_RESPONSES
from api.policy import Scope, policy
from api.reports.exports import ExportKind
from api.reports.public import (
    SupplierDeliveryPublic,
    SupplierReportPublic,
    SupplierReportSavedPublic,
    SupplierRevisionPublic,
)
from api.scope import NATIONAL_ROLES, Principal, Role

from . import exports, supplier

router = APIRouter(prefix="/api", tags=["reports"])


# --------------------------------------------------------------------------------------------
# Suppliers


@router.put(
    "/suppliers/{supplier_id}/reports/{day}",
    response_model=SupplierReportSavedPublic,
    dependencies=[policy(roles=(Role.SUPPLIER,), scope=Scope.SUPPLIER)],
    summary="Supplier daily report: production, capacity, LOX stock, cylinders, deliveries",
)
async def put_supplier_report(
    *,
    supplier_id: int,
    day: date,
    body: supplier.SupplierReportIn,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
) -> SupplierReportSavedPublic:
    """Store the supplier's report (a new revision)."""
    async with conn.transaction():
        out = await supplier.save(
            conn,
            supplier_id,
            day,
            body,
            author=me.username,
            cfg=cfg,
            now=now,
        )
        await audit(
            conn,
            me,
            "file",
            "supplier_report",
            out.id,
            out.before,
            body.model_dump(mode="json"),
            org_id=supplier_id,
        )
    return SupplierReportSavedPublic(revision=out.revision, id=out.id)


async def _supplier_view(
    conn: DbDep, me: Principal, supplier_id: int, day: date, *, cfg: AccountingConfig, now: datetime
) -> supplier.SupplierReportView:
    """The supplier's report of the day (404 when it has none); refills to national roles only."""
    out = await _supplier_view_or_none(conn, me, supplier_id, day, cfg=cfg, now=now)
    if out is None:
        raise not_found()
    return out


async def _supplier_view_or_none(
    conn: DbDep, me: Principal, supplier_id: int, day: date, *, cfg: AccountingConfig, now: datetime
) -> supplier.SupplierReportView | None:
    return await supplier.view(
        conn,
        supplier_id,
        day,
        cfg=cfg,
        now=now,
        show_facility_figures=me.role in NATIONAL_ROLES,
    )


@router.get(
    "/suppliers/{supplier_id}/reports/{day}",
    response_model=SupplierReportPublic,
    response_model_exclude_unset=True,
    dependencies=[policy(roles=(Role.SUPPLIER, Role.BYT, Role.ADMIN), scope=Scope.SUPPLIER)],
    summary="Supplier report with deliveries cross-checked against facilities' refills",
)
async def get_supplier_report(
    *, supplier_id: int, day: date, conn: DbDep, me: PrincipalDep, cfg: CfgDep, now: NowDep
) -> SupplierReportPublic:
    """The report; facility refill figures are shown to national roles only."""
    return supplier_report_public(
        await _supplier_view(conn, me, supplier_id, day, cfg=cfg, now=now)
    )


def supplier_report_public(v: supplier.SupplierReportView) -> SupplierReportPublic:
    """The report as its answer; a delivery's facility refill only when shown (else unset)."""
    return SupplierReportPublic(
        supplier_id=v.supplier_id,
        report_day=v.report_day,
        revision=v.revision,
        production_t=v.production_t,
        capacity_normal_tpd=v.capacity_normal_tpd,
        capacity_full_tpd=v.capacity_full_tpd,
        lox_stock_kg=v.lox_stock_kg,
        cylinders_filled=v.cylinders_filled,
        deliveries=[SupplierDeliveryPublic.model_validate(d.as_row()) for d in v.deliveries],
        updated_at=v.updated_at,
        updated_by=v.updated_by,
        revisions=[SupplierRevisionPublic.model_validate(asdict(r)) for r in v.revisions],
    )


@router.get(
    "/suppliers/{supplier_id}/reports/{day}/deliveries.{kind}",
    dependencies=[policy(roles=(Role.SUPPLIER, Role.BYT, Role.ADMIN), scope=Scope.SUPPLIER)],
    summary="Export a supplier's deliveries of a day with the cross-check (csv or xlsx)",
    response_class=Response,
    responses=FILE_RESPONSES,
)
async def export_deliveries(
    *,
    supplier_id: int,
    day: date,
    kind: ExportKind,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    export: ExportDep,
) -> Response:
    """CSV or XLSX of the deliveries; headings only for a day the supplier has not reported
    (the page links the file for every day)."""
    out = await _supplier_view_or_none(conn, me, supplier_id, day, cfg=cfg, now=now)
    if out is None:
        cur = await conn.execute(
            "SELECT 1 FROM suppliers WHERE org_id = %(id)s", {"id": supplier_id}
        )
        if await cur.fetchone() is None:
            raise not_found()
    return export(
        kind,
        f"deliveries-{supplier_id}-{day}",
        exports.delivery_columns(),
        [d.as_row() for d in out.deliveries] if out else [],
    )
