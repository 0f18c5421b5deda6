"""An alert's details read as translated labels with units, in the e-mail, the webhook's text and
the alerts page; the raw `details` stay in the webhook's JSON; every key a rule writes is known."""

from __future__ import annotations

import ast
import asyncio
import email
import email.policy
import inspect
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from fastapi.testclient import TestClient
from psycopg import AsyncConnection

from api.alerts import details, rules
from api.alerts.config import AlertSettings
from api.alerts.engine import apply
from api.alerts.notify import EmailSender, Sender, WebhookSender, dispatch, render
from api.alerts.rules import Condition, Rule, Severity
from api.i18n import gettext
from tests.alerts.helpers import Hooks, smtp_server, webhook_server
from tests.alerts.test_rules import evaluate, latest, tank_with_sensors
from tests.api.conftest import World, add_user, login

NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)  # 10:00 in Hồ Chí Minh City
CFG = AlertSettings(public_url="https://oxy.example.vn", webhook_allowed_hosts="127.0.0.1")


def _subscribe(url: str, user: int, channel: str, target: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO alert_subscriptions (user_id, channel, target) VALUES (%s, %s, %s)",
            (user, channel, target),
        )


def _bodies(messages: list[dict[str, Any]], to: str) -> str:
    out = []
    for m in messages:
        if m["to"] == [to]:
            msg = email.message_from_bytes(m["data"].encode(), policy=email.policy.default)
            out.append(msg.get_content().replace("\r\n", "\n"))  # type: ignore[attr-defined]
    return "\n".join(out)


def test_emails_show_labels_and_units_of_real_rules_in_the_subscribers_language(
    world: World,
) -> None:
    url = world.db_url
    with psycopg.connect(url) as conn:
        ids = tank_with_sensors(conn, world)  # min usable 570 kg, max 17 bar
        latest(conn, ids["T1-dp"], NOW - timedelta(minutes=1), ids["dp_inh2o_for_300kg"])
        latest(conn, ids["T1-p"], NOW - timedelta(minutes=1), 18.2)
        conn.execute(
            "INSERT INTO gateway_status (gateway_id, last_seen, online) VALUES (%s, %s, false)",
            (world.gw_in, NOW - timedelta(minutes=1)),
        )
        eng_en = add_user(conn, "eng-en", "engineer", None, facilities=(world.fac_in,))
        conn.execute("UPDATE users SET locale = 'en' WHERE id = %s", (eng_en,))
    conds = evaluate(
        url,
        NOW,
        Rule.CONTENTS_LOW,
        Rule.HEAD_PRESSURE,
        Rule.GATEWAY_OFFLINE,
        Rule.REPORT_MISSING,
    )
    assert {c.rule for c in conds if c.facility_id == world.fac_in} == {
        Rule.CONTENTS_LOW,
        Rule.HEAD_PRESSURE,
        Rule.GATEWAY_OFFLINE,
        Rule.REPORT_MISSING,
    }
    hooks = Hooks()
    with smtp_server() as (box, port), webhook_server(hooks) as hook_url:
        cfg = CFG.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port})
        _subscribe(url, world.users["facility"], "email", "vi@bv-in.example.vn")
        _subscribe(url, eng_en, "email", "en@bv-in.example.vn")
        _subscribe(url, eng_en, "webhook", hook_url)

        async def go() -> tuple[int, int]:
            async with httpx.AsyncClient() as client, await AsyncConnection.connect(url) as conn:
                await apply(conn, conds, NOW, cfg)
                senders: dict[str, Sender] = {
                    "email": EmailSender(cfg),
                    "webhook": WebhookSender(cfg, client),
                }
                return await dispatch(conn, senders, NOW, cfg)

        assert asyncio.run(go()) == (12, 0)

    vi = _bodies(box.messages, "vi@bv-in.example.vn")
    # 09:59 local is the gateway's last contact (02:59 UTC).
    for line in (
        "Mức sử dụng tối thiểu: 570 kg",
        "Áp suất bồn: 18,20 bar",
        "Áp suất tối đa cho phép: 17,00 bar",
        "Mã gateway: gw-bv-in",
        "Liên lạc gần nhất: 28/11/2026 09:59",
        "Đã nhận thông báo mất kết nối (MQTT last will): Có",
        "Ngày báo cáo: 27/11/2026",
        "Thời điểm đo: 28/11/2026 09:59",
    ):
        assert f"  {line}\n" in vi, line
    assert re.search(r"  Lượng oxy trong bồn: (29\d|30\d) kg\n", vi), vi
    en = _bodies(box.messages, "en@bv-in.example.vn")
    for line in (
        "Minimum usable level: 570 kg",
        "Head pressure: 18.20 bar",
        "Last heard from: 28/11/2026 09:59",
        "Offline notice received (MQTT last will): Yes",
        "Report day: 27/11/2026",
    ):
        assert f"  {line}\n" in en, line
    assert "Áp suất" not in en
    for raw in ("pressure_bar", "min_usable_kg", "last_seen", "contents_kg", "  day:"):
        assert raw not in vi and raw not in en, raw

    # The webhook keeps the machine-readable details and adds the rendered lines beside them.
    by_rule = {h["body"]["rule"]: h["body"] for h in hooks.received}
    pressure = by_rule["head_pressure_out_of_range"]
    assert pressure["details"]["pressure_bar"] == 18.2
    assert pressure["details"]["sensor_id"] == ids["T1-p"]
    assert "Head pressure: 18.20 bar" in pressure["details_text"]


def _row(rule: str, detail: dict[str, Any], locale: str) -> dict[str, Any]:
    return {
        "id": 7,
        "kind": "opened",
        "level": 0,
        "at": NOW,
        "note": None,
        "alert_id": 3,
        "rule": rule,
        "severity": "warning",
        "details": detail,
        "facility_id": 1,
        "facility": "BV Chợ Rẫy",
        "locale": locale,
    }


def test_days_of_supply_and_overdue_delivery_bodies_in_both_languages() -> None:
    supply = {"days": 1.27, "usable_kg": 2000.4, "avg_daily_kg": 1928.6, "threshold": 3}
    overdue = {
        "source_id": 12,
        "state": "in_transit",
        "amount_kg": 3000.0,
        "due": "2026-11-28T01:30:00+00:00",
    }
    vi = render(_row("days_of_supply_low", supply, "vi"), CFG).body
    assert "  Số ngày còn đủ dùng: 1,3 ngày\n" in vi
    assert "  Ngưỡng cảnh báo: 3 ngày\n" in vi
    assert "  Lượng oxy sử dụng được trong bồn: 2.000 kg\n" in vi
    assert "  Tiêu thụ trung bình mỗi ngày: 1.929 kg/ngày\n" in vi
    en = render(_row("days_of_supply_low", supply, "en"), CFG).body
    assert "  Days of supply left: 1.3 days\n" in en
    assert "  Average daily consumption: 1,929 kg/day\n" in en
    vi = render(_row("delivery_overdue", overdue, "vi"), CFG).body
    assert "  Lượng: 3.000 kg\n" in vi
    assert "  Cần trước: 28/11/2026 08:30\n" in vi
    assert "  Trạng thái chuyến giao: Đang vận chuyển\n" in vi
    en = render(_row("delivery_overdue", overdue, "en"), CFG)
    assert "  Needed by: 28/11/2026 08:30\n" in en.body
    assert "  Delivery state: In transit\n" in en.body
    assert en.payload["details"] == overdue  # raw, untouched


def test_unknown_keys_and_malformed_values_never_break_a_notice() -> None:
    odd = {
        "hours_left": 5.2,
        "days": "soon",
        "history_kg": 5,
        "last_seen": "yesterday",
        "nothing": None,
    }
    body = render(_row("some_future_rule", odd, "vi"), CFG).body
    assert "  hours_left: 5.2\n" in body
    assert "  Số ngày còn đủ dùng: soon\n" in body
    assert "  Lượng tiêu thụ các ngày trước: 5\n" in body
    assert "  Liên lạc gần nhất: yesterday\n" in body
    assert "  nothing: —\n" in body
    assert details.detail_lines("x", None, "vi") == []
    # One key, two meanings: the rule decides the label.
    assert details.detail_lines("report_missing", {"day": "2026-11-27"}, "vi") == [
        ("Ngày báo cáo", "27/11/2026")
    ]
    assert details.detail_lines("abnormal_consumption", {"day": "2026-11-27"}, "en") == [
        ("Day of the consumption", "27/11/2026")
    ]


def _rule_detail_keys() -> set[str]:
    """Every string key of a dict literal a rule hands to `Condition(...)` in api.alerts.rules."""
    tree = ast.parse(inspect.getsource(rules))
    named: dict[str, ast.Dict] = {
        t.id: node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    keys: set[str] = set()
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Condition"):
            continue
        for node in ast.walk(call):
            found = named.get(node.id) if isinstance(node, ast.Name) else node
            if isinstance(found, ast.Dict):
                keys |= {k.value for k in found.keys if isinstance(k, ast.Constant)}
    return keys


def test_every_detail_key_a_rule_writes_has_a_translated_label() -> None:
    keys = _rule_detail_keys()
    assert {"days", "pressure_bar", "contents_kg", "last_seen", "quality", "due"} <= keys
    assert sorted(keys - set(details.FIELDS)) == []
    messages = [f.label for f in (*details.FIELDS.values(), *details.RULE_FIELDS.values())]
    messages += [*details.QUALITY_LABELS.values(), *details.DELIVERY_STATE_LABELS.values()]
    messages += ["days", "kg/day", "Yes", "No"]
    for text in messages:
        assert gettext("vi", text) != text, text
        assert gettext("en", text) == text


def test_alerts_page_shows_the_same_readable_lines(world: World, client: TestClient) -> None:
    cond = Condition(
        Rule.HEAD_PRESSURE,
        "tank",
        77,
        world.fac_in,
        Severity.WARNING,
        {"pressure_bar": 18.2, "sensor_id": 5, "max_bar": 17, "low_bar": 2.0},
    )

    async def go() -> None:
        async with await AsyncConnection.connect(world.db_url) as conn:
            await apply(conn, [cond], datetime.now(UTC), CFG)

    asyncio.run(go())
    login(client, "staff-in")
    vi = client.get("/alerts?lang=vi").text
    assert "Áp suất bồn: 18,20 bar" in vi and "Áp suất tối đa cho phép: 17,00 bar" in vi
    assert "pressure_bar" not in vi
    en = client.get("/alerts?lang=en").text
    assert "Head pressure: 18.20 bar" in en and "Minimum supply pressure: 2.00 bar" in en
