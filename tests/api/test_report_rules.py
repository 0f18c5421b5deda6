"""Validation rules as data (api/reports/rules.py) through the API and the HTML form: required
figures, cross-field rules, hard limits that refuse, warnings relative to the facility that the
user confirms with a reason (stored), integer overflow as a field error; nothing typed is lost."""

from __future__ import annotations

import asyncio
import re
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.accounting.config import AccountingConfig
from api.accounting.simulate import TankPlan, add_facility, add_tank
from api.accounting.windows import local_today
from api.app import create_app
from api.reports import rules
from api.scope import Role
from oxy.settings import load_settings
from tests.api.test_reports import PASSWORD, _org, _user
from tests.fix_db import Seed, seeded

CFG = AccountingConfig.defaults()


@dataclass
class W:
    day: date
    ids: dict[str, int]
    tokens: dict[str, str]


async def _build(url: str) -> W:
    day = local_today(datetime.now(UTC), CFG) - timedelta(days=1)
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        hn = await _org(conn, "SYT-01")
        ids = {"syt01": hn}
        ids["F"] = await add_facility(conn, "BV-RULES", hn, "01")
        await conn.execute("UPDATE facilities SET beds = 100 WHERE org_id = %s", (ids["F"],))
        await add_tank(
            conn,
            ids["F"],
            "T1",
            TankPlan(10000.0, 2.0, 0.0, 0.0),
            valid_from=datetime(2020, 1, 1, tzinfo=UTC),
            monitored=False,
        )
        cur = await conn.execute(
            "INSERT INTO organisations (code, kind, name) "
            "VALUES ('NCC-R', 'supplier', 'Khí R') RETURNING id"
        )
        row = await cur.fetchone()
        assert row
        ids["sup"] = int(row[0])
        await conn.execute(
            "INSERT INTO suppliers (org_id, supplier_kind, capacity_normal_tpd, "
            "capacity_full_tpd) VALUES (%s, 'producer', 200, 240)",
            (row[0],),
        )
        tokens = {
            "F": await _user(conn, "staff.rules", Role.FACILITY, "BV-RULES"),
            "sup": await _user(conn, "sup.rules", Role.SUPPLIER, "NCC-R"),
        }
    return W(day, ids, tokens)


@pytest.fixture(scope="module")
def db_seed() -> Seed:
    """`w`'s rows, built once per module (`tests.fix_db.Seed`)."""
    return Seed("report-rules", "w", lambda url: asyncio.run(_build(url)))


@pytest.fixture
def w(request: pytest.FixtureRequest, db_url: str) -> W:
    built: W = seeded(request)
    return built


@pytest.fixture
def client(db_url: str) -> Any:
    with TestClient(create_app(load_settings(database_url=db_url))) as c:
        yield c


def _h(w: W, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {w.tokens[who]}", "Accept-Language": "en"}


def _errors(r: Any) -> dict[str, str]:
    assert r.status_code == 422, r.text
    return {e["field"]: e["key"] for e in r.json()["detail"]["errors"]}


GOOD = {"patients_current": 40, "patients_new": 5, "discharged_evening": 2}


def _stored(client: TestClient, w: W) -> dict[str, Any]:
    url = f"/api/facilities/{w.ids['F']}/reports/{w.day.isoformat()}"
    got: dict[str, Any] = client.get(url, headers=_h(w, "F")).json()
    return got


@pytest.mark.parametrize(
    ("body", "want"),
    [
        # An empty report would count as filed.
        (
            {},
            {
                "patients_current": "report.error.required",
                "patients_new": "report.error.required",
                "discharged_evening": "report.error.required",
            },
        ),
        ({**GOOD, "patients_current": 2_000_000}, {"patients_current": "report.error.too_large"}),
        (
            {**GOOD, "patients_current": 5, "patients_new": 50},
            {"patients_new": "report.error.new_exceeds_current"},
        ),
        (
            {**GOOD, "capacity": {"value": 1e20, "unit": "nm3"}},
            {"capacity": "report.error.too_large"},
        ),
        (
            {**GOOD, "avg_need": {"value": 1e20, "unit": "nm3"}},
            {"avg_need": "report.error.too_large"},
        ),
        # Beyond a PostgreSQL integer: a field error, not a database error.
        (
            {**GOOD, "patients_current": 3_000_000_000},
            {"patients_current": "report.error.too_large"},
        ),
        (
            {**GOOD, "on_oxygen": {"mask": 30, "hfnc": 20}},
            {"on_oxygen": "report.error.on_oxygen_exceeds_patients"},
        ),
    ],
)
def test_refused_reports_store_nothing(
    client: TestClient, w: W, body: dict[str, Any], want: dict[str, str]
) -> None:
    url = f"/api/facilities/{w.ids['F']}/reports/{w.day.isoformat()}"
    r = client.put(url, json=body, headers=_h(w, "F"))
    assert _errors(r) == want
    assert all(e["message"] for e in r.json()["detail"]["errors"])
    assert _stored(client, w)["revision"] == 0


def test_warning_relative_to_the_facility_needs_a_reason_which_is_stored(
    client: TestClient, w: W
) -> None:
    url = f"/api/facilities/{w.ids['F']}/reports/{w.day.isoformat()}"
    body = {**GOOD, "patients_current": 150}  # the facility has 100 beds
    r = client.put(url, json=body, headers=_h(w, "F"))
    assert _errors(r) == {"patients_current": "report.warning.over_beds"}
    err = r.json()["detail"]["errors"][0]
    assert err["params"]["importance"] == "warning" and err["params"]["limit"] == 100
    assert r.json()["detail"]["confirmable"] is True
    assert _stored(client, w)["revision"] == 0
    # Vietnamese message from the catalog.
    vi = client.put(url, json=body, headers={**_h(w, "F"), "Accept-Language": "vi"})
    assert "giường" in vi.json()["detail"]["errors"][0]["message"]
    r = client.put(
        url,
        json={**body, "confirm": {"patients_current": "field ward opened on the 3rd floor"}},
        headers=_h(w, "F"),
    )
    assert r.status_code == 200, r.text
    got = _stored(client, w)
    assert got["revision"] == 1
    assert [(x["field"], x["reason"]) for x in got["figures"]["warnings"]] == [
        ("patients_current", "field ward opened on the 3rd floor")
    ]
    # A confirmation never turns an error into a stored figure.
    r = client.put(
        url,
        json={**GOOD, "patients_current": 2_000_000, "confirm": {"patients_current": "sure"}},
        headers=_h(w, "F"),
    )
    assert _errors(r) == {"patients_current": "report.error.too_large"}


def test_supplier_production_far_above_capacity_is_refused(client: TestClient, w: W) -> None:
    url = f"/api/suppliers/{w.ids['sup']}/reports/{w.day.isoformat()}"
    r = client.put(url, json={"production_t": 999_999}, headers=_h(w, "sup"))
    assert _errors(r) == {"production_t": "report.error.too_large"}
    # Against the registry's full capacity (240 t/day) when the report gives none.
    r = client.put(url, json={"production_t": 400}, headers=_h(w, "sup"))
    assert _errors(r) == {"production_t": "supplier.error.production_above_capacity"}
    r = client.put(url, json={"production_t": 250}, headers=_h(w, "sup"))
    assert _errors(r) == {"production_t": "supplier.warning.production_above_capacity"}
    r = client.put(
        url,
        json={"production_t": 250, "confirm": {"production_t": "extra shift"}},
        headers=_h(w, "sup"),
    )
    assert r.status_code == 200, r.text
    r = client.put(
        url, json={"production_t": 100, "cylinders_filled": 3_000_000_000}, headers=_h(w, "sup")
    )
    assert _errors(r) == {"cylinders_filled": "report.error.too_large"}


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m
    return m.group(1)


def _login(c: TestClient, username: str) -> None:
    page = c.get("/login")
    r = c.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": _csrf(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def test_form_shows_field_errors_keeps_values_and_confirms_warnings(
    client: TestClient, w: W
) -> None:
    _login(client, "staff.rules")
    page = client.get(f"/facilities/{w.ids['F']}/report?day={w.day.isoformat()}&lang=en")
    assert page.status_code == 200
    url = f"/facilities/{w.ids['F']}/report"
    form = {
        "csrf_token": _csrf(page.text),
        "day": w.day.isoformat(),
        "patients_current": "99999999999",
        "patients_new": "5",
        "discharged_evening": "",
        "notes": "typed notes",
    }
    r = client.post(url, data=form, follow_redirects=False)
    assert r.status_code == 422
    assert 'id="err-patients_current"' in r.text and 'id="err-discharged_evening"' in r.text
    assert 'value="99999999999"' in r.text and "typed notes" in r.text  # nothing typed is lost
    form.update(patients_current="150", discharged_evening="1")
    r = client.post(url, data=form, follow_redirects=False)
    assert r.status_code == 422
    assert 'name="confirm_patients_current"' in r.text
    form["confirm_patients_current"] = "field ward"
    r = client.post(url, data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert _stored(client, w)["figures"]["warnings"][0]["reason"] == "field ward"


def test_rules_are_data() -> None:
    assert rules.evaluate("prev + 2 * x", {"prev": 3, "x": 4}) == 11
    assert rules.evaluate("prev + x", {"prev": None, "x": 4}) is None
    parsed = rules.parse("a | a <= 1.5 * b\n    | warning | k.x")
    assert parsed == (
        rules.Rule("a", "a", rules.Op.LE, "1.5 * b", rules.Importance.WARNING, "k.x"),
    )
    with pytest.raises(ValueError):
        rules.parse("a | a ~ b | error | k")
    bounds = rules.history_bounds([{"n": v} for v in (40, 41, 42, 40, 41, 42, 40)], ["n"], 3.5)
    assert 45 < bounds["max.n"] < 60


def test_report_edits_are_audited_with_before_and_after(
    client: TestClient, w: W, db_url: str
) -> None:
    url = f"/api/facilities/{w.ids['F']}/reports/{w.day.isoformat()}"
    assert client.put(url, json=GOOD, headers=_h(w, "F")).status_code == 200
    edited = {**GOOD, "patients_current": 45}
    assert client.put(url, json=edited, headers=_h(w, "F")).status_code == 200
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT before, after FROM audit_log WHERE entity = 'facility_report' ORDER BY id"
        ).fetchall()
    assert rows[0][0] is None and rows[0][1]["patients_current"] == 40
    assert rows[1][0]["patients_current"] == 40 and rows[1][1]["patients_current"] == 45


def test_national_capacity_counts_suppliers_that_did_not_report(
    client: TestClient, w: W, db_url: str
) -> None:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "INSERT INTO organisations (code, kind, name) VALUES "
            "('NCC-LAST', 'supplier', 'Last'), ('NCC-REG', 'supplier', 'Reg') RETURNING id"
        ).fetchall()
        last, reg = (int(r[0]) for r in rows)
        conn.execute(
            "INSERT INTO suppliers (org_id, supplier_kind, capacity_normal_tpd, "
            "capacity_full_tpd) VALUES (%s, 'producer', 90, 100), (%s, 'producer', 50, 60)",
            (last, reg),
        )
        # NCC-LAST reported a capacity three days ago, not today.
        conn.execute(
            "INSERT INTO supplier_reports (supplier_id, report_day, production_t, "
            "capacity_normal_tpd, capacity_full_tpd, updated_by) "
            "VALUES (%s, %s, 80, 110, 120, 't')",
            (last, w.day - timedelta(days=3)),
        )
    url = f"/api/suppliers/{w.ids['sup']}/reports/{w.day.isoformat()}"
    body = {"production_t": 200, "capacity_normal_tpd": 220, "capacity_full_tpd": 250}
    assert client.put(url, json=body, headers=_h(w, "sup")).status_code == 200
    national = asyncio.run(_supply(db_url, w.day))
    assert national["supplier_reports"] == 1 and national["production_t"] == 200
    # Today's report 250 + the last report 120 + the registry 60: not just the one that reported.
    assert national["capacity_full_t_per_day"] == 250 + 120 + 60
    by = {s["code"]: (s["capacity_source"], s["capacity_as_of"]) for s in national["by_supplier"]}
    assert by["NCC-R"] == ("report", None)
    assert by["NCC-LAST"] == ("last_report", w.day - timedelta(days=3))
    assert by["NCC-REG"] == ("registry", None)


async def _supply(url: str, day: date) -> dict[str, Any]:
    from api.reports.national import supply_figures

    conn = await psycopg.AsyncConnection.connect(url)
    async with conn:
        return asdict(await supply_figures(conn, day))


def test_syt_own_figures_have_hard_limits(w: W, db_url: str) -> None:
    from api.reports import syt
    from api.reports.errors import ValidationFailed

    async def run() -> list[str]:
        conn = await psycopg.AsyncConnection.connect(db_url)
        async with conn:
            body = syt.SytReportIn(
                notice="x",
                own_capacity={"value": 1e20, "unit": "nm3"},  # type: ignore[arg-type]
                own_need={"value": 2000, "unit": "nm3"},  # type: ignore[arg-type]
            )
            try:
                await syt.save(
                    conn, w.ids["syt01"], w.day, body, author="t", cfg=CFG, now=datetime.now(UTC)
                )
            except ValidationFailed as exc:
                return [f"{e.field}:{e.key}" for e in exc.errors]
        return []

    assert asyncio.run(run()) == ["own_capacity:report.error.too_large"]


def test_morning_form_keeps_a_refused_figure(client: TestClient, w: W) -> None:
    _login(client, "staff.rules")
    page = client.get(f"/facilities/{w.ids['F']}/report?day={w.day.isoformat()}")
    r = client.post(
        f"/facilities/{w.ids['F']}/report/morning",
        data={
            "csrf_token": _csrf(page.text),
            "day": w.day.isoformat(),
            "discharged_morning": "99999999999",
        },
        follow_redirects=False,
    )
    assert r.status_code == 422
    assert 'id="err-discharged_morning"' in r.text and 'value="99999999999"' in r.text


def test_supplier_form_confirms_production_above_capacity(client: TestClient, w: W) -> None:
    _login(client, "sup.rules")
    page = client.get(f"/suppliers/{w.ids['sup']}/report?day={w.day.isoformat()}")
    assert page.status_code == 200, page.text
    form = {"csrf_token": _csrf(page.text), "day": w.day.isoformat(), "production_t": "250"}
    url = f"/suppliers/{w.ids['sup']}/report"
    r = client.post(url, data=form, follow_redirects=False)
    assert r.status_code == 422 and 'name="confirm_production_t"' in r.text
    r = client.post(url, data={**form, "production_t": "999999"}, follow_redirects=False)
    assert r.status_code == 422 and 'name="confirm_production_t"' not in r.text  # refused
    r = client.post(
        url, data={**form, "confirm_production_t": "extra shift"}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
