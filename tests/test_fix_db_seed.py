"""A module's seed (tests/fix_db.py `Seed`): built once per module on plain PostgreSQL, given to
the tests that use its fixture and to them only, in its own state again for each of them (what a
test added is gone), and as a copy of its value; a module may have several, each test getting the
one whose fixture it uses. The tests run in file order (one module)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.fix_db import BACKEND, Seed, seeded

BUILDS: list[str] = []


def _build(url: str) -> dict[str, Any]:
    BUILDS.append(url)
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "INSERT INTO organisations (code, kind, name) VALUES ('SEED-ORG', 'supplier', 'S')"
            " RETURNING id"
        ).fetchone()
    assert row is not None
    return {"org": row[0], "notes": []}


def _build_other(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO organisations (code, kind, name) VALUES ('SEED-TWO', 'supplier', 'T')"
        )
    return {"other": True}


@pytest.fixture(scope="module")
def db_seed() -> tuple[Seed, Seed]:
    return (Seed("fix-db-seed", "org", _build), Seed("fix-db-seed-2", "other", _build_other))


@pytest.fixture
def other(request: pytest.FixtureRequest, db_url: str) -> dict[str, Any]:
    value: dict[str, Any] = seeded(request)
    return value


@pytest.fixture
def org(request: pytest.FixtureRequest, db_url: str) -> dict[str, Any]:
    value: dict[str, Any] = seeded(request)
    return value


def _codes(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT code FROM organisations WHERE code LIKE 'SEED-%'").fetchall()
    return {str(r[0]) for r in rows}


def test_a_test_using_the_seed_gets_its_rows(org: dict[str, Any], db_url: str) -> None:
    assert _codes(db_url) == {"SEED-ORG"}
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO organisations (code, kind, name) VALUES ('SEED-DIRT', 'supplier', 'D')"
        )
    org["notes"].append("changed by the first test")


def test_a_test_not_using_it_gets_the_template_rows(db_url: str) -> None:
    assert _codes(db_url) == set()


def test_the_next_test_using_it_gets_the_seeded_state_again(
    org: dict[str, Any], db_url: str
) -> None:
    assert _codes(db_url) == {"SEED-ORG"}  # the first test's row is gone
    assert org["notes"] == []  # and so is its change to the value
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT id FROM organisations WHERE code = 'SEED-ORG'").fetchone()
    assert row == (org["org"],)
    # Built once for the module on plain PostgreSQL; per test (own clone) on TimescaleDB.
    assert len(BUILDS) == (1 if BACKEND == "postgresql" else 2)


def test_a_second_seed_of_the_module_gives_its_own_state(
    other: dict[str, Any], db_url: str
) -> None:
    assert other == {"other": True}
    assert _codes(db_url) == {"SEED-TWO"}  # the first seed's rows are not there


def test_the_first_seed_again_after_the_second(org: dict[str, Any], db_url: str) -> None:
    assert _codes(db_url) == {"SEED-ORG"}
    assert len(BUILDS) == (1 if BACKEND == "postgresql" else 3)
