"""Login under attack: attempts are counted atomically before the (off-loop) argon2 check, so a
concurrent burst gets at most the configured guesses; throttling per account and address cannot
be used to lock the owner out from elsewhere; the event loop stays free while hashing."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api import auth
from api.app import create_app
from api.auth import (
    IP_FACTOR,
    MAX_FAILURES,
    LoginResult,
    hash_password,
    throttled_verify,
    verify_password,
)
from oxy.settings import Settings
from tests.api.conftest import PASSWORD, World, csrf_of


@pytest.fixture(autouse=True)
def _every_check_admitted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every password check runs: on a loaded machine the hashing time budget would refuse some
    of a concurrent burst (503, test_login_cost's subject), which is not what is tested here."""
    monkeypatch.setattr(auth, "HASH_WAIT_BUDGET_S", 60.0)


async def _burst(
    url: str, n: int, ip: str | None, password: str = "wrong guess!"
) -> list[LoginResult]:
    async with AsyncConnectionPool(url, min_size=4, max_size=20, open=False) as pool:
        await pool.open(wait=True)
        return list(
            await asyncio.gather(*(throttled_verify(pool, "byt1", password, ip) for _ in range(n)))
        )


def test_a_concurrent_burst_gets_at_most_the_configured_guesses(world: World) -> None:
    results = asyncio.run(_burst(world.db_url, 40, "198.51.100.1"))
    guesses = [r for r in results if not r.locked_for_s]  # verified (a guess was processed)
    assert len(guesses) <= MAX_FAILURES
    assert len(guesses) >= 1
    assert all(r.locked_for_s >= 1 for r in results if r not in guesses)
    with psycopg.connect(world.db_url) as conn:
        (count,) = conn.execute(
            "SELECT failures FROM login_throttle WHERE key = 'user-ip:byt1|198.51.100.1'"
        ).fetchone() or (0,)
    assert count == len(guesses)  # refused attempts are not counted as guesses


def _login_from(settings: Settings, address: str, username: str, password: str) -> int:
    with TestClient(create_app(settings), client=(address, 40000)) as c:
        page = c.get("/login")
        r = c.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
            follow_redirects=False,
        )
        return r.status_code


def test_an_attacker_cannot_lock_the_owner_out_from_another_address(
    world: World, settings: Settings
) -> None:
    attacker, owner = "198.51.100.66", "203.0.113.7"
    codes = [_login_from(settings, attacker, "byt1", f"guess number {i}") for i in range(8)]
    assert codes[:MAX_FAILURES] == [401] * MAX_FAILURES and set(codes[MAX_FAILURES:]) == {429}
    # The attacker's address stays locked, even with the right password ...
    assert _login_from(settings, attacker, "byt1", PASSWORD) == 429
    # ... while the owner, elsewhere, logs in.
    assert _login_from(settings, owner, "byt1", PASSWORD) == 303


@pytest.mark.slow  # many deliberately slow password checks
def test_an_address_guessing_many_accounts_is_locked(world: World, settings: Settings) -> None:
    address = "198.51.100.99"
    limit = MAX_FAILURES * IP_FACTOR
    results = asyncio.run(_spray(world.db_url, address, limit + 3))
    assert [r.locked_for_s > 0 for r in results[:limit]] == [False] * limit
    assert all(r.locked_for_s > 0 for r in results[limit:])


async def _spray(url: str, ip: str, n: int) -> list[LoginResult]:
    async with AsyncConnectionPool(url, min_size=1, max_size=4, open=False) as pool:
        await pool.open(wait=True)
        return [await throttled_verify(pool, f"user{i}", "wrong guess!", ip) for i in range(n)]


def test_password_checks_do_not_block_the_event_loop(world: World) -> None:

    async def go() -> float:
        pool: AsyncConnectionPool[AsyncConnection[Any]]
        async with AsyncConnectionPool(world.db_url, min_size=2, max_size=10, open=False) as pool:
            await pool.open(wait=True)
            worst = 0.0
            done = False

            async def ticker() -> None:
                nonlocal worst
                last = time.perf_counter()
                while not done:
                    await asyncio.sleep(0.005)
                    now = time.perf_counter()
                    worst = max(worst, now - last)
                    last = now

            tick = asyncio.create_task(ticker())
            await asyncio.gather(
                *(throttled_verify(pool, f"u{i}", "wrong guess!", f"192.0.2.{i}") for i in range(6))
            )
            done = True
            await tick
            return worst

    # How long one verification blocks whoever runs it (0.05-0.7 s, with the machine's load).
    stored = hash_password("x" * 12)
    t0 = time.perf_counter()
    verify_password(stored, "y" * 12)
    one = time.perf_counter() - t0
    # Six ran; the loop never stalled for (most of) one. On the loop, each would stall it fully.
    assert asyncio.run(go()) < max(0.25, one / 2)


def test_a_distributed_attack_does_not_lock_the_owner_out_of_her_usual_address(
    world: World, settings: Settings
) -> None:
    home, elsewhere = "203.0.113.20", "203.0.113.21"
    assert _login_from(settings, home, "byt1", PASSWORD) == 303  # her usual address
    with psycopg.connect(world.db_url) as conn:  # as if 50 addresses had each guessed once
        conn.execute(
            "INSERT INTO login_throttle (key, failures, locked_until) "
            "VALUES ('user:byt1', 50, now() + interval '10 minutes') ON CONFLICT (key) DO UPDATE "
            "SET failures = 50, locked_until = now() + interval '10 minutes'"
        )
    assert _login_from(settings, elsewhere, "byt1", PASSWORD) == 429  # unknown address: locked
    assert _login_from(settings, home, "byt1", PASSWORD) == 303  # known address: not affected


def test_hashing_threads_yield_the_cpu_to_the_event_loop() -> None:
    """The password checks run at a lower CPU priority than the event loop's thread (Linux nice
    is per thread), so a burst of logins on every core still leaves the loop its CPU."""

    def nice_here() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    loop_nice = nice_here()
    workers = {auth._hash_pool.submit(nice_here).result() for _ in range(4)}
    assert all(nice > loop_nice for nice in workers), (loop_nice, workers)
