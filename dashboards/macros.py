"""Expand Grafana's PostgreSQL macros and template variables the way Grafana does, so that every
panel's SQL can be run against a real database outside Grafana (tests, `oxy dashboards check`).

Covered: `$__timeFilter(col)`, `$__timeFrom()`, `$__timeTo()`, `$__time(col)`,
`$__timeEpoch(col)`, `$__timeGroup(col, interval)`, `$__timeGroupAlias(col, interval)`,
`$__unixEpochFilter(col)`, `$__interval`, `$__interval_ms`, `$__rate_interval`, `$__range_s`,
and variables as `$name`, `${name}`, `${name:csv|sqlstring|raw}`, `[[name]]`. Multi-value and
"All" variables become a comma-separated list of quoted literals, as Grafana's SQL data
sources interpolate them. Grafana with `timescaledb: false` (our setting) groups time with
`floor(extract(epoch ...))`, which is what is produced here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_VAR = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)\]\]|\$(\w+)")
_MACRO = re.compile(r"\$__(\w+)\(([^()]*)\)")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
# Grafana's nice interval steps (rounded up to the next one of these).
_NICE_S = (1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


class MacroError(ValueError):
    """SQL that Grafana could not expand either (unknown macro or variable, bad argument)."""


def parse_duration(text: str) -> float:
    """'5m' → 300.0 seconds (Grafana's interval syntax)."""
    m = _DURATION.match(text.strip().strip("'\""))
    if not m:
        raise MacroError(f"bad interval {text!r}")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def format_duration(seconds: float) -> str:
    """300 → '5m': the shortest exact Grafana interval string."""
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_S[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds * 1000)}ms"


def quote_literal(value: str) -> str:
    """A SQL string literal, quotes doubled (Grafana's quoteLiteral for PostgreSQL)."""
    return "'" + value.replace("'", "''") + "'"


def _ts(value: datetime) -> str:
    # Grafana's time range has millisecond precision and is formatted as RFC 3339 in UTC.
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class TimeRange:
    """The dashboard's time range and the panel's computed interval."""

    start: datetime
    end: datetime
    max_points: int = 1000
    min_interval_s: float = 1.0

    @classmethod
    def last(cls, span: timedelta, now: datetime | None = None, **kw: float) -> TimeRange:
        """The range `now - span .. now`."""
        end = now or datetime.now(UTC)
        return cls(end - span, end, **kw)  # type: ignore[arg-type]

    @property
    def interval_s(self) -> float:
        """Grafana's $__interval: range / max data points, rounded up, at least the minimum."""
        raw = (self.end - self.start).total_seconds() / self.max_points
        nice = next((n for n in _NICE_S if n >= raw), _NICE_S[-1])
        return max(nice, self.min_interval_s)


@dataclass(frozen=True, slots=True)
class Variable:
    """A template variable's current selection (all options when "All")."""

    values: tuple[str, ...]
    multi: bool = True

    def sql(self, fmt: str | None) -> str:
        """The text Grafana puts in place of the variable in SQL."""
        if fmt == "raw" or (fmt is None and not self.multi):
            return ",".join(self.values)
        if fmt == "csv":
            return ",".join(self.values)
        return ",".join(quote_literal(v) for v in self.values)


def _args(text: str) -> list[str]:
    return [a.strip() for a in text.split(",")] if text.strip() else []


def _group(args: Sequence[str], alias: bool) -> str:
    if len(args) < 2:
        raise MacroError("$__timeGroup needs a column and an interval")
    seconds = parse_duration(args[1])
    step = int(seconds) if seconds == int(seconds) else seconds
    expr = f"floor(extract(epoch from {args[0]})/{step})*{step}"
    return expr + (' AS "time"' if alias else "")


def expand(sql: str, rng: TimeRange, variables: Mapping[str, Variable] | None = None) -> str:
    """`sql` with Grafana's variables, then its macros, replaced."""
    variables = variables or {}
    interval = rng.interval_s
    builtin = {
        "__interval": format_duration(interval),
        "__interval_ms": str(int(interval * 1000)),
        "__rate_interval": format_duration(max(4 * 15, interval)),
        "__range_s": str(int((rng.end - rng.start).total_seconds())),
    }

    def var(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3) or m.group(4)
        fmt = m.group(2)
        if name in builtin:
            return builtin[name]
        if name.startswith("__"):
            return m.group(0)  # a macro such as $__timeFilter: handled below
        if name not in variables:
            raise MacroError(f"unknown variable ${name}")
        return variables[name].sql(fmt)

    text = _VAR.sub(var, sql)
    start, end = quote_literal(_ts(rng.start)), quote_literal(_ts(rng.end))

    def macro(m: re.Match[str]) -> str:
        name, args = m.group(1), _args(m.group(2))
        if name == "timeFilter":
            return f"{args[0]} BETWEEN {start} AND {end}"
        if name == "timeFrom":
            return start
        if name == "timeTo":
            return end
        if name == "time":
            return f'{args[0]} AS "time"'
        if name == "timeEpoch":
            return f'extract(epoch from {args[0]}) AS "time"'
        if name == "timeGroup":
            return _group(args, alias=False)
        if name == "timeGroupAlias":
            return _group(args, alias=True)
        if name == "unixEpochFilter":
            lo, hi = int(rng.start.timestamp()), int(rng.end.timestamp())
            return f"{args[0]} >= {lo} AND {args[0]} <= {hi}"
        raise MacroError(f"unknown macro $__{name}")

    text = _MACRO.sub(macro, text)
    if "$__" in text:
        raise MacroError(f"unexpanded macro in: {text[text.index('$__') :][:40]!r}")
    return text


def variable_order(deps: Mapping[str, str]) -> list[str]:
    """Variables in an order where each one's query only uses variables before it."""
    order: list[str] = []
    pending = dict(deps)
    while pending:
        ready = [
            name
            for name, query in pending.items()
            if all(
                (m.group(1) or m.group(3) or m.group(4)) in order
                or (m.group(1) or m.group(3) or m.group(4)).startswith("__")
                for m in _VAR.finditer(query)
            )
        ]
        if not ready:
            raise MacroError(f"variables depend on each other or on unknown ones: {list(pending)}")
        for name in ready:
            order.append(name)
            del pending[name]
    return order


def used_variables(sql: str) -> set[str]:
    """Names of the template variables `sql` refers to (not Grafana's `$__` built-ins)."""
    names = {m.group(1) or m.group(3) or m.group(4) for m in _VAR.finditer(sql)}
    return {n for n in names if not n.startswith("__")}
