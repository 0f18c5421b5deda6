"""The Administrator's registry forms against the real app and database: facilities (checked by
the registry import's validator), tanks with new calibration versions, gateways and sensors;
non-administrators refused; every write audited."""

from __future__ import annotations

import html as html_lib
import re
from datetime import datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from api import i18n
from api.admin import registry as admin_registry
from api.auth import SESSION_COOKIE, csrf_for_session
from tests.api import conftest as api_fixtures
from tests.api.conftest import USERNAMES, World, csrf_of, login

# The API tests' fixtures (a small registry, one user per role, the app under TestClient).
client = api_fixtures.client
settings = api_fixtures.settings
world = api_fixtures.world
db_seed = api_fixtures.db_seed

GOOD_FACILITY = {
    "code": "BV-NEW",
    "name": "Bệnh viện Mới",
    "facility_type": "hospital",
    "province_code": "79",
    "parent_code": "",
    "address": "1 Lê Lợi",
    "latitude": "10.7578",
    "longitude": "106.6590",
    "beds": "300",
    "icu_beds": "20",
    "active_from": "2021-07-01",
    "active_to": "",
}

POINTS = "dp_inh2o,contents_kg\n0,0\n10,2000\n20,4200\n30,6000\n"


def _admin(client: TestClient) -> TestClient:
    return login(client, USERNAMES["admin"])


def _post(client: TestClient, form_url: str, action: str, data: dict[str, str]) -> object:
    token = csrf_of(client.get(form_url).text)
    return client.post(action, data={**data, "csrf_token": token}, follow_redirects=False)


def _one(db_url: str, sql: str, *params: object) -> tuple[object, ...] | None:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchone()  # type: ignore[arg-type]


def _audits(db_url: str, entity: str) -> list[tuple[object, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT action, entity_id, before, after, username FROM audit_log "
            "WHERE entity = %s ORDER BY id",
            (entity,),
        ).fetchall()


def _field_error(html: str, name: str) -> str:
    m = re.search(rf'id="err-{name}" role="alert">([^<]+)<', html)
    assert m, f"no error next to {name}"
    return html_lib.unescape(m.group(1))


def test_create_and_edit_a_facility(client: TestClient, world: World) -> None:
    _admin(client)
    r = _post(client, "/admin/facilities/new", "/admin/facilities/new", GOOD_FACILITY)
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    row = _one(
        world.db_url,
        "SELECT o.id, o.name, o.province_code, p.code, f.beds, f.icu_beds, f.latitude "
        "FROM organisations o JOIN facilities f ON f.org_id = o.id "
        "JOIN organisations p ON p.id = o.parent_id WHERE o.code = 'BV-NEW'",
    )
    assert row is not None
    fac_id = row[0]
    # No parent chosen: the province's SYT, as the import does.
    assert row[1:] == ("Bệnh viện Mới", "79", "SYT-79", 300, 20, 10.7578)
    assert [a[0] for a in _audits(world.db_url, "facility")] == ["create"]

    edit = f"/admin/facilities/{fac_id}/edit"
    page = client.get(edit)
    assert page.status_code == 200 and 'value="Bệnh viện Mới"' in page.text
    r = _post(client, edit, edit, {**GOOD_FACILITY, "name": "BV Mới 2", "beds": "350"})
    assert r.status_code == 303  # type: ignore[attr-defined]
    assert _one(world.db_url, "SELECT name FROM organisations WHERE id = %s", fac_id) == (
        "BV Mới 2",
    )
    action, entity_id, before, after, user = _audits(world.db_url, "facility")[-1]
    assert (action, entity_id, user) == ("update", str(fac_id), "admin1")
    assert before["name"] == "Bệnh viện Mới" and after["name"] == "BV Mới 2"  # type: ignore[index]
    assert after["beds"] == 350  # type: ignore[index]


def test_bad_facility_shows_field_errors_and_stores_nothing(
    client: TestClient, world: World
) -> None:
    _admin(client)
    bad = {
        **GOOD_FACILITY,
        "code": "BV BAD",  # a space
        "province_code": "99",  # no such province
        "latitude": "48.85",  # Paris
        "beds": "10",
        "icu_beds": "12",  # more ICU beds than beds
        "active_to": "2020-01-01",  # before active_from
        "parent_code": "NCC-IN",  # a supplier cannot be a reporting parent
    }
    r = _post(client, "/admin/facilities/new", "/admin/facilities/new", bad)
    assert r.status_code == 422  # type: ignore[attr-defined]
    html = r.text  # type: ignore[attr-defined]
    vi = i18n.translator("vi")
    assert _field_error(html, "code") == vi(
        "Use letters, digits, '.', '_' or '-' (at most 64), without spaces."
    )
    assert _field_error(html, "province_code") == vi("Unknown province code.")
    assert _field_error(html, "latitude") == vi("The position is outside Vietnam.")
    assert _field_error(html, "icu_beds") == vi("ICU beds must not exceed beds.")
    assert _field_error(html, "active_to") == vi("The end must not be before the start.")
    assert "Sở Y tế" in _field_error(html, "parent_code")
    assert 'value="BV BAD"' in html  # what was typed is kept
    assert _one(
        world.db_url, "SELECT count(*) FROM organisations WHERE name = %s", "Bệnh viện Mới"
    ) == (0,)
    assert _audits(world.db_url, "facility") == []
    # A code already taken is refused, not silently upserted over the other facility.
    r = _post(
        client, "/admin/facilities/new", "/admin/facilities/new", {**GOOD_FACILITY, "code": "bv-in"}
    )
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert _field_error(r.text, "code") == vi("This code is already used.")  # type: ignore[attr-defined]


def test_legacy_province_code_is_mapped_like_the_import(client: TestClient, world: World) -> None:
    legacy = _one(
        world.db_url,
        "SELECT old_code, new_code FROM legacy_admin_units "
        "WHERE old_code NOT IN (SELECT code FROM admin_units) ORDER BY old_code LIMIT 1",
    )
    assert legacy is not None
    old, new = legacy
    _admin(client)
    form = {**GOOD_FACILITY, "province_code": str(old), "latitude": "", "longitude": ""}
    r = _post(client, "/admin/facilities/new", "/admin/facilities/new", form)
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    assert _one(world.db_url, "SELECT province_code FROM organisations WHERE code = 'BV-NEW'") == (
        new,
    )
    flash = i18n.gettext("vi", "The pre-2025 province code was replaced by its 2025 code.")
    assert flash in client.get("/admin/facilities").text


def test_tank_and_calibration_versions(client: TestClient, world: World) -> None:
    _admin(client)
    tank_form = {
        "facility_id": str(world.fac_in),
        "code": "T9",
        "name": "Bồn 9",
        "capacity_kg": "6000",
        "diameter_m": "2.2",
        "min_usable_kg": "300",
        "max_pressure_bar": "17",
    }
    # Minimum usable above the capacity: refused next to the field, nothing stored.
    r = _post(
        client, "/admin/tanks/new", "/admin/tanks/new", {**tank_form, "min_usable_kg": "7000"}
    )
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert _field_error(r.text, "min_usable_kg")  # type: ignore[attr-defined]
    r = _post(client, "/admin/tanks/new", "/admin/tanks/new", tank_form)
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    row = _one(
        world.db_url,
        "SELECT id, capacity_kg, min_usable_kg, diameter_m FROM tanks WHERE code = 'T9'",
    )
    assert row is not None and row[1:] == (6000.0, 300.0, 2.2)
    tank_id = row[0]
    page = f"/admin/tanks/{tank_id}/calibration"

    first = {"valid_from_mode": "first_reading"}
    r = _post(client, page, page, {"points": POINTS, "note": "lắp đặt", **first})
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    later = (datetime.now(i18n.TIMEZONE) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    start = {"valid_from_mode": "date", "valid_from": later}
    # Contents falling as DP rises: refused with the line, nothing added.
    r = _post(client, page, page, {"points": "0,0\n10,2500\n20,2400\n", "note": "sai", **start})
    assert r.status_code == 422  # type: ignore[attr-defined]
    err = _field_error(r.text, "points")  # type: ignore[attr-defined]
    assert err.startswith("Dòng 3:") and "không được giảm" in err
    # Over the tank's capacity: refused too.
    r = _post(client, page, page, {"points": "0,0\n10,9000\n", **start})
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert "vượt quá dung tích" in _field_error(r.text, "points")  # type: ignore[attr-defined]
    # A second, valid version uploaded as a file is added beside the first.
    token = csrf_of(client.get(page).text)
    r = client.post(
        page,
        data={"csrf_token": token, "points": "", **start},
        files={"points_file": ("t9.csv", b"0,0\n15,3100\n30,5900\n", "text/csv")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    with psycopg.connect(world.db_url) as conn:
        versions = conn.execute(
            "SELECT c.version, c.note, count(p.*) FROM tank_calibrations c "
            "JOIN calibration_points p ON p.calibration_id = c.id WHERE c.tank_id = %s "
            "GROUP BY c.id ORDER BY c.version",
            (tank_id,),
        ).fetchall()
    assert versions == [(1, "lắp đặt", 4), (2, None, 3)]
    audits = _audits(world.db_url, "tank_calibration")
    assert [a[3]["version"] for a in audits] == [1, 2]  # type: ignore[index]
    assert [a[0] for a in _audits(world.db_url, "tank")] == ["create"]

    # Editing keeps the facility and code; the change is audited with before/after.
    edit = f"/admin/tanks/{tank_id}/edit"
    r = _post(client, edit, edit, {**tank_form, "capacity_kg": "6200"})
    assert r.status_code == 303  # type: ignore[attr-defined]
    assert _one(world.db_url, "SELECT capacity_kg FROM tanks WHERE id = %s", tank_id) == (6200.0,)
    last = _audits(world.db_url, "tank")[-1]
    assert last[0] == "update" and last[2]["capacity_kg"] == 6000.0  # type: ignore[index]


def test_gateway_and_sensor(client: TestClient, world: World) -> None:
    _admin(client)
    page = client.get("/admin/gateways")
    assert "oxy devices add" in page.text
    gw = {"gw_facility_id": str(world.fac_in), "gw_code": "gw-bv-in-2", "gw_name": "Tầng 1"}
    r = _post(client, "/admin/gateways", "/admin/gateways", gw)
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    row = _one(world.db_url, "SELECT id, facility_id FROM gateways WHERE code = 'gw-bv-in-2'")
    assert row is not None and row[1] == world.fac_in
    gateway_id = row[0]
    # The same code again is refused.
    r = _post(client, "/admin/gateways", "/admin/gateways", gw)
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert _field_error(r.text, "gw_code")  # type: ignore[attr-defined]

    sensor = {
        "gateway_id": str(gateway_id),
        "code": "T1-p",
        "tank_id": "",
        "quantity": "head_pressure",
        "unit": "inH2O",  # measures differential pressure, not head pressure
        "valid_min": "0",
        "valid_max": "20",
    }
    r = _post(client, "/admin/gateways", "/admin/sensors", sensor)
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert _field_error(r.text, "unit") == i18n.gettext(  # type: ignore[attr-defined]
        "vi", "This unit does not measure the chosen quantity."
    )
    assert _one(world.db_url, "SELECT count(*) FROM sensors WHERE code = 'T1-p'") == (0,)
    r = _post(client, "/admin/gateways", "/admin/sensors", {**sensor, "unit": "psi"})
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    assert _one(
        world.db_url,
        "SELECT quantity, unit, valid_min, valid_max FROM sensors WHERE code = 'T1-p'",
    ) == ("head_pressure", "psi", 0.0, 20.0)
    assert [a[0] for a in _audits(world.db_url, "gateway")] == ["create"]
    assert _audits(world.db_url, "sensor")[0][3]["unit"] == "psi"  # type: ignore[index]


def _chosen_units(html: str) -> list[str]:
    """The values of the unit select's options that are selected."""
    m = re.search(r'<select id="f-unit" name="unit".*?</select>', html, re.S)
    assert m, "no unit select"
    return re.findall(r'<option value="([^"]*)"\s+selected', m.group(0))


def test_sensor_unit_is_chosen_never_preselected(client: TestClient, world: World) -> None:
    _admin(client)
    # Creating: the placeholder is the one selected option, no unit is guessed.
    page = client.get("/admin/gateways")
    assert _chosen_units(page.text) == [""]
    assert i18n.gettext("vi", "— choose a unit —") in page.text  # type: ignore[attr-defined]
    sensor = {
        "gateway_id": str(world.gw_in),
        "code": "T9-p",
        "tank_id": "",
        "quantity": "head_pressure",
        "unit": "",
        "valid_min": "0",
        "valid_max": "20",
    }
    # Sent without a unit: the error sits next to the unit, nothing is stored, and the form
    # comes back with the typed fields and still no unit chosen.
    r = _post(client, "/admin/gateways", "/admin/sensors", sensor)
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert _field_error(r.text, "unit") == i18n.gettext(  # type: ignore[attr-defined]
        "vi", "Choose the unit of the value."
    )
    assert _chosen_units(r.text) == [""]  # type: ignore[attr-defined]
    assert 'value="T9-p"' in r.text  # type: ignore[attr-defined]
    assert _one(world.db_url, "SELECT count(*) FROM sensors WHERE code = 'T9-p'") == (0,)
    # Editing: the stored unit is the selected one.
    stored = _sensor(world.db_url, world.gw_in, "T9-p", "head_pressure", "bar")
    edit = f"/admin/sensors/{stored}/edit"
    assert _chosen_units(client.get(edit).text) == ["bar"]
    # Clearing it on edit is refused the same way; the stored unit stays.
    r = _post(client, edit, edit, {k: v for k, v in sensor.items() if k != "gateway_id"})
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert _field_error(r.text, "unit") == i18n.gettext(  # type: ignore[attr-defined]
        "vi", "Choose the unit of the value."
    )
    assert _one(world.db_url, "SELECT unit FROM sensors WHERE id = %s", stored) == ("bar",)


def _sensor(db_url: str, gateway: int, code: str, quantity: str, unit: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "INSERT INTO sensors (gateway_id, code, quantity, unit, valid_min, valid_max) "
            "VALUES (%s, %s, %s, %s, 0, 400) RETURNING id",
            (gateway, code, quantity, unit),
        ).fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def _refusal(html: str) -> str:
    m = re.search(r'data-testid="sensor-refusal">([^<]+)<', html)
    assert m, "no refusal shown"
    return html_lib.unescape(m.group(1))


def test_edit_a_sensor_audits_code_and_quantity(client: TestClient, world: World) -> None:
    with psycopg.connect(world.db_url) as conn:
        tanks = [
            conn.execute(
                "INSERT INTO tanks (facility_id, code, name, capacity_kg) "
                "VALUES (%s, 'T1', 'Bồn 1', 6000) RETURNING id",
                (fid,),
            ).fetchone()[0]  # type: ignore[index]
            for fid in (world.fac_in, world.fac_out)
        ]
    sensor = _sensor(world.db_url, world.gw_in, "T1-dp", "dp", "inH2O")
    _sensor(world.db_url, world.gw_in, "T1-p", "head_pressure", "bar")
    _admin(client)
    edit = f"/admin/sensors/{sensor}/edit"
    page = client.get(edit)
    assert page.status_code == 200 and 'value="T1-dp"' in page.text
    assert f'href="{edit}"' in client.get("/admin/gateways").text
    good = {
        "code": "T1-dp2",
        "tank_id": str(tanks[0]),
        "quantity": "head_pressure",
        "unit": "psi",
        "valid_min": "0",
        "valid_max": "250,5",  # typed the Vietnamese way
    }
    vi = i18n.translator("vi")
    # Another sensor's code on the same gateway, a tank of another facility, a unit that does
    # not measure the quantity: each refused next to its field, nothing changed.
    for bad, name, message in (
        ({"code": "T1-p"}, "code", "This code is already used."),
        ({"tank_id": str(tanks[1])}, "tank_id", "Choose a tank of the gateway's facility."),
        ({"unit": "inH2O"}, "unit", "This unit does not measure the chosen quantity."),
    ):
        r = _post(client, edit, edit, {**good, **bad})
        assert r.status_code == 422, name  # type: ignore[attr-defined]
        assert _field_error(r.text, name) == vi(message)  # type: ignore[attr-defined]
    assert _one(world.db_url, "SELECT code, quantity FROM sensors WHERE id = %s", sensor) == (
        "T1-dp",
        "dp",
    )
    assert _audits(world.db_url, "sensor") == []

    r = _post(client, edit, edit, good)
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    assert _one(
        world.db_url,
        "SELECT code, tank_id, quantity, unit, valid_min, valid_max FROM sensors WHERE id = %s",
        sensor,
    ) == ("T1-dp2", tanks[0], "head_pressure", "psi", 0.0, 250.5)
    [(action, entity_id, before, after, user)] = _audits(world.db_url, "sensor")
    assert (action, entity_id, user) == ("update", str(sensor), "admin1")
    assert (before["code"], after["code"]) == ("T1-dp", "T1-dp2")  # type: ignore[index]
    assert (before["quantity"], after["quantity"]) == ("dp", "head_pressure")  # type: ignore[index]
    assert before["gateway"] == after["gateway"] == "gw-bv-in"  # type: ignore[index]
    # The form shows the stored range back in the user's number format.
    assert 'value="250,5"' in client.get(edit).text

    # Once it has readings, its quantity stays (they are stored in that quantity's unit); the
    # rest can still change.
    with psycopg.connect(world.db_url) as conn:
        conn.execute(
            "INSERT INTO readings (sensor_id, ts, value) VALUES (%s, now(), 3.2)", (sensor,)
        )
    r = _post(client, edit, edit, {**good, "quantity": "dp", "unit": "inH2O"})
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert _field_error(r.text, "quantity") == vi(admin_registry.QUANTITY_FIXED)  # type: ignore[attr-defined]
    assert vi(admin_registry.QUANTITY_FIXED) != admin_registry.QUANTITY_FIXED
    r = _post(client, edit, edit, {**good, "unit": "bar", "valid_max": "17"})
    assert r.status_code == 303  # type: ignore[attr-defined]
    assert _one(world.db_url, "SELECT quantity, unit FROM sensors WHERE id = %s", sensor) == (
        "head_pressure",
        "bar",
    )
    assert [a[0] for a in _audits(world.db_url, "sensor")] == ["update", "update"]


def test_delete_a_sensor_only_without_readings(client: TestClient, world: World) -> None:
    kept = _sensor(world.db_url, world.gw_in, "T1-dp", "dp", "inH2O")
    spare = _sensor(world.db_url, world.gw_in, "T2-dp", "dp", "inH2O")
    with psycopg.connect(world.db_url) as conn:
        conn.execute(
            "INSERT INTO readings (sensor_id, ts, value) "
            "SELECT %s, now() - n * interval '1 minute', 40 FROM generate_series(1, 5) n",
            (kept,),
        )
    _admin(client)
    # Without the form's CSRF token nothing is deleted.
    r = client.post(f"/admin/sensors/{spare}/delete", follow_redirects=False)
    assert r.status_code == 403
    r = client.post(
        f"/admin/sensors/{spare}/delete", data={"csrf_token": "forged"}, follow_redirects=False
    )
    assert r.status_code == 403
    assert _one(world.db_url, "SELECT count(*) FROM sensors WHERE id = %s", spare) == (1,)

    # A sensor with readings: the page offers no delete, and a delete is refused with the
    # reason; the sensor and every reading stay.
    edit = f"/admin/sensors/{kept}/edit"
    page = client.get(edit)
    assert 'data-testid="sensor-kept"' in page.text
    assert f'action="/admin/sensors/{kept}/delete"' not in page.text
    r = _post(client, edit, f"/admin/sensors/{kept}/delete", {})
    assert r.status_code == 409  # type: ignore[attr-defined]
    message = i18n.gettext("vi", admin_registry.HAS_READINGS)
    assert message != admin_registry.HAS_READINGS
    assert _refusal(r.text) == message  # type: ignore[attr-defined]
    assert _one(world.db_url, "SELECT count(*) FROM sensors WHERE id = %s", kept) == (1,)
    assert _one(world.db_url, "SELECT count(*) FROM readings WHERE sensor_id = %s", kept) == (5,)
    # The same refusal in English for an English reader.
    client.cookies.set(i18n.LANG_COOKIE, "en")
    r = _post(client, edit, f"/admin/sensors/{kept}/delete", {})
    assert r.status_code == 409  # type: ignore[attr-defined]
    assert _refusal(r.text) == admin_registry.HAS_READINGS  # type: ignore[attr-defined]
    client.cookies.delete(i18n.LANG_COOKIE)

    # A sensor that never reported is deleted, and the deletion audited with what it was.
    edit = f"/admin/sensors/{spare}/edit"
    assert f'action="/admin/sensors/{spare}/delete"' in client.get(edit).text
    r = _post(client, edit, f"/admin/sensors/{spare}/delete", {})
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    assert _one(world.db_url, "SELECT count(*) FROM sensors WHERE id = %s", spare) == (0,)
    [(action, entity_id, before, after, user)] = _audits(world.db_url, "sensor")
    assert (action, entity_id, after, user) == ("delete", str(spare), None, "admin1")
    assert before["code"] == "T2-dp" and before["gateway"] == "gw-bv-in"  # type: ignore[index]
    assert client.get(edit).status_code == 404


def test_non_admin_is_refused(client: TestClient, world: World) -> None:
    sensor = _sensor(world.db_url, world.gw_in, "T1-dp", "dp", "inH2O")
    for role in ("byt", "syt", "facility", "engineer"):
        client.cookies.clear()
        login(client, USERNAMES[role])
        token = csrf_for_session(client.cookies[SESSION_COOKIE])
        assert client.get("/admin/facilities/new").status_code == 403
        for url, data in (
            ("/admin/facilities/new", GOOD_FACILITY),
            ("/admin/gateways", {"gw_facility_id": str(world.fac_in), "gw_code": "gw-x"}),
        ):
            r = client.post(url, data={**data, "csrf_token": token}, follow_redirects=False)
            assert r.status_code == 403, (role, url)
        assert client.get(f"/admin/sensors/{sensor}/edit").status_code == 403
        for url, data in (
            (f"/admin/sensors/{sensor}/edit", {"code": "hijacked", "quantity": "dp"}),
            (f"/admin/sensors/{sensor}/delete", {}),
        ):
            r = client.post(url, data={**data, "csrf_token": token}, follow_redirects=False)
            assert r.status_code == 403, (role, url)
    assert _one(world.db_url, "SELECT code FROM sensors WHERE id = %s", sensor) == ("T1-dp",)
    assert _one(world.db_url, "SELECT count(*) FROM gateways WHERE code = 'gw-x'") == (0,)
    assert _one(world.db_url, "SELECT count(*) FROM organisations WHERE code = 'BV-NEW'") == (0,)


def test_every_issue_message_is_translated() -> None:
    vi = i18n.translator("vi")
    for message in admin_registry.ISSUE_MESSAGES.values():
        assert vi(message) != message, message
    assert vi(admin_registry.REFUSED) != admin_registry.REFUSED


def test_points_text_header_and_separators() -> None:
    read = admin_registry.read_points
    assert read("dp_inh2o,contents_kg\n0,0\n10.5,2000\n") == [("0", "0"), ("10.5", "2000")]
    assert read("0;0\r\n5;100\n\n") == [("0", "0"), ("5", "100")]
    assert read("1e1,5\n20,9") == [("1e1", "5"), ("20", "9")]  # a number is never a header
    assert read("0,0,1\n") is None


def _tank_with_readings(client: TestClient, world: World, code: str) -> int:
    form = {
        "facility_id": str(world.fac_in),
        "code": code,
        "name": code,
        "capacity_kg": "6000",
        "diameter_m": "2.2",
        "min_usable_kg": "300",
        "max_pressure_bar": "17",
    }
    r = _post(client, "/admin/tanks/new", "/admin/tanks/new", form)
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    with psycopg.connect(world.db_url, autocommit=True) as conn:
        row = conn.execute("SELECT id FROM tanks WHERE code = %s", (code,)).fetchone()
        assert row is not None
        gw = conn.execute(
            "INSERT INTO gateways (facility_id, code) VALUES (%s, %s) RETURNING id",
            (world.fac_in, f"gw-{code}"),
        ).fetchone()
        assert gw is not None
        sensor = conn.execute(
            "INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit)"
            " VALUES (%s, %s, %s, 'dp', 'inH2O') RETURNING id",
            (gw[0], f"{code}-dp", row[0]),
        ).fetchone()
        assert sensor is not None
        conn.execute(
            "INSERT INTO readings (sensor_id, ts, value, quality)"
            " SELECT %s, TIMESTAMPTZ '2026-01-01 00:00+00' + i * INTERVAL '1 minute', 12, 0"
            " FROM generate_series(0, 29) i",
            (sensor[0],),
        )
    return int(row[0])


def test_calibration_start_is_the_first_reading_or_warned(client: TestClient, world: World) -> None:
    """A blank start once meant "now" and earlier readings showed no contents, silently. The
    start is now an explicit choice, and readings it would leave uncovered are shown before
    anything is saved: saving needs a confirmation."""
    _admin(client)
    tank = _tank_with_readings(client, world, "T7")
    page = f"/admin/tanks/{tank}/calibration"
    form = client.get(page).text
    assert 'name="valid_from_mode" value="first_reading"' in form
    assert 'name="valid_from_mode" value="date"' in form
    assert "Từ số đo đầu tiên" in form
    # No choice made: refused, nothing saved.
    r = _post(client, page, page, {"points": POINTS})
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert _field_error(r.text, "valid_from_mode")  # type: ignore[attr-defined]
    # A date chosen but not given: refused.
    r = _post(client, page, page, {"points": POINTS, "valid_from_mode": "date"})
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert _field_error(r.text, "valid_from")  # type: ignore[attr-defined]
    r = _post(client, page, page, {"points": POINTS, "valid_from_mode": "first_reading"})
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    row = _one(world.db_url, "SELECT valid_from FROM tank_calibrations WHERE tank_id = %s", tank)
    assert row is not None and row[0].isoformat() == "2026-01-01T00:00:00+00:00"  # type: ignore[attr-defined]
    # An explicit start after 20 of the readings: the warning comes first, nothing is saved...
    tank = _tank_with_readings(client, world, "T6")
    page = f"/admin/tanks/{tank}/calibration"
    chosen = {"points": POINTS, "valid_from_mode": "date", "valid_from": "2026-01-01T07:20"}
    r = _post(client, page, page, chosen)
    assert r.status_code == 422  # type: ignore[attr-defined]
    text = html_lib.unescape(r.text)  # type: ignore[attr-defined]
    assert "Cảnh báo: 20 số đo trước đó chưa có bảng hiệu chuẩn" in text
    assert 'name="confirm_uncovered"' in text
    assert 'value="2026-01-01T07:20"' in text and "10,2000" in text  # the form is kept
    count = "SELECT count(*) FROM tank_calibrations WHERE tank_id = %s"
    assert _one(world.db_url, count, tank) == (0,)
    # ... and confirming saves it.
    r = _post(client, page, page, {**chosen, "confirm_uncovered": "1"})
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    assert _one(world.db_url, count, tank) == (1,)
    # A later version cannot start "from the first reading": that history has its version.
    r = _post(client, page, page, {"points": POINTS, "valid_from_mode": "first_reading"})
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert _field_error(r.text, "valid_from_mode")  # type: ignore[attr-defined]


def test_form_messages_follow_the_issue_code_not_the_words_of_its_reason() -> None:
    """A refused value that happens to contain another reason's words (a facility type typed as
    "reporting parent") gets the message of its own issue, matched by code."""
    from api.registry import importer as ri

    registry = ri.Registry(
        orgs={"SYT-01": (1, "syt")}, provinces={"01": "Hà Nội"}, legacy={}, tanks={}
    )
    cells = {
        "code": "BV-X",
        "name": "X",
        "province_code": "01",
        "facility_type": "reporting parent",
    }
    v = ri.validate_rows(registry, "facilities", [cells])
    assert [(i.column, i.code) for i in v.issues] == [("facility_type", ri.IssueCode.NOT_A_CHOICE)]
    assert "reporting parent" in v.issues[0].reason
    assert admin_registry.issue_message(v.issues[0].code) == "Choose one of the listed values."
    # A code without a message of its own is refused in general terms.
    assert admin_registry.issue_message(ri.IssueCode.NOT_YES_NO) == admin_registry.REFUSED
