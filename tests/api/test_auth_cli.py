"""`oxy users ...`, `oxy api run` (busy port) and `oxy api grafana-role`, and the read-only
Grafana role's reach, against the real database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from typer.testing import CliRunner

from oxy.cli import _register_packages, app
from tests.api.conftest import World, csrf_of, login

_register_packages()
runner = CliRunner()


@pytest.fixture
def env(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """CLI commands talk to the per-test database."""
    monkeypatch.setenv("OXY_DATABASE_URL", world.db_url)
    return world


def _ok(*args: str, stdin: str | None = None) -> str:
    r = runner.invoke(app, list(args), input=stdin)
    assert r.exit_code == 0, (r.output, r.exception)
    return r.output


def test_users_lifecycle_from_the_command_line(env: World, client: TestClient) -> None:
    out = _ok("users", "add", "syt-hcm-2", "--role", "syt", "--name", "Cán bộ", "--org", "SYT-79")
    temp = out.split("temporary password: ")[1].strip()
    assert len(temp) >= 12
    login(client, "syt-hcm-2", temp)
    assert client.get("/api/me").json()["role"] == "syt"

    assert "syt-hcm-2" in _ok("users", "list")
    _ok("users", "disable", "syt-hcm-2")
    assert client.get("/api/me").status_code == 401
    _ok("users", "enable", "syt-hcm-2")
    _ok(
        "users", "reset-password", "syt-hcm-2", "--password-stdin", stdin="a brand new passphrase\n"
    )
    login(client, "syt-hcm-2", "a brand new passphrase")
    token = _ok("users", "token", "syt-hcm-2", "--name", "etl").strip().splitlines()[-1]
    assert client.get("/api/me", headers={"authorization": f"Bearer {token}"}).status_code == 200
    with psycopg.connect(env.db_url) as conn:
        actions = [
            r[0]
            for r in conn.execute(
                "SELECT action FROM audit_log WHERE username LIKE 'cli%%' ORDER BY id"
            ).fetchall()
        ]
    assert actions == ["create", "disable", "enable", "reset_password", "create"]


def test_role_and_organisation_must_match(env: World) -> None:
    r = runner.invoke(
        app, ["users", "add", "x-user", "--role", "facility", "--name", "X", "--org", "SYT-79"]
    )
    assert r.exit_code != 0
    assert "does not match" in str(r.exception)
    r = runner.invoke(app, ["users", "add", "x-user", "--role", "syt", "--name", "X"])
    assert "needs an organisation" in str(r.exception)


def test_engineer_scope_from_the_command_line(env: World, client: TestClient) -> None:
    out = _ok(
        "users", "add", "eng-2", "--role", "engineer", "--name", "Kỹ sư", "--facility", "BV-OUT"
    )
    temp = out.split("temporary password: ")[1].strip()
    login(client, "eng-2", temp)
    assert client.get("/api/me").json()["facility_ids"] == [env.fac_out]
    # A temporary password is changed before anything else (test_password_lifecycle).
    assert client.get(f"/api/facilities/{env.fac_out}/gateways").status_code == 403
    new = "engineer passphrase 2"
    client.post(
        "/account/password",
        data={
            "csrf_token": csrf_of(client.get("/account").text),
            "current_password": temp,
            "new_password": new,
            "confirm_password": new,
        },
    )
    assert client.get(f"/api/facilities/{env.fac_out}/gateways").status_code == 200
    assert client.get(f"/api/facilities/{env.fac_in}/gateways").status_code == 404


def test_api_run_on_a_busy_port_says_so_in_one_line(env: World) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        oxy = Path(sys.executable).parent / "oxy"
        r = subprocess.run(
            [str(oxy), "api", "run", "--port", str(port)],
            env={**os.environ, "OXY_DATABASE_URL": env.db_url},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "OXY_API_PORT" in lines[0]


@pytest.fixture
def grafana_url(db_url: str) -> Iterator[str]:
    """A login role in oxy_grafana, the way Grafana's datasource connects."""
    name = f"oxy_gf_t_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE oxy_grafana')
    params = conninfo_to_dict(db_url)
    params["user"] = name
    try:
        yield make_conninfo(**params)
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(f'DROP ROLE "{name}"')


def test_grafana_role_reads_telemetry_views_only(world: World, grafana_url: str) -> None:
    with psycopg.connect(grafana_url, autocommit=True) as conn:
        for view in ("grafana.readings", "grafana.sensors", "grafana.tanks"):
            conn.execute(f"SELECT * FROM {view} LIMIT 1")
        for table in ("users", "sessions", "api_tokens", "audit_log", "readings", "mqtt_accounts"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT 1 FROM public.{table} LIMIT 1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE grafana.x (i int)")
        with pytest.raises(psycopg.errors.Error):
            conn.execute("DELETE FROM grafana.readings")


def test_grafana_role_command_needs_a_strong_password(
    env: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OXY_GRAFANA_DB_PASSWORD", "short")
    r = runner.invoke(app, ["api", "grafana-role"])
    assert r.exit_code != 0 and "at least 16" in str(r.exception)
