"""Webhook destinations cannot be turned against the server's own networks (SSRF): https and
public addresses only (http / private only for hosts an administrator allows), checked when the
subscription is created and again at every delivery, which connects to the checked address."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import AsyncConnection

from api.alerts.config import AlertSettings
from api.alerts.engine import apply
from api.alerts.notify import Sender, WebhookSender, dispatch
from api.alerts.rules import Condition, Rule, Severity
from api.alerts.webhook_guard import WebhookRefused, allowed_hosts, check_target, is_public
from api.app import create_app
from oxy.settings import Settings
from tests.alerts.helpers import Hooks, webhook_server
from tests.api.conftest import World, csrf_of, login

T0 = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # shared address space (CGN)
        ("0.0.0.0", False),
        ("224.0.0.1", False),  # multicast
        ("240.0.0.1", False),  # reserved
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("::ffff:169.254.169.254", False),
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
    ],
)
def test_address_classes(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def _check(url: str, allowed: str = "", answer: list[str] | None = None) -> str:
    async def fake(host: str, port: int) -> list[str]:
        return answer or []

    async def go() -> str:
        resolve = fake if answer is not None else None
        if resolve is None:
            t = await check_target(url, allowed_hosts(allowed))
        else:
            t = await check_target(url, allowed_hosts(allowed), resolve)
        return t.address

    return asyncio.run(go())


def test_destinations_must_be_https_and_public() -> None:
    for bad in (
        "http://example.com/hook",  # plain http, host not allowed
        "https://127.0.0.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://localhost/x",  # a name resolving to loopback
        "https://user:pw@example.com/x",
        "ftp://example.com/x",
    ):
        with pytest.raises(WebhookRefused):
            _check(bad)
    # A name is judged by every address it resolves to.
    with pytest.raises(WebhookRefused):
        _check("https://hooks.example.com/x", answer=["93.184.216.34", "10.0.0.7"])
    assert _check("https://hooks.example.com/x", answer=["93.184.216.34"]) == "93.184.216.34"
    # An allowed host may use http and a private address.
    assert _check("http://127.0.0.1:9/x", allowed="127.0.0.1") == "127.0.0.1"
    assert _check("http://hook.lan/x", allowed="hook.lan", answer=["10.0.0.7"]) == "10.0.0.7"


def _post(c: TestClient, target: str) -> httpx.Response:
    return c.post(
        "/api/alerts/subscriptions",
        headers={"x-csrf-token": csrf_of(c.get("/account").text)},
        json={"channel": "webhook", "target": target},
    )


def test_subscription_refuses_loopback_and_facility_staff(
    world: World, settings: Settings, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with webhook_server(Hooks()) as hook_url:
        login(client, "syt79")
        for target in (hook_url, hook_url.replace("http:", "https:"), "https://169.254.169.254/"):
            r = _post(client, target)
            assert r.status_code == 422, target
            assert r.json()["detail"]["errors"][0]["field"] == "target"
        # Facility staff may not add webhooks at all (e-mail only).
        staff = TestClient(create_app(settings))
        with staff:
            login(staff, "staff-in")
            assert _post(staff, "https://hooks.example.com/x").status_code == 403
        # An administrator's allow-list lets the local receiver in.
        monkeypatch.setenv("OXY_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1")
        with TestClient(create_app(settings)) as c:
            login(c, "syt79")
            assert _post(c, hook_url).status_code == 201
    with psycopg.connect(world.db_url) as conn:
        assert conn.execute("SELECT target FROM alert_subscriptions").fetchall() == [(hook_url,)]


@pytest.fixture
def queued(world: World) -> Iterator[tuple[Hooks, str]]:
    """A webhook subscription to a local receiver (written directly, as before the guard) and an
    alert queued for it."""
    hooks = Hooks()
    with webhook_server(hooks) as hook_url, psycopg.connect(world.db_url) as conn:
        conn.execute(
            "INSERT INTO alert_subscriptions (user_id, channel, target) VALUES (%s, 'webhook', %s)",
            (world.users["engineer"], hook_url),
        )
        conn.commit()

        async def go() -> None:
            async with await AsyncConnection.connect(world.db_url) as aconn:
                c = Condition(Rule.SENSOR_STALE, "sensor", 1, world.fac_in, Severity.WARNING, {})
                await apply(aconn, [c], T0, AlertSettings())

        asyncio.run(go())
        yield hooks, hook_url


def _deliver(url: str, cfg: AlertSettings, resolve: Any = None) -> tuple[int, int]:
    async def go() -> tuple[int, int]:
        async with httpx.AsyncClient() as client, await AsyncConnection.connect(url) as conn:
            sender = (
                WebhookSender(cfg, client)
                if resolve is None
                else WebhookSender(cfg, client, resolve)
            )
            senders: dict[str, Sender] = {"webhook": sender}
            return await dispatch(conn, senders, T0, cfg)

    return asyncio.run(go())


def test_delivery_to_loopback_is_refused_at_send_time(
    world: World, queued: tuple[Hooks, str]
) -> None:
    hooks, _ = queued
    assert _deliver(world.db_url, AlertSettings()) == (0, 1)
    assert hooks.attempts == 0  # the receiver never saw a request
    with psycopg.connect(world.db_url) as conn:
        (err,) = conn.execute("SELECT last_error FROM alert_notifications").fetchone() or ("",)
    assert "https" in err  # plain http to a host no administrator allowed


def test_delivery_connects_to_the_checked_address(world: World, queued: tuple[Hooks, str]) -> None:
    """DNS rebinding: the name is resolved once per delivery, checked, and that address is used;
    a later answer of the resolver cannot redirect the request."""
    hooks, hook_url = queued
    port = int(hook_url.rsplit(":", 1)[1].split("/")[0])
    named = f"http://hook.test:{port}/hook"
    with psycopg.connect(world.db_url) as conn:
        conn.execute("UPDATE alert_notifications SET target = %s", (named,))
        conn.execute("UPDATE alert_subscriptions SET target = %s", (named,))
    answers = iter([["127.0.0.1"], ["203.0.113.9"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    cfg = AlertSettings(webhook_allowed_hosts="hook.test")
    assert _deliver(world.db_url, cfg, rebinding) == (1, 0)
    assert hooks.received[0]["headers"]["Host"] == f"hook.test:{port}"

    # Not allowed: a name that resolves to loopback at send time is refused.
    async def loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    with psycopg.connect(world.db_url) as conn:
        conn.execute("UPDATE alert_notifications SET state = 'pending', attempts = 0")
    assert _deliver(world.db_url, AlertSettings(), loopback) == (0, 1)
    assert len(hooks.received) == 1


def test_a_facility_webhook_stored_before_the_rule_is_not_used(world: World) -> None:
    with psycopg.connect(world.db_url) as conn:
        for channel, target in (("webhook", "https://hooks.example.com/x"), ("email", "a@b.vn")):
            conn.execute(
                "INSERT INTO alert_subscriptions (user_id, channel, target) VALUES (%s, %s, %s)",
                (world.users["facility"], channel, target),
            )

    async def go() -> None:
        async with await AsyncConnection.connect(world.db_url) as aconn:
            c = Condition(Rule.SENSOR_STALE, "sensor", 1, world.fac_in, Severity.WARNING, {})
            await apply(aconn, [c], T0, AlertSettings())

    asyncio.run(go())
    with psycopg.connect(world.db_url) as conn:
        targets = [r[0] for r in conn.execute("SELECT target FROM alert_notifications")]
    assert targets == ["a@b.vn"]
