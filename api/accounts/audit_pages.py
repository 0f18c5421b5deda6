"""The audit trail page: administrators see all; others the history of records they own (the
JSON is routes.py)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api.audit import visible_entries
from api.deps import DbDep, LocaleDep, PrincipalDep
from api.web import page_exports
from api.web.templating import render

from .service import ANYONE

router = APIRouter()


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
        "accounts/audit.html",
        {"entries": rows, "entity": entity or "", "entity_id": entity_id or ""},
        locale=locale,
        principal=me,
    )
