"""Run every dashboard variable, panel query and alert query against a real database.

Variables are resolved in dependency order with "All" selected (every option), their values fed
into the panels' SQL exactly as Grafana interpolates them. Used by the tests and by
`oxy dashboards check`, which an operator can point at production through the read-only role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from dashboards.alerts import AlertRule
from dashboards.macros import TimeRange, Variable, expand, parse_duration, variable_order
from dashboards.model import Dashboard, SqlTarget
from oxy import OxyError


class CheckError(OxyError):
    """A query that fails or returns the wrong shape; the message names the panel."""


@dataclass(frozen=True, slots=True)
class QueryResult:
    """One executed query: where it comes from, its SQL as run, its columns and rows."""

    source: str
    panel_type: str
    format: str
    sql: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


def _run(conn: psycopg.Connection[Any], source: str, sql: str) -> tuple[tuple[str, ...], list[Any]]:
    try:
        with conn.transaction():
            cur = conn.execute(sql)
            columns = tuple(d.name for d in cur.description or ())
            return columns, cur.fetchall()
    except psycopg.Error as exc:
        raise CheckError(f"{source}: {exc}\n--- SQL as run ---\n{sql}") from exc


def resolve_variables(
    conn: psycopg.Connection[Any], dash: Dashboard, rng: TimeRange
) -> dict[str, Variable]:
    """Each variable's options (all selected), resolved in dependency order."""
    by_name = {v.name: v for v in dash.variables}
    resolved: dict[str, Variable] = {}
    for name in variable_order({v.name: v.query for v in dash.variables}):
        spec = by_name[name]
        source = f"{dash.uid} variable ${name}"
        columns, rows = _run(conn, source, expand(spec.query, rng, resolved))
        if not rows:
            raise CheckError(f"{source} has no options (panels using it could not run)")
        index = columns.index("__value") if "__value" in columns else 0
        resolved[name] = Variable(tuple(str(r[index]) for r in rows), multi=spec.multi)
    return resolved


def check_dashboard(
    conn: psycopg.Connection[Any], dash: Dashboard, rng: TimeRange
) -> list[QueryResult]:
    """Run every SQL target of `dash`; raise CheckError on an error or a wrong shape."""
    variables = resolve_variables(conn, dash, rng)
    results = []
    for panel in dash.panels:
        for target in panel.targets:
            if not isinstance(target, SqlTarget):
                continue
            panel_rng = rng
            if panel.min_interval:
                panel_rng = TimeRange(
                    rng.start, rng.end, rng.max_points, parse_duration(panel.min_interval)
                )
            source = f"{dash.uid} panel {panel.title!r}"
            sql = expand(target.sql, panel_rng, variables)
            columns, rows = _run(conn, source, sql)
            if target.format == "time_series" and "time" not in columns:
                raise CheckError(f"{source}: a time series needs a 'time' column, got {columns}")
            results.append(QueryResult(source, panel.type, target.format, sql, columns, rows))
    return results


def check_alert(conn: psycopg.Connection[Any], rule: AlertRule, end: Any = None) -> QueryResult:
    """Run an alert rule's SQL over its evaluation window."""
    from datetime import timedelta

    rng = TimeRange.last(timedelta(seconds=rule.window_s), now=end)
    source = f"alert rule {rule.uid}"
    sql = expand(rule.sql, rng)
    columns, rows = _run(conn, source, sql)
    return QueryResult(source, "alert", "table", sql, columns, rows)
