"""Browser-test fixtures: a seeded demo database, issued accounts, the real app under uvicorn,
and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg import AsyncConnection

from oxy.demo_seed import seed_demo
from tests.fix_mqtt import free_port, wait_port

CHROMIUM = "/usr/bin/chromium"
IN_CI = os.environ.get("CI") == "true"
PASSWORD = "demo-password-1"

# (username, display name, role, organisation code)
ACCOUNTS: tuple[tuple[str, str, str, str | None], ...] = (
    ("admin", "Quản trị viên", "admin", None),
    ("byt", "Cục Quản lý Khám chữa bệnh", "byt", "BYT"),
    ("syt79", "Sở Y tế TP.HCM", "syt", "SYT-79"),
    ("choray", "Phòng Vật tư BV Chợ Rẫy", "facility", "BV-CHORAY"),
    ("ncc", "Khí Miền Nam", "supplier", "NCC-KHIMIENNAM"),
    ("kysu", "Kỹ sư Nguyễn Văn An", "engineer", None),
)
# The facilities the engineer looks after.
ENGINEER_FACILITIES = ("BV-CHORAY", "BV-THUDUC")

# Tanks given 8 days of simulated 1-minute readings: (facility code, tank code, start fill).
SIMULATED: tuple[tuple[str, str, float], ...] = (
    ("BV-CHORAY", "T1", 0.45),
    ("BV-THUDUC", "T1", 0.20),
    ("BV-HSCOVID-HCM", "T1", 0.60),
    ("BV-BACHMAI", "T1", 0.80),
    ("BV-THANHNHAN", "T1", 0.15),
)


# The tank whose last readings are a gauge fault, and how long the fault lasts.
FAULTY = ("BV-CHORAY", "T1")
FAULT = timedelta(minutes=30)


@pytest.fixture(scope="module")
def web_db_url(module_db_url: str) -> str:
    """A migrated database for one test module, seeded with the demo country and accounts."""
    seed_demo(module_db_url)
    # Playwright's sync API may already run a loop in this thread: seed from another one.
    seeder = threading.Thread(target=lambda: asyncio.run(_seed(module_db_url)))
    seeder.start()
    seeder.join()
    return module_db_url


async def _seed(url: str) -> None:
    from api.accounting.simulate import (
        PlannedRefill,
        TankPlan,
        copy_readings,
        readings,
        refresh_rollups,
    )
    from api.scope import Role
    from api.users import NewUser, create_user

    async with await AsyncConnection.connect(url) as conn:
        for username, display, role, org in ACCOUNTS:
            codes = ENGINEER_FACILITIES if role == "engineer" else ()
            await create_user(
                conn,
                "test-setup",
                NewUser(username, display, Role(role), PASSWORD, org, facility_codes=codes),
            )
        await conn.execute("UPDATE users SET must_change_password = false")
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        start = now - timedelta(days=8)
        for fac, tank, fill in SIMULATED:
            cur = await conn.execute(
                "SELECT t.capacity_kg, t.diameter_m, s.id FROM tanks t "
                "JOIN organisations o ON o.id = t.facility_id "
                "JOIN sensors s ON s.tank_id = t.id AND s.quantity = 'dp' "
                "WHERE o.code = %s AND t.code = %s",
                (fac, tank),
            )
            row = await cur.fetchone()
            assert row is not None
            cap, diameter, sensor = float(row[0]), float(row[1]), int(row[2])
            # Chợ Rẫy T1 had a tanker delivery two days ago (a refill event on its page).
            refills = (
                (PlannedRefill(now - timedelta(days=2, hours=3), 45, cap * 0.35),)
                if (fac, tank) == FAULTY
                else ()
            )
            plan = TankPlan(cap, diameter, cap * fill, cap * 0.06, refills)
            await copy_readings(conn, readings(plan, sensor, start, now, seed=sensor))
            if (fac, tank) == FAULTY:
                # A DP gauge fault: the last readings read zero with good quality, so the tank
                # looks empty until someone marks them invalid.
                await conn.execute(
                    "UPDATE readings SET value = 0 WHERE sensor_id = %s AND ts >= %s",
                    (sensor, now - FAULT),
                )
            await refresh_rollups(conn, sensor, start, now)
        await conn.commit()


@dataclass(frozen=True)
class LiveServer:
    """The real application served by uvicorn on a free local port."""

    url: str
    db_url: str


@pytest.fixture(scope="module")
def live_server(web_db_url: str) -> Iterator[LiveServer]:
    """Start the app (create_app over the seeded database) in a uvicorn thread."""
    import uvicorn

    from api.app import create_app
    from oxy.settings import Settings

    port = free_port()
    app = create_app(Settings(database_url=web_db_url))
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port(port, 30)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", web_db_url)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright (skipped locally when missing; a failure in CI)."""
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        if IN_CI:
            pytest.fail(f"CI=true but {CHROMIUM} is missing (scripts/system-deps.sh installs it)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield b
        finally:
            b.close()


def login(browser: Any, server: LiveServer, username: str, *, width: int = 1280) -> Any:
    """A new page logged in as `username` (Vietnamese UI by default)."""
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="vi-VN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Script errors, CSP violations (console errors) and failed loads (the favicon included).
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.request.method == "GET"
            else None
        ),
    )
    page.js_errors = errors  # type: ignore[attr-defined]
    page.goto(server.url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    if page.url == server.url + "/login?next=/":
        # api.deps.get_conn commits after the response is sent (FastAPI request-scoped yield
        # dependency), so the redirect can outrun the session's commit: ask once more.
        page.wait_for_timeout(200)
        page.goto(server.url + "/")
    if page.url != server.url + "/":
        pytest.fail(f"login as {username} failed at {page.url}: {page.inner_text('body')[:600]}")
    return page


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    """Poll `predicate` until it is true (fails after `timeout` seconds)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that drives Chromium is in the `browser` tier (`make test` runs it apart)."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
