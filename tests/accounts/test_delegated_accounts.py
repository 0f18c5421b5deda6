"""Accounts down the chain: the Ministry issues and disables departments' (and ministry
offices') accounts, a department its facilities'; each only within its scope, every action
audited, the role fixed (least privilege), temporary passwords shown once."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from tests.api.conftest import World, csrf_of, login


def _user(w: World, username: str) -> dict[str, Any] | None:
    with psycopg.connect(w.db_url) as conn:
        row = conn.execute(
            "SELECT u.id, u.role, o.code, u.is_active, u.must_change_password FROM users u "
            "LEFT JOIN organisations o ON o.id = u.org_id WHERE u.username = %s",
            (username,),
        ).fetchone()
    if row is None:
        return None
    keys = ("id", "role", "org", "active", "must_change")
    return dict(zip(keys, row, strict=True))


def _audit(w: World, action: str, entity_id: int) -> list[tuple[Any, ...]]:
    with psycopg.connect(w.db_url) as conn:
        return conn.execute(
            "SELECT username, action FROM audit_log WHERE entity = 'user' AND action = %s "
            "AND entity_id = %s",
            (action, str(entity_id)),
        ).fetchall()


def _issue(c: TestClient, **data: str) -> Any:
    token = csrf_of(c.get("/accounts").text)
    return c.post("/accounts", data={"csrf_token": token, **data}, follow_redirects=False)


def _post(c: TestClient, path: str) -> Any:
    token = csrf_of(c.get("/accounts").text)
    return c.post(path, data={"csrf_token": token}, follow_redirects=False)


def _password(html: str) -> str:
    m = re.search(r'<code class="secret">([^<]+)</code>', html)
    assert m, "no temporary password shown"
    return m.group(1)


def test_department_issues_its_facilities_accounts(client: TestClient, world: World) -> None:
    login(client, "syt79")
    assert '<a href="/accounts"' in client.get("/").text  # in the department's menu
    page = client.get("/accounts")
    assert "BV-IN" in page.text and "BV-OUT" not in page.text  # only its facilities offered
    assert "staff-in" in page.text and "victim" not in page.text  # only its facilities' accounts
    # A role field sent anyway is ignored: a department issues facility accounts only.
    r = _issue(
        client, username="kho-bv-in", display_name="Kho BV IN", org_code="BV-IN", role="admin"
    )
    assert r.status_code == 200
    password = _password(r.text)
    new = _user(world, "kho-bv-in")
    assert new is not None
    assert (new["role"], new["org"], new["active"], new["must_change"]) == (
        "facility",
        "BV-IN",
        True,
        True,
    )
    assert _audit(world, "create", new["id"]) == [("syt79", "create")]
    # Shown once: the next view of the page does not carry it.
    assert password not in client.get("/accounts").text
    # The new account logs in with it (and must change it).
    client.cookies.clear()
    login(client, "kho-bv-in", password)


def test_department_cannot_issue_outside_its_scope(client: TestClient, world: World) -> None:
    login(client, "syt79")
    for org in ("BV-OUT", "SYT-79", "BYT", "NCC-IN", ""):
        r = _issue(client, username="x-" + (org.lower() or "none"), display_name="X", org_code=org)
        assert r.status_code == 422, org
        assert 'id="err-org_code"' in r.text
        assert _user(world, "x-" + (org.lower() or "none")) is None
    r = _issue(client, username="staff-in", display_name="Dup", org_code="BV-IN")
    assert r.status_code == 422 and 'id="err-username"' in r.text


def test_department_disables_only_its_facilities_accounts(client: TestClient, world: World) -> None:
    login(client, "syt79")
    staff = _user(world, "staff-in")
    assert staff is not None
    r = _post(client, f"/accounts/{staff['id']}/disable")
    assert r.status_code == 303
    assert _user(world, "staff-in")["active"] is False  # type: ignore[index]
    assert _audit(world, "disable", staff["id"]) == [("syt79", "disable")]
    assert _post(client, f"/accounts/{staff['id']}/enable").status_code == 303
    assert _user(world, "staff-in")["active"] is True  # type: ignore[index]
    # Another province's facility account, the Ministry's and the engineer's: as if absent.
    for name in ("victim", "byt1", "eng-in", "syt79"):
        u = _user(world, name)
        assert u is not None
        assert _post(client, f"/accounts/{u['id']}/disable").status_code == 404, name
        assert _post(client, f"/accounts/{u['id']}/reset-password").status_code == 404, name
        assert _user(world, name)["active"] is True  # type: ignore[index]


def test_reset_password_shown_once(client: TestClient, world: World) -> None:
    login(client, "syt79")
    staff = _user(world, "staff-in")
    assert staff is not None
    r = _post(client, f"/accounts/{staff['id']}/reset-password")
    assert r.status_code == 200
    password = _password(r.text)
    assert _user(world, "staff-in")["must_change"] is True  # type: ignore[index]
    assert _audit(world, "reset_password", staff["id"]) == [("syt79", "reset_password")]
    assert password not in client.get("/accounts").text


def test_ministry_issues_department_accounts(client: TestClient, world: World) -> None:
    login(client, "byt1")
    r = _issue(client, username="syt01-officer", display_name="SYT 01", org_code="SYT-01")
    assert r.status_code == 200
    new = _user(world, "syt01-officer")
    assert new is not None and (new["role"], new["org"]) == ("syt", "SYT-01")
    # Not a facility's account, nor a supplier's or the Ministry's own.
    for org in ("BV-IN", "NCC-IN", "BYT"):
        assert (
            _issue(client, username="m-" + org.lower(), display_name="M", org_code=org).status_code
            == 422
        )
    syt = _user(world, "syt79")
    assert syt is not None
    assert _post(client, f"/accounts/{syt['id']}/disable").status_code == 303
    assert _user(world, "syt79")["active"] is False  # type: ignore[index]
    assert _audit(world, "disable", syt["id"]) == [("byt1", "disable")]
    staff = _user(world, "staff-in")
    assert staff is not None
    assert _post(client, f"/accounts/{staff['id']}/disable").status_code == 404
    listed = {u["username"] for u in client.get("/api/accounts").json()}
    assert listed == {"syt79", "syt01-officer"}


def test_other_roles_do_not_issue_accounts(client: TestClient, world: World) -> None:
    for name in ("staff-in", "ncc-in", "eng-in", "admin1"):
        login(client, name)
        assert client.get("/accounts").status_code == 403
        assert client.get("/api/accounts").status_code == 403
        client.cookies.clear()


def test_admin_form_does_not_default_to_administrator(client: TestClient, world: World) -> None:
    login(client, "admin1")
    html = client.get("/admin/users").text
    select = html.split('<select name="role">', 1)[1].split("</select>", 1)[0]
    selected = re.findall(r'<option value="(\w+)" selected>', select)
    assert selected == ["facility"]
    assert select.index('value="admin"') > select.index('value="facility"')
