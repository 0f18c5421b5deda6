"""The SQL quality codes (migration 0116, `quality_code(name)`) are the wire contract's, and no
query of the API spells a quality as a literal number."""

import re
from pathlib import Path

import psycopg

from oxy.contract import QUALITY_CODE, Quality


def test_sql_quality_codes_match_the_wire_contract(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        for quality in Quality:
            got = conn.execute("SELECT quality_code(%s)", (quality.value,)).fetchone()
            assert got == (QUALITY_CODE[quality],), quality
        # An unknown name is no code at all, never "good".
        assert conn.execute("SELECT quality_code('excellent')").fetchone() == (None,)
        # Immutable, so the planner folds it to a constant (an index on quality still applies).
        volatility = conn.execute(
            "SELECT provolatile FROM pg_proc WHERE proname = 'quality_code'"
        ).fetchone()
        assert volatility == ("i",)


def test_api_sql_has_no_literal_quality_code() -> None:
    literal = re.compile(r"quality\s*(=|<>|!=)\s*\d")
    offenders = [
        f"{path}:{n}"
        for path in (Path(__file__).parents[2] / "api").rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if literal.search(line)
    ]
    assert offenders == []


def test_sql_functions_have_no_literal_quality_code(db_url: str) -> None:
    """The rollup functions (rollup_flush, rollup_recompute, ...) as the database holds them now,
    after every restatement, say `quality_code('good')`, never a literal code."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT p.proname, p.prosrc FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = current_schema() AND p.prosrc ~* 'quality'"
        ).fetchall()
        timescale = conn.execute(
            "SELECT count(*) > 0 FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
        caggs = (
            conn.execute(
                "SELECT view_name, view_definition "
                "FROM timescaledb_information.continuous_aggregates"
            ).fetchall()
            if timescale == (True,)
            else []
        )
        good = conn.execute("SELECT quality_code('good')").fetchone()
    literal = re.compile(r"quality\s*(=|<>|!=)\s*\d")
    assert {"rollup_flush", "rollup_recompute"} <= {str(name) for name, _src in rows}
    assert [name for name, src in rows if literal.search(str(src))] == []
    # TimescaleDB's continuous aggregates keep the filter they were created with (0004): it is
    # the good code of the contract.
    for name, definition in caggs:
        assert re.search(r"quality\s*=\s*0\b", str(definition)), name
        assert good == (0,)
