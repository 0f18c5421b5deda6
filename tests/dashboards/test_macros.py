"""The macro expander produces what Grafana's PostgreSQL data source documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards.macros import (
    MacroError,
    TimeRange,
    Variable,
    expand,
    format_duration,
    parse_duration,
    variable_order,
)

RNG = TimeRange(
    datetime(2017, 4, 21, 5, 1, 17, tzinfo=UTC), datetime(2017, 4, 21, 5, 6, 17, tzinfo=UTC)
)


def test_time_macros() -> None:
    assert expand("WHERE $__timeFilter(ts)", RNG) == (
        "WHERE ts BETWEEN '2017-04-21T05:01:17.000Z' AND '2017-04-21T05:06:17.000Z'"
    )
    assert expand("$__timeFrom() $__timeTo()", RNG) == (
        "'2017-04-21T05:01:17.000Z' '2017-04-21T05:06:17.000Z'"
    )
    assert expand("SELECT $__time(ts)", RNG) == 'SELECT ts AS "time"'
    assert expand("SELECT $__timeEpoch(ts)", RNG) == 'SELECT extract(epoch from ts) AS "time"'
    assert expand("$__timeGroup(ts,'5m')", RNG) == "floor(extract(epoch from ts)/300)*300"
    assert expand("$__timeGroupAlias(ts, '1h')", RNG) == (
        'floor(extract(epoch from ts)/3600)*3600 AS "time"'
    )
    assert expand("$__unixEpochFilter(t)", RNG) == "t >= 1492750877 AND t <= 1492751177"


def test_interval_follows_range_and_minimum() -> None:
    # 5 minutes over 1000 points: 0.3 s, rounded up to Grafana's 1 s step.
    assert expand("$__interval $__interval_ms", RNG) == "1s 1000"
    week = TimeRange.last(timedelta(days=7), now=datetime(2026, 1, 1, tzinfo=UTC))
    assert week.interval_s == 900  # 604.8 s → 15 min
    assert expand("$__timeGroupAlias(b, $__interval)", week).startswith(
        "floor(extract(epoch from b)/900)*900"
    )
    hourly = TimeRange(week.start, week.end, min_interval_s=3600)
    assert expand("$__interval", hourly) == "1h"


def test_multi_value_variables_are_quoted_lists() -> None:
    variables = {"province": Variable(("01", "79")), "x": Variable(("O'Brien",))}
    assert expand("code IN ($province)", RNG, variables) == "code IN ('01','79')"
    assert expand("code IN (${province})", RNG, variables) == "code IN ('01','79')"
    assert expand("[[province]]", RNG, variables) == "'01','79'"
    assert expand("${province:csv}", RNG, variables) == "01,79"
    assert expand("name = $x", RNG, variables) == "name = 'O''Brien'"
    single = {"n": Variable(("5",), multi=False)}
    assert expand("LIMIT $n", RNG, single) == "LIMIT 5"


def test_unknown_names_fail_loudly() -> None:
    with pytest.raises(MacroError, match=r"\$nope"):
        expand("WHERE a IN ($nope)", RNG)
    with pytest.raises(MacroError, match="unknown macro"):
        expand("$__timeBucket(ts)", RNG)
    with pytest.raises(MacroError):
        parse_duration("five minutes")


def test_durations_round_trip() -> None:
    for text in ("1s", "15s", "5m", "1h", "6h", "1d"):
        assert format_duration(parse_duration(text)) == text
    assert parse_duration("'5m'") == 300


def test_variable_order_respects_dependencies_and_rejects_cycles() -> None:
    order = variable_order(
        {"tank": "x IN ($facility)", "facility": "y IN ($province)", "province": "SELECT 1"}
    )
    assert order == ["province", "facility", "tank"]
    with pytest.raises(MacroError):
        variable_order({"a": "$b", "b": "$a"})
