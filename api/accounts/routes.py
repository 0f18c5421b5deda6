"""The accounts' JSON API: who am I, my API tokens, the accounts administrators and delegating
roles manage, and the audit trail (the pages are in pages.py, users_pages.py, audit_pages.py)."""

from __future__ import annotations

from fastapi import APIRouter, Query
from starlette.responses import Response

from api.audit import audit, visible_entries
from api.auth import issue_token
from api.deps import DbDep, PrincipalDep
from api.users import list_users

from .public import AuditEntry, DelegatedUserOut, Me, TokenIn, TokenIssued, TokenOut, UserOut
from .service import (
    ADMIN,
    ANYONE,
    DELEGATES,
    SELF,
    TEMPORARY_OK,
    delegated_users,
    own_tokens,
    revoke_token,
)

router = APIRouter()


@router.get("/api/me", response_model=Me, dependencies=TEMPORARY_OK)
async def api_me(me: PrincipalDep) -> Me:
    """Who am I, with my scope."""
    return Me(
        user_id=me.user_id,
        username=me.username,
        display_name=me.display_name,
        role=me.role.value,
        org_id=me.org_id,
        national=me.is_national,
        facility_ids=None if me.facility_ids is None else sorted(me.facility_ids),
        locale=me.locale,
    )


@router.get("/api/tokens", response_model=list[TokenOut], dependencies=SELF)
async def api_tokens(conn: DbDep, me: PrincipalDep) -> list[TokenOut]:
    """My API tokens."""
    return [
        TokenOut.model_validate(t, from_attributes=True) for t in await own_tokens(conn, me.user_id)
    ]


@router.post("/api/tokens", response_model=TokenIssued, status_code=201, dependencies=SELF)
async def api_issue_token(body: TokenIn, conn: DbDep, me: PrincipalDep) -> TokenIssued:
    """Issue a bearer token for scripts and integrations (same role and scope as me)."""
    issued = await issue_token(conn, me.user_id, body.name.strip() or "token", body.expires_at)
    await audit(
        conn, me, "create", "api_token", issued.id, None, {"name": issued.name}, org_id=me.org_id
    )
    return TokenIssued(id=issued.id, name=issued.name, token=issued.secret)


@router.delete("/api/tokens/{token_id}", status_code=204, dependencies=SELF)
async def api_revoke_token(token_id: int, conn: DbDep, me: PrincipalDep) -> Response:
    """Revoke one of my tokens."""
    await revoke_token(conn, me, token_id)
    return Response(status_code=204)


@router.get("/api/admin/users", response_model=list[UserOut], dependencies=ADMIN)
async def api_users(conn: DbDep) -> list[UserOut]:
    """Every account."""
    return [UserOut(**u) for u in await list_users(conn)]


@router.get("/api/accounts", response_model=list[DelegatedUserOut], dependencies=DELEGATES)
async def api_accounts(conn: DbDep, me: PrincipalDep) -> list[DelegatedUserOut]:
    """The accounts the caller issues: SYT and ministry-office accounts for the Ministry, the
    department's facilities' accounts for an SYT."""
    return [DelegatedUserOut(**u) for u in await delegated_users(conn, me)]


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
