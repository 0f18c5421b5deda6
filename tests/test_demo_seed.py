import psycopg

from oxy.calibration import CalibrationTable
from oxy.demo_seed import FACILITIES, SUPPLIERS, seed_demo


def test_demo_country_is_realistic_and_idempotent(db_url: str) -> None:
    first = seed_demo(db_url)
    assert first.created
    second = seed_demo(db_url)
    assert not second.created
    with psycopg.connect(db_url) as conn:
        provinces = conn.execute(
            "SELECT count(DISTINCT province_code) FROM organisations WHERE kind = 'facility'"
        ).fetchone()
        assert provinces is not None and provinces[0] >= 3
        assert conn.execute("SELECT count(*) FROM facilities").fetchone() == (len(FACILITIES),)
        assert conn.execute("SELECT count(*) FROM suppliers").fetchone() == (len(SUPPLIERS),)
        per_facility = conn.execute(
            "SELECT count(t.id) FROM facilities f LEFT JOIN tanks t ON t.facility_id = f.org_id "
            "GROUP BY f.org_id"
        ).fetchall()
        assert all(1 <= n <= 3 for (n,) in per_facility)
        assert conn.execute("SELECT count(*) FROM cylinder_banks").fetchone() == (len(FACILITIES),)
        # The ministry-office facility reports to its office but sits on the map in its province.
        row = conn.execute(
            "SELECT p.code, f.province_code FROM organisations f "
            "JOIN organisations p ON p.id = f.parent_id WHERE f.code = 'BV-30-4'"
        ).fetchone()
        assert row == ("YT-BCA", "79")
        # Every tank's calibration table is usable and reaches the tank's capacity.
        for tank_id, capacity in conn.execute("SELECT id, capacity_kg FROM tanks").fetchall():
            pts = conn.execute(
                "SELECT p.dp_inh2o, p.contents_kg FROM calibration_points p "
                "JOIN tank_calibrations c ON c.id = p.calibration_id WHERE c.tank_id = %s",
                (tank_id,),
            ).fetchall()
            table = CalibrationTable.from_points([(float(a), float(b)) for a, b in pts])
            assert abs(table.capacity_kg - capacity) < 1.0
        sensors = conn.execute("SELECT count(*) FROM sensors").fetchone()
        assert sensors == (2 * sum(len(f.tanks) for f in FACILITIES),)
