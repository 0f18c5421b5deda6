"""Alert lifecycle with a controllable clock: dedup, flapping, auto-resolve, escalation, and
delivery to a real SMTP server and a real webhook receiver (retries, nothing sent twice)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
from psycopg import AsyncConnection

from api.alerts.config import AlertSettings
from api.alerts.engine import AlertStateError, acknowledge, apply, resolve
from api.alerts.notify import EmailSender, Sender, WebhookSender, dispatch
from api.alerts.rules import Condition, Rule, Severity
from tests.alerts.helpers import Hooks, smtp_server, webhook_server
from tests.api.conftest import World

T = TypeVar("T")
T0 = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)  # 10:00 in Hồ Chí Minh City


def run(fn: Callable[[AsyncConnection[Any]], Awaitable[T]], url: str) -> T:
    async def go() -> T:
        async with await AsyncConnection.connect(url) as conn:
            return await fn(conn)

    return asyncio.run(go())


def subscribe(url: str, user: int, channel: str, target: str, **kw: Any) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO alert_subscriptions (user_id, channel, target, min_severity, "
            "quiet_start, quiet_end) VALUES (%s, %s, %s, %s, %s, %s)",
            (
                user,
                channel,
                target,
                kw.get("min_severity", "warning"),
                kw.get("quiet_start"),
                kw.get("quiet_end"),
            ),
        )


def cond(
    w: World, severity: Severity = Severity.WARNING, rule: Rule = Rule.SENSOR_STALE
) -> Condition:
    return Condition(rule, "sensor", 4242, w.fac_in, severity, {"sensor": "T1-dp"})


def rows(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


CFG = AlertSettings(
    alert_clear_minutes=10,
    alert_escalate_critical_minutes=15,
    alert_escalate_warning_minutes=120,
    alert_retry_seconds=60,
    alert_max_attempts=3,
    webhook_allowed_hosts="127.0.0.1",  # the local receivers (webhook_guard refuses loopback)
)


def test_dedup_flapping_and_auto_resolve(world: World) -> None:
    url = world.db_url
    subscribe(url, world.users["facility"], "email", "staff@bv-in.example.vn")
    subscribe(url, world.users["syt"], "email", "syt79@example.vn")  # not at level 0
    c = cond(world)

    o = run(lambda conn: apply(conn, [c, c], T0, CFG), url)
    assert (o.opened, o.queued) == (1, 1)
    # Still holding a minute later: the same alert, nothing new to send.
    o = run(lambda conn: apply(conn, [c], T0 + timedelta(minutes=1), CFG), url)
    assert (o.opened, o.queued) == (0, 0)
    # Clears, then comes back within the clear window: a flap, not a new alert.
    run(lambda conn: apply(conn, [], T0 + timedelta(minutes=2), CFG), url)
    o = run(lambda conn: apply(conn, [c], T0 + timedelta(minutes=3), CFG), url)
    assert (o.opened, o.flapped, o.queued) == (0, 1, 0)
    # Clears for good: resolved only after the clear window.
    o = run(lambda conn: apply(conn, [], T0 + timedelta(minutes=4), CFG), url)
    assert o.resolved == 0
    o = run(lambda conn: apply(conn, [], T0 + timedelta(minutes=13, seconds=59), CFG), url)
    assert o.resolved == 0
    o = run(lambda conn: apply(conn, [], T0 + timedelta(minutes=14), CFG), url)
    assert (o.resolved, o.queued) == (1, 1)

    alerts = rows(url, "SELECT state, flaps, resolution_note FROM alerts")
    assert alerts == [("resolved", 1, "condition cleared")]
    sent = rows(
        url,
        "SELECT n.target, e.kind FROM alert_notifications n "
        "JOIN alert_events e ON e.id = n.event_id ORDER BY n.id",
    )
    assert sent == [("staff@bv-in.example.vn", "opened"), ("staff@bv-in.example.vn", "resolved")]
    # The condition holding again later is a new alert.
    o = run(lambda conn: apply(conn, [c], T0 + timedelta(hours=1), CFG), url)
    assert o.opened == 1


def test_escalation_facility_then_syt_then_byt(world: World) -> None:
    url = world.db_url
    subscribe(url, world.users["facility"], "email", "staff@bv-in.example.vn")
    subscribe(url, world.users["engineer"], "email", "eng@example.vn")
    subscribe(url, world.users["syt"], "webhook", "http://127.0.0.1:9/syt")
    subscribe(url, world.users["byt"], "email", "byt@example.vn")
    c = cond(world, Severity.CRITICAL, Rule.CONTENTS_LOW)

    def at(minutes: int) -> Any:
        return run(lambda conn: apply(conn, [c], T0 + timedelta(minutes=minutes), CFG), url)

    assert at(0).queued == 2  # facility staff and its engineer
    assert at(14).escalated == 0
    o = at(15)
    assert (o.escalated, o.queued) == (1, 1)  # + the province's SYT
    assert at(29).escalated == 0
    o = at(30)
    assert (o.escalated, o.queued) == (1, 1)  # + the Ministry
    assert at(500).escalated == 0  # the top level
    targets = [r[0] for r in rows(url, "SELECT target FROM alert_notifications ORDER BY id")]
    assert sorted(targets[:2]) == ["eng@example.vn", "staff@bv-in.example.vn"]
    assert targets[2:] == ["http://127.0.0.1:9/syt", "byt@example.vn"]
    assert rows(url, "SELECT level FROM alerts") == [(2,)]


def test_acknowledged_alert_does_not_escalate_and_hand_resolution_needs_a_note(
    world: World,
) -> None:
    url = world.db_url
    c = cond(world, Severity.CRITICAL)
    run(lambda conn: apply(conn, [c], T0, CFG), url)
    (alert_id,) = rows(url, "SELECT id FROM alerts")[0]
    run(
        lambda conn: acknowledge(
            conn, alert_id, world.users["facility"], T0 + timedelta(minutes=5)
        ),
        url,
    )
    with pytest.raises(AlertStateError):
        run(lambda conn: acknowledge(conn, alert_id, world.users["facility"], T0), url)
    o = run(lambda conn: apply(conn, [c], T0 + timedelta(hours=2), CFG), url)
    assert o.escalated == 0
    with pytest.raises(AlertStateError):
        run(lambda conn: resolve(conn, alert_id, world.users["facility"], "  ", T0), url)
    run(lambda conn: resolve(conn, alert_id, world.users["facility"], "tanker arrived", T0), url)
    assert rows(url, "SELECT state, resolution_note, resolved_by FROM alerts") == [
        ("resolved", "tanker arrived", world.users["facility"])
    ]
    kinds = [r[0] for r in rows(url, "SELECT kind FROM alert_events ORDER BY id")]
    assert kinds == ["opened", "acknowledged", "resolved"]


def test_quiet_hours_hold_warnings_but_never_critical(world: World) -> None:
    url = world.db_url
    # Quiet hours 22:00-07:00 local; the alerts open at 23:00 local.
    night = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)  # 23:00 in Hồ Chí Minh City
    subscribe(
        url, world.users["facility"], "email", "staff@bv-in.example.vn", quiet_start=22, quiet_end=7
    )
    run(lambda conn: apply(conn, [cond(world)], night, CFG), url)
    run(
        lambda conn: apply(conn, [cond(world, Severity.CRITICAL, Rule.CONTENTS_LOW)], night, CFG),
        url,
    )
    due = dict(
        rows(
            url,
            "SELECT a.severity, n.next_attempt_at FROM alert_notifications n "
            "JOIN alert_events e ON e.id = n.event_id JOIN alerts a ON a.id = e.alert_id",
        )
    )
    assert due["critical"] == night
    assert due["warning"] == datetime(2026, 11, 28, 0, 0, tzinfo=UTC)  # 07:00 local


def test_email_and_webhook_delivery_with_retries_and_dead_letters(world: World) -> None:
    url = world.db_url
    hooks = Hooks(fail_first=2)
    broken = Hooks(fail_first=1000)
    with (
        smtp_server() as (box, smtp_port),
        webhook_server(hooks) as hook_url,
        webhook_server(broken) as broken_url,
    ):
        cfg = CFG.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": smtp_port})
        subscribe(url, world.users["facility"], "email", "staff@bv-in.example.vn")
        subscribe(url, world.users["engineer"], "webhook", hook_url)
        with psycopg.connect(url) as conn:  # a second engineer with a receiver that always fails
            from tests.api.conftest import add_user

            eng2 = add_user(conn, "eng-two", "engineer", None, national=True)
        subscribe(url, eng2, "webhook", broken_url)
        run(lambda conn: apply(conn, [cond(world, Severity.CRITICAL)], T0, cfg), url)

        async def round_at(t: datetime) -> tuple[int, int]:
            async with httpx.AsyncClient() as client, await AsyncConnection.connect(url) as conn:
                senders: dict[str, Sender] = {
                    "email": EmailSender(cfg),
                    "webhook": WebhookSender(cfg, client),
                }
                return await dispatch(conn, senders, t, cfg)

        assert asyncio.run(round_at(T0)) == (1, 2)  # e-mail sent; both webhooks failed once
        assert asyncio.run(round_at(T0 + timedelta(seconds=30))) == (0, 0)  # backoff: not due
        assert asyncio.run(round_at(T0 + timedelta(seconds=60))) == (0, 2)
        assert asyncio.run(round_at(T0 + timedelta(seconds=180))) == (1, 1)  # 3rd try succeeds
        assert asyncio.run(round_at(T0 + timedelta(hours=1))) == (0, 0)  # nothing left to send

    assert len(box.messages) == 1
    assert box.messages[0]["to"] == ["staff@bv-in.example.vn"]
    assert "Message-ID: <oxy-alert-" in box.messages[0]["data"]
    assert len(hooks.received) == 1 and hooks.attempts == 3
    body = hooks.received[0]["body"]
    assert body["event"] == "opened" and body["severity"] == "critical"
    assert hooks.received[0]["headers"]["X-Oxy-Delivery"]
    states = dict(rows(url, "SELECT target, state FROM alert_notifications"))
    assert states == {"staff@bv-in.example.vn": "sent", hook_url: "sent", broken_url: "dead"}
    (err,) = rows(url, "SELECT last_error FROM alert_notifications WHERE state = 'dead'")[0]
    assert "HTTP 500" in err


def test_rule_titles_are_translated_to_vietnamese() -> None:
    from api.alerts.notify import EVENT_TITLES, RULE_TITLES, SEVERITY_TITLES
    from api.i18n import gettext

    for text in (*RULE_TITLES.values(), *EVENT_TITLES.values(), *SEVERITY_TITLES.values()):
        assert gettext("vi", text) != text, text
        assert gettext("en", text) == text
