"""The audit trail: every write records who, when, what, and the before/after values.

`audit_log` is append-only in the database (trigger + privileges, sql/0011_audit.sql), and the
application's role appends only through `audit_append()` (sql/0085_unforgeable_audit.sql), which
stamps the time from the database clock and the name and role from the user's account. Call
`audit(...)` in the same transaction as the write it describes, so both commit or neither does.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from api.scope import Principal

_INSERT = """
SELECT audit_append(%(uid)s, %(username)s, %(action)s, %(entity)s, %(entity_id)s, %(org_id)s,
                    %(before)s, %(after)s)
"""

# Never written into the trail, whatever a caller passes.
_SECRET_KEYS = frozenset({"password", "password_hash", "token", "token_hash", "secret"})


def _default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def _clean(value: Any) -> Jsonb | None:
    if value is None:
        return None
    if isinstance(value, dict):
        value = {k: ("***" if k in _SECRET_KEYS else v) for k, v in value.items()}
    # Round-trip through json so dates, decimals and sets become plain JSON values.
    return Jsonb(json.loads(json.dumps(value, default=_default, ensure_ascii=False)))


def _params(  # noqa: PLR0917
    actor: Principal | str,
    action: str,
    entity: str,
    entity_id: object,
    before: Any,
    after: Any,
    org_id: int | None,
) -> dict[str, Any]:
    if isinstance(actor, Principal):
        uid: int | None = actor.user_id
        username, role = actor.username, actor.role.value
    else:  # the command line or a service acting on its own
        uid, username, role = None, actor, None
    return {
        "uid": uid,
        "username": username,
        "role": role,
        "action": action,
        "entity": entity,
        "entity_id": None if entity_id is None else str(entity_id),
        "org_id": org_id,
        "before": _clean(before),
        "after": _clean(after),
    }


async def audit(  # noqa: PLR0917 - the signature every package calls
    conn: AsyncConnection[Any],
    principal: Principal | str,
    action: str,
    entity: str,
    entity_id: object,
    before: Any = None,
    after: Any = None,
    *,
    org_id: int | None = None,
) -> int:
    """Append one audit record (in the caller's transaction); returns its id."""
    cur = await conn.execute(
        _INSERT, _params(principal, action, entity, entity_id, before, after, org_id)
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def audit_sync(  # noqa: PLR0917
    conn: psycopg.Connection[Any],
    principal: Principal | str,
    action: str,
    entity: str,
    entity_id: object,
    before: Any = None,
    after: Any = None,
    *,
    org_id: int | None = None,
) -> int:
    """`audit` for synchronous connections (CLI, workers)."""
    row = conn.execute(
        _INSERT, _params(principal, action, entity, entity_id, before, after, org_id)
    ).fetchone()
    assert row is not None
    return int(row[0])


_VISIBLE = """
SELECT a.id, a.at, a.username, a.role, a.action, a.entity, a.entity_id, a.org_id,
       a.before, a.after
FROM audit_log a
WHERE (%(national)s
       OR a.user_id = %(uid)s
       OR (%(all_orgs)s AND a.org_id IS NOT NULL)
       OR a.org_id = ANY(%(orgs)s::bigint[]))
  AND (%(entity)s::text IS NULL OR a.entity = %(entity)s)
  AND (%(entity_id)s::text IS NULL OR a.entity_id = %(entity_id)s)
  AND (%(before_id)s::bigint IS NULL OR a.id < %(before_id)s)
ORDER BY a.id DESC
LIMIT %(limit)s
"""


async def visible_entries(
    conn: AsyncConnection[Any],
    principal: Principal,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Audit records `principal` may read: all for administrators; otherwise its own actions
    and the records of the organisations in its scope (its org, its facilities)."""
    from psycopg.rows import dict_row

    national = principal.role.value == "admin"
    orgs: set[int] = set(principal.facility_ids or ())
    if principal.org_id is not None:
        orgs.add(principal.org_id)
    orgs |= set(principal.parent_ids or ())
    params = {
        "national": national,
        "all_orgs": principal.is_national,
        "uid": principal.user_id,
        "orgs": sorted(orgs),
        "entity": entity,
        "entity_id": entity_id,
        "before_id": before_id,
        "limit": max(1, min(limit, 500)),
    }
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_VISIBLE, params)
        return list(await cur.fetchall())
