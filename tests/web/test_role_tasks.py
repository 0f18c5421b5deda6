"""Browser tests of the tasks issue 17 brought to the screen, one role after the other, on the
demo country: BYT's and an SYT's reporting rate, the engineer's gateways and tank diagnostics,
an SYT issuing a facility account, and the coordination from request to confirmed receipt.
A scope leak (another province's or facility's data on a page) fails them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from api import i18n
from tests.web.conftest import LiveServer, login
from tests.web.test_pages import shot

pytestmark = pytest.mark.browser


def _id(server: LiveServer, code: str) -> int:
    with psycopg.connect(server.db_url) as conn:
        row = conn.execute("SELECT id FROM organisations WHERE code = %s", (code,)).fetchone()
    assert row is not None
    return int(row[0])


def _no_errors(page: Any) -> None:
    assert page.js_errors == []


def test_reporting_rate_byt_and_syt(browser: Any, live_server: LiveServer) -> None:
    page = login(browser, live_server, "byt")
    # The map page's chart arrives after the page (GET /byt/supply-chart) and is drawn.
    page.goto(live_server.url + "/byt")
    page.wait_for_function(
        "() => window.Chart && Chart.getChart(document.getElementById('supply-chart'))"
    )
    page.click("nav a[href='/byt/reporting-rate']")
    page.wait_for_selector("[data-testid=rate-parents]")
    parents = page.inner_text("[data-testid=rate-parents]")
    assert "Sở Y tế" in parents
    # Drill down into Ho Chi Minh City's department: its facilities and those not reported.
    syt79 = _id(live_server, "SYT-79")
    page.click(f"[data-testid=rate-parents] a[href^='/provinces/{syt79}/reporting-rate']")
    page.wait_for_selector("[data-testid=rate-facilities]")
    facilities = page.inner_text("[data-testid=rate-facilities]")
    assert "Chợ Rẫy" in facilities and "Bạch Mai" not in facilities
    assert page.locator("[data-testid=rate-missing] tbody tr").count() >= 1
    shot(page, "syt-reporting-rate")
    _no_errors(page)
    # The department itself lands on its own province and cannot open another.
    syt = login(browser, live_server, "syt79")
    syt.click("nav a[href='/syt/reporting-rate']")
    syt.wait_for_selector("[data-testid=rate-facilities]")
    assert syt.url.endswith(f"/provinces/{syt79}/reporting-rate")
    other = _id(live_server, "SYT-01")
    r = syt.goto(f"{live_server.url}/provinces/{other}/reporting-rate")
    assert r is not None and r.status == 404
    syt.js_errors.clear()


def test_engineer_gateways_and_tank_diagnostics(browser: Any, live_server: LiveServer) -> None:
    page = login(browser, live_server, "kysu")
    page.click("nav a[href='/gateways']")
    page.wait_for_selector("[data-testid=gateways]")
    table = page.inner_text("[data-testid=gateways]")
    # The engineer looks after Chợ Rẫy and Thủ Đức only.
    assert "gw-bv-choray" in table and "gw-bv-thuduc" in table
    assert "gw-bv-bachmai" not in table
    page.click("a:has-text('gw-bv-choray')")
    page.wait_for_selector("[data-testid=sensors]")
    assert "BV-CHORAY-T1-dp" in page.inner_text("[data-testid=sensors]") or (
        page.locator("[data-testid=sensors] tbody tr").count() >= 1
    )
    page.locator("[data-testid=sensors] a[href$='/diagnostics']").first.click()
    page.wait_for_selector("[data-testid=hourly]")
    hourly = page.locator("[data-testid=hourly] tbody tr")
    assert hourly.count() == 48
    assert page.locator("[data-testid=grafana-link]").count() == 1
    shot(page, "engineer-tank-diagnostics")
    _no_errors(page)
    bachmai = _id(live_server, "BV-BACHMAI")
    r = page.goto(f"{live_server.url}/facilities/{bachmai}/tanks/1/diagnostics")
    assert r is not None and r.status == 404
    page.js_errors.clear()


def test_syt_issues_a_facility_account(browser: Any, live_server: LiveServer) -> None:
    page = login(browser, live_server, "syt79")
    page.click("nav a[href='/accounts']")
    page.wait_for_selector("[data-testid=accounts]")
    options = page.inner_text("#f-org_code")
    assert "BV-CHORAY" in options and "BV-BACHMAI" not in options
    page.fill("#f-username", "duoc.choray")
    page.fill("#f-display_name", "Khoa Dược BV Chợ Rẫy")
    page.select_option("#f-org_code", "BV-CHORAY")
    page.click("button:has-text('Cấp tài khoản')")
    page.wait_for_selector("[data-testid=issued] code.secret")
    assert len(page.inner_text("[data-testid=issued] code.secret")) >= 12
    assert "duoc.choray" in page.inner_text("[data-testid=accounts]")
    page.reload()
    assert page.locator("[data-testid=issued]").count() == 0  # shown once
    _no_errors(page)


def test_coordination_from_request_to_receipt(browser: Any, live_server: LiveServer) -> None:
    choray = _id(live_server, "BV-CHORAY")
    syt = login(browser, live_server, "syt79")
    syt.click("nav a[href='/coordination']")
    syt.wait_for_selector("[data-testid=request-form]")
    syt.select_option("#f-facility_id", str(choray))
    syt.fill("#f-amount", "3.000")
    syt.select_option("#f-unit", "kg")
    from datetime import UTC, datetime

    later = i18n.to_local(datetime.now(UTC) + timedelta(hours=20)).strftime("%Y-%m-%dT%H:%M")
    syt.fill("#f-needed_by", later)
    syt.click("button:has-text('Yêu cầu oxy')")
    syt.wait_for_selector("[data-testid=request-state]")
    assert "Đang mở" in syt.inner_text("[data-testid=request-state]")
    request_url = syt.url
    syt.click("[data-testid=show-suggestion]")
    syt.wait_for_selector("[data-testid=suggested]")
    shot(syt, "coordination-request")
    _no_errors(syt)
    # The Ministry assigns the supplier (it is in another province than the department).
    byt = login(browser, live_server, "byt")
    byt.goto(request_url)
    supplier = _id(live_server, "NCC-KHIMIENNAM")
    byt.select_option("#f-source_id", str(supplier))
    byt.fill("#f-amount_kg", "3000")
    byt.click("[data-testid=assign-form] button[type=submit]")
    byt.wait_for_selector(".flash")
    assert byt.locator(".flash-success").count() == 1, byt.inner_text(".flash")
    assert "Chờ xác nhận" in byt.inner_text("[data-testid=assignments]")
    _no_errors(byt)
    # The supplier acknowledges and dispatches.
    ncc = login(browser, live_server, "ncc")
    ncc.click("nav a[href='/supplier/assignments']")
    ncc.wait_for_selector("[data-testid=assignments]")
    ncc.click("[data-testid=assignments] button:has-text('Nhận')")
    ncc.wait_for_selector(".flash-success")
    ncc.click("[data-testid=assignments] button:has-text('Xuất hàng')")
    ncc.wait_for_selector("[data-testid=deliveries] tbody tr[data-delivery]")
    ncc.click("[data-testid=deliveries] button:has-text('Đang vận chuyển')")
    ncc.wait_for_selector(".flash-success")
    _no_errors(ncc)
    # The facility sees it coming and confirms receipt.
    fac = login(browser, live_server, "choray")
    fac.click("nav a[href='/facility/coming']")
    fac.wait_for_selector("[data-testid=deliveries] tr[data-delivery]")
    assert "Khí công nghiệp Miền Nam" in fac.inner_text("[data-testid=deliveries]")
    fac.click("[data-testid=deliveries] button:has-text('Xác nhận đã nhận')")
    fac.wait_for_selector(".flash-success")
    assert "Đã xác nhận" in fac.inner_text("[data-testid=deliveries]")
    _no_errors(fac)
