"""Login cost (issue 19): argon2id at one of OWASP's equivalent minimum configurations (m=7 MiB,
t=5, p=1: the cheapest to verify here of the five), checked by libsodium (hashes made by
argon2-cffi, as stored before, verify as they are), hashes made
with older (costlier) parameters are re-hashed transparently at the next good login, and the
hashing queue admits only what it can verify within its wait budget — the rest is refused at
once (503 + Retry-After) instead of queueing for tens of seconds."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from argon2 import PasswordHasher, Type, extract_parameters
from fastapi.testclient import TestClient

from api import auth
from api.app import create_app
from api.auth import (
    PASSWORD_PARAMETERS,
    HashingBusy,
    hash_password,
    verify_password,
    verify_password_async,
)
from oxy.settings import Settings
from tests.api.conftest import PASSWORD, USERNAMES, World, csrf_of

LEGACY = PasswordHasher()  # argon2-cffi's defaults: 64 MiB, t=3, p=4 (what earlier versions stored)


# OWASP's password storage cheat sheet: equivalent minimum argon2id configurations (KiB, t), p=1.
OWASP_ARGON2ID = {(47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5)}


def test_new_hashes_use_an_owasp_minimum_configuration() -> None:
    params = extract_parameters(hash_password("x" * 12))
    assert (params.memory_cost, params.time_cost) in OWASP_ARGON2ID and params.parallelism == 1
    assert (params.memory_cost, params.time_cost) == (7168, 5)  # chosen by measurement
    assert params == PASSWORD_PARAMETERS


def test_a_hash_of_the_previous_minimum_is_rehashed() -> None:
    previous = PasswordHasher(memory_cost=19456, time_cost=2, parallelism=1)
    assert auth.needs_rehash(previous.hash("x" * 12))


# What the platform stored before libsodium made its hashes: argon2-cffi at today's parameters.
OLD_PATH = PasswordHasher.from_parameters(PASSWORD_PARAMETERS)
VI_PASSWORD = "Mật khẩu của tôi 2026"  # not ASCII: both encode it as UTF-8


class _NoArgon2Cffi:
    """Stands in for argon2-cffi's hasher where a check must not reach it."""

    def verify(self, stored_hash: str, password: str) -> bool:
        raise AssertionError(f"argon2-cffi asked to verify {stored_hash[:30]}")

    def check_needs_rehash(self, stored_hash: str) -> bool:
        return OLD_PATH.check_needs_rehash(stored_hash)


def test_a_hash_made_by_the_old_path_still_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashes stored by argon2-cffi verify with libsodium as they are, and are not re-hashed
    (same parameters); libsodium's hashes verify with argon2-cffi (no way back is closed)."""
    old = OLD_PATH.hash(VI_PASSWORD)
    new = hash_password(VI_PASSWORD)
    assert old.startswith("$argon2id$v=19$m=7168,t=5,p=1$")
    assert new.startswith("$argon2id$v=19$m=7168,t=5,p=1$") and new != old
    assert extract_parameters(new) == extract_parameters(old) == PASSWORD_PARAMETERS
    assert not auth.needs_rehash(old) and not auth.needs_rehash(new)
    assert OLD_PATH.verify(new, VI_PASSWORD)  # argon2-cffi reads libsodium's hash
    monkeypatch.setattr(auth, "_hasher", _NoArgon2Cffi())  # every check below is libsodium's
    assert verify_password(old, VI_PASSWORD) and verify_password(new, VI_PASSWORD)
    assert not verify_password(old, VI_PASSWORD + " ") and not verify_password(new, "mật khẩu")
    assert not verify_password(old[:-4] + "AAAA", VI_PASSWORD)  # a changed digest
    # argon2-cffi's defaults of earlier versions (64 MiB, t=3, p=4): libsodium takes p=4 too.
    legacy = LEGACY.hash(VI_PASSWORD)
    assert verify_password(legacy, VI_PASSWORD) and auth.needs_rehash(legacy)


def test_hashes_libsodium_does_not_take_are_verified_by_argon2_cffi() -> None:
    """Never stored by this platform, still verified rather than locking anyone out: argon2i, and
    an argon2id string longer than libsodium's 127 characters (a 64-byte salt); both re-hashed."""
    argon2i = PasswordHasher(memory_cost=7168, time_cost=5, parallelism=1, type=Type.I)
    long_salt = PasswordHasher(memory_cost=7168, time_cost=5, parallelism=1, salt_len=64)
    for hasher in (argon2i, long_salt):
        stored = hasher.hash(VI_PASSWORD)
        assert not auth._by_libsodium(stored)
        assert verify_password(stored, VI_PASSWORD)
        assert not verify_password(stored, "not the password")
        assert auth.needs_rehash(stored)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "$argon2id$v=19$m=7168,t=5,p=1$c2FsdA$",
        "$argon2id$v=19$m=7168,t=5,p=1$đ$đ",  # not ASCII
        "$argon2i$v=19$m=7168,t=5,p=1$đ$đ",  # not ASCII, not libsodium's
        "$argon2id$v=19$m=7168,t=0,p=1$YWFhYWFhYWFhYWFhYWFhYQ$YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE",
    ],
)
def test_a_malformed_hash_verifies_nothing(stored: str) -> None:
    assert verify_password(stored, "") is False
    assert verify_password(stored, "correct horse battery staple") is False


def _stored(url: str, username: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT password_hash FROM users WHERE username = %s", (username,))
        return str(row.fetchone()[0])  # type: ignore[index]


def _set_legacy(url: str, username: str, password: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE users SET password_hash = %s WHERE username = %s",
            (LEGACY.hash(password), username),
        )


def _login(settings: Settings, username: str, password: str) -> int:
    """The status of a form login from one address."""
    with TestClient(create_app(settings), client=("203.0.113.40", 40000)) as c:
        page = c.get("/login")
        data = {"username": username, "password": password, "csrf_token": csrf_of(page.text)}
        return c.post("/login", data=data, follow_redirects=False).status_code


def test_an_old_hash_is_rehashed_at_a_good_login(world: World, settings: Settings) -> None:
    _set_legacy(world.db_url, "byt1", PASSWORD)
    assert extract_parameters(_stored(world.db_url, "byt1")).memory_cost == 65536
    assert _login(settings, "byt1", "not the password") == 401
    assert extract_parameters(_stored(world.db_url, "byt1")).memory_cost == 65536  # untouched
    assert _login(settings, "byt1", PASSWORD) == 303
    stored = _stored(world.db_url, "byt1")
    assert extract_parameters(stored) == PASSWORD_PARAMETERS
    assert PasswordHasher().verify(stored, PASSWORD)  # the same password, cheaper hash
    # ... and the next login with the new hash works.
    assert _login(settings, "byt1", PASSWORD) == 303


def test_the_queue_refuses_what_it_cannot_verify_within_its_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = LEGACY.hash("y" * 12)  # a costly verification (~0.2-0.7 s here)
    monkeypatch.setattr(auth, "HASH_WAIT_BUDGET_S", 0.3)

    retry_after: list[int] = []

    async def one() -> tuple[str, float]:
        t0 = time.perf_counter()
        try:
            await verify_password_async(stored, "z" * 12)
            return "done", time.perf_counter() - t0
        except HashingBusy as busy:
            retry_after.append(busy.retry_after_s)
            return "busy", time.perf_counter() - t0

    async def burst() -> list[tuple[str, float]]:
        await verify_password_async(stored, "z" * 12)  # learn the cost of one verification
        return list(await asyncio.gather(*(one() for _ in range(40))))

    results = asyncio.run(burst())
    done = [t for what, t in results if what == "done"]
    busy = [t for what, t in results if what == "busy"]
    assert len(done) >= auth.HASH_WORKERS  # the workers are always used
    assert len(busy) >= 20  # 40 costly checks cannot all finish within 0.3 s on a few cores
    assert max(busy) < 0.05  # refused at once, not after queueing
    # Each refused caller is given its own turn (a virtual queue), so they do not all come back
    # in the same second: the later ones are told to wait longer.
    assert retry_after == sorted(retry_after) and retry_after[0] >= 1
    assert retry_after[-1] > retry_after[0]


def test_a_burst_beyond_the_budget_answers_503_at_once(
    world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six concurrent logins on costly (old) hashes with no wait budget: the workers take what
    they can, the others are refused at once with 503 + Retry-After (nothing waits in a queue)."""
    monkeypatch.setattr(auth, "HASH_WAIT_BUDGET_S", 0.0)
    names = list(USERNAMES.values())
    for name in names:
        _set_legacy(world.db_url, name, PASSWORD)
    with TestClient(create_app(settings), client=("203.0.113.41", 40000)) as c:
        token = csrf_of(c.get("/login").text)

        def login(name: str) -> tuple[int, str | None, float]:
            t0 = time.perf_counter()
            r = c.post(
                "/login",
                data={"username": name, "password": "a wrong guess", "csrf_token": token},
                follow_redirects=False,
            )
            return r.status_code, r.headers.get("retry-after"), time.perf_counter() - t0

        with ThreadPoolExecutor(len(names)) as pool:
            results = list(pool.map(login, names))
    codes = sorted(code for code, _, _ in results)
    assert set(codes) == {401, 503}, codes
    assert codes.count(401) >= 1
    busy = [(after, took) for code, after, took in results if code == 503]
    assert all(after is not None and int(after) >= 1 for after, _ in busy)
    assert max(took for _, took in busy) < min(t for c_, _, t in results if c_ == 401)


def test_a_busy_answer_costs_no_database_work(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Told busy before anything is read or counted: a refused burst costs the event loop and the
    connection pool nothing but the answer (the attempt is not counted either)."""
    from psycopg_pool import AsyncConnectionPool

    monkeypatch.setattr(auth, "HASH_WAIT_BUDGET_S", 0.0)
    monkeypatch.setattr(auth._admission, "pending", 2 * auth.HASH_WORKERS)  # a queue ahead

    async def attempt() -> None:
        async with AsyncConnectionPool(world.db_url, min_size=1, max_size=2, open=False) as pool:
            await pool.open(wait=True)
            await auth.throttled_verify(pool, "byt1", "a guess", "198.51.100.77")

    with pytest.raises(HashingBusy):
        asyncio.run(attempt())
    with psycopg.connect(world.db_url) as conn:
        rows = conn.execute("SELECT key FROM login_throttle").fetchall()
    assert rows == []
