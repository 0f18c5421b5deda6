"""Engineers' pages: gateways (connection, outbox, evictions, versions, Modbus devices, last
readings), one gateway, tank diagnostics (per hour DP / head pressure / contents / quality, gaps,
conflicts, quarantine), Grafana links; each limited to the engineer's facilities."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.deps import clock
from api.engineer import pages as eng
from tests.api.conftest import World, login

NOW = datetime(2026, 3, 31, 10, 30, tzinfo=UTC)


@dataclass
class Site:
    tank_in: int
    tank_out: int
    dp: int
    head: int


def _tank(conn: psycopg.Connection[tuple[object, ...]], facility: int, code: str) -> int:
    row = conn.execute(
        "INSERT INTO tanks (facility_id, code, name, capacity_kg) VALUES (%s, %s, 'Bồn chính', "
        "10000) RETURNING id",
        (facility, code),
    ).fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def _sensor(
    conn: psycopg.Connection[tuple[object, ...]], gw: int, code: str, tank: int, qty: str, unit: str
) -> int:
    row = conn.execute(
        "INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (gw, code, tank, qty, unit),
    ).fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


@pytest.fixture
def site(world: World) -> Site:
    with psycopg.connect(world.db_url) as conn:
        tank_in, tank_out = _tank(conn, world.fac_in, "T1"), _tank(conn, world.fac_out, "T9")
        cal = conn.execute(
            "INSERT INTO tank_calibrations (tank_id, version, valid_from) "
            "VALUES (%s, 1, '2020-01-01') RETURNING id",
            (tank_in,),
        ).fetchone()
        assert cal is not None
        conn.execute(
            "INSERT INTO calibration_points VALUES (%s, 0, 0), (%s, 100, 10000)", (cal[0], cal[0])
        )
        dp = _sensor(conn, world.gw_in, "T1-dp", tank_in, "dp", "inH2O")
        head = _sensor(conn, world.gw_in, "T1-pt", tank_in, "head_pressure", "bar")
        out = _sensor(conn, world.gw_out, "T9-dp", tank_out, "dp", "inH2O")
        # Readings loaded without ingest (no sensor_latest row): the newest stored one shows.
        backfilled = _sensor(conn, world.gw_in, "T1-line", tank_in, "line_pressure", "bar")
        _sensor(conn, world.gw_in, "T1-temp", tank_in, "temperature", "degC")  # never read
        # Two hours of 1-minute DP readings before NOW, with a 20-minute silence and two
        # communication errors; head pressure every 10 minutes.
        start = NOW - timedelta(hours=2)
        rows = []
        for i in range(120):
            ts = start + timedelta(minutes=i)
            if 40 <= i < 60:
                continue
            quality = 3 if i in (70, 71) else 0
            rows.append((dp, ts, None if quality else 50.0 + i / 100, quality))
            if i % 10 == 0:
                rows.append((head, ts, 4.2, 0))
        rows.append((out, start, 77.0, 0))
        rows += [(backfilled, start, 3.25, 0), (backfilled, start + timedelta(minutes=5), 3.5, 1)]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO readings (sensor_id, ts, value, quality) VALUES (%s, %s, %s, %s)", rows
            )
        last = start + timedelta(minutes=119)
        conn.execute(
            "INSERT INTO sensor_latest VALUES (%s, %s, %s, 0, %s), (%s, %s, 4.2, 0, %s),"
            "(%s, %s, 77, 0, %s)",
            (dp, last, 51.19, last, head, start + timedelta(minutes=110), last, out, start, start),
        )
        conn.execute(
            "INSERT INTO reading_conflicts (sensor_id, ts, stored_value, stored_quality, "
            "new_value, new_quality, topic) VALUES (%s, %s, 50.5, 0, 12.5, 0, 't')",
            (dp, start + timedelta(minutes=50 - 40)),
        )
        conn.execute(
            "INSERT INTO quarantine (topic, site, gateway, sensor, ts, value, unit, quality, "
            "reason) VALUES ('t', 'BV-IN', 'gw-bv-in', 'T1-lvl', %s, 61.5, '%%', 0, "
            "'unknown sensor'), ('t', 'BV-OUT', 'gw-bv-out', 'T9-lvl', %s, 3.5, '%%', 0, "
            "'unknown sensor OUT')",
            (start, start),
        )
        devices = [
            {"device": "pt-1", "state": "failing", "error": "Modbus timeout (unit 2)"},
            {"device": "dp-1", "state": "ok", "last_good_poll": NOW.isoformat()},
        ]
        conn.execute(
            "INSERT INTO gateway_status (gateway_id, last_seen, online, version, config_hash, "
            "outbox_depth, evicted_total, published_total, devices, alarms) VALUES "
            "(%s, %s, true, 'gw-1.4.2', 'cfg0123456789abcdef', 1234, 17, 99000, %s, %s),"
            "(%s, %s, false, 'gw-0.9-OUT', 'x', 5, 0, 1, '[]', '[]')",
            (
                world.gw_in,
                NOW - timedelta(seconds=20),
                json.dumps(devices),
                json.dumps(["device pt-1 failing"]),
                world.gw_out,
                NOW - timedelta(hours=3),
            ),
        )
        conn.execute(
            "INSERT INTO gateway_status_history (gateway_id, received_at, kind, online, "
            "outbox_depth, evicted_total, payload) VALUES (%s, %s, 'status', NULL, 1234, 17, "
            "'{}')",
            (world.gw_in, NOW - timedelta(seconds=20)),
        )
    return Site(tank_in, tank_out, dp, head)


@pytest.fixture
def fixed(client: TestClient) -> TestClient:
    client.app.dependency_overrides[clock] = lambda: NOW  # type: ignore[attr-defined]
    return client


def test_connection_state() -> None:
    assert eng.connection_state({"last_seen": None}, NOW) == "unknown"
    assert eng.connection_state({"last_seen": NOW, "online": False}, NOW) == "offline"
    assert eng.connection_state({"last_seen": NOW, "online": True}, NOW) == "online"
    quiet = NOW - eng.SILENT_AFTER - timedelta(seconds=1)
    assert eng.connection_state({"last_seen": quiet, "online": True}, NOW) == "silent"


def test_same_silence_threshold_as_the_grafana_dashboard() -> None:
    from dashboards.gateways import SILENT_AFTER_S

    assert eng.SILENT_AFTER.total_seconds() == SILENT_AFTER_S


def test_engineer_sees_only_their_gateways(fixed: TestClient, world: World, site: Site) -> None:
    login(fixed, "eng-in")
    assert '<a href="/gateways"' in fixed.get("/").text  # in the engineer's menu
    page = fixed.get("/gateways")
    assert page.status_code == 200
    assert "gw-bv-in" in page.text and "gw-bv-out" not in page.text
    assert "gw-1.4.2" in page.text and "gw-0.9-OUT" not in page.text
    assert "1.234" in page.text  # outbox depth, Vietnamese digit grouping
    assert "device pt-1 failing" in page.text
    # Another facility's gateway: by its own facility (policy) or disguised under ours (query).
    assert fixed.get(f"/facilities/{world.fac_out}/gateways/{world.gw_out}").status_code == 404
    assert fixed.get(f"/facilities/{world.fac_in}/gateways/{world.gw_out}").status_code == 404


def test_gateway_page(fixed: TestClient, world: World, site: Site) -> None:
    login(fixed, "eng-in")
    page = fixed.get(f"/facilities/{world.fac_in}/gateways/{world.gw_in}?lang=en")
    assert page.status_code == 200
    text = page.text
    assert "Online" in text and "Modbus timeout (unit 2)" in text and "cfg0123456789abcdef" in text
    assert "T1-dp" in text and "T1-pt" in text and "51.19" in text and "4.20" in text
    line = text.split("<td>T1-line</td>", 1)[1].split("</tr>", 1)[0]
    assert "3.50" in line and "Stale" in line
    assert "T1-lvl" in text and "T9-lvl" not in text  # quarantined readings of this gateway
    assert f"/d/oxy-gateways?var-province=79&amp;var-facility={world.fac_in}" in text
    assert f"/facilities/{world.fac_in}/tanks/{site.tank_in}/diagnostics" in text


def test_tank_diagnostics(fixed: TestClient, world: World, site: Site) -> None:
    login(fixed, "eng-in")
    r = fixed.get(f"/facilities/{world.fac_in}/tanks/{site.tank_in}/diagnostics?hours=6&lang=en")
    assert r.status_code == 200
    text = r.text
    hourly = text.split('data-testid="hourly"', 1)[1].split("</table>", 1)[0]
    assert hourly.count("<tr") == 7  # header + 6 hours, hours without data kept
    assert "no data" in hourly
    # Last hour (08:30–09:29 UTC readings fall in 08:00 and 09:00 buckets): DP 51.19 → 5,119 kg.
    assert "51.2" in hourly and "5,119" in hourly and "4.20" in hourly
    gaps = text.split('data-testid="gaps"', 1)[1].split("</table>", 1)[0]
    # Sensors silent now first, then the 20-minute hole of T1-dp; T1-temp was never read. T1-pt
    # reads every 10 minutes: its usual interval makes that no gap.
    rows = gaps.split("<tr")[2:]
    assert len(rows) == 3, gaps
    # T1-line last read 55 minutes ago (every 5 minutes before): silent now.
    assert "T1-line" in rows[0] and "15:35" in rows[0] and "still silent" in rows[0]
    assert "T1-temp" in rows[1] and "no reading yet" in rows[1] and "still silent" in rows[1]
    assert "T1-dp" in rows[2] and "16:09" in rows[2] and "16:30" in rows[2]
    assert "T1-pt" not in gaps
    assert "12.50" in text.split('data-testid="conflicts"', 1)[1].split("</table>", 1)[0]
    quarantine = text.split('data-testid="quarantine"', 1)[1].split("</table>", 1)[0]
    assert "T1-lvl" in quarantine and "T9-lvl" not in quarantine
    assert f"var-tank={site.tank_in}" in text
    # Another facility's tank, directly or under our facility id.
    assert (
        fixed.get(f"/facilities/{world.fac_out}/tanks/{site.tank_out}/diagnostics").status_code
        == 404
    )
    assert (
        fixed.get(f"/facilities/{world.fac_in}/tanks/{site.tank_out}/diagnostics").status_code
        == 404
    )
    # The tank page links to the diagnostics for engineers.
    tank = fixed.get(f"/facilities/{world.fac_in}/tanks/{site.tank_in}")
    assert "diagnostics-link" in tank.text


def test_other_roles_do_not_get_engineer_pages(fixed: TestClient, world: World, site: Site) -> None:
    for user in ("staff-in", "syt79", "byt1", "ncc-in"):
        login(fixed, user)
        assert fixed.get("/gateways").status_code == 403
        fixed.cookies.clear()
    login(fixed, "admin1")
    page = fixed.get("/gateways")
    assert "gw-bv-in" in page.text and "gw-bv-out" in page.text


def test_no_grafana_url_no_link(fixed: TestClient, world: World, site: Site) -> None:
    fixed.app.state.settings.grafana_url = ""  # type: ignore[attr-defined]
    login(fixed, "eng-in")
    page = fixed.get(f"/facilities/{world.fac_in}/gateways/{world.gw_in}")
    assert "grafana-link" not in page.text
