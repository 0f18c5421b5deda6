import psycopg
import pytest

from demo.history import HISTORY_DAYS, backfill_history
from oxy.demo_seed import FACILITIES, seed_demo


def test_history_ends_at_the_demo_fill_and_is_written_once(db_url: str) -> None:
    seed_demo(db_url)
    n = backfill_history(db_url)
    tanks = sum(len(f.tanks) for f in FACILITIES)
    assert n == tanks * HISTORY_DAYS * 1440
    assert backfill_history(db_url) == 0
    with psycopg.connect(db_url) as conn:
        # The last reading of each tank shows (through its calibration) about its demo fill.
        rows = conn.execute(
            """
            SELECT t.capacity_kg, t.code, o.code,
                   (SELECT value FROM readings r WHERE r.sensor_id = s.id ORDER BY ts DESC LIMIT 1)
            FROM sensors s JOIN tanks t ON t.id = s.tank_id
            JOIN organisations o ON o.id = t.facility_id WHERE s.quantity = 'dp'
            """
        ).fetchall()
        n1m = conn.execute("SELECT count(*) FROM readings_1m").fetchone()
    assert n1m is not None and n1m[0] > 0
    fills = {(f.code, t.code): t for f in FACILITIES for t in f.tanks}
    from oxy.calibration import vertical_tank_table

    for cap, tank, fac, dp in rows:
        t = fills[(fac, tank)]
        kg = vertical_tank_table(t.capacity_kg, t.diameter_m).contents_kg(dp)
        assert kg == pytest.approx(t.fill * cap, abs=0.05 * cap), (fac, tank)
