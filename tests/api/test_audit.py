"""The audit trail: written on every write, append-only for the application's database role
(and, through the trigger, for everyone), readable by administrators and record owners."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from api.app import create_app
from oxy.settings import Settings
from tests.api.conftest import World, csrf_of, login


@pytest.fixture
def app_role_url(db_url: str) -> Iterator[str]:
    """A login role that is a member of `oxy_app` (how a deployment connects the API)."""
    name = f"oxy_app_t_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE oxy_app')
    params = conninfo_to_dict(db_url)
    params["user"] = name
    try:
        yield make_conninfo(**params)
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{name}"')
            conn.execute(f'DROP ROLE "{name}"')


def _one_entry(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "INSERT INTO audit_log (username, action, entity, entity_id) "
            "VALUES ('t', 'create', 'thing', '1') RETURNING id"
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET action = 'forged' WHERE id = %s",
        "DELETE FROM audit_log WHERE id = %s",
        "TRUNCATE audit_log",
    ],
)
def test_application_role_cannot_alter_the_trail(
    world: World, app_role_url: str, statement: str
) -> None:
    entry = _one_entry(world.db_url)
    with psycopg.connect(app_role_url) as conn:
        # The application role may read and append (through audit_append only) ...
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone() is not None
        conn.execute("SELECT audit_append(NULL, 'app', 'x', 'y', NULL, NULL, NULL, NULL)")
        conn.commit()
        # ... but not change or remove.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement, (entry,) if "%s" in statement else None)
        conn.rollback()
    with psycopg.connect(world.db_url) as conn:
        row = conn.execute("SELECT action FROM audit_log WHERE id = %s", (entry,)).fetchone()
    assert row == ("create",)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET action = 'forged' WHERE id = %s",
        "DELETE FROM audit_log WHERE id = %s",
        "TRUNCATE audit_log",
    ],
)
def test_even_the_owner_is_refused_by_the_trigger(world: World, statement: str) -> None:
    entry = _one_entry(world.db_url)
    with (
        psycopg.connect(world.db_url) as conn,  # the migration owner / superuser
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"),
    ):
        conn.execute(statement, (entry,) if "%s" in statement else None)


def test_app_runs_as_the_application_role_and_audits_writes(
    world: World, app_role_url: str
) -> None:
    with TestClient(create_app(Settings(database_url=app_role_url))) as c:
        login(c, "admin1")
        page = c.get("/admin/users")
        r = c.post(
            f"/admin/users/{world.victim}/disable",
            data={"csrf_token": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert r.status_code == 303
        rows = c.get("/api/audit", params={"entity": "user", "entity_id": str(world.victim)}).json()
    assert [(e["action"], e["username"], e["before"], e["after"]) for e in rows] == [
        ("disable", "admin1", {"is_active": True}, {"is_active": False})
    ]


def test_owners_read_their_records_history_only(
    client: TestClient, world: World, new_client: Callable[[], TestClient]
) -> None:
    with psycopg.connect(world.db_url) as conn:
        for org, what in ((world.fac_in, "in"), (world.fac_out, "out")):
            conn.execute(
                "INSERT INTO audit_log (username, action, entity, entity_id, org_id, after) "
                "VALUES ('someone', 'update', 'facility_report', %s, %s, '{}')",
                (what, org),
            )

    def seen(username: str) -> set[str]:
        c = new_client()
        login(c, username)
        rows = c.get("/api/audit", params={"entity": "facility_report"}).json()
        return {e["entity_id"] for e in rows}

    assert seen("admin1") == {"in", "out"}
    assert seen("byt1") == {"in", "out"}
    assert seen("syt79") == {"in"}  # its facilities
    assert seen("staff-in") == {"in"}  # its own facility
    assert seen("ncc-in") == set()
    # The page renders the same entries.
    login(client, "syt79")
    page = client.get("/audit", params={"entity": "facility_report"})
    # Record types and actions as catalogue labels, never the stored names.
    assert page.status_code == 200 and "Báo cáo của cơ sở in" in page.text
    assert "Báo cáo của cơ sở out" not in page.text
    assert "facility_report in" not in page.text


def test_secrets_never_enter_the_trail(client: TestClient, world: World) -> None:
    login(client, "admin1")
    page = client.get("/admin/users")
    r = client.post(
        "/admin/users",
        data={
            "csrf_token": csrf_of(page.text),
            "username": "new-syt",
            "display_name": "Cán bộ SYT",
            "role": "syt",
            "org_code": "SYT-79",
        },
    )
    assert r.status_code == 200 and "new-syt" in r.text
    with psycopg.connect(world.db_url) as conn:
        rows = conn.execute("SELECT after::text FROM audit_log WHERE entity = 'user'").fetchall()
        hashes = conn.execute("SELECT password_hash FROM users").fetchall()
    assert rows
    for (after,) in rows:
        assert "argon2" not in (after or "") and "password" not in (after or "")
    assert all(h[0].startswith("$argon2id$") for h in hashes)


def test_application_role_cannot_forge_or_backdate_audit_rows(
    world: World, app_role_url: str
) -> None:
    admin = world.users["admin"]
    with psycopg.connect(app_role_url) as conn:
        # No direct insert: a row with a chosen time, name or role cannot be written.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO audit_log (at, user_id, username, role, action, entity) "
                "VALUES ('2020-01-01', %s, 'someone', 'byt', 'approve', 'syt_report')",
                (admin,),
            )
        conn.rollback()
        # Through the function, the name and role come from the account, the time from the clock.
        row = conn.execute(
            "SELECT audit_append(%s, 'someone else', 'approve', 'syt_report', '1', NULL, NULL, "
            "'{}'::jsonb)",
            (admin,),
        ).fetchone()
        assert row is not None
        entry = conn.execute(
            "SELECT username, role, now() - at < interval '1 minute' FROM audit_log WHERE id = %s",
            (row[0],),
        ).fetchone()
        conn.commit()
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(
                "SELECT audit_append(-1, 'x', 'approve', 'syt_report', '1', NULL, NULL, NULL)"
            )
        conn.rollback()
    with psycopg.connect(world.db_url) as conn:
        name = conn.execute("SELECT username FROM users WHERE id = %s", (admin,)).fetchone()
    assert name is not None
    assert entry == (name[0], "admin", True)


@pytest.mark.parametrize(
    "table", ["facility_report_revisions", "syt_report_revisions", "supplier_report_revisions"]
)
def test_report_revisions_are_append_only(world: World, app_role_url: str, table: str) -> None:
    with psycopg.connect(app_role_url) as conn:
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() is not None
        for statement in (
            f"UPDATE {table} SET snapshot = '{{}}'::jsonb",
            f"DELETE FROM {table}",
            f"TRUNCATE {table}",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()
    # Even the owner cannot rewrite a revision (the trigger).
    with psycopg.connect(world.db_url) as conn:
        org = world.fac_in
        rid = conn.execute(
            "INSERT INTO facility_reports (facility_id, report_day) VALUES (%s, '2026-01-05') "
            "RETURNING id",
            (org,),
        ).fetchone()
        assert rid is not None
        conn.execute(
            "INSERT INTO facility_report_revisions (report_id, revision, author, kind, snapshot, "
            "diff) VALUES (%s, 1, 'a', 'report', '{}', '{}')",
            (rid[0],),
        )
        conn.commit()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("UPDATE facility_report_revisions SET author = 'forged'")
