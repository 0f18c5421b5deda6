"""Reading the audit trail: administrators see all; others the history of records they own."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.responses import Response

from api.audit import visible_entries
from api.deps import DbDep, LocaleDep, PrincipalDep
from api.policy import Scope, policy
from api.web import page_exports
from api.web.templating import render

router = APIRouter()
ANYONE = [policy(scope=Scope.SELF)]


class AuditEntry(BaseModel):
    """One audit record."""

    id: int
    at: datetime
    username: str
    role: str | None
    action: str
    entity: str
    entity_id: str | None
    org_id: int | None
    before: Any
    after: Any


@router.get("/api/audit", response_model=list[AuditEntry], dependencies=ANYONE)
async def api_audit(
    *,
    conn: DbDep,
    me: PrincipalDep,
    entity: str | None = Query(None, max_length=64),
    entity_id: str | None = Query(None, max_length=64),
    before_id: int | None = Query(None, ge=1, le=2**62),
    limit: int = Query(100, ge=1, le=500),
) -> list[AuditEntry]:
    """Audit records visible to me, newest first (page with before_id)."""
    rows = await visible_entries(
        conn, me, entity=entity, entity_id=entity_id, before_id=before_id, limit=limit
    )
    return [AuditEntry(**r) for r in rows]


@router.get("/audit", include_in_schema=False, dependencies=ANYONE)
async def audit_page(
    *,
    request: Request,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    entity: str | None = Query(None, max_length=64),
    entity_id: str | None = Query(None, max_length=64),
    before_id: int | None = Query(None, ge=1, le=2**62),
) -> Response:
    """The audit trail page."""
    rows = await visible_entries(
        conn, me, entity=entity or None, entity_id=entity_id or None, before_id=before_id
    )
    if kind := page_exports.requested(request):
        out = page_exports.audit_rows(rows, locale)
        return page_exports.download(kind, "audit", page_exports.AUDIT_COLUMNS, out, locale=locale)
    return render(
        request,
        "audit.html",
        {"entries": rows, "entity": entity or "", "entity_id": entity_id or ""},
        locale=locale,
        principal=me,
    )
