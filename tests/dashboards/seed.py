"""A small, known world for the dashboard queries: two provinces, two facilities, two tanks
(one with two calibration versions), gateways, sensors, three days of readings and rollups,
report windows, gateway status, dead letters and quarantine."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from oxy.calibration import CalibrationTable, vertical_tank_table

STEP = timedelta(minutes=10)
DAYS = 3


@dataclass
class Tank:
    code: str
    site: str
    capacity_kg: float
    min_usable_kg: float
    start_kg: float
    draw_kg_per_day: float
    tables: list[tuple[datetime, CalibrationTable]] = field(default_factory=list)
    id: int = 0
    dp_sensor: int = 0
    p_sensor: int = 0
    last_ts: datetime | None = None
    last_dp: float = 0.0

    def table_at(self, ts: datetime) -> CalibrationTable:
        valid = [t for start, t in self.tables if start <= ts]
        return valid[-1]


@dataclass
class World:
    now: datetime
    tanks: dict[str, Tank]
    facility_ids: dict[str, int]
    gateway_ids: dict[str, int]
    avg_daily_kg: dict[str, float]
    windows: dict[str, list[tuple[float, float]]]
    dead_letters_recent: int


def _one(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def seed(conn: psycopg.Connection[Any]) -> World:
    """Insert the world and return what the tests need to compute expected figures."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=DAYS)
    facility_ids: dict[str, int] = {}
    for code, name, province in (
        ("BV-HN-1", "Bệnh viện Bạch Mai", "01"),
        ("BV-HCM-1", "Bệnh viện Chợ Rẫy", "79"),
    ):
        org = _one(
            conn,
            "INSERT INTO organisations (code, kind, name, province_code, parent_id) "
            "VALUES (%s, 'facility', %s, %s, "
            "(SELECT id FROM organisations WHERE code = 'SYT-' || %s)) RETURNING id",
            (code, name, province, province),
        )
        conn.execute("INSERT INTO facilities (org_id, beds) VALUES (%s, 500)", (org,))
        facility_ids[code] = org

    base1 = vertical_tank_table(10000.0, 2.0)
    # Version 2 of tank 1 (re-strapped yesterday) reads 2 % more for the same DP.
    base1_v2 = CalibrationTable(base1.dp, tuple(k * 1.02 for k in base1.kg), version=2)
    base2 = vertical_tank_table(6000.0, 1.6)
    tanks = {
        "T1": Tank("T1", "BV-HN-1", 10200.0, 500.0, 9000.0, 2000.0),
        "T2": Tank("T2", "BV-HCM-1", 6000.0, 300.0, 5000.0, 1000.0),
    }
    # The switch sits on an hour boundary, so that every rollup bucket has one valid version.
    switch = (now - timedelta(days=1)).replace(minute=0, second=0)
    tanks["T1"].tables = [(datetime(2020, 1, 1, tzinfo=UTC), base1), (switch, base1_v2)]
    tanks["T2"].tables = [(datetime(2020, 1, 1, tzinfo=UTC), base2)]

    gateway_ids: dict[str, int] = {}
    for tank in tanks.values():
        fac = facility_ids[tank.site]
        tank.id = _one(
            conn,
            "INSERT INTO tanks (facility_id, code, name, capacity_kg, min_usable_kg, diameter_m) "
            "VALUES (%s, %s, %s, %s, %s, 2.0) RETURNING id",
            (fac, tank.code, f"Bồn {tank.code}", tank.capacity_kg, tank.min_usable_kg),
        )
        for version, (valid_from, table) in enumerate(tank.tables, start=1):
            cal = _one(
                conn,
                "INSERT INTO tank_calibrations (tank_id, version, valid_from) "
                "VALUES (%s, %s, %s) RETURNING id",
                (tank.id, version, valid_from),
            )
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO calibration_points (calibration_id, dp_inh2o, contents_kg) "
                    "VALUES (%s, %s, %s)",
                    [(cal, dp, kg) for dp, kg in zip(table.dp, table.kg, strict=True)],
                )
        gw_code = "gw-" + tank.site.lower()
        gateway_ids[gw_code] = _one(
            conn,
            "INSERT INTO gateways (facility_id, code) VALUES (%s, %s) RETURNING id",
            (fac, gw_code),
        )
        tank.dp_sensor = _one(
            conn,
            "INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit) "
            "VALUES (%s, %s, %s, 'dp', 'inH2O') RETURNING id",
            (gateway_ids[gw_code], f"{tank.code}-dp", tank.id),
        )
        tank.p_sensor = _one(
            conn,
            "INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit) "
            "VALUES (%s, %s, %s, 'head_pressure', 'bar') RETURNING id",
            (gateway_ids[gw_code], f"{tank.code}-p", tank.id),
        )

        rows = []
        ts = start
        while ts <= now:
            kg = tank.start_kg - tank.draw_kg_per_day * (ts - start).total_seconds() / 86400
            # The gauge reads the real level; the table valid then maps it to contents.
            dp = round(tank.table_at(ts).dp_for(kg), 4)
            rows.append((tank.dp_sensor, ts, dp, 0))
            rows.append((tank.p_sensor, ts, 8.5, 0))
            tank.last_ts, tank.last_dp = ts, dp
            ts += STEP
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO readings (sensor_id, ts, value, quality) VALUES (%s, %s, %s, %s)",
                rows,
            )
        for sensor in (tank.dp_sensor, tank.p_sensor):
            conn.execute("SELECT rollup_recompute(%s, %s, %s)", (sensor, start, now))
            conn.execute(
                "INSERT INTO sensor_latest (sensor_id, ts, value, quality, received_at) "
                "SELECT sensor_id, ts, value, quality, now() FROM readings "
                "WHERE sensor_id = %s ORDER BY ts DESC LIMIT 1",
                (sensor,),
            )

    # Report windows: T1 drew ~2,000 kg/day with full data; T2 had data about half of each window
    # (~600 kg seen), so its adjusted daily need is ~1,200 kg. The open window is ignored.
    today = (now + timedelta(hours=7) - timedelta(hours=16)).date()
    windows: dict[str, list[tuple[float, float]]] = {"T1": [], "T2": []}
    for tank, kg, coverage in ((tanks["T1"], 2000.0, 1.0), (tanks["T2"], 600.0, 0.5)):
        for back in range(10):
            # Older windows differ, so that taking exactly the last 7 complete ones matters.
            used, cov = kg + 100.0 * back, min(1.0, coverage + 0.05 * back)
            windows[tank.code].append((used, cov))
            conn.execute(
                "INSERT INTO tank_windows (tank_id, report_day, consumption_kg, coverage) "
                "VALUES (%s, %s, %s, %s)",
                (tank.id, today - timedelta(days=back), used, cov),
            )
        conn.execute(
            "INSERT INTO tank_windows (tank_id, report_day, consumption_kg, coverage) "
            "VALUES (%s, %s, 99999, 1)",
            (tank.id, today + timedelta(days=1)),
        )

    devices_a = [
        {"device": "dp-T1", "state": "ok", "last_good_poll": now.isoformat(), "error": None},
        {"device": "pt-T1", "state": "failing", "last_good_poll": None, "error": "timeout"},
    ]
    conn.execute(
        "INSERT INTO gateway_status (gateway_id, last_seen, online, bd_seq, outbox_depth, "
        "outbox_oldest, evicted_total, published_total, devices, status_ts) "
        "VALUES (%s, now(), true, 1, 12, now() - interval '30 seconds', 3, 1000, %s, now())",
        (gateway_ids["gw-bv-hn-1"], json.dumps(devices_a)),
    )
    conn.execute(
        "INSERT INTO gateway_status (gateway_id, last_seen, online, bd_seq, outbox_depth, "
        "evicted_total, devices, status_ts) "
        "VALUES (%s, now() - interval '1 hour', false, 4, 0, 0, '[]', now() - interval '1 hour')",
        (gateway_ids["gw-bv-hcm-1"],),
    )
    for gw_id in gateway_ids.values():
        for k in range(6):
            at = now - timedelta(hours=k)
            conn.execute(
                "INSERT INTO gateway_status_history (gateway_id, received_at, kind, online, "
                "bd_seq, outbox_depth, evicted_total, payload) "
                "VALUES (%s, %s, %s, %s, 1, %s, %s, %s)",
                (
                    gw_id,
                    at,
                    "status" if k % 2 else "state",
                    k % 3 != 0,
                    10 * k,
                    k,
                    json.dumps({"k": k}),
                ),
            )
    recent = 12
    for k in range(recent):
        conn.execute(
            "INSERT INTO dead_letters (received_at, topic, payload, payload_size, reason) "
            "VALUES (now() - %s * interval '1 minute', 'oxy/v1/BV-HN-1/gw-bv-hn-1/data', "
            "%s, 3, %s)",
            (k, b"{x}", "bad json: expecting property name" if k % 2 else "unknown unit: psi"),
        )
    conn.execute(
        "INSERT INTO dead_letters (received_at, topic, payload, payload_size, reason) "
        "VALUES (now() - interval '2 days', 'oxy/v1/x/y/data', 'x', 1, 'bad json: old')"
    )
    conn.execute(
        "INSERT INTO quarantine (received_at, topic, site, gateway, sensor, ts, value, unit, "
        "quality, reason) VALUES (now(), 'oxy/v1/BV-X/gw-x/data', 'BV-X', 'gw-x', 'T9-dp', now(), "
        "1.0, 'inH2O', 0, 'unknown gateway')"
    )
    conn.commit()
    return World(
        now=now,
        tanks=tanks,
        facility_ids=facility_ids,
        gateway_ids=gateway_ids,
        avg_daily_kg={
            code: sum(c for c, _ in w[:7]) / sum(v for _, v in w[:7]) for code, w in windows.items()
        },
        windows=windows,
        dead_letters_recent=recent,
    )
