"""The generated national country: every province, the scale asked for, scopes that hold, a
history with its rollups, one shared password that logs in, and a second run that adds nothing."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import AsyncConnection

from api.auth import verify_password
from api.scope import Role, resolve_scope
from demo.national import NationalScale, seed_national
from oxy.calibration import CalibrationTable

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SMALL = NationalScale(facilities=70, tanks=100, suppliers=5, history_days=0.25, history_step_s=300)


def _one(conn: psycopg.Connection[object], sql: str) -> object:
    row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]


def test_small_national_country(db_url: str) -> None:
    first = seed_national(db_url, SMALL, now=NOW, password="nat-test-pass-9Qx")
    assert first.created
    assert (first.provinces, first.facilities, first.tanks) == (34, 70, 100)
    assert (first.sensors, first.suppliers) == (200, 5)
    # BYT + 34 SYT + 70 facilities + 5 suppliers + 1 engineer
    assert first.accounts == 111
    assert first.readings == 100 * (6 * 12 + 1)  # DP sensors, 6 h every 5 min, both ends
    with psycopg.connect(db_url) as conn:
        # Every facility hangs under its own province's SYT, with a gateway and a cylinder bank.
        assert (
            _one(
                conn,
                "SELECT count(*) FROM organisations f JOIN organisations p ON p.id = f.parent_id "
                "WHERE f.code LIKE 'NAT-%' AND f.kind = 'facility' "
                "AND (p.kind <> 'syt' OR p.province_code <> f.province_code)",
            )
            == 0
        )
        assert _one(conn, "SELECT count(*) FROM gateways WHERE code LIKE 'gw-nat-%'") == 70
        assert (
            _one(
                conn,
                "SELECT count(*) FROM cylinder_banks c "
                "JOIN organisations o ON o.id = c.facility_id WHERE o.code LIKE 'NAT-%'",
            )
            == 70
        )
        assert (
            _one(
                conn,
                "SELECT count(*) FROM facilities f JOIN organisations o ON o.id = f.org_id "
                "WHERE o.code LIKE 'NAT-%' AND (f.latitude NOT BETWEEN 8 AND 24 "
                "OR f.longitude NOT BETWEEN 102 AND 110)",
            )
            == 0
        )
        per = conn.execute(
            "SELECT count(t.id) FROM organisations o JOIN tanks t ON t.facility_id = o.id "
            "WHERE o.code LIKE 'NAT-%' GROUP BY o.id"
        ).fetchall()
        assert len(per) == 70 and all(1 <= n <= 3 for (n,) in per)
        # A strapping table that reaches each tank's capacity, and readings inside its range.
        tank_id, capacity = conn.execute(
            "SELECT t.id, t.capacity_kg FROM tanks t JOIN organisations o ON o.id = t.facility_id "
            "WHERE o.code LIKE 'NAT-%' ORDER BY t.id LIMIT 1"
        ).fetchone() or (0, 0.0)
        pts = conn.execute(
            "SELECT p.dp_inh2o, p.contents_kg FROM calibration_points p "
            "JOIN tank_calibrations c ON c.id = p.calibration_id WHERE c.tank_id = %s",
            (tank_id,),
        ).fetchall()
        assert abs(CalibrationTable.from_points(pts).capacity_kg - capacity) < 1.0
        assert (
            _one(
                conn,
                "SELECT count(*) FROM readings r JOIN sensors s ON s.id = r.sensor_id "
                "WHERE r.value < s.valid_min OR r.value > s.valid_max",
            )
            == 0
        )
        # The newest value of every sensor, and rollups for the history (hours and days too).
        assert _one(conn, "SELECT count(*) FROM sensor_latest") == 200
        assert _one(conn, "SELECT sum(n) FROM readings_1h") == first.readings
        assert _one(conn, "SELECT sum(n) FROM readings_1d") == first.readings
        users = dict(
            conn.execute(
                "SELECT role, count(*) FROM users WHERE username LIKE 'nat-%' GROUP BY role"
            ).fetchall()
        )
        assert users == {"byt": 1, "syt": 34, "facility": 70, "supplier": 5, "engineer": 1}
        stored = _one(conn, "SELECT password_hash FROM users WHERE username = 'nat-syt-79'")
        assert verify_password(str(stored), "nat-test-pass-9Qx")
        syt = conn.execute(
            "SELECT u.id, u.org_id FROM users u WHERE u.username = 'nat-syt-79'"
        ).fetchone()
        assert syt is not None
        hcm = {
            r[0]
            for r in conn.execute(
                "SELECT id FROM organisations WHERE kind = 'facility' AND province_code = '79'"
            ).fetchall()
        }

    async def scope() -> frozenset[int] | None:
        async with await AsyncConnection.connect(db_url) as aconn:
            facilities, _ = await resolve_scope(
                aconn, user_id=syt[0], role=Role.SYT, org_id=syt[1], national=False
            )
            return facilities

    # The SYT officer of Hồ Chí Minh City sees exactly that city's facilities, and some.
    assert asyncio.run(scope()) == frozenset(hcm) and len(hcm) > 1

    second = seed_national(db_url, SMALL, now=NOW)
    assert not second.created and second.password is None
    assert (second.facilities, second.tanks, second.accounts) == (70, 100, 111)


def test_dense_history_around_the_last_cut_off(db_url: str) -> None:
    """`dense_hours` adds a reading a second around the last 16:00 cut-off (here NOW itself):
    its half before NOW, beside the 5-minute history, with its minute rollups."""
    got = seed_national(
        db_url, dataclasses.replace(SMALL, dense_hours=0.5), now=NOW, password="nat-test-pass-9Qx"
    )
    # 08:45:00 .. 09:00:00 every second, but for the four 5-minute readings already there.
    assert got.readings == 100 * (6 * 12 + 1) + 100 * (15 * 60 + 1 - 4)
    with psycopg.connect(db_url) as conn:
        assert (
            _one(
                conn,
                "SELECT count(*) FROM readings "
                "WHERE ts > '2026-12-01 08:45:00+00' AND ts < '2026-12-01 08:46:00+00'",
            )
            == 100 * 59
        )
        assert (
            _one(
                conn,
                "SELECT max(n) FROM rollup_1m WHERE bucket = '2026-12-01 08:50:00+00'",
            )
            == 60
        )
        # The same sawtooth sampled more often, not a second one beside it: every reading a
        # second lies within the gauge noise (0.05) of the 5-minute readings around it.
        assert (
            _one(
                conn,
                "SELECT max(abs(d.value - (c0.value + (c1.value - c0.value) "
                "  * extract(epoch FROM d.ts - c0.ts) / 300.0))) "
                "FROM readings d "
                "JOIN readings c0 ON c0.sensor_id = d.sensor_id "
                "  AND c0.ts = date_bin('5 minutes', d.ts, '2000-01-03') "
                "JOIN readings c1 ON c1.sensor_id = d.sensor_id AND c1.ts = c0.ts + '5 minutes' "
                "WHERE d.ts > '2026-12-01 08:45:00+00'",
            )
            < 0.2
        )


def test_scale_is_checked() -> None:
    with pytest.raises(ValueError, match="tanks"):
        NationalScale(facilities=10, tanks=40)
    with pytest.raises(ValueError, match="history"):
        NationalScale(history_step_s=1)
