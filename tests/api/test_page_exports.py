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
