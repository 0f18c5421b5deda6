"""Every panel's SQL, with Grafana's macros and variables expanded, runs as `oxy_grafana` against a
seeded database and returns rows of the expected shape and the expected figures."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from api.accounting.stock import DayUse, average_daily, days_of_supply
from dashboards.alerts import RULES
from dashboards.catalog import DASHBOARDS
from dashboards.check import CheckError, QueryResult, check_alert, check_dashboard
from dashboards.macros import TimeRange, Variable, expand
from dashboards.tanks import DASHBOARD as TANKS
from oxy.contract import NORMAL
from tests.dashboards.seed import World


def _by_title(results: list[QueryResult], fragment: str) -> QueryResult:
    hits = [r for r in results if fragment in r.source]
    assert len(hits) == 1, (fragment, [r.source for r in results])
    return hits[0]


@pytest.mark.parametrize("span_days", [1, 7], ids=["minute-rollups", "hour-rollups"])
@pytest.mark.parametrize("dash", DASHBOARDS, ids=lambda d: d.uid)
def test_every_panel_query_runs_and_returns_rows(
    grafana_conn: psycopg.Connection[Any], world_db: tuple[str, World], dash: Any, span_days: int
) -> None:
    _, world = world_db
    rng = TimeRange.last(timedelta(days=span_days), now=world.now + timedelta(minutes=1))
    results = check_dashboard(grafana_conn, dash, rng)
    assert len(results) == sum(
        1 for p in dash.panels for t in p.targets if type(t).__name__ == "SqlTarget"
    )
    for res in results:
        assert res.rows, f"{res.source} returned no rows on the seeded world\n{res.sql}"
        if res.format == "time_series":
            assert res.columns[0] == "time", res.source
            numeric = [c for c in res.columns if c not in {"time", "metric"}]
            assert numeric, res.source
            for row in res.rows:
                record = dict(zip(res.columns, row, strict=True))
                assert record["time"] is not None
                for c in numeric:
                    assert record[c] is None or isinstance(record[c], int | float | Decimal), (
                        res.source,
                        c,
                    )
                if "metric" in record:
                    assert isinstance(record["metric"], str)
        if res.panel_type == "stat":
            assert len(res.rows) == 1, res.source
            assert all(isinstance(v, int | float | Decimal) for v in res.rows[0]), res.source


def test_tank_figures_match_the_calibration_and_the_report_windows(
    grafana_conn: psycopg.Connection[Any], world_db: tuple[str, World]
) -> None:
    _, world = world_db
    rows = grafana_conn.execute(
        "SELECT tank, contents_kg, contents_nm3, usable_kg, avg_daily_kg, days_of_supply "
        "FROM grafana.tank_supply ORDER BY tank"
    ).fetchall()
    assert [r[0] for r in rows] == ["T1", "T2"]
    for tank_code, kg, nm3, usable, avg, days in rows:
        tank = world.tanks[tank_code]
        assert tank.last_ts is not None
        expected_kg = tank.table_at(tank.last_ts).contents_kg(tank.last_dp)
        assert kg == pytest.approx(expected_kg, abs=0.01)
        assert nm3 == pytest.approx(NORMAL.kg_to_m3(expected_kg), rel=1e-9)
        assert usable == pytest.approx(expected_kg - tank.min_usable_kg, abs=0.01)
        assert avg == pytest.approx(world.avg_daily_kg[tank_code])
        assert days == pytest.approx((expected_kg - tank.min_usable_kg) / avg)
        # One definition of days of supply: the accounting module's, over the same 7 windows.
        windows = [DayUse(float(c), float(v)) for c, v in world.windows[tank_code][:7]]
        assert avg == pytest.approx(average_daily(windows))
        assert days == pytest.approx(days_of_supply(usable, average_daily(windows)))
    # 1 kg = 0.6998 Nm3 at 0 °C, 1 atm (real gas, 1.429 kg/m3), the same as the code's.
    (factor,) = grafana_conn.execute("SELECT grafana.nm3_per_kg()").fetchone() or (0,)
    assert factor == pytest.approx(0.6998, abs=1e-4)
    assert factor == pytest.approx(NORMAL.kg_to_m3(1.0), rel=1e-9)


def test_tank_contents_follow_the_calibration_version_valid_at_the_time(
    grafana_conn: psycopg.Connection[Any], world_db: tuple[str, World]
) -> None:
    _, world = world_db
    t1 = world.tanks["T1"]
    switch = t1.tables[1][0]
    rows = grafana_conn.execute(
        "SELECT bucket, dp_inh2o, contents_kg FROM grafana.tank_contents_1m "
        "WHERE tank_id = %s ORDER BY bucket",
        (t1.id,),
    ).fetchall()
    assert len(rows) > 100
    for bucket, dp, kg in rows:
        assert kg == pytest.approx(t1.table_at(bucket).contents_kg(dp), abs=1e-6)
    before = [kg for b, _, kg in rows if b < switch]
    after = [kg for b, _, kg in rows if b >= switch]
    assert before and after
    # The seeded level falls steadily (14 kg per 10 min) across the switch: applying the old
    # table to the new version's readings (or the reverse) would show a jump of 2 % (> 100 kg).
    series = [kg for _, _, kg in rows]
    assert all(0 <= a - b < 30 for a, b in itertools.pairwise(series))


@pytest.mark.parametrize(
    "dp",
    [-5.0, 0.0, 0.001, 3.3, 17.25, 40.0, 99.9, 1000.0],
)
def test_sql_interpolation_equals_calibration_table(
    grafana_conn: psycopg.Connection[Any], world_db: tuple[str, World], dp: float
) -> None:
    _, world = world_db
    t2 = world.tanks["T2"]
    table = t2.tables[0][1]
    (kg,) = grafana_conn.execute(
        "SELECT grafana.tank_kg(%s, now(), %s)", (t2.id, max(dp, 0.0) if dp < 0 else dp)
    ).fetchone() or (None,)
    assert kg == pytest.approx(table.contents_kg(dp if dp >= 0 else 0.0), abs=1e-9)
    (none,) = grafana_conn.execute(
        "SELECT grafana.tank_kg(%s, '2019-01-01', %s)", (t2.id, dp)
    ).fetchone() or (0,)
    assert none is None  # before the first calibration: no guess


def test_variables_filter_the_panels(
    grafana_conn: psycopg.Connection[Any], world_db: tuple[str, World]
) -> None:
    _, world = world_db
    rng = TimeRange.last(timedelta(days=1), now=world.now + timedelta(minutes=1))
    table_sql = next(p for p in TANKS.panels if p.type == "table").targets[0].sql
    only_hn = {
        "province": Variable(("01",)),
        "facility": Variable((str(world.facility_ids["BV-HN-1"]),)),
        "tank": Variable((str(world.tanks["T1"].id),)),
    }
    rows = grafana_conn.execute(expand(table_sql, rng, only_hn)).fetchall()  # type: ignore[call-overload]
    assert [r[1] for r in rows] == ["T1"]
    both = {**only_hn, "tank": Variable(tuple(str(t.id) for t in world.tanks.values()))}
    rows = grafana_conn.execute(expand(table_sql, rng, both)).fetchall()  # type: ignore[call-overload]
    assert sorted(r[1] for r in rows) == ["T1", "T2"]
    # A value with a quote is quoted, not injected.
    evil = {**only_hn, "tank": Variable(("1') OR ('1'='1",))}
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        grafana_conn.execute(expand(table_sql, rng, evil))  # type: ignore[call-overload]
    grafana_conn.rollback()


def test_grafana_role_cannot_read_outside_its_schema(grafana_conn: psycopg.Connection[Any]) -> None:
    for table in ("calibration_points", "readings", "dead_letters", "tank_windows", "audit_log"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            grafana_conn.execute(f"SELECT 1 FROM {table} LIMIT 1")
        grafana_conn.rollback()


def test_alert_queries_fire_on_the_seeded_faults(
    fresh_grafana_conn: psycopg.Connection[Any], fresh_world_db: tuple[str, World]
) -> None:
    grafana_conn = fresh_grafana_conn
    url, world = fresh_world_db
    by_uid = {r.uid: r for r in RULES}

    def value(uid: str) -> list[tuple[Any, ...]]:
        return check_alert(grafana_conn, by_uid[uid]).rows

    # Gateway A is online and readings just arrived: the pipeline is not stalled.
    (stalled,) = value("oxy-pipeline-stalled")
    assert stalled[0] < 600
    # 12 dead letters in the last 15 minutes (and an old one that must not count).
    assert value("oxy-dead-letters-rising") == [(world.dead_letters_recent,)]
    offline = {row[0]: row[2] for row in value("oxy-gateway-offline")}
    assert offline == {"gw-bv-hn-1": 0, "gw-bv-hcm-1": 1}
    assert value("oxy-database-down") == [(1,)]

    # Make the newest reading an hour old: now the pipeline counts as stalled.
    with psycopg.connect(url) as admin:
        admin.execute("UPDATE sensor_latest SET received_at = now() - interval '1 hour'")
    (stalled,) = value("oxy-pipeline-stalled")
    assert stalled[0] > 3000


def test_check_names_the_failing_panel(grafana_conn: psycopg.Connection[Any]) -> None:
    from dashboards.model import Dashboard, Panel, SqlTarget

    broken = Dashboard(
        uid="broken",
        title="broken",
        folder_uid="x",
        panels=(Panel("Bad", "table", (SqlTarget("SELECT * FROM public.readings", "table"),)),),
    )
    with pytest.raises(CheckError, match="broken panel 'Bad'"):
        check_dashboard(grafana_conn, broken, TimeRange.last(timedelta(hours=1)))
    no_time = Dashboard(
        uid="nt",
        title="nt",
        folder_uid="x",
        panels=(Panel("NoTime", "timeseries", (SqlTarget("SELECT 1 AS v"),)),),
    )
    with pytest.raises(CheckError, match="'time' column"):
        check_dashboard(grafana_conn, no_time, TimeRange.last(timedelta(hours=1)))


def test_gateway_and_national_panels_show_the_seeded_figures(
    fresh_grafana_conn: psycopg.Connection[Any], fresh_world_db: tuple[str, World]
) -> None:
    from dashboards.gateways import DASHBOARD as GATEWAYS
    from dashboards.national import DASHBOARD as NATIONAL

    grafana_conn = fresh_grafana_conn
    _, world = fresh_world_db
    rng = TimeRange.last(timedelta(days=1), now=world.now + timedelta(minutes=1))
    gw = check_dashboard(grafana_conn, GATEWAYS, rng)
    assert _by_title(gw, "Online'").rows == [(1,)]
    assert _by_title(gw, "Offline'").rows == [(1,)]
    assert _by_title(gw, "Outbox depth (readings)").rows == [(12,)]
    assert _by_title(gw, "Evicted (total)").rows == [(3,)]
    gateways = _by_title(gw, "/ Gateways'").rows
    assert [(r[0], r[2]) for r in gateways] == [
        ("gw-bv-hcm-1", "offline"),
        ("gw-bv-hn-1", "online"),
    ]
    devices = _by_title(gw, "Modbus devices").rows
    assert [(r[1], r[2], r[4]) for r in devices] == [
        ("pt-T1", "failing", "timeout"),
        ("dp-T1", "ok", None),
    ]

    nat = check_dashboard(grafana_conn, NATIONAL, TimeRange.last(timedelta(days=7), now=world.now))
    assert _by_title(nat, "Monitored facilities").rows == [(2, 2)]
    # T1 holds ~3,000 kg (2,500 usable) at ~2,300 kg/day, T2 ~2,000 kg (1,700) at ~1,400 kg/day:
    # both under 3 days.
    assert _by_title(nat, "Needs more").rows == [(2,)]
    (total_kg,) = _by_title(nat, "National stock (kg LOX)").rows[0]
    expected = 0.0
    for tank in world.tanks.values():
        assert tank.last_ts is not None
        expected += tank.table_at(tank.last_ts).contents_kg(tank.last_dp)
    assert total_kg == pytest.approx(expected, abs=0.1)
    by_province = _by_title(nat, "By province").rows
    assert sorted(r[0] for r in by_province) == ["Thành phố Hà Nội", "Thành phố Hồ Chí Minh"]
