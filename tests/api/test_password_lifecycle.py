"""Password lifecycle: a change revokes the other sessions and every API token; an admin reset
revokes sessions and tokens; the current-password check is throttled like login; a session on a
temporary password can do nothing but change it."""

from __future__ import annotations

import re
from collections.abc import Callable

import psycopg
from fastapi.testclient import TestClient

from api.auth import MAX_FAILURES, verify_password
from tests.api.conftest import PASSWORD, World, csrf_of, login

NEW = "a much better passphrase"


def _token(c: TestClient) -> str:
    r = c.post(
        "/api/tokens",
        json={"name": "etl"},
        headers={"x-csrf-token": csrf_of(c.get("/account").text)},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def _change(c: TestClient, current: str, new: str = NEW) -> TestClient:
    c.post(
        "/account/password",
        data={
            "csrf_token": csrf_of(c.get("/account").text),
            "current_password": current,
            "new_password": new,
            "confirm_password": new,
        },
        follow_redirects=False,
    )
    return c


def _me(c: TestClient, token: str | None = None) -> int:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return c.get("/api/me", headers=headers).status_code


def test_changing_the_password_revokes_other_sessions_and_all_tokens(
    client: TestClient, new_client: Callable[[], TestClient]
) -> None:
    login(client, "staff-in")
    other = login(new_client(), "staff-in")
    token = _token(client)
    assert _me(other) == 200 and _me(new_client(), token) == 200
    _change(client, PASSWORD)
    assert _me(client) == 200  # the session that changed it goes on
    assert _me(other) == 401
    assert _me(new_client(), token) == 401


def test_admin_reset_revokes_sessions_and_tokens(
    client: TestClient, world: World, new_client: Callable[[], TestClient]
) -> None:
    login(client, "staff-in")
    token = _token(client)
    admin = login(new_client(), "admin1")
    r = admin.post(
        f"/admin/users/{world.users['facility']}/reset-password",
        data={"csrf_token": csrf_of(admin.get("/admin/users").text)},
    )
    assert r.status_code == 200
    assert _me(client) == 401
    assert _me(new_client(), token) == 401


def test_the_current_password_check_is_throttled(client: TestClient, world: World) -> None:
    login(client, "staff-in")
    for i in range(12):
        _change(client, f"not my password {i}")
    with psycopg.connect(world.db_url) as conn:
        row = conn.execute(
            "SELECT failures FROM login_throttle WHERE key = 'user-ip:staff-in|testclient'"
        ).fetchone()
    assert row is not None and row[0] <= MAX_FAILURES + 1  # the login itself cleared the key
    # Locked now: even the right current password is refused, with a message saying so.
    _change(client, PASSWORD)
    assert "Đăng nhập sai quá nhiều lần" in client.get("/account").text
    assert _me(client) == 200
    with psycopg.connect(world.db_url) as conn:
        (stored,) = conn.execute(
            "SELECT password_hash FROM users WHERE username = 'staff-in'"
        ).fetchone() or ("",)
    assert verify_password(str(stored), PASSWORD)  # not changed


def test_a_temporary_password_can_only_be_changed(
    client: TestClient, world: World, new_client: Callable[[], TestClient]
) -> None:
    admin = login(new_client(), "admin1")
    r = admin.post(
        f"/admin/users/{world.users['facility']}/reset-password",
        data={"csrf_token": csrf_of(admin.get("/admin/users").text)},
    )
    temp = re.search(r'<code class="secret">([^<]+)</code>', r.text)
    assert temp
    login(client, "staff-in", temp.group(1))
    # API: no data, no tokens — a 403 with a code saying why.
    for path in ("/api/alerts", f"/api/facilities/{world.fac_in}/accounting"):
        r = client.get(path)
        assert r.status_code == 403, path
        assert r.json()["detail"]["code"] == "password_change_required"
    r = client.post(
        "/api/tokens",
        json={"name": "x"},
        headers={"x-csrf-token": csrf_of(client.get("/account").text)},
    )
    assert r.status_code == 403
    assert _me(client) == 200  # who am I still answers
    # Pages go to the account page, which explains.
    r = client.get("/", headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/account"
    assert "mật khẩu tạm thời" in client.get("/account").text
    # After the change, everything is open again.
    _change(client, temp.group(1))
    assert client.get("/api/alerts").status_code == 200
