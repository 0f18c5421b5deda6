"""The per-test reset of a module's database (tests/fix_db.py) gives each test exactly the rows
and sequence positions a fresh clone of the template has, and refuses to hide schema changes."""

from __future__ import annotations

import psycopg
import pytest

from tests.fix_db import Baseline, cloned_database

# Every row of every table in the public schema and every sequence position, as text.
CONTENTS = """
SELECT c.relname, (xpath('/row/c/text()',
        query_to_xml(format('SELECT md5(coalesce(string_agg(t::text, ''|'' ORDER BY t::text), ''''))
                              AS c FROM %I.%I t', n.nspname, c.relname), false, true, '')))[1]::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
 UNION ALL
SELECT sequencename, coalesce(last_value, 0)::text FROM pg_sequences WHERE schemaname = 'public'
 ORDER BY 1"""


def contents(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(CONTENTS).fetchall()  # type: ignore[return-value]


def test_restore_gives_back_the_rows_and_sequences_of_the_baseline(
    pg_admin_url: str, template_db_url: str
) -> None:
    with cloned_database(pg_admin_url, template_db_url, "oxy_fixdb") as url:
        before = contents(url)
        baseline = Baseline(url)
        with psycopg.connect(url) as conn:
            conn.execute(
                "INSERT INTO organisations (code, kind, name, province_code, parent_id)"
                " SELECT 'BV-X', 'facility', 'X', '79', id FROM organisations WHERE code = 'SYT-79'"
            )
            conn.execute("UPDATE organisations SET name = name || ' (changed)'")
            conn.execute("DELETE FROM organisations WHERE code = 'SYT-01'")
        assert contents(url) != before
        baseline.restore(pg_admin_url)
        assert contents(url) == before


def test_restore_refuses_a_database_whose_objects_changed(
    pg_admin_url: str, template_db_url: str
) -> None:
    with cloned_database(pg_admin_url, template_db_url, "oxy_fixdb") as url:
        baseline = Baseline(url)
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE scratch (i int)")
        with pytest.raises(pytest.fail.Exception, match="own_database"):
            baseline.restore(pg_admin_url)
