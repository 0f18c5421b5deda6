"""Engineers act in the browser (issue 17), Debian Chromium on the demo country: the engineer
of Chợ Rẫy and Thủ Đức acknowledges a gateway's alarm and replays its quarantined readings after
the registry learnt their sensor; Bạch Mai's alarm and quarantine are never on their pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.web.conftest import LiveServer, login

pytestmark = pytest.mark.browser


def _one(server: LiveServer, sql: str, *args: object) -> int:
    with psycopg.connect(server.db_url) as conn:
        row = conn.execute(sql, args).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return int(row[0])


def test_engineer_acknowledges_and_replays(browser: Any, live_server: LiveServer) -> None:
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    choray = _one(live_server, "SELECT id FROM organisations WHERE code = 'BV-CHORAY'")
    bachmai = _one(live_server, "SELECT id FROM organisations WHERE code = 'BV-BACHMAI'")
    gw = _one(live_server, "SELECT id FROM gateways WHERE facility_id = %s ORDER BY id", choray)
    gw_out = _one(
        live_server, "SELECT id FROM gateways WHERE facility_id = %s ORDER BY id", bachmai
    )
    tank = _one(live_server, "SELECT id FROM tanks WHERE facility_id = %s ORDER BY id", choray)
    with psycopg.connect(live_server.db_url) as conn:
        code = conn.execute("SELECT code FROM gateways WHERE id = %s", (gw,)).fetchone()
        assert code is not None
        # A reading of a sensor the registry did not know yet, then the registry's fix.
        conn.execute(
            "INSERT INTO quarantine (topic, site, gateway, sensor, ts, value, unit, quality, "
            "reason) VALUES ('t', 'BV-CHORAY', %s, 'T1-new', %s, 3.3, 'bar', 0, 'unknown sensor')",
            (code[0], ts),
        )
        conn.execute(
            "INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit) "
            "VALUES (%s, 'T1-new', %s, 'head_pressure', 'bar')",
            (gw, tank),
        )
        for g, fac in ((gw, choray), (gw_out, bachmai)):
            conn.execute(
                "INSERT INTO alerts (rule, subject_kind, subject_id, facility_id, severity, "
                "opened_at, last_true_at) VALUES ('gateway_offline', 'gateway', %s, %s, "
                "'critical', %s, %s)",
                (g, fac, ts, ts),
            )
    page = login(browser, live_server, "kysu")
    page.goto(f"{live_server.url}/facilities/{choray}/gateways/{gw}")
    page.wait_for_selector("[data-testid=alarms]")
    alarms = page.inner_text("[data-testid=alarms]")
    assert "Gateway mất kết nối" in alarms
    assert page.locator("[data-testid=alarms] tbody tr[data-alert]").count() == 1
    page.click("[data-testid=alarms] button:has-text('Xác nhận')")
    page.wait_for_selector(".flash-success")
    assert page.url.endswith(f"/facilities/{choray}/gateways/{gw}")
    assert "Đã xác nhận" in page.inner_text("[data-testid=alarms]")
    assert "T1-new" in page.inner_text("[data-testid=quarantine]")
    page.click("[data-testid=replay-form] button")
    page.wait_for_selector(".flash-success")
    assert "Đã đưa 1 số đo ra khỏi khu cách ly" in page.inner_text(".flash-success")
    assert "T1-new" not in page.inner_text("[data-testid=quarantine]")
    assert "T1-new" in page.inner_text("[data-testid=sensors]")
    assert page.js_errors == []
    # Bạch Mai's gateway is not the engineer's: its page (and so its forms) is hidden.
    r = page.goto(f"{live_server.url}/facilities/{bachmai}/gateways/{gw_out}")
    assert r is not None and r.status == 404
    page.js_errors.clear()


def test_engineer_replays_a_tank_and_resolves_its_alarm(
    browser: Any, live_server: LiveServer
) -> None:
    """From a tank's diagnostics page: replay that tank's quarantined readings only (another
    tank on the same gateway keeps its own), and resolve the tank's alarm with a note."""
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    choray = _one(live_server, "SELECT id FROM organisations WHERE code = 'BV-CHORAY'")
    gw = _one(live_server, "SELECT id FROM gateways WHERE facility_id = %s ORDER BY id", choray)
    tank = _one(live_server, "SELECT id FROM tanks WHERE facility_id = %s ORDER BY id", choray)
    other = _one(
        live_server,
        "INSERT INTO tanks (facility_id, code, name, capacity_kg) "
        "VALUES (%s, 'T-WEB', 'Bồn thử', 5000) RETURNING id",
        choray,
    )
    with psycopg.connect(live_server.db_url) as conn:
        code = conn.execute("SELECT code FROM gateways WHERE id = %s", (gw,)).fetchone()
        assert code is not None
        for sensor, value in (("T1-web", 3.1), ("TW-web", 2.2)):
            conn.execute(
                "INSERT INTO quarantine (topic, site, gateway, sensor, ts, value, unit, quality, "
                "reason) VALUES ('t', 'BV-CHORAY', %s, %s, %s, %s, 'bar', 0, 'unknown sensor')",
                (code[0], sensor, ts, value),
            )
        conn.execute(
            "INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit) "
            "VALUES (%s, 'T1-web', %s, 'head_pressure', 'bar'), "
            "(%s, 'TW-web', %s, 'head_pressure', 'bar')",
            (gw, tank, gw, other),
        )
        row = conn.execute(
            "INSERT INTO alerts (rule, subject_kind, subject_id, facility_id, severity, "
            "opened_at, last_true_at) VALUES ('abnormal_consumption', 'tank', %s, %s, "
            "'warning', %s, %s) RETURNING id",
            (tank, choray, ts, ts),
        ).fetchone()
        assert row is not None
        alert = int(row[0])
    page = login(browser, live_server, "kysu")
    here = f"/facilities/{choray}/tanks/{tank}/diagnostics"
    page.goto(live_server.url + here)
    page.wait_for_selector("[data-testid=quarantine]")
    assert "T1-web" in page.inner_text("[data-testid=quarantine]")
    page.click("[data-testid=replay-form] button")
    page.wait_for_selector(".flash-success")
    assert page.url.endswith(here)
    assert "Đã đưa 1 số đo ra khỏi khu cách ly" in page.inner_text(".flash-success")
    assert "T1-web" not in page.inner_text("[data-testid=quarantine]")
    with psycopg.connect(live_server.db_url) as conn:
        left = {r[0] for r in conn.execute("SELECT sensor FROM quarantine")}
    assert "TW-web" in left and "T1-web" not in left  # the other tank's stays
    # Resolve the tank's alarm from the page: a note is required (the browser asks for it).
    form = page.locator(f"[data-testid=resolve-{alert}]")
    form.locator("input[name=note]").fill("Đã thay cảm biến áp suất")
    form.locator("button").click()
    page.wait_for_selector(".flash-success")
    assert page.url.endswith(here)
    assert page.locator(f"[data-testid=alarms] tr[data-alert='{alert}']").count() == 0
    with psycopg.connect(live_server.db_url) as conn:
        state = conn.execute(
            "SELECT state, resolution_note FROM alerts WHERE id = %s", (alert,)
        ).fetchone()
        trail = conn.execute(
            "SELECT username FROM audit_log WHERE action = 'resolve' AND entity_id = %s",
            (str(alert),),
        ).fetchall()
    assert state == ("resolved", "Đã thay cảm biến áp suất")
    assert [t[0] for t in trail] == ["kysu"]
    assert page.js_errors == []
