"""Coordination on the map (issue 17), in Debian Chromium on the demo country: open requests by
urgency and shipments assigned or on the road on BYT's map and on a department's, with popups in
Vietnamese linking to the request's page; a department sees only its own province (a request of
another province on its map fails the test)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.web.conftest import LiveServer, login
from tests.web.test_role_tasks import _id

pytestmark = pytest.mark.browser


def _ask(page: Any, server: LiveServer, facility: int, kg: int) -> int:
    """A support request through the API, as the logged-in page's user."""
    token = page.get_attribute("input[name=csrf_token]", "value")
    made = page.request.post(
        f"{server.url}/api/facilities/{facility}/support-requests",
        data={
            "amount": {"value": kg, "unit": "kg"},
            "needed_by": (datetime.now(UTC) + timedelta(hours=12)).isoformat(),
        },
        headers={"X-CSRF-Token": token or ""},
    )
    assert made.status == 201, made.text()
    return int(made.json()["id"])


def test_requests_and_shipments_on_the_maps(browser: Any, live_server: LiveServer) -> None:
    choray, bachmai = _id(live_server, "BV-CHORAY"), _id(live_server, "BV-BACHMAI")
    supplier = _id(live_server, "NCC-KHIMIENNAM")
    byt = login(browser, live_server, "byt")
    byt.goto(live_server.url + "/coordination")
    ours = _ask(byt, live_server, choray, 4000)
    theirs = _ask(byt, live_server, bachmai, 2500)
    with psycopg.connect(live_server.db_url) as conn:  # urgency comes from days of supply
        conn.execute("UPDATE support_requests SET urgency = 'critical' WHERE id = %s", (ours,))
        conn.execute("UPDATE support_requests SET urgency = 'normal' WHERE id = %s", (theirs,))
    token = byt.get_attribute("input[name=csrf_token]", "value")
    assigned = byt.request.post(
        f"{live_server.url}/api/coordination/requests/{ours}/assignments",
        data={"parts": [{"source_id": supplier, "amount": {"value": 3000, "unit": "kg"}}]},
        headers={"X-CSRF-Token": token or ""},
    )
    assert assigned.status in (200, 201), assigned.text()

    # BYT's map: both requests, the critical one red and larger, the shipment from the supplier.
    byt.goto(live_server.url + "/byt")
    byt.wait_for_selector(f"#map path.req-{ours}")
    byt.wait_for_selector(f"#map path.req-{theirs}")
    assert byt.locator(f"#map path.req-{ours}.urgency-critical").count() == 1
    assert byt.locator(f"#map path.req-{theirs}.urgency-normal").count() == 1
    assert byt.get_attribute(f"#map path.req-{ours}", "stroke") == "#b3261e"
    byt.wait_for_selector(f"#map path.flow-req-{ours}.flow-pending")
    byt.locator(f"#map path.flow-req-{ours}").dispatch_event("click")
    byt.wait_for_selector(".leaflet-popup-content a")
    popup = byt.inner_text(".leaflet-popup-content")
    assert "Khí công nghiệp Miền Nam" in popup and "Chờ xác nhận" in popup, popup
    byt.locator(f"#map path.req-{ours}").dispatch_event("click")
    byt.wait_for_function(
        "() => document.querySelector('.leaflet-popup-content').innerText.includes('Nguy cấp')"
    )
    popup = byt.inner_text(".leaflet-popup-content")
    assert "Chợ Rẫy" in popup and "Mức khẩn cấp" in popup and "1.000 kg" in popup, (
        popup
    )  # still needed
    assert byt.get_attribute(".leaflet-popup-content a", "href") == f"/coordination/requests/{ours}"
    assert byt.js_errors == []

    # The department's map (its coordination page): its own request only, and its facilities.
    syt = login(browser, live_server, "syt79")
    syt.goto(live_server.url + "/coordination")
    syt.wait_for_selector(f"#map path.req-{ours}")
    syt.wait_for_selector("#map path.fac-marker")
    assert syt.locator(f"#map path.req-{theirs}").count() == 0
    assert syt.locator(f"#map path.fac-{bachmai}").count() == 0
    assert syt.locator(f"#map path.fac-{choray}").count() == 1
    assert syt.locator(f"#map path.flow-req-{ours}").count() == 1
    syt.locator(f"#map path.req-{ours}").dispatch_event("click")
    syt.wait_for_selector(".leaflet-popup-content a")
    syt.click(".leaflet-popup-content a")
    syt.wait_for_url(f"**/coordination/requests/{ours}")
    syt.wait_for_selector("[data-testid=request-state]")
    assert syt.js_errors == []
