"""An administrator changes an engineer's scope after issuing the account (page and CLI): the
new scope applies at once (sessions end, tokens re-scope), failures change nothing, audited."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.auth import digest
from oxy.cli import _register_packages, app
from tests.api.conftest import World, csrf_of, login

_register_packages()
runner = CliRunner()


def _bearer(w: World, username: str) -> dict[str, str]:
    """A live bearer token for `username`, inserted directly (tokens have their own tests)."""
    secret = f"oxy_scope-{username}"
    with psycopg.connect(w.db_url) as conn:
        conn.execute(
            "INSERT INTO api_tokens (user_id, name, token_hash, prefix) "
            "SELECT id, 't', %s, 'x' FROM users WHERE username = %s",
            (digest(secret), username),
        )
    return {"authorization": f"Bearer {secret}"}


def _sees(c: TestClient, facility_id: int, headers: dict[str, str] | None = None) -> int:
    """Status of a facility-scoped read (the facility's gateways) for the caller."""
    return c.get(f"/api/facilities/{facility_id}/gateways", headers=headers or {}).status_code


def _scope_rows(w: World, user_id: int) -> tuple[bool, list[int]]:
    with psycopg.connect(w.db_url) as conn:
        row = conn.execute("SELECT national FROM users WHERE id = %s", (user_id,)).fetchone()
        assert row is not None
        ids = conn.execute(
            "SELECT facility_id FROM user_facilities WHERE user_id = %s ORDER BY 1", (user_id,)
        ).fetchall()
    return bool(row[0]), [int(r[0]) for r in ids]


def _audits(w: World, user_id: int) -> list[tuple[Any, ...]]:
    with psycopg.connect(w.db_url) as conn:
        return conn.execute(
            "SELECT username, before, after FROM audit_log "
            "WHERE action = 'set_scope' AND entity = 'user' AND entity_id = %s ORDER BY id",
            (str(user_id),),
        ).fetchall()


def _post_scope(
    admin: TestClient, user_id: int, *, codes: str, national: bool = False
) -> tuple[int, str]:
    """Submit the scope form from the accounts page; returns (status, page shown after)."""
    page = admin.get("/admin/users")
    assert f'action="/admin/users/{user_id}/scope"' in page.text
    data = {"csrf_token": csrf_of(page.text), "facility_codes": codes}
    if national:
        data["national"] = "true"
    r = admin.post(f"/admin/users/{user_id}/scope", data=data, follow_redirects=False)
    return r.status_code, admin.get("/admin/users").text if r.status_code == 303 else r.text


def test_admin_moves_engineer_to_another_facility(
    client: TestClient, world: World, new_client: Callable[[], TestClient]
) -> None:
    eng = world.users["engineer"]
    token = _bearer(world, "eng-in")
    engineer = login(new_client(), "eng-in")
    assert (_sees(engineer, world.fac_in), _sees(engineer, world.fac_out)) == (200, 404)
    assert (_sees(client, world.fac_in, token), _sees(client, world.fac_out, token)) == (200, 404)

    admin = login(client, "admin1")
    status, shown = _post_scope(admin, eng, codes="BV-OUT")
    assert status == 303
    assert "Đã đổi phạm vi của kỹ sư." in shown
    assert _scope_rows(world, eng) == (False, [world.fac_out])

    # The old session ended; logging in again gives the new scope.
    assert engineer.get("/api/me").status_code == 401
    login(engineer, "eng-in")
    assert (_sees(engineer, world.fac_in), _sees(engineer, world.fac_out)) == (404, 200)
    gateways = engineer.get(f"/api/facilities/{world.fac_out}/gateways").json()
    assert [g["code"] for g in gateways] == ["gw-bv-out"]
    # Tokens resolve scope per request: the same token now acts with the new scope.
    bearer = new_client()
    assert (_sees(bearer, world.fac_in, token), _sees(bearer, world.fac_out, token)) == (404, 200)

    [(who, before, after)] = _audits(world, eng)
    assert who == "admin1"
    assert before == {"national": False, "facility_ids": [world.fac_in]}
    assert after == {"national": False, "facility_ids": [world.fac_out]}
    # The form is prefilled with the current scope.
    row = admin.get("/admin/users").text.split(f'action="/admin/users/{eng}/scope"')[1]
    assert 'value="BV-OUT"' in row.split("</form>")[0]


def test_refusals_change_nothing(
    client: TestClient, world: World, new_client: Callable[[], TestClient]
) -> None:
    eng, staff = world.users["engineer"], world.users["facility"]
    engineer = login(new_client(), "eng-in")
    admin = login(client, "admin1")
    page = admin.get("/admin/users").text
    # Only engineers get the form.
    assert f'action="/admin/users/{staff}/scope"' not in page

    token = csrf_of(page)
    r = admin.post(
        f"/admin/users/{staff}/scope",
        data={"csrf_token": token, "facility_codes": "BV-OUT"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "Chỉ có thể đổi phạm vi của tài khoản kỹ sư." in admin.get("/admin/users").text
    assert _scope_rows(world, staff) == (False, [])

    # A non-facility code is a field error in the admin's language; the valid code before it
    # is not applied either (one transaction) and the engineer's session goes on.
    status, shown = _post_scope(admin, eng, codes="BV-OUT, NCC-IN")
    assert status == 303
    assert "Không phải cơ sở y tế: NCC-IN" in shown
    status, shown = _post_scope(admin, eng, codes="NOPE")
    assert "Không có đơn vị với mã: NOPE" in shown
    admin.cookies.set("oxy_lang", "en")
    status, shown = _post_scope(admin, eng, codes="NCC-OUT")
    assert "Not a facility: NCC-OUT" in shown
    assert _scope_rows(world, eng) == (False, [world.fac_in])
    assert engineer.get("/api/me").status_code == 200
    assert _audits(world, eng) == []

    r = admin.post("/admin/users/999999/scope", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 404


def test_only_administrators_may_change_a_scope(
    client: TestClient, world: World, new_client: Callable[[], TestClient]
) -> None:
    eng = world.users["engineer"]
    for username in ("syt79", "eng-in", "byt1"):
        c = login(new_client(), username)
        r = c.post(
            f"/admin/users/{eng}/scope",
            data={"csrf_token": csrf_of(c.get("/").text), "national": "true"},
            follow_redirects=False,
        )
        assert r.status_code == 403, username
    r = client.post(
        f"/admin/users/{eng}/scope",
        data={"national": "true"},
        headers=_bearer(world, "eng-in"),
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert _scope_rows(world, eng) == (False, [world.fac_in])
    assert _audits(world, eng) == []


def test_scope_from_the_command_line(client: TestClient, world: World, monkeypatch: Any) -> None:
    monkeypatch.setenv("OXY_DATABASE_URL", world.db_url)
    eng = world.users["engineer"]
    token = _bearer(world, "eng-in")

    r = runner.invoke(app, ["users", "scope", "eng-in", "--national"])
    assert r.exit_code == 0, (r.output, r.exception)
    assert _scope_rows(world, eng) == (True, [])
    assert (_sees(client, world.fac_in, token), _sees(client, world.fac_out, token)) == (200, 200)

    args = ["users", "scope", "eng-in", "--no-national", "--facility", "BV-OUT"]
    r = runner.invoke(app, [*args, "--facility", "BV-IN"])
    assert r.exit_code == 0, (r.output, r.exception)
    assert _scope_rows(world, eng) == (False, sorted([world.fac_in, world.fac_out]))

    r = runner.invoke(app, ["users", "scope", "eng-in", "--facility", "BV-OUT"])
    assert r.exit_code == 0, (r.output, r.exception)
    assert (_sees(client, world.fac_in, token), _sees(client, world.fac_out, token)) == (404, 200)

    r = runner.invoke(app, ["users", "scope", "staff-in", "--national"])
    assert r.exit_code != 0
    assert str(r.exception) == "Only an engineer's scope can be changed."
    r = runner.invoke(app, ["users", "scope", "eng-in", "--facility", "SYT-79"])
    assert str(r.exception) == "Not a facility: SYT-79"
    assert _scope_rows(world, eng) == (False, [world.fac_out])

    audits = _audits(world, eng)
    assert len(audits) == 3
    assert all(who.startswith("cli") for who, _, _ in audits)
    assert [json.dumps(a, sort_keys=True) for _, _, a in audits] == [
        json.dumps(x, sort_keys=True)
        for x in (
            {"national": True, "facility_ids": []},
            {"national": False, "facility_ids": sorted([world.fac_in, world.fac_out])},
            {"national": False, "facility_ids": [world.fac_out]},
        )
    ]
