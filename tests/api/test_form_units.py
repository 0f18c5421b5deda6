"""A typed figure's unit is never guessed (MISSION.md): the unit selects of the facility,
supplier and SYT forms start on "— chọn đơn vị —", and a figure sent without its unit comes back
with a field error next to it and nothing saved."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from api.accounting.config import AccountingConfig
from api.accounting.windows import local_today
from tests.api.conftest import USERNAMES, World, csrf_of, login

PLACEHOLDER = "— chọn đơn vị —"
ERROR = "Hãy chọn đơn vị của số liệu."
SELECT = re.compile(r'<select id="f-(\w+_unit)" name="\1"[^>]*>(.*?)</select>', re.S)


def _selects(html: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in SELECT.finditer(html)}


def _day() -> str:
    return (
        local_today(datetime.now(UTC), AccountingConfig.defaults()) - timedelta(days=1)
    ).isoformat()


def _assert_nothing_chosen(html: str, names: set[str]) -> None:
    selects = _selects(html)
    assert names <= set(selects), (names, sorted(selects))
    for name in names:
        options = selects[name]
        first = re.search(r"<option([^>]*)>([^<]*)</option>", options)
        assert first and 'value=""' in first.group(1) and first.group(2).strip() == PLACEHOLDER
        assert "selected" not in options, (name, options)


def _error_of(html: str, field: str) -> str | None:
    m = re.search(rf'id="err-{field}"[^>]*>([^<]*)<', html)
    return m.group(1) if m else None


def test_facility_form_needs_a_unit(client: TestClient, world: World) -> None:
    login(client, USERNAMES["facility"])
    day = _day()
    page = client.get(f"/facilities/{world.fac_in}/report?day={day}")
    assert page.status_code == 200
    _assert_nothing_chosen(
        page.text, {"stock_liquid_unit", "refilled_liquid_unit", "refilled_gas_unit"}
    )
    form = {
        "csrf_token": csrf_of(page.text),
        "day": day,
        "patients_current": "12",
        "patients_new": "1",
        "discharged_evening": "0",
        "refilled_gas": "2,5",
        "refilled_gas_unit": "",
    }
    r = client.post(f"/facilities/{world.fac_in}/report", data=form, follow_redirects=False)
    assert r.status_code == 422, r.text[:300]
    assert _error_of(r.text, "refilled_gas") == ERROR
    assert 'value="2,5"' in r.text  # what was typed is kept
    with psycopg.connect(world.db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM facility_reports WHERE facility_id = %s", (world.fac_in,)
        ).fetchone()
    assert row == (0,)
    form["refilled_gas_unit"] = "nm3"
    r = client.post(f"/facilities/{world.fac_in}/report", data=form, follow_redirects=False)
    assert r.status_code == 303, re.findall(r"(?:alert|flash|confirm)[^<]{0,200}", r.text)


def test_supplier_form_needs_a_unit(client: TestClient, world: World) -> None:
    login(client, USERNAMES["supplier"])
    page = client.get(f"/suppliers/{world.sup_in}/report")
    assert page.status_code == 200
    _assert_nothing_chosen(page.text, {"lox_stock_unit", "d0_liquid_unit", "d0_gas_unit"})
    day = re.search(r'name="day" value="([\d-]+)"', page.text)
    assert day
    form = {
        "csrf_token": csrf_of(page.text),
        "day": day.group(1),
        "production_t": "10",
        "lox_stock": "3",
    }
    r = client.post(f"/suppliers/{world.sup_in}/report", data=form, follow_redirects=False)
    assert r.status_code == 422, r.text[:300]
    assert _error_of(r.text, "lox_stock") == ERROR
    form["lox_stock_unit"] = "t"
    r = client.post(f"/suppliers/{world.sup_in}/report", data=form, follow_redirects=False)
    assert r.status_code == 303, re.findall(r"(?:alert|flash|confirm)[^<]{0,200}", r.text)


def test_syt_form_needs_a_unit(client: TestClient, world: World) -> None:
    login(client, USERNAMES["syt"])
    day = _day()
    page = client.get(f"/provinces/{world.syt_in}/report?day={day}")
    assert page.status_code == 200
    _assert_nothing_chosen(page.text, {"own_capacity_unit", "own_need_unit"})
    form = {"csrf_token": csrf_of(page.text), "day": day, "own_capacity": "1000"}
    r = client.post(f"/provinces/{world.syt_in}/report", data=form, follow_redirects=False)
    assert r.status_code == 422, r.text[:300]
    assert _error_of(r.text, "own_capacity") == ERROR
    # No figure, no unit: nothing to ask.
    r = client.post(
        f"/provinces/{world.syt_in}/report",
        data={"csrf_token": form["csrf_token"], "day": day},
        follow_redirects=False,
    )
    assert r.status_code == 303, re.findall(r"(?:alert|flash|confirm)[^<]{0,200}", r.text)


def test_coordination_request_form_has_no_preselected_unit(
    client: TestClient, world: World
) -> None:
    login(client, USERNAMES["syt"])
    page = client.get("/coordination")
    assert page.status_code == 200
    m = re.search(r'<select id="f-unit" name="unit"[^>]*>(.*?)</select>', page.text, re.S)
    assert m, "no unit select"
    first = re.search(r"<option([^>]*)>([^<]*)</option>", m.group(1))
    assert first and 'value=""' in first.group(1) and first.group(2).strip() == PLACEHOLDER
    assert "selected" not in m.group(1)
