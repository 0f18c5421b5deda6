"""What the accounts' JSON routes and pages share: their policies, the caller's API tokens, and
the accounts a delegating role (the Ministry, a department) manages, with the organisations it
issues accounts for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import HTTPException, status
from psycopg import AsyncConnection
from psycopg.rows import class_row

from api.audit import audit
from api.policy import Scope, policy
from api.scope import Principal, Role, scope_params
from api.users import list_users

SELF = [policy(scope=Scope.SELF)]
# What a session on a temporary password may still do: see itself and change the password.
TEMPORARY_OK = [policy(scope=Scope.SELF, temporary_password_ok=True)]
ADMIN = [policy(roles=[Role.ADMIN], scope=Scope.NATIONAL)]
ANYONE = [policy(scope=Scope.SELF)]

# --------------------------------------------------------------------------------------------
# Accounts down the chain: the Ministry issues and disables the accounts of the departments
# (SYT) and of the other ministries' health offices; a department those of its facilities.
# The role is fixed by who issues (least privilege: never an administrator), the organisation
# must be inside the issuer's scope, and an account outside it answers 404 as if absent.

DELEGATES = [policy(roles=[Role.BYT, Role.SYT], scope=Scope.NATIONAL)]
# The role each delegating role issues, and the organisation kinds it issues it for.
ISSUES: dict[Role, tuple[Role, frozenset[str]]] = {
    Role.BYT: (Role.SYT, frozenset({"syt", "ministry_office"})),
    Role.SYT: (Role.FACILITY, frozenset({"facility"})),
}


@dataclass(frozen=True, slots=True)
class Token:
    """One of the caller's API tokens, as listed (never its secret)."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Organisation:
    """An organisation an account may belong to (the issuing forms' choices)."""

    id: int
    code: str
    name: str
    kind: str


_TOKENS = """
SELECT id, name, prefix, created_at, last_used_at, expires_at, revoked_at
FROM api_tokens WHERE user_id = %(u)s ORDER BY id DESC
"""
_REVOKE = """
UPDATE api_tokens SET revoked_at = now()
WHERE id = %(id)s AND user_id = %(u)s AND revoked_at IS NULL
RETURNING id
"""
_ORGANISATIONS = "SELECT id, code, name, kind FROM organisations ORDER BY kind, code"
_DELEGATED_ORGS = """
SELECT o.id, o.code, o.name, o.kind FROM organisations o
WHERE o.kind = ANY(%(kinds)s)
  AND (%(parent)s::bigint IS NULL OR o.parent_id = %(parent)s)
  AND (%(scope_national)s OR o.kind <> 'facility' OR o.id = ANY(%(scope_facilities)s::bigint[]))
ORDER BY o.kind, o.code
"""


async def own_tokens(conn: AsyncConnection[Any], user_id: int) -> list[Token]:
    """The API tokens of `user_id`, newest first (revoked ones included)."""
    async with conn.cursor(row_factory=class_row(Token)) as cur:
        await cur.execute(_TOKENS, {"u": user_id})
        return await cur.fetchall()


async def revoke_token(conn: AsyncConnection[Any], me: Principal, token_id: int) -> None:
    """Revoke one of `me`'s tokens (404 when not one of theirs, or already revoked)."""
    cur = await conn.execute(_REVOKE, {"id": token_id, "u": me.user_id})
    if await cur.fetchone() is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    await audit(conn, me, "revoke", "api_token", token_id, org_id=me.org_id)


async def organisations(conn: AsyncConnection[Any]) -> list[Organisation]:
    """Every organisation, by kind then code (the administrators' issuing form)."""
    async with conn.cursor(row_factory=class_row(Organisation)) as cur:
        await cur.execute(_ORGANISATIONS)
        return await cur.fetchall()


def issues(me: Principal) -> tuple[Role, frozenset[str]]:
    """The role `me` issues accounts of, and the organisation kinds it issues them for."""
    return ISSUES[me.role]


async def delegated_orgs(conn: AsyncConnection[Any], me: Principal) -> list[Organisation]:
    """The organisations `me` may issue accounts for."""
    _, kinds = issues(me)
    async with conn.cursor(row_factory=class_row(Organisation)) as cur:
        await cur.execute(
            _DELEGATED_ORGS,
            {
                "kinds": sorted(kinds),
                "parent": me.org_id if me.role == Role.SYT else None,
                **scope_params(me),
            },
        )
        return await cur.fetchall()


async def delegated_users(conn: AsyncConnection[Any], me: Principal) -> list[dict[str, Any]]:
    """The accounts `me` manages (rows of api.users.list_users): the issued role, in the
    organisations `me` may issue for."""
    role, _ = issues(me)
    orgs = {o.id for o in await delegated_orgs(conn, me)}
    return [u for u in await list_users(conn) if u["role"] == role.value and u["org_id"] in orgs]


async def managed(conn: AsyncConnection[Any], me: Principal, user_id: int) -> dict[str, Any]:
    """The account `user_id` if `me` manages it; 404 as if absent otherwise."""
    for u in await delegated_users(conn, me):
        if u["id"] == user_id:
            return u
    raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
