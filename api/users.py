"""Account administration shared by the admin pages and `oxy users ...` (one implementation).

Every change is audited in the same transaction; password hashes never enter the trail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from api.audit import audit
from api.auth import (
    check_password_strength,
    hash_password_async,
    revoke_user_credentials,
    revoke_user_sessions,
)
from api.scope import Principal, Role
from oxy import OxyError

logger = logging.getLogger(__name__)

# Which organisation kinds each role may belong to.
ORG_KINDS: dict[Role, frozenset[str]] = {
    Role.BYT: frozenset({"ministry"}),
    Role.SYT: frozenset({"syt", "ministry_office"}),
    Role.FACILITY: frozenset({"facility"}),
    Role.SUPPLIER: frozenset({"supplier"}),
}


class UserError(OxyError):
    """An account operation was refused; the message is an English message id."""

    def __init__(self, message: str, **params: str) -> None:
        # `message` may hold %(name)s placeholders so that the translated text can be filled in
        # after translation; str(exc) stays the filled-in English text (CLI, logs).
        super().__init__(message % params if params else message)
        self.message_id = message
        self.params = params

    def translated(self, gettext: Callable[[str], str]) -> str:
        """The message in the language of `gettext`, placeholders filled in."""
        text = gettext(self.message_id)
        return text % self.params if self.params else text


@dataclass(frozen=True, slots=True)
class NewUser:
    """What an administrator fills in to issue an account."""

    username: str
    display_name: str
    role: Role
    password: str
    org_code: str | None = None
    locale: str = "vi"
    national: bool = False
    facility_codes: tuple[str, ...] = ()


async def _org(conn: AsyncConnection[Any], code: str) -> tuple[int, str]:
    cur = await conn.execute("SELECT id, kind FROM organisations WHERE code = %(c)s", {"c": code})
    row = await cur.fetchone()
    if row is None:
        raise UserError("Unknown organisation code: %(code)s", code=code)
    return int(row[0]), str(row[1])


async def create_user(conn: AsyncConnection[Any], actor: Principal | str, new: NewUser) -> int:
    """Issue an account; returns the new user's id."""
    username = new.username.strip().lower()
    if not username or not new.display_name.strip():
        raise UserError("Username and display name are required.")
    weak = check_password_strength(new.password)
    if weak:
        raise UserError(weak)
    org_id: int | None = None
    if new.org_code:
        org_id, kind = await _org(conn, new.org_code)
        allowed = ORG_KINDS.get(new.role)
        if allowed is not None and kind not in allowed:
            raise UserError("The organisation does not match the role.")
    elif new.role in (Role.SYT, Role.FACILITY, Role.SUPPLIER):
        raise UserError("This role needs an organisation.")
    cur = await conn.execute("SELECT 1 FROM users WHERE lower(username) = %(u)s", {"u": username})
    if await cur.fetchone():
        raise UserError("This username is already taken.")
    cur = await conn.execute(
        "INSERT INTO users (username, display_name, role, org_id, national, locale, "
        "password_hash, must_change_password) VALUES (%(u)s, %(d)s, %(r)s, %(o)s, %(n)s, "
        "%(l)s, %(h)s, true) RETURNING id",
        {
            "u": username,
            "d": new.display_name.strip(),
            "r": new.role.value,
            "o": org_id,
            "n": new.national and new.role == Role.ENGINEER,
            "l": new.locale if new.locale in ("vi", "en") else "vi",
            "h": await hash_password_async(new.password),
        },
    )
    row = await cur.fetchone()
    assert row is not None
    user_id = int(row[0])
    facility_ids = []
    for code in new.facility_codes:
        fid, kind = await _org(conn, code)
        if kind != "facility":
            raise UserError("Not a facility: %(code)s", code=code)
        facility_ids.append(fid)
        await conn.execute(
            "INSERT INTO user_facilities (user_id, facility_id) VALUES (%(u)s, %(f)s) "
            "ON CONFLICT DO NOTHING",
            {"u": user_id, "f": fid},
        )
    await audit(
        conn,
        actor,
        "create",
        "user",
        user_id,
        None,
        {
            "username": username,
            "display_name": new.display_name,
            "role": new.role.value,
            "org_id": org_id,
            "national": new.national,
            "facility_ids": facility_ids,
        },
        org_id=org_id,
    )
    logger.info("account %s issued (role %s)", username, new.role.value)
    return user_id


async def find_user(conn: AsyncConnection[Any], username_or_id: str | int) -> dict[str, Any]:
    """One account by id or username (UserError if missing)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        if isinstance(username_or_id, int):
            await cur.execute(_USER_SELECT + " WHERE u.id = %(k)s", {"k": username_or_id})
        else:
            await cur.execute(
                _USER_SELECT + " WHERE lower(u.username) = %(k)s",
                {"k": username_or_id.strip().lower()},
            )
        row = await cur.fetchone()
    if row is None:
        raise UserError("No such account.")
    return dict(row)


_USER_SELECT = """
SELECT u.id, u.username, u.display_name, u.role, u.org_id, o.code AS org_code,
       o.name AS org_name, u.national, u.locale, u.is_active, u.must_change_password,
       u.created_at, u.disabled_at
FROM users u LEFT JOIN organisations o ON o.id = u.org_id
"""


async def list_users(conn: AsyncConnection[Any]) -> list[dict[str, Any]]:
    """Every account, newest first."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_USER_SELECT + " ORDER BY u.role, u.username")
        return [dict(r) for r in await cur.fetchall()]


async def set_active(
    conn: AsyncConnection[Any], actor: Principal | str, user_id: int, active: bool
) -> None:
    """Enable or disable an account; disabling revokes its sessions and tokens at once."""
    user = await find_user(conn, user_id)
    if isinstance(actor, Principal) and actor.user_id == user_id and not active:
        raise UserError("You cannot disable your own account.")
    await conn.execute(
        "UPDATE users SET is_active = %(a)s, "
        "disabled_at = CASE WHEN %(a)s THEN NULL ELSE now() END WHERE id = %(id)s",
        {"a": active, "id": user_id},
    )
    if not active:
        await revoke_user_sessions(conn, user_id)
        await conn.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE user_id = %(u)s AND revoked_at IS NULL",
            {"u": user_id},
        )
    await audit(
        conn,
        actor,
        "enable" if active else "disable",
        "user",
        user_id,
        {"is_active": user["is_active"]},
        {"is_active": active},
        org_id=user["org_id"],
    )
    logger.info("account %s %s", user["username"], "enabled" if active else "disabled")


async def set_engineer_scope(
    conn: AsyncConnection[Any],
    actor: Principal | str,
    user_id: int,
    *,
    national: bool,
    facility_codes: Sequence[str],
) -> None:
    """Replace an engineer's scope (national flag and assigned facilities); ends their sessions.

    Sessions are revoked so the person logs in again under the new scope. Bearer tokens are
    kept: scope is resolved from `users`/`user_facilities` on every request (api.auth), so a
    token acts with the new scope from its next request on.
    """
    # Lock the account row: two administrators editing at once must not interleave the
    # delete/insert of the facility rows.
    cur = await conn.execute("SELECT 1 FROM users WHERE id = %(id)s FOR UPDATE", {"id": user_id})
    if await cur.fetchone() is None:
        raise UserError("No such account.")
    user = await find_user(conn, user_id)
    if user["role"] != Role.ENGINEER.value:
        raise UserError("Only an engineer's scope can be changed.")
    facility_ids: list[int] = []
    for raw in facility_codes:
        code = raw.strip()
        if not code:
            continue
        fid, kind = await _org(conn, code)
        if kind != "facility":
            raise UserError("Not a facility: %(code)s", code=code)
        if fid not in facility_ids:
            facility_ids.append(fid)
    facility_ids.sort()
    cur = await conn.execute(
        "SELECT facility_id FROM user_facilities WHERE user_id = %(u)s ORDER BY facility_id",
        {"u": user_id},
    )
    before_ids = [int(r[0]) for r in await cur.fetchall()]
    await conn.execute("DELETE FROM user_facilities WHERE user_id = %(u)s", {"u": user_id})
    for fid in facility_ids:
        await conn.execute(
            "INSERT INTO user_facilities (user_id, facility_id) VALUES (%(u)s, %(f)s)",
            {"u": user_id, "f": fid},
        )
    await conn.execute(
        "UPDATE users SET national = %(n)s WHERE id = %(id)s", {"n": national, "id": user_id}
    )
    await revoke_user_sessions(conn, user_id)
    await audit(
        conn,
        actor,
        "set_scope",
        "user",
        user_id,
        {"national": bool(user["national"]), "facility_ids": before_ids},
        {"national": national, "facility_ids": facility_ids},
        org_id=user["org_id"],
    )
    logger.info(
        "engineer %s scope set (national %s, %d facilities)",
        user["username"],
        national,
        len(facility_ids),
    )


async def reset_password(
    conn: AsyncConnection[Any], actor: Principal | str, user_id: int, password: str
) -> None:
    """Set a new temporary password (must be changed at next login); ends all sessions and
    revokes all API tokens; lifts the login throttle of the account."""
    weak = check_password_strength(password)
    if weak:
        raise UserError(weak)
    user = await find_user(conn, user_id)
    await conn.execute(
        "UPDATE users SET password_hash = %(h)s, must_change_password = true, "
        "password_changed_at = now() WHERE id = %(id)s",
        {"h": await hash_password_async(password), "id": user_id},
    )
    await revoke_user_credentials(conn, user_id)
    name = str(user["username"]).lower()
    await conn.execute(
        "DELETE FROM login_throttle WHERE key = %(k)s OR starts_with(key, %(p)s)",
        {"k": f"user:{name}", "p": f"user-ip:{name}|"},
    )
    await audit(conn, actor, "reset_password", "user", user_id, org_id=user["org_id"])


async def change_own_password(
    conn: AsyncConnection[Any],
    principal: Principal,
    current: str,
    new: str,
    keep_session: str | None = None,
) -> None:
    """The logged-in user changes their password. The caller has already checked `current`
    under the login throttle (api.auth.throttled_verify). Every other session and every API
    token of the user is revoked; `keep_session` (the caller's own cookie) stays."""
    weak = check_password_strength(new)
    if weak:
        raise UserError(weak)
    if current == new:
        raise UserError("The new password must differ from the current one.")
    await conn.execute(
        "UPDATE users SET password_hash = %(h)s, must_change_password = false, "
        "password_changed_at = now() WHERE id = %(id)s",
        {"h": await hash_password_async(new), "id": principal.user_id},
    )
    await revoke_user_credentials(conn, principal.user_id, keep_session)
    await audit(
        conn, principal, "change_password", "user", principal.user_id, org_id=principal.org_id
    )


async def set_locale(conn: AsyncConnection[Any], principal: Principal, locale: str) -> None:
    """Store the user's preferred language."""
    await conn.execute(
        "UPDATE users SET locale = %(l)s WHERE id = %(id)s",
        {"l": locale, "id": principal.user_id},
    )
