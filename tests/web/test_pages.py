"""Browser tests of the role pages: Playwright driving Debian's Chromium against the real app
(uvicorn, a migrated and seeded PostgreSQL). Screenshots of the key pages go to docs/screenshots.

The tests of one module share the seeded database and run in file order (the SYT report uses the
facility report filed before it; the BYT approves what the SYT sent).
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from api import i18n
from api.web.templating import template_dirs
from tests.web.conftest import FAULT, LiveServer, login

pytestmark = pytest.mark.browser

# `OXY_SCREENSHOTS=update pytest tests/web` refreshes the committed docs/screenshots; an ordinary
# run takes the same screenshots into a temporary folder, so a test run never edits the tree.
SHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("OXY_SCREENSHOTS") == "update"
    else Path(tempfile.gettempdir()) / "oxy-screenshots"
)
VN = ZoneInfo("Asia/Ho_Chi_Minh")


def shot(page: Any, name: str) -> None:
    """Take a screenshot of a key page (kept in docs/screenshots with OXY_SCREENSHOTS=update)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def no_js_errors(page: Any) -> None:
    """No script error and no CSP violation (both reach the console as errors)."""
    assert page.js_errors == [], page.js_errors


def fits_phone(page: Any, width: int = 390) -> None:
    """Nothing sticks out sideways at phone width (tables scroll inside their own wrapper)."""
    wide = page.evaluate(
        "w => [...document.querySelectorAll('body *')].filter(e =>"
        " e.getBoundingClientRect().right > w + 1 && e.parentElement.getBoundingClientRect().right"
        " <= w + 1).map(e => e.tagName + '.' + e.className)",
        width,
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= width, wide


def dos(page: Any) -> float:
    """The days of supply shown on a tank page (Vietnamese number format)."""
    raw = page.inner_text("[data-testid=days-of-supply]").strip()
    return float(raw.replace(".", "").replace(",", "."))


EXPECTED_MENU = {
    "admin": ["/admin/facilities", "/admin/tanks", "/admin/gateways", "/admin/users", "/byt"],
    "byt": ["/byt"],
    "syt79": ["/syt", "/syt/reports", "/syt/facilities"],
    "choray": ["/facility/report", "/facility"],
    "ncc": ["/supplier"],
    "kysu": ["/facilities"],
}


@pytest.mark.parametrize("username", list(EXPECTED_MENU))
def test_each_role_logs_in_and_sees_its_functions(
    browser: Any, live_server: LiveServer, username: str
) -> None:
    page = login(browser, live_server, username, width=390)
    links = page.eval_on_selector_all("ul.tiles a", "els => els.map(e => e.getAttribute('href'))")
    for path in EXPECTED_MENU[username]:
        assert path in links
    if username != "admin":  # another role's functions are not offered
        assert not {"/admin/facilities", "/admin/users"} & set(links)
    assert page.locator("html").get_attribute("lang") == "vi"
    if username == "choray":
        fits_phone(page)
    shot(page, "home-facility-phone")
    if username == "kysu":  # an engineer sees only the facilities assigned to them
        page.goto(live_server.url + "/facilities")
        names = page.inner_text("[data-testid=facility-list]")
        assert "Chợ Rẫy" in names and "Thủ Đức" in names and "Bạch Mai" not in names
    no_js_errors(page)


def test_correcting_a_faulty_reading_changes_days_of_supply(
    browser: Any, live_server: LiveServer
) -> None:
    page = login(browser, live_server, "choray")
    page.goto(live_server.url + "/facility")
    assert re.search(r"/facilities/\d+/tanks$", page.url)
    page.click("text=T1 — Bồn oxy lỏng T1")
    page.wait_for_selector("#contents-chart")
    before = dos(page)
    assert before < 0.5  # the gauge fault makes the tank look empty
    # The tanker delivery two days ago is found in the telemetry.
    assert page.locator("[data-testid=refills] tbody tr td.num").count() >= 3
    with psycopg.connect(live_server.db_url) as conn:
        row = conn.execute(
            "SELECT max(r.ts) FROM readings r JOIN sensors s ON s.id = r.sensor_id "
            "JOIN tanks t ON t.id = s.tank_id JOIN organisations o ON o.id = t.facility_id "
            "WHERE o.code = 'BV-CHORAY' AND s.code = 'T1-dp'"
        ).fetchone()
    assert row is not None
    last: datetime = row[0]
    start = (last - FAULT - timedelta(minutes=1)).astimezone(VN)
    end = (last + timedelta(minutes=1)).astimezone(VN)
    # A missing reason is refused next to the field, in Vietnamese, and nothing is stored.
    page.fill("#f-ts_from", start.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#f-ts_to", end.strftime("%Y-%m-%dT%H:%M"))
    page.click("[data-testid=correction-save]")
    err = page.locator("#err-reason")
    assert err.is_visible()
    assert "bắt buộc" in err.inner_text()
    assert page.locator("#f-reason").get_attribute("aria-invalid") == "true"
    page.fill("#f-reason", "Đồng hồ chênh áp báo 0 do lỗi cảm biến")
    # Before saving, the page shows the readings of the window and the effect of the correction.
    page.click("[data-testid=correction-preview-button]")
    preview = page.locator("[data-testid=correction-preview]")
    assert preview.is_visible() and page.locator("[data-testid=preview-chart]").is_visible()
    assert "Cần bổ sung" in preview.inner_text() and "Đủ" in preview.inner_text()
    # It flips the status: saving it needs an explicit confirmation.
    page.click("[data-testid=correction-save]")
    assert page.locator("#err-confirm").is_visible()
    assert page.input_value("#f-reason") == "Đồng hồ chênh áp báo 0 do lỗi cảm biến"
    page.check("[data-testid=correction-confirm]")
    page.click("[data-testid=correction-save]")
    page.wait_for_selector(".flash-success")
    after = dos(page)
    assert after > before + 1.0
    assert "Đồng hồ chênh áp báo 0" in page.inner_text("table.corrections-list")
    shot(page, "facility-tank")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    fits_phone(page)
    shot(page, "facility-tank-phone")
    no_js_errors(page)


def test_facility_files_its_daily_report(browser: Any, live_server: LiveServer) -> None:
    page = login(browser, live_server, "choray", width=390)
    page.goto(live_server.url + "/facility/report")
    # Figures from the tank sensors are labelled with their source.
    assert page.locator("[data-source=telemetry]").count() >= 2
    yesterday = (datetime.now(VN) - timedelta(days=1)).date()
    page.goto(page.url.split("?")[0] + f"?day={yesterday.isoformat()}")
    # The morning update (discharges as of 08:00) comes first and is added to field 7.
    page.fill("#f-discharged_morning", "-3")
    page.click("[data-testid=morning-submit]")
    assert page.locator("#err-discharged_morning").is_visible()
    page.fill("#f-discharged_morning", "4")
    page.click("[data-testid=morning-submit]")
    page.wait_for_selector(".flash-success")
    assert page.inner_text("[data-testid=morning-value]") == "4"
    # A number beyond any count is a field error next to the field, and nothing typed is lost.
    page.fill("#f-patients_current", "3000000000")
    page.fill("#f-notes", "ghi chú đã nhập")
    page.click("[data-testid=file-report]")
    assert page.locator("#err-patients_current").is_visible()
    assert page.input_value("#f-patients_current") == "3000000000"
    assert page.input_value("#f-notes") == "ghi chú đã nhập"
    page.fill("#f-patients_current", "120")
    page.fill("#f-patients_new", "14")
    page.fill("#f-discharged_evening", "6")
    page.fill("#f-o2_mask", "150")  # more on oxygen than patients: refused
    page.fill("#f-stock_liquid", "9.999")  # differs from telemetry, no reason: refused
    page.select_option("#f-stock_liquid_unit", "kg")  # the unit is chosen, never guessed
    page.click("[data-testid=file-report]")
    assert page.locator(".field-error").count() >= 2
    assert page.locator("#err-stock_liquid").is_visible()
    assert page.inner_text("#err-stock_liquid") == i18n.gettext(
        "vi", "A figure filled in from the tank sensors can only be changed with a reason."
    )
    assert page.locator("#err-on_oxygen").is_visible()
    assert page.input_value("#f-patients_current") == "120"  # the typed figures are kept
    fits_phone(page)
    shot(page, "facility-report-errors-phone")
    page.fill("#f-o2_mask", "40")
    page.fill("#f-o2_hfnc", "10")
    page.fill("#f-stock_liquid", "")
    page.click("[data-testid=file-report]")
    page.wait_for_selector(".flash-success")
    assert "(lần sửa 2)" in page.inner_text(".flash-success")  # after the morning update
    assert page.locator("text=Lịch sử chỉnh sửa").count() == 1
    # An edit is a new revision.
    page.fill("#f-patients_current", "125")
    page.click("[data-testid=file-report]")
    page.wait_for_selector(".flash-success")
    assert "(lần sửa 3)" in page.inner_text(".flash-success")
    history = page.inner_text("table:below(:text('Lịch sử chỉnh sửa'))")
    assert (
        "Sửa báo cáo" in history and "Báo cáo 16:00" in history and "Báo cáo buổi sáng" in history
    )
    fits_phone(page)
    shot(page, "facility-report-phone")
    # More patients than the hospital's 1,800 beds: a warning confirmed with a reason, stored.
    earlier = yesterday - timedelta(days=2)
    page.goto(page.url.split("?")[0] + f"?day={earlier.isoformat()}")
    page.fill("#f-patients_current", "2000")
    page.fill("#f-patients_new", "10")
    page.fill("#f-discharged_evening", "5")
    page.click("[data-testid=file-report]")
    assert page.locator("#err-patients_current").is_visible()
    page.fill("[data-testid=confirm-patients_current]", "Mở thêm khu điều trị dã chiến")
    page.click("[data-testid=file-report]")
    page.wait_for_selector(".flash-success")
    assert "Mở thêm khu điều trị dã chiến" in page.inner_text("[data-testid=confirmed-warnings]")
    no_js_errors(page)


def test_syt_composes_sends_and_views_edit_history(browser: Any, live_server: LiveServer) -> None:
    page = login(browser, live_server, "syt79")
    page.goto(live_server.url + "/syt")
    yesterday = (datetime.now(VN) - timedelta(days=1)).date()
    assert page.input_value("#f-day") == yesterday.isoformat()  # field 3 defaults to yesterday
    assert page.inner_text("[data-field='10']").strip() == "4"  # facilities under SYT-79
    assert page.inner_text("[data-field='5']").strip() == "125"  # from Chợ Rẫy's report
    assert page.inner_text("[data-field='7']").strip() == "10"  # 4 in the morning + 6 at 16:00
    assert page.inner_text("[data-field='8']").strip() == "3"  # three have not reported
    # Field 1: filter by status.
    page.select_option("#f-status", "needs_more")
    page.click("text=Áp dụng bộ lọc")
    rows_needing = page.locator("[data-testid=facility-table] tbody tr").count()
    page.select_option("#f-status", "all")
    page.click("text=Áp dụng bộ lọc")
    assert page.locator("[data-testid=facility-table] tbody tr").count() >= rows_needing
    # Sending without the notice (field 12) is refused next to it.
    page.click("[data-testid=send-to-byt]")
    assert page.locator("#err-notice").is_visible()
    page.fill("#f-notice", "Tình hình ổn định, BV Thủ Đức cần bổ sung oxy lỏng.")
    page.fill("#f-own_capacity", "250.000")
    page.fill("#f-own_need", "9.000")
    page.select_option("#f-own_capacity_unit", "nm3")
    page.select_option("#f-own_need_unit", "nm3")
    shot(page, "syt-composer")
    # Three facilities have not reported: the incomplete sums are listed ("1/4") and sending
    # them needs the explicit confirmation.
    assert "5: 1/4" in page.inner_text("[data-testid=incomplete-figures]")
    page.click("[data-testid=send-to-byt]")
    assert "chưa gồm đủ các cơ sở" in page.inner_text("main")  # refused, and says why
    page.fill("#f-notice", "Tình hình ổn định, BV Thủ Đức cần bổ sung oxy lỏng.")
    page.check("[data-testid=confirm-incomplete]")
    page.click("[data-testid=send-to-byt]")
    page.wait_for_selector("[data-testid=edit-history]")
    assert "Đã gửi" in page.inner_text("[data-testid=syt-state]")
    # Edit and send again: the history shows both sendings.
    page.click("a.button-link:has-text('Sửa')")
    page.fill("#f-notice", "Cập nhật: BV Thủ Đức đã được tiếp nhận 5 tấn oxy lỏng.")
    page.check("[data-testid=confirm-incomplete]")
    page.click("[data-testid=send-to-byt]")
    page.wait_for_selector("[data-testid=edit-history]")
    history = page.inner_text("[data-testid=edit-history]")
    assert history.count("Gửi Bộ Y tế") >= 2
    assert "Cập nhật: BV Thủ Đức" in page.inner_text("[data-testid=as-sent]")
    shot(page, "syt-report-history")
    page.goto(live_server.url + "/syt/reports")
    sent = page.inner_text("[data-testid=sent-reports]")
    assert "Lịch sử chỉnh sửa" in sent and "Chi tiết" in sent and "Sửa" in sent
    page.goto(live_server.url + "/syt/facilities")
    assert page.locator("[data-testid=facility-table] tbody tr").count() == 4
    no_js_errors(page)


def test_supplier_reports_production_and_deliveries(browser: Any, live_server: LiveServer) -> None:
    page = login(browser, live_server, "ncc", width=390)
    page.goto(live_server.url + "/supplier")
    page.fill("#f-production_t", "150")
    page.fill("#f-capacity_normal_tpd", "180")
    page.fill("#f-capacity_full_tpd", "100")  # below normal: refused
    choray = page.eval_on_selector(
        "#f-d0_facility",
        "s => [...s.options].find(o => o.text.includes('Chợ Rẫy')).value",
    )
    page.select_option("#f-d0_facility", choray)
    page.fill("#f-d0_liquid", "5")
    page.select_option("#f-d0_liquid_unit", "t")
    page.click("[data-testid=save-supplier-report]")
    assert page.locator("#err-capacity_full_tpd").is_visible()
    page.fill("#f-capacity_full_tpd", "240")
    page.click("[data-testid=save-supplier-report]")
    page.wait_for_selector(".flash-success")
    assert page.input_value("#f-d0_liquid") == "5.000"  # stored in kg, shown per locale
    fits_phone(page)
    shot(page, "supplier-report-phone")
    no_js_errors(page)


def test_byt_map_dashboard_and_approval(browser: Any, live_server: LiveServer) -> None:
    # Thủ Đức asks for oxygen through the coordination API; the map shows the open request.
    staff = login(browser, live_server, "syt79")
    staff.goto(live_server.url + "/syt/facilities")
    token = staff.get_attribute("input[name=csrf_token]", "value")
    with psycopg.connect(live_server.db_url) as conn:
        row = conn.execute("SELECT id FROM organisations WHERE code = 'BV-THUDUC'").fetchone()
    assert row is not None
    needed_by = (datetime.now(UTC) + timedelta(hours=12)).isoformat()
    made = staff.request.post(
        f"{live_server.url}/api/facilities/{row[0]}/support-requests",
        data={"amount": {"value": 6000, "unit": "kg"}, "needed_by": needed_by},
        headers={"X-CSRF-Token": token or ""},
    )
    assert made.status == 201, made.text()
    page = login(browser, live_server, "byt")
    page.goto(live_server.url + "/byt")
    page.wait_for_selector("#map .leaflet-overlay-pane path.leaflet-interactive")
    # The points arrive after the page's first paint (GET /map/data): map.js clears aria-busy
    # once they are drawn.
    page.wait_for_selector("#map:not([aria-busy])")
    # The offline base (Natural Earth outlines) loaded from this server, with the archipelagos.
    page.wait_for_selector("#map .island-label")
    labels = page.inner_text("#map .leaflet-marker-pane")
    assert "Hoàng Sa" in labels and "Trường Sa" in labels
    # 13 facilities + provinces + 3 suppliers are drawn; clicking one shows its details.
    assert page.locator("#map path.leaflet-interactive").count() >= 16
    assert page.locator("#map path.fac-marker").count() == 13
    page.wait_for_selector("#map path.request-ring")
    with psycopg.connect(live_server.db_url) as conn:
        choray = conn.execute("SELECT id FROM organisations WHERE code = 'BV-CHORAY'").fetchone()
    assert choray is not None
    page.locator(f"#map path.fac-{choray[0]}").dispatch_event("click")
    page.wait_for_selector(".leaflet-popup-content a")
    popup = page.inner_text(".leaflet-popup-content")
    assert "Bệnh viện Chợ Rẫy" in popup and "Số ngày đủ dùng" in popup
    # A province's circle says how many of its facilities its colour stands for.
    page.locator("#map path.prov-marker").first.dispatch_event("click")
    popup = page.locator(".leaflet-popup-content", has_text="cơ sở đã báo cáo").inner_text()
    assert re.search(r"\d+/\d+ cơ sở đã báo cáo", popup)
    assert re.search(r"\d+/\d+ cơ sở có số ngày đủ dùng", popup)
    assert page.locator("#supply-chart").count() == 1
    assert page.locator("[data-testid=province-table] tbody tr").count() >= 5
    # Each sum says how many facilities it stands for ("n/m", with a tooltip).
    tip = page.locator("[data-testid=province-table] [data-testid=contributors]").first
    assert re.fullmatch(r"\d+/\d+", tip.inner_text().strip())
    assert "cơ sở góp vào tổng này" in (tip.get_attribute("title") or "")
    page.wait_for_timeout(400)  # let the popup finish fading in
    shot(page, "byt-dashboard")
    # Send the SYT's report back with a reason; the SYT sends it again; then approve it.
    page.click("[data-testid=received-reports] a:has-text('Duyệt hoặc trả lại')")
    page.fill("#f-reason", "Thiếu số liệu của BV Bệnh Nhiệt đới")
    page.click("button:has-text('Trả lại')")
    page.wait_for_selector(".flash-success")
    assert "Bị trả lại" in page.inner_text("[data-testid=syt-state]")
    assert "Thiếu số liệu của BV Bệnh Nhiệt đới" in page.inner_text("[data-testid=edit-history]")
    syt = login(browser, live_server, "syt79")
    syt.goto(live_server.url + "/syt/reports")
    assert "Thiếu số liệu của BV Bệnh Nhiệt đới" in syt.inner_text("[data-testid=sent-reports]")
    syt.click("[data-testid=sent-reports] a:text-is('Sửa')")
    assert "Thiếu số liệu" in syt.inner_text("main")  # the reason is shown while editing
    syt.check("[data-testid=confirm-incomplete]")
    syt.click("[data-testid=send-to-byt]")
    syt.wait_for_selector("[data-testid=edit-history]")
    no_js_errors(syt)
    page.goto(live_server.url + "/byt")
    page.click("[data-testid=received-reports] a:has-text('Duyệt hoặc trả lại')")
    # The copy as sent is shown whole beside the live figures; approval asks for a confirmation.
    assert page.locator("[data-testid=as-sent]").is_visible()
    assert page.locator("[data-testid=changed-since-sent]").count() == 0
    page.check("[data-testid=approve-confirm]")
    # Sent with incomplete figures: approving without that confirmation is refused.
    page.click("[data-testid=approve]")
    page.wait_for_selector(".flash-error")
    assert "Đã gửi" in page.inner_text("[data-testid=syt-state]")
    page.check("[data-testid=approve-confirm]")
    page.check("[data-testid=confirm-incomplete]")
    page.click("[data-testid=approve]")
    page.wait_for_selector(".flash-success")
    assert "Đã duyệt" in page.inner_text("[data-testid=syt-state]")
    # Approval locks the report: the SYT can no longer edit it.
    syt.goto(syt.url)
    assert syt.locator("a.button-link:has-text('Sửa')").count() == 0
    no_js_errors(page)


def test_map_markers_are_reachable_and_operable_by_keyboard(
    browser: Any, live_server: LiveServer
) -> None:
    page = login(browser, live_server, "byt")
    page.goto(live_server.url + "/byt")
    page.wait_for_selector("#map path.fac-marker")
    # Every facility marker is a named tab stop.
    markers = page.locator("#map path.fac-marker")
    assert markers.count() == 13
    for i in range(markers.count()):
        m = markers.nth(i)
        assert (m.get_attribute("tabindex"), m.get_attribute("role")) == ("0", "button")
        assert m.get_attribute("aria-label")
    # From the map, Tab moves through the markers to a facility marker.
    page.focus("#map")
    label = None
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('fac-marker')"):
            label = page.evaluate("document.activeElement.getAttribute('aria-label')")
            break
    assert label, "Tab never reached a facility marker"
    name, _, status = label.partition(" — ")
    assert status.split(",")[0] in {"Đủ", "Cần bổ sung", "Chưa rõ"}
    assert page.locator(".leaflet-popup").count() == 0
    # Enter opens the same popup as a click: the facility's details and a link to its tanks.
    page.keyboard.press("Enter")
    page.wait_for_selector(".leaflet-popup-content a")
    popup = page.inner_text(".leaflet-popup-content")
    assert name in popup and "Số ngày đủ dùng" in popup
    # Escape closes it; Space opens it again.
    page.keyboard.press("Escape")
    page.wait_for_selector(".leaflet-popup", state="detached")
    page.keyboard.press(" ")
    page.wait_for_selector(".leaflet-popup-content a")
    assert name in page.inner_text(".leaflet-popup-content")
    no_js_errors(page)


def test_admin_registry_pages_and_english_switch(browser: Any, live_server: LiveServer) -> None:
    page = login(browser, live_server, "admin")
    page.goto(live_server.url + "/admin/facilities")
    assert page.locator("text=Bệnh viện Chợ Rẫy").count() >= 1
    page.goto(live_server.url + "/admin/tanks")
    page.click("a:has-text('v1') >> nth=0")
    assert page.locator("table tbody tr").count() >= 5
    page.goto(live_server.url + "/admin/gateways")
    assert page.locator("text=gw-bv-choray").count() >= 1
    assert page.locator("text=T1-dp").count() >= 1
    page.goto(live_server.url + "/admin/tanks?lang=en")
    assert page.locator("h1").inner_text() == "Tanks and calibration"
    assert page.locator("html").get_attribute("lang") == "en"
    shot(page, "admin-tanks-en")
    no_js_errors(page)


def test_assets_come_from_npm_not_a_cdn(live_server: LiveServer) -> None:
    import httpx

    r = httpx.get(live_server.url + "/vendor/leaflet/leaflet.js")
    assert r.status_code == 200 and "Leaflet" in r.text[:500]
    assert httpx.get(live_server.url + "/vendor/leaflet/package.json").status_code == 404
    assert httpx.get(live_server.url + "/vendor/leaflet/../../package.json").status_code == 404
    assert httpx.get(live_server.url + "/vendor/left-pad/index.js").status_code == 404
    for path in (p for d in template_dirs().values() for p in d.rglob("*.html")):
        assert "//cdn" not in path.read_text() and "unpkg" not in path.read_text()
