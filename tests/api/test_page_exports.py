"""Exports on the pages' own routes (`?format=csv|xlsx`, api/web/page_exports.py): the page's
role and scope check, formula injection neutralised, labels instead of stored identifiers."""

from __future__ import annotations

import csv
import io

import psycopg
from fastapi.testclient import TestClient

from tests.api.conftest import USERNAMES, World, login

HOSTILE = '=HYPERLINK("http://evil.example","x")'


def _rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_admin_facility_export_is_neutralised_and_admin_only(
    client: TestClient, world: World
) -> None:
    with psycopg.connect(world.db_url) as conn:
        conn.execute("UPDATE organisations SET name = %s WHERE id = %s", (HOSTILE, world.fac_in))
    login(client, USERNAMES["admin"])
    r = client.get("/admin/facilities?format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="facilities.csv"' in r.headers["content-disposition"]
    rows = _rows(r.content)
    assert rows[0][:3] == ["Mã", "Tên", "Tỉnh/thành phố"], rows[0]
    assert [c for row in rows for c in row if HOSTILE in c] == ["'" + HOSTILE]
    assert client.get("/admin/facilities?format=pdf").status_code == 404
    for path in ("/admin/tanks", "/admin/gateways"):
        x = client.get(path + "?format=xlsx")
        assert x.status_code == 200 and x.content[:2] == b"PK", path
    en = client.get("/admin/facilities?format=csv&lang=en")
    assert _rows(en.content)[0][:2] == ["Code", "Name"]


def test_page_exports_keep_the_page_role_check(client: TestClient, world: World) -> None:
    login(client, USERNAMES["facility"])
    for path in ("/admin/facilities", "/admin/tanks", "/admin/gateways"):
        assert client.get(path + "?format=csv").status_code == 403, path


def test_audit_export_shows_labels_not_identifiers(client: TestClient, world: World) -> None:
    login(client, USERNAMES["admin"])
    r = client.get("/audit?format=csv")
    assert r.status_code == 200, r.text[:300]
    rows = _rows(r.content)
    assert rows[0] == [
        "Thời điểm",
        "Người thực hiện",
        "Vai trò",
        "Hành động",
        "Bản ghi",
        "Trước",
        "Sau",
    ]
    actions = {row[3] for row in rows[1:]}
    assert actions and "login" not in actions, actions


def test_deliveries_export_of_a_day_without_report_has_headings_only(
    client: TestClient, world: World
) -> None:
    login(client, USERNAMES["supplier"])
    url = f"/api/suppliers/{world.sup_in}/reports/2026-01-05/deliveries.csv"
    r = client.get(url)
    assert r.status_code == 200, r.text
    rows = _rows(r.content)
    assert len(rows) == 1 and rows[0][0] == "Mã", rows
    # Another supplier's file stays out of reach; an id that is no supplier is not found.
    other = f"/api/suppliers/{world.sup_out}/reports/2026-01-05/deliveries.csv"
    assert client.get(other).status_code in (403, 404)
    login(client, USERNAMES["admin"])
    missing = f"/api/suppliers/{world.fac_in}/reports/2026-01-05/deliveries.csv"
    assert client.get(missing).status_code == 404


def test_account_exports_follow_who_manages_them(client: TestClient, world: World) -> None:
    login(client, USERNAMES["admin"])
    rows = _rows(client.get("/admin/users?format=csv").content)
    assert rows[0] == ["Tên đăng nhập", "Họ và tên", "Vai trò", "Đơn vị", "Trạng thái"], rows[0]
    names = {r[0] for r in rows[1:]}
    assert {"admin1", "syt79", "staff-in"} <= names
    assert not {r[2] for r in rows[1:]} & {"admin", "syt", "facility"}  # roles as words
    login(client, USERNAMES["syt"])
    assert client.get("/admin/users?format=csv").status_code == 403
    mine = _rows(client.get("/accounts?format=csv").content)
    assert {r[0] for r in mine[1:]} <= names - {"admin1", "byt1", "syt79"}


def test_facility_list_export_is_the_callers_scope(client: TestClient, world: World) -> None:
    login(client, USERNAMES["engineer"])
    rows = _rows(client.get("/facilities?format=csv").content)
    assert [r[0] for r in rows[1:]] == ["BV-IN"], rows  # the engineer's one facility
    login(client, USERNAMES["admin"])
    codes = {r[0] for r in _rows(client.get("/facilities?format=csv").content)[1:]}
    assert {"BV-IN", "BV-OUT"} <= codes


def _tank(db_url: str, facility: int, code: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "INSERT INTO tanks (facility_id, code, name, capacity_kg) "
            "VALUES (%s, %s, 'Bồn', 6000) RETURNING id",
            (facility, code),
        ).fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def test_tank_page_exports_report_days_and_refills_in_scope(
    client: TestClient, world: World
) -> None:
    mine, theirs = _tank(world.db_url, world.fac_in, "T1"), _tank(world.db_url, world.fac_out, "T1")
    login(client, USERNAMES["facility"])
    url = f"/facilities/{world.fac_in}/tanks/{mine}"
    assert f'href="{url}?format=csv"' in client.get(url).text
    r = client.get(url + "?format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = _rows(r.content)
    assert rows[0] == ["Ngày", "Lúc 16:00 (kg)", "Đã dùng (kg)", "Đã nạp (kg)", "Dữ liệu (%)"]
    # Seven report days, none with readings: each figure "—" (never an empty cell read as 0).
    assert len(rows) == 8 and all(r[1:4] == ["—", "—", "—"] for r in rows[1:]), rows
    refills = _rows(client.get(url + "?format=csv&list=refills").content)
    assert refills[0][0] == "Bắt đầu" and len(refills) == 1, refills
    assert client.get(url + "?format=csv&list=other").status_code == 404
    # Another facility's tank: the page's scope check holds for its file.
    assert client.get(f"/facilities/{world.fac_out}/tanks/{theirs}?format=csv").status_code in (
        403,
        404,
    )


def test_gateway_page_exports_its_sensors_with_words(client: TestClient, world: World) -> None:
    with psycopg.connect(world.db_url) as conn:
        conn.execute(
            "INSERT INTO sensors (gateway_id, code, quantity, unit) VALUES "
            "(%s, 'T1-dp', 'dp', 'inH2O')",
            (world.gw_in,),
        )
    login(client, USERNAMES["engineer"])
    url = f"/facilities/{world.fac_in}/gateways/{world.gw_in}"
    assert f'href="{url}?format=xlsx"' in client.get(url).text
    rows = _rows(client.get(url + "?format=csv").content)
    assert rows[0][:4] == ["Cảm biến", "Đại lượng", "Bồn", "Giá trị gần nhất"], rows[0]
    [row] = rows[1:]
    assert row[0] == "T1-dp" and row[1] not in ("dp", "") and row[3] == "—", row
    other = f"/facilities/{world.fac_out}/gateways/{world.gw_out}?format=csv"
    assert client.get(other).status_code in (403, 404)
    login(client, USERNAMES["facility"])
    assert client.get(url + "?format=csv").status_code == 403


def test_suggestions_export_for_coordinators_only(client: TestClient, world: World) -> None:
    login(client, USERNAMES["syt"])
    page = client.get("/coordination/suggestions")
    assert 'href="/coordination/suggestions?format=csv"' in page.text
    assert 'href="/coordination/suggestions?list=shipments&amp;format=csv"' in page.text
    for query, first in (("", "Cơ sở y tế"), ("&list=shipments", "Nguồn cấp")):
        r = client.get(f"/coordination/suggestions?format=csv{query}")
        assert r.status_code == 200, r.text[:300]
        assert _rows(r.content)[0][0] == first
    en = _rows(client.get("/coordination/suggestions?format=csv&lang=en").content)
    assert en[0][:2] == ["Facility", "Province"]
    for role in ("facility", "supplier", "engineer"):
        login(client, USERNAMES[role])
        assert client.get("/coordination/suggestions?format=csv").status_code == 403, role
