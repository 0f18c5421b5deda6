"""Authentication: argon2 passwords, server-side sessions, bearer tokens, login throttling.

Secrets never reach the database in clear: passwords are argon2id hashes; session cookies and
API tokens are 256-bit random values of which only the SHA-256 digest is stored, so a leaked
table cannot be replayed. Every lookup joins `users` and requires `is_active`, so disabling a
user stops its sessions and tokens on the very next request.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import math
import os
import secrets
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import nacl.pwhash.argon2id as sodium_argon2id
from argon2 import Parameters, PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from nacl.exceptions import InvalidkeyError
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from api.scope import Principal, Role, resolve_scope

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

SESSION_COOKIE = "oxy_session"
TOKEN_PREFIX = "oxy_"  # noqa: S105 - a marker, not a secret
SESSION_LIFETIME = timedelta(hours=12)
SESSION_IDLE = timedelta(hours=4)

# Throttle: after MAX_FAILURES failed logins within FAILURE_WINDOW for the same account (or
# client address), the key is locked; each further failure doubles the lock, up to MAX_LOCK.
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
BASE_LOCK = timedelta(seconds=30)
MAX_LOCK = timedelta(minutes=30)
IP_FACTOR = 4  # an address may fail for several accounts before it is locked itself


def _timed(fn: Callable[..., _T], *args: Any) -> tuple[_T, float]:
    """fn(*args) and the seconds it took."""
    t0 = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - t0


# argon2id at one of OWASP's equivalent minimum configurations (m=46 MiB t=1, 19 MiB t=2,
# 12 MiB t=3, 9 MiB t=4, 7 MiB t=5; all p=1): measured here the 7 MiB, t=5 one is the cheapest
# to verify with either implementation below (46 MiB costs ~3x; the CPU grows with m x t and,
# for libsodium, with the pages it maps), and it keeps each check's memory small. argon2-cffi's
# defaults (RFC 9106 low-memory: 64 MiB, t=3, p=4) cost ~160 ms wall / 4 lanes. Hashes stored
# with other parameters are re-hashed at the owner's next good login (`needs_rehash`). The
# trade-off is in docs/security.md ("Password hashing cost"); bench/argon2_params.py measures
# the five, bench/login.py a burst.
PASSWORD_PARAMETERS = Parameters(
    type=Type.ID,
    version=19,
    salt_len=16,  # libsodium's crypto_pwhash_SALTBYTES: its hashes parse to these parameters
    hash_len=32,  # libsodium's crypto_pwhash_STRBYTES string holds a 32-byte hash
    time_cost=5,
    memory_cost=7 * 1024,
    parallelism=1,
)
# The check itself is libsodium's (PyNaCl): its AVX2 / AVX-512 kernels, chosen at run time, take
# a third less CPU per check than argon2-cffi's bundled library, whose PyPI wheels are built
# with the SSE2 kernel only (m=7 MiB t=5: 11.0 against 16.5 ms, 1.5x; two checks at once 11.3
# against 17.8 ms, 1.6x; bench/argon2_params.py, docs/security.md). Both read and write the same
# PHC string ($argon2id$v=19$m=7168,t=5,p=1$salt$hash) and each verifies the other's hashes, so
# every hash stored so far verifies as it is. argon2-cffi stays for parsing the parameters
# (`needs_rehash`) and for any stored hash libsodium does not take (not argon2id version 19, or
# longer than its 127 characters; this platform never stored one).
_SODIUM_PREFIX = "$argon2id$v=19$"
_SODIUM_MAX_LEN = 127
_SODIUM_OPSLIMIT = PASSWORD_PARAMETERS.time_cost
_SODIUM_MEMLIMIT = PASSWORD_PARAMETERS.memory_cost * 1024  # bytes; the PHC string says KiB
_hasher = PasswordHasher.from_parameters(PASSWORD_PARAMETERS)


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (blocking; use hash_password_async on the event loop)."""
    encoded = sodium_argon2id.str(
        password.encode(), opslimit=_SODIUM_OPSLIMIT, memlimit=_SODIUM_MEMLIMIT
    )
    return encoded.decode("ascii")


def _by_libsodium(stored_hash: str) -> bool:
    return stored_hash.startswith(_SODIUM_PREFIX) and len(stored_hash) <= _SODIUM_MAX_LEN


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether `password` matches `stored_hash` (False on any malformed hash); blocking."""
    if _by_libsodium(stored_hash):
        try:
            return sodium_argon2id.verify(stored_hash.encode("ascii"), password.encode())
        except (InvalidkeyError, UnicodeEncodeError):  # a mismatch or a malformed hash
            return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeEncodeError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether `stored_hash` was made with other parameters than PASSWORD_PARAMETERS."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except (InvalidHashError, ValueError):
        return False


# Verifying against a dummy hash for unknown users keeps timing equal for known and unknown names.
_DUMMY_HASH, _DUMMY_COST_S = _timed(hash_password, secrets.token_urlsafe(16))

# argon2 is deliberately slow and memory-hungry: it runs in a small thread pool (PyNaCl and
# argon2-cffi call C through cffi, which releases the GIL), never on the event loop. Admission
# is by time, not by count: a check is accepted only if the checks already admitted can be
# worked off by the pool within HASH_WAIT_BUDGET_S at the measured cost of one check (a moving
# average of recent checks, so a loaded machine admits fewer); beyond that the caller is refused
# at once (503 + Retry-After) instead of queueing for tens of seconds. The workers themselves
# are always used.
HASH_WORKERS = max(1, min(4, os.cpu_count() or 1))
# The budget: a refused caller comes back after Retry-After, in whole seconds, so refusing a
# check that would answer within a second only makes that login slower. Measured with 50
# concurrent logins on the 2-core bench machine (bench/login.py --rounds 5, quiet): 450 ms
# refused 45 of 250 (every one of them in only after 1.2 s: p95 1,202 ms until in); 900 ms
# refused none in the retry bursts (p95 624 ms, the last in after 690 ms; both with argon2-cffi's
# checks). The queue stays bounded: beyond a second's worth of checks (2 / cost on two cores:
# about 100 at once at argon2-cffi's 20 ms in a burst, 150 at libsodium's 13 ms) the rest are
# told when to come back. issue 19's 500 ms is the target for the p95, not a reason to refuse.
HASH_WAIT_BUDGET_S = int(os.environ.get("OXY_HASH_WAIT_BUDGET_MS", "1000")) / 1000
HASH_NICE = 10  # hashing threads yield the CPU to the event loop (and to /health)


def _lower_priority() -> None:
    """Lower this worker thread's CPU priority (Linux: per thread; libsodium's checks run in it,
    all lanes of an older p>1 hash too, and argon2-cffi's lane threads, for a hash libsodium does
    not take, inherit it), so a burst of logins does not starve the event loop's thread."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux / not allowed: still works
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICE)


_hash_pool = ThreadPoolExecutor(
    max_workers=HASH_WORKERS, thread_name_prefix="argon2", initializer=_lower_priority
)


class HashingBusy(Exception):
    """Too many password checks are waiting; the caller should answer 503 with Retry-After."""

    def __init__(self, retry_after_s: int = 1) -> None:
        super().__init__(f"password hashing busy; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class _HashAdmission:
    """Checks admitted and not finished, and the moving average of one check's duration. Shared
    by every event loop of the process (the lock makes it thread-safe).

    A refused caller is given a turn in a virtual queue behind the admitted checks and the
    callers refused before it (`Retry-After`), so a refused burst comes back spread over the
    time the pool needs for it instead of all in the same second (capped at MAX_RETRY_S)."""

    MAX_RETRY_S = 30

    def __init__(self, first_cost_s: float) -> None:
        self.lock = threading.Lock()
        self.pending = 0
        self.cost_s = first_cost_s
        self.next_turn = 0.0  # monotonic time of the last turn handed out to a refused caller

    def _refuse_if_full(self) -> None:
        wait = (self.pending // HASH_WORKERS) * self.cost_s  # queued ahead of this check
        if wait > HASH_WAIT_BUDGET_S:
            now = time.monotonic()
            turn = max(now + wait, self.next_turn) + self.cost_s / HASH_WORKERS
            self.next_turn = min(turn, now + self.MAX_RETRY_S)
            raise HashingBusy(max(1, min(self.MAX_RETRY_S, math.ceil(turn - now))))

    def check(self) -> None:
        """Refuse (HashingBusy) if a check would not be admitted now; nothing is taken."""
        with self.lock:
            self._refuse_if_full()

    def admit(self) -> None:
        with self.lock:
            self._refuse_if_full()
            self.pending += 1

    def done(self, took_s: float | None) -> None:
        with self.lock:
            self.pending -= 1
            if took_s is not None:
                self.cost_s = 0.7 * self.cost_s + 0.3 * took_s


_admission = _HashAdmission(_DUMMY_COST_S)  # first estimate: the dummy hash made at import


async def _in_pool(fn: Callable[..., _T], *args: Any) -> tuple[_T, float]:
    """fn(*args) in the hashing pool, and the seconds it took there (admission is the caller's)."""
    return await asyncio.get_running_loop().run_in_executor(_hash_pool, _timed, fn, *args)


async def _in_hash_pool(fn: Callable[..., _T], *args: Any) -> _T:
    _admission.admit()
    took: float | None = None
    try:
        result, took = await _in_pool(fn, *args)
        return result
    finally:
        _admission.done(took)


async def hash_password_async(password: str) -> str:
    """hash_password in the bounded hashing pool."""
    return await _in_hash_pool(hash_password, password)


async def verify_password_async(stored_hash: str, password: str) -> bool:
    """verify_password in the bounded hashing pool."""
    return await _in_hash_pool(verify_password, stored_hash, password)


def check_password_strength(password: str) -> str | None:
    """A message id saying why `password` is too weak, or None."""
    if len(password) < 10:
        return "Password must be at least 10 characters."
    if password.lower() == password.upper() and password.isdigit():
        return "Password must not be only digits."
    return None


def new_secret() -> str:
    """A 256-bit URL-safe random token."""
    return secrets.token_urlsafe(32)


def digest(token: str) -> bytes:
    """The stored form of a session or API token."""
    return hashlib.sha256(token.encode()).digest()


def csrf_for_session(session_token: str) -> str:
    """The CSRF token bound to a session: derivable only by whoever holds the session cookie."""
    raw = hashlib.sha256(b"oxy-csrf\x00" + session_token.encode()).digest()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --------------------------------------------------------------------------------------------
# Principals


# The user columns a principal is built from, composed into each lookup (psycopg.sql).
_USER_COLS = sql.SQL(", ").join(
    sql.Identifier("u", name)
    for name in (
        "id",
        "username",
        "display_name",
        "role",
        "org_id",
        "national",
        "locale",
        "must_change_password",
    )
)

_SESSION_LOOKUP = sql.SQL("""
SELECT {user}, s.last_seen
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.token_hash = %(h)s AND s.revoked_at IS NULL AND s.expires_at > now()
  AND s.last_seen > now() - %(idle)s AND u.is_active
""").format(user=_USER_COLS)
_SESSION_TOUCH = """
UPDATE sessions SET last_seen = now()
WHERE token_hash = %(h)s AND last_seen < now() - interval '1 minute'
"""
_TOKEN_LOOKUP = sql.SQL("""
SELECT {user}, t.id AS token_id
FROM api_tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = %(h)s AND t.revoked_at IS NULL
  AND (t.expires_at IS NULL OR t.expires_at > now()) AND u.is_active
""").format(user=_USER_COLS)
_BEARER_SEEN = """
UPDATE api_tokens SET last_used_at = now()
WHERE id = %(id)s AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
"""


async def _principal(conn: AsyncConnection[Any], row: dict[str, Any], via_token: bool) -> Principal:
    role = Role(row["role"])
    facility_ids, parent_ids = await resolve_scope(
        conn, user_id=row["id"], role=role, org_id=row["org_id"], national=row["national"]
    )
    return Principal(
        user_id=int(row["id"]),
        username=row["username"],
        role=role,
        org_id=row["org_id"],
        facility_ids=facility_ids,
        display_name=row["display_name"],
        locale=row["locale"],
        parent_ids=parent_ids,
        must_change_password=bool(row["must_change_password"]),
        via_token=via_token,
    )


async def principal_from_session(conn: AsyncConnection[Any], token: str) -> Principal | None:
    """The principal of a live session cookie, or None."""
    h = digest(token)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_SESSION_LOOKUP, {"h": h, "idle": SESSION_IDLE})
        row = await cur.fetchone()
        if row is None:
            return None
        await cur.execute(_SESSION_TOUCH, {"h": h})
    return await _principal(conn, row, via_token=False)


async def principal_from_token(conn: AsyncConnection[Any], token: str) -> Principal | None:
    """The principal of a live bearer token, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_TOKEN_LOOKUP, {"h": digest(token)})
        row = await cur.fetchone()
        if row is None:
            return None
        await cur.execute(_BEARER_SEEN, {"id": row["token_id"]})
    return await _principal(conn, row, via_token=True)


# --------------------------------------------------------------------------------------------
# Sessions and tokens


async def create_session(
    conn: AsyncConnection[Any], user_id: int, user_agent: str | None, ip: str | None
) -> str:
    """Start a session for `user_id`; returns the cookie value."""
    # Housekeeping on the user's own rows keeps the table small without a scheduler.
    await conn.execute(
        "DELETE FROM sessions WHERE user_id = %(uid)s AND (expires_at < now() - interval '1 day' "
        "OR revoked_at < now() - interval '1 day')",
        {"uid": user_id},
    )
    token = new_secret()
    await conn.execute(
        "INSERT INTO sessions (token_hash, user_id, expires_at, user_agent, ip) "
        "VALUES (%(h)s, %(uid)s, now() + %(life)s, %(ua)s, %(ip)s)",
        {
            "h": digest(token),
            "uid": user_id,
            "life": SESSION_LIFETIME,
            "ua": (user_agent or "")[:300],
            "ip": ip,
        },
    )
    return token


async def end_session(conn: AsyncConnection[Any], token: str) -> None:
    """Revoke one session (logout)."""
    await conn.execute(
        "UPDATE sessions SET revoked_at = now() WHERE token_hash = %(h)s AND revoked_at IS NULL",
        {"h": digest(token)},
    )


async def revoke_user_sessions(conn: AsyncConnection[Any], user_id: int) -> None:
    """Revoke every session of a user (password reset, disable)."""
    await conn.execute(
        "UPDATE sessions SET revoked_at = now() WHERE user_id = %(uid)s AND revoked_at IS NULL",
        {"uid": user_id},
    )


async def revoke_user_credentials(
    conn: AsyncConnection[Any], user_id: int, keep_session: str | None = None
) -> None:
    """Revoke every session (but `keep_session`, the caller's own) and every API token of a user:
    after a password change or reset, nothing issued under the old password stays valid."""
    await conn.execute(
        "UPDATE sessions SET revoked_at = now() WHERE user_id = %(uid)s AND revoked_at IS NULL "
        "AND token_hash IS DISTINCT FROM %(keep)s",
        {"uid": user_id, "keep": digest(keep_session) if keep_session else None},
    )
    await conn.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE user_id = %(uid)s AND revoked_at IS NULL",
        {"uid": user_id},
    )


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly issued API token; `secret` is shown once and never stored."""

    id: int
    name: str
    secret: str
    prefix: str


async def issue_token(
    conn: AsyncConnection[Any], user_id: int, name: str, expires_at: datetime | None = None
) -> IssuedToken:
    """Create a bearer token for `user_id`."""
    secret = TOKEN_PREFIX + new_secret()
    prefix = secret[:10]
    cur = await conn.execute(
        "INSERT INTO api_tokens (user_id, name, token_hash, prefix, expires_at) "
        "VALUES (%(uid)s, %(name)s, %(h)s, %(prefix)s, %(exp)s) RETURNING id",
        {"uid": user_id, "name": name, "h": digest(secret), "prefix": prefix, "exp": expires_at},
    )
    row = await cur.fetchone()
    assert row is not None
    return IssuedToken(int(row[0]), name, secret, prefix)


# --------------------------------------------------------------------------------------------
# Login with throttling


@dataclass(frozen=True, slots=True)
class LoginResult:
    """Outcome of a login attempt."""

    user_id: int | None
    locked_for_s: int = 0  # > 0: refused because the account or address is locked
    session: str | None = None  # attempt_login: the new session's cookie value
    must_change_password: bool = False  # attempt_login: a temporary password, changed first

    @property
    def ok(self) -> bool:
        """True when the credentials were accepted."""
        return self.user_id is not None


class _Locked(Exception):
    def __init__(self, seconds: int) -> None:
        super().__init__(seconds)
        self.seconds = seconds


# One statement, in autocommit, for an attempt: it decides which keys apply (the account key only
# when the address has not logged in to the account lately), counts the attempt on every key
# *before* the password is verified, and locks a key in the same statement when it reaches its
# limit, so concurrent attempts cannot all pass a check made before any of them is recorded; a
# row lock is held only while the statement runs (never across a round trip: a burst on one
# account does not queue the connection pool behind it). Nothing is counted when a key is
# locked. It also returns the account's hash, so that a login holds a pooled connection for one
# round trip before the check and one after (a burst of 50 logins must not starve /health of
# connections).
_RESERVE = """
WITH known AS (
    SELECT %(ip)s::text IS NOT NULL AND EXISTS (
        SELECT 1 FROM login_addresses a JOIN users u ON u.id = a.user_id
        WHERE lower(u.username) = %(name)s AND a.ip = %(ip)s
          AND a.last_success > now() - %(remember)s) AS yes
), input AS (
    SELECT k AS key, l AS lim FROM unnest(%(keys)s::text[], %(limits)s::int[], %(unless)s::bool[])
        AS i (k, l, unless_known)
    WHERE NOT (unless_known AND (SELECT yes FROM known))
), locked AS (
    SELECT coalesce(max(extract(epoch FROM locked_until - now())), 0) AS left_s
    FROM login_throttle WHERE key IN (SELECT key FROM input) AND locked_until > now()
), up AS (
    INSERT INTO login_throttle AS t (key, failures, first_failure, lock_limit, locked_until)
    SELECT key, 1, now(), lim, CASE WHEN lim <= 1 THEN now() + %(base)s END FROM input
    WHERE (SELECT left_s FROM locked) = 0
    ORDER BY key
    ON CONFLICT (key) DO UPDATE SET
        failures = CASE WHEN t.first_failure < now() - %(window)s THEN 1
                        ELSE t.failures + 1 END,
        first_failure = CASE WHEN t.first_failure < now() - %(window)s THEN now()
                             ELSE t.first_failure END,
        lock_limit = EXCLUDED.lock_limit,
        locked_until = CASE
            WHEN (CASE WHEN t.first_failure < now() - %(window)s THEN 1 ELSE t.failures + 1 END)
                 >= EXCLUDED.lock_limit
            THEN now() + least(%(cap)s, %(base)s * power(2, least(
                (CASE WHEN t.first_failure < now() - %(window)s THEN 1 ELSE t.failures + 1 END)
                - EXCLUDED.lock_limit, 10)))
            ELSE t.locked_until END
    WHERE t.locked_until IS NULL OR t.locked_until <= now()
    RETURNING t.key, t.failures, t.lock_limit
), account AS (
    SELECT id, password_hash, is_active FROM users WHERE lower(username) = %(name)s
)
SELECT (SELECT left_s FROM locked), (SELECT count(*) FROM up), (SELECT count(*) FROM input),
       coalesce((SELECT array_agg(key) FROM up WHERE failures = lock_limit), '{}'),
       coalesce((SELECT array_agg(key ORDER BY key) FROM input), '{}'),
       (SELECT id FROM account), (SELECT password_hash FROM account),
       (SELECT is_active FROM account)
"""
# A successful login was not a guess: it gives its count back (and the lock it may have set);
# the pair key (account, address) is cleared (`clear_pair`). Also a check refused as busy after
# it was counted (the queue filled up in between).
_GIVE_BACK_SQL = """
UPDATE login_throttle AS t SET failures = greatest(t.failures - 1, 0),
    locked_until = CASE WHEN t.failures - 1 < i.lim THEN NULL ELSE t.locked_until END
FROM unnest(%(keys)s::text[], %(limits)s::int[]) AS i (k, lim)
WHERE t.key = i.k AND NOT (%(clear_pair)s AND t.key LIKE 'user-ip:%%')
"""
_GIVE_BACK = sql.SQL(_GIVE_BACK_SQL)
# After a good login, in one statement: store today's hash if the stored one was made with older
# parameters (unless the password was changed meanwhile), give the attempt back, and remember
# the address as one the owner uses.
_GOOD_LOGIN_CTES = sql.SQL("""rehashed AS (
    UPDATE users SET password_hash = %(new)s
    WHERE id = %(id)s AND password_hash = %(old)s AND %(new)s::text IS NOT NULL
), pair AS (
    DELETE FROM login_throttle WHERE key = ANY(%(keys)s::text[]) AND key LIKE 'user-ip:%%'
), given AS ({give_back}
), remembered AS (
    INSERT INTO login_addresses (user_id, ip)
    SELECT %(id)s, %(ip)s::text WHERE %(ip)s::text IS NOT NULL
    ON CONFLICT (user_id, ip) DO UPDATE SET last_success = now()
)""").format(give_back=sql.SQL(_GIVE_BACK_SQL.strip()))
_GOOD_LOGIN = sql.SQL("WITH {ctes}\nSELECT 1\n").format(ctes=_GOOD_LOGIN_CTES)
# A good login at the login form, in the same statement: end the session the browser came with
# (a fresh id on every login: no fixation), sweep the user's long-dead sessions, start the new
# one, audit the login, and read whether the password must be changed first. One round trip
# where it was seven (and three pool checkouts): the event loop's CPU per login is what a burst
# of logins takes from /health.
_GOOD_LOGIN_SESSION = sql.SQL("""
WITH {ctes}, ended AS (
    UPDATE sessions SET revoked_at = now() WHERE token_hash = %(old_session)s AND revoked_at IS NULL
), swept AS (
    DELETE FROM sessions WHERE user_id = %(id)s AND (expires_at < now() - interval '1 day'
        OR revoked_at < now() - interval '1 day')
), started AS (
    INSERT INTO sessions (token_hash, user_id, expires_at, user_agent, ip)
    VALUES (%(session)s, %(id)s, now() + %(life)s, %(ua)s, %(ip)s)
), audited AS (
    SELECT audit_append(NULL, %(name)s, 'login', 'session', %(id)s::text, NULL, NULL, NULL) AS id
)
SELECT u.must_change_password, (SELECT count(*) FROM audited) FROM users u WHERE u.id = %(id)s
""").format(ctes=_GOOD_LOGIN_CTES)
_FORGET_OLD_FAILURES = """
DELETE FROM login_throttle
WHERE first_failure < now() - interval '1 day' AND (locked_until IS NULL OR locked_until < now())
"""
# Forgetting day-old failures is housekeeping: at most once a minute per process, not after
# every failed login (a burst of wrong passwords would pay one more checkout each).
SWEEP_EVERY_S = 60.0
_last_sweep = [float("-inf")]  # monotonic time of the last sweep in this process
KNOWN_ADDRESS_DAYS = timedelta(days=90)  # how long a successful login makes an address "known"
ACCOUNT_FACTOR = 10  # failures on one account from all unknown addresses before they are locked


def throttle_keys(name: str, ip: str | None, known_address: bool) -> list[tuple[str, int]]:
    """The throttle keys of one attempt and their limits, in lock order.

    * `user-ip:<name>|<ip>` — guesses at one account from one address;
    * `ip:<ip>` — guesses from one address at any account;
    * `user:<name>` — guesses at one account from every address that has not logged in to it
      in KNOWN_ADDRESS_DAYS (`login_addresses`; a distributed attack), so that an attacker
      cannot lock the owner out of the places she uses.
    """
    keys = [(f"user-ip:{name}|{ip or '-'}", MAX_FAILURES)]
    if ip:
        keys.append((f"ip:{ip}", MAX_FAILURES * IP_FACTOR))
    if not known_address:
        keys.append((f"user:{name}", MAX_FAILURES * ACCOUNT_FACTOR))
    return sorted(keys)


@dataclass(frozen=True, slots=True)
class _Reserved:
    """The keys an attempt was counted on, and the account's row (None: no such user)."""

    keys: list[tuple[str, int]]
    user_id: int | None
    stored_hash: str | None
    active: bool


async def _reserve(conn: AsyncConnection[Any], name: str, ip: str | None) -> _Reserved:
    """Count one attempt on every key that applies, or refuse it when a key is locked (raises
    _Locked); one statement in autocommit."""
    every = throttle_keys(name, ip, known_address=False)
    limits = dict(every)
    cur = await conn.execute(
        _RESERVE,
        {
            "name": name,
            "ip": ip,
            "remember": KNOWN_ADDRESS_DAYS,
            "keys": [k for k, _ in every],
            "limits": [lim for _, lim in every],
            "unless": [k.startswith("user:") for k, _ in every],
            "window": FAILURE_WINDOW,
            "base": BASE_LOCK,
            "cap": MAX_LOCK,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    left, counted, wanted = float(row[0] or 0), int(row[1]), int(row[2])
    for key in row[3] or []:
        logger.warning("login locked for %s after reaching its limit", key)
    if left > 0:
        raise _Locked(max(1, int(left + 0.999)))
    if counted < wanted:  # a concurrent attempt locked a key in between: refused too
        raise _Locked(int(BASE_LOCK.total_seconds()))
    keys = [(k, limits[k]) for k in row[4] or []]
    user_id = None if row[5] is None else int(row[5])
    return _Reserved(keys, user_id, None if row[6] is None else str(row[6]), bool(row[7]))


def _key_params(keys: list[tuple[str, int]]) -> dict[str, Any]:
    return {"keys": [k for k, _ in keys], "limits": [lim for _, lim in keys]}


@dataclass(frozen=True, slots=True)
class _NewSession:
    """What a login at the form starts on success: the session and its audit record."""

    user_agent: str | None
    old_session: str | None  # the cookie the browser came with, ended


# At most this many logins use a database connection at once (per event loop): a burst of 50
# waits here, in the process, instead of taking every connection of the pool, so /health and
# the rest of the API still find one at once (the statements are short; two cores cannot run
# more than a few of them at a time anyway).
LOGIN_DB_SLOTS = 4
_login_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _login_slot() -> asyncio.Semaphore:
    """The login slots of the running event loop."""
    loop = asyncio.get_running_loop()
    slots = _login_slots.get(loop)
    if slots is None:
        slots = _login_slots[loop] = asyncio.Semaphore(LOGIN_DB_SLOTS)
    return slots


@contextlib.asynccontextmanager
async def _autocommit(
    pool: AsyncConnectionPool[AsyncConnection[Any]],
) -> AsyncIterator[AsyncConnection[Any]]:
    """A pooled connection in autocommit (each statement its own transaction: no BEGIN, no
    COMMIT round trip)."""
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        try:
            yield conn
        finally:
            await conn.set_autocommit(False)


@contextlib.asynccontextmanager
async def _login_connection(
    pool: AsyncConnectionPool[AsyncConnection[Any]],
) -> AsyncIterator[AsyncConnection[Any]]:
    """`_autocommit` within the login slots of this event loop."""
    async with _login_slot(), _autocommit(pool) as conn:
        yield conn


# A pair (account, address) the database has just refused as locked is refused, without a
# statement, to the requests for that pair that were already waiting for a login slot when the
# refusal came (they would have met the same lock): a burst of guesses at one account from one
# address (the attack shape) costs a statement per login slot, not one per request. A request
# that arrives after the refusal goes to the database as ever (so a lock lifted meanwhile, by an
# administrator or by expiring, is seen at once), and only the very same pair is concerned.
LOCKED_MEMORY_S = 5.0  # how long a refusal is kept for the requests that waited for it
# Per pool, i.e. per database (an application, or a test's): {(name, ip): (refused at, lock end)}
_locked_pairs: weakref.WeakKeyDictionary[Any, dict[tuple[str, str | None], tuple[float, float]]] = (
    weakref.WeakKeyDictionary()
)


def _remembered_lock(pool: Any, name: str, ip: str | None, arrived: float) -> int:
    """Seconds left on a lock the database reported for this pair after this request
    `arrived` (monotonic), or 0."""
    refused = _locked_pairs.get(pool, {}).get((name, ip))
    now = time.monotonic()
    if refused is None or refused[0] < arrived or refused[1] <= now:
        return 0
    return max(1, math.ceil(refused[1] - now))


def _remember_lock(pool: Any, name: str, ip: str | None, seconds: int) -> None:
    now = time.monotonic()
    pairs = _locked_pairs.setdefault(pool, {})
    if len(pairs) > 10_000:  # a wide attack: drop what no waiting request can need
        for pair in [p for p, (at, _) in pairs.items() if at < now - LOCKED_MEMORY_S]:
            pairs.pop(pair, None)
    pairs[(name, ip)] = (now, now + seconds)


async def _throttled(
    pool: AsyncConnectionPool[AsyncConnection[Any]],
    username: str,
    password: str,
    ip: str | None,
    session: _NewSession | None,
) -> LoginResult:
    name = username.strip().lower()
    # A caller that would be told busy is told so first: no database work, nothing counted (a
    # refused burst costs the event loop and the pool only the answer).
    _admission.check()
    arrived = time.monotonic()
    async with _login_slot():
        # Checked once a slot is free: while it waited, the pair may have been locked.
        if left := _remembered_lock(pool, name, ip, arrived):
            return LoginResult(None, locked_for_s=left)
        async with _autocommit(pool) as conn:
            try:
                reserved = await _reserve(conn, name, ip)
            except _Locked as locked:
                _remember_lock(pool, name, ip, locked.seconds)
                return LoginResult(None, locked_for_s=locked.seconds)
    stored = reserved.stored_hash or _DUMMY_HASH
    try:
        _admission.admit()
    except HashingBusy:  # filled up meanwhile: no guess was checked, the attempt is given back
        async with _login_connection(pool) as conn:
            await conn.execute(_GIVE_BACK, {**_key_params(reserved.keys), "clear_pair": False})
        raise
    took: float | None = None
    try:
        verified, took = await _in_pool(verify_password, stored, password)
    finally:
        _admission.done(took)
    good = verified and reserved.user_id is not None and reserved.active
    if not good or reserved.user_id is None:
        now = time.monotonic()
        if now - _last_sweep[0] >= SWEEP_EVERY_S:
            _last_sweep[0] = now
            async with _login_connection(pool) as conn:
                await conn.execute(_FORGET_OLD_FAILURES)
        return LoginResult(None)
    rehashed: str | None = None
    if needs_rehash(stored):  # made with older parameters: store today's hash
        with contextlib.suppress(HashingBusy):  # busy: the next good login does it
            rehashed = await hash_password_async(password)
    params = {
        **_key_params(reserved.keys),
        "clear_pair": True,
        "new": rehashed,
        "old": stored,
        "id": reserved.user_id,
        "ip": ip[:100] if ip else None,
    }
    if session is None:
        async with _login_connection(pool) as conn:
            await conn.execute(_GOOD_LOGIN, params)
        return LoginResult(reserved.user_id)
    token = new_secret()
    async with _login_connection(pool) as conn:
        cur = await conn.execute(
            _GOOD_LOGIN_SESSION,
            {
                **params,
                "name": name,
                "session": digest(token),
                "old_session": digest(session.old_session) if session.old_session else None,
                "life": SESSION_LIFETIME,
                "ua": (session.user_agent or "")[:300],
            },
        )
        row = await cur.fetchone()
    return LoginResult(reserved.user_id, session=token, must_change_password=bool(row and row[0]))


async def throttled_verify(
    pool: AsyncConnectionPool[AsyncConnection[Any]],
    username: str,
    password: str,
    ip: str | None,
) -> LoginResult:
    """Check a user's password under the DB-backed throttle (the current-password check of a
    password change). A caller the hashing queue would refuse is refused first (HashingBusy:
    nothing read, nothing counted); then the attempt is counted atomically before the argon2
    check, which runs in the bounded hashing pool without holding a database connection; it
    takes a pooled connection for one statement before the check and one after."""
    return await _throttled(pool, username, password, ip, None)


async def attempt_login(
    pool: AsyncConnectionPool[AsyncConnection[Any]],
    username: str,
    password: str,
    ip: str | None,
    *,
    user_agent: str | None = None,
    old_session: str | None = None,
) -> LoginResult:
    """A login at the form: throttled_verify, and on success, in the one statement after the
    check, the old session (`old_session`, the browser's cookie) ended, a new one started
    (`LoginResult.session`, the cookie value) and the login audited."""
    return await _throttled(pool, username, password, ip, _NewSession(user_agent, old_session))
