"""Login, sessions, tokens, throttling, CSRF and security headers, against the real app + DB."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from fastapi.testclient import TestClient

from api.auth import MAX_FAILURES
from tests.api.conftest import PASSWORD, World, csrf_of, login


def _post_login(c: TestClient, username: str, password: str) -> int:
    page = c.get("/login")
    r = c.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    return r.status_code


def test_login_sets_a_hardened_session_cookie_and_logout_ends_it(client: TestClient) -> None:
    page = client.get("/login")
    r = client.post(
        "/login",
        data={"username": "syt79", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "oxy_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http in the test; https sets Secure
    assert client.get("/api/me").json()["username"] == "syt79"
    home = client.get("/")
    assert home.status_code == 200
    client.post("/logout", data={"csrf_token": csrf_of(home.text)}, follow_redirects=False)
    assert client.get("/api/me").status_code == 401


def test_session_cookie_is_secure_over_https(settings, world: World) -> None:  # type: ignore[no-untyped-def]
    from api.app import create_app

    with TestClient(create_app(settings), base_url="https://testserver") as c:
        page = c.get("/login")
        r = c.post(
            "/login",
            data={"username": "syt79", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert "Secure" in r.headers["set-cookie"]
        assert "strict-transport-security" in r.headers


def test_wrong_password_and_unknown_user_look_the_same(client: TestClient) -> None:
    assert _post_login(client, "syt79", "wrong password!") == 401
    assert _post_login(client, "nobody-here", "wrong password!") == 401


def test_brute_force_is_locked_out_across_app_instances(
    client: TestClient, settings, world: World
) -> None:  # type: ignore[no-untyped-def]
    for _ in range(MAX_FAILURES):
        assert _post_login(client, "staff-in", "guess-guess-guess") == 401
    # Now even the right password is refused, with Retry-After ...
    page = client.get("/login")
    r = client.post(
        "/login",
        data={"username": "staff-in", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    # ... also by a second application instance (another replica): the lock is in the database.
    from api.app import create_app

    with TestClient(create_app(settings)) as other:
        assert _post_login(other, "staff-in", PASSWORD) == 429
    # When the lock expires, the right password works again and clears the counter.
    with psycopg.connect(world.db_url) as conn:
        conn.execute("UPDATE login_throttle SET locked_until = now() - interval '1 second'")
    assert _post_login(client, "staff-in", PASSWORD) == 303
    with psycopg.connect(world.db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM login_throttle WHERE key = 'user-ip:staff-in|testclient'"
        ).fetchone()
    assert row == (0,)


def test_further_failures_lengthen_the_lock(client: TestClient, world: World) -> None:
    for _ in range(MAX_FAILURES):
        _post_login(client, "byt1", "nope-nope-nope")
    with psycopg.connect(world.db_url) as conn:
        first = conn.execute(
            "SELECT locked_until - now() FROM login_throttle WHERE key = 'user-ip:byt1|testclient'"
        ).fetchone()
        conn.execute("UPDATE login_throttle SET locked_until = now() - interval '1 second'")
    _post_login(client, "byt1", "nope-nope-nope")
    with psycopg.connect(world.db_url) as conn:
        second = conn.execute(
            "SELECT locked_until - now() FROM login_throttle WHERE key = 'user-ip:byt1|testclient'"
        ).fetchone()
    assert first is not None and second is not None
    assert second[0] > first[0]


def test_disabled_user_session_and_token_stop_at_once(
    client: TestClient, world: World, new_client: Callable[[], TestClient]
) -> None:

    # The victim logs in (session) and creates a token through the API.
    login(client, "syt79")
    home = client.get("/")
    r = client.post(
        "/api/tokens", json={"name": "script"}, headers={"x-csrf-token": csrf_of(home.text)}
    )
    assert r.status_code == 201
    token = r.json()["token"]
    assert client.get("/api/me").status_code == 200
    assert client.get("/api/me", headers={"authorization": f"Bearer {token}"}).status_code == 200

    # An administrator disables the account through the admin page.
    admin = new_client()
    login(admin, "admin1")
    page = admin.get("/admin/users")
    assert page.status_code == 200
    r = admin.post(
        f"/admin/users/{world.users['syt']}/disable",
        data={"csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    # The very next requests are refused, for the session and for the token.
    assert client.get("/api/me").status_code == 401
    assert client.get("/api/me", headers={"authorization": f"Bearer {token}"}).status_code == 401
    assert _post_login(client, "syt79", PASSWORD) == 401


def test_revoked_token_stops_and_bad_token_is_not_a_cookie_fallback(
    client: TestClient, world: World
) -> None:
    login(client, "eng-in")
    home = client.get("/")
    csrf = {"x-csrf-token": csrf_of(home.text)}
    issued = client.post("/api/tokens", json={"name": "ci"}, headers=csrf).json()
    bearer = {"authorization": f"Bearer {issued['token']}"}
    assert client.get("/api/tokens", headers=bearer).status_code == 200
    assert client.delete(f"/api/tokens/{issued['id']}", headers=csrf).status_code == 204
    assert client.get("/api/me", headers=bearer).status_code == 401
    # A wrong bearer token is an error even though a valid session cookie is present.
    assert client.get("/api/me", headers={"authorization": "Bearer oxy_nope"}).status_code == 401
    with psycopg.connect(world.db_url) as conn:
        stored = conn.execute("SELECT token_hash FROM api_tokens").fetchall()
    assert all(issued["token"].encode() not in bytes(h[0]) for h in stored)


def test_csrf_is_required_on_forms_and_cookie_authenticated_json(
    client: TestClient, new_client: Callable[[], TestClient]
) -> None:
    # Login form without the token.
    client.get("/login")
    r = client.post(
        "/login", data={"username": "syt79", "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 403
    login(client, "admin1")
    # A form post with a wrong token, and JSON without the header.
    r = client.post("/admin/users", data={"username": "x", "csrf_token": "forged"})
    assert r.status_code == 403
    assert client.post("/api/tokens", json={"name": "x"}).status_code == 403
    # The token of another session does not work either.
    other = new_client()
    login(other, "byt1")
    foreign = csrf_of(other.get("/").text)
    assert (
        client.post(
            "/api/tokens", json={"name": "x"}, headers={"x-csrf-token": foreign}
        ).status_code
        == 403
    )
    good = csrf_of(client.get("/").text)
    assert (
        client.post("/api/tokens", json={"name": "x"}, headers={"x-csrf-token": good}).status_code
        == 201
    )


def test_security_headers_on_pages_and_api(client: TestClient) -> None:
    for path in ("/login", "/health", "/api/me", "/static/css/app.css"):
        r = client.get(path)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"]
    assert "<script>" not in client.get("/login").text  # no inline scripts at all


def test_password_change_and_admin_reset(
    client: TestClient, world: World, new_client: Callable[[], TestClient]
) -> None:
    login(client, "staff-in")
    home = client.get("/account")
    new = "a much better passphrase"
    r = client.post(
        "/account/password",
        data={
            "csrf_token": csrf_of(home.text),
            "current_password": PASSWORD,
            "new_password": new,
            "confirm_password": new,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert _post_login(new_client(), "staff-in", PASSWORD) == 401
    admin = new_client()
    login(admin, "admin1")
    page = admin.get("/admin/users")
    r = admin.post(
        f"/admin/users/{world.users['facility']}/reset-password",
        data={"csrf_token": csrf_of(page.text)},
    )
    assert r.status_code == 200
    import re

    temp = re.search(r'<code class="secret">([^<]+)</code>', r.text)
    assert temp
    # The reset ended the user's session; the temporary password works and must be changed.
    assert client.get("/api/me").status_code == 401
    again = new_client()
    login(again, "staff-in", temp.group(1))
    home = again.get("/")  # a temporary password leads to the account page, which says why
    assert home.url.path == "/account" and "mật khẩu tạm thời" in home.text


def test_anonymous_html_request_is_sent_to_login(client: TestClient) -> None:
    r = client.get("/admin/users", headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=/admin/users")


def test_open_redirect_after_login_is_refused(client: TestClient) -> None:
    page = client.get("/login")
    r = client.post(
        "/login",
        data={
            "username": "byt1",
            "password": PASSWORD,
            "next": "//evil.example/x",
            "csrf_token": csrf_of(page.text),
        },
        follow_redirects=False,
    )
    assert r.headers["location"] == "/"


def test_home_lists_each_roles_functions(new_client: Callable[[], TestClient]) -> None:
    labels = {
        "admin1": "Quản trị viên",
        "byt1": "Bộ Y tế (BYT)",
        "syt79": "Sở Y tế (SYT)",
        "staff-in": "Cơ sở y tế",
        "ncc-in": "Nhà cung cấp",
        "eng-in": "Kỹ sư",
    }
    for username, label in labels.items():
        c = new_client()
        login(c, username)
        home = c.get("/")
        assert home.status_code == 200
        assert label in home.text and "Chức năng của bạn" in home.text
        assert ('href="/admin/users"' in home.text) == (username == "admin1")
        assert 'href="/audit"' in home.text


def test_forbidden_page_is_explained_in_vietnamese(client: TestClient) -> None:
    login(client, "syt79")
    r = client.get("/admin/users", headers={"accept": "text/html"})
    assert r.status_code == 403
    assert "Vai trò của bạn không được dùng trang này." in r.text
    r = client.get("/api/admin/users")
    assert r.status_code == 403 and r.json() == {"detail": "forbidden for this role"}


def test_idle_and_expired_sessions_and_tokens_are_refused(
    client: TestClient, world: World, new_client: Callable[[], TestClient]
) -> None:
    login(client, "byt1")
    other = new_client()
    login(other, "syt79")
    csrf = {"x-csrf-token": csrf_of(other.get("/").text)}
    token = other.post(
        "/api/tokens", json={"name": "short", "expires_at": "2030-01-01T00:00:00Z"}, headers=csrf
    ).json()["token"]
    bearer = {"authorization": f"Bearer {token}"}
    assert client.get("/api/me").status_code == 200
    assert other.get("/api/me", headers=bearer).status_code == 200
    with psycopg.connect(world.db_url) as conn:
        # byt1 has been idle for five hours; syt79's session passed its absolute lifetime.
        conn.execute(
            "UPDATE sessions SET last_seen = now() - interval '5 hours' WHERE user_id = %s",
            (world.users["byt"],),
        )
        conn.execute(
            "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id = %s",
            (world.users["syt"],),
        )
        conn.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second'")
    assert client.get("/api/me").status_code == 401
    assert other.get("/api/me").status_code == 401
    assert other.get("/api/me", headers=bearer).status_code == 401
