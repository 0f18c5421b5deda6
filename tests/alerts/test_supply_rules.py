"""Days of supply and abnormal consumption, from simulated tank telemetry with a known leak."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg

from api.accounting.config import AccountingConfig
from api.accounting.simulate import TankPlan, add_facility, add_tank, copy_readings, readings
from api.alerts.config import AlertSettings
from api.alerts.rules import Rule, Severity, evaluate_rules

NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)  # 10:00 local; report day 28 is in progress
LEAK = (datetime(2026, 11, 26, 9, 0, tzinfo=UTC), datetime(2026, 11, 27, 9, 0, tzinfo=UTC))


def test_low_days_of_supply_and_leak_fire(db_url: str) -> None:
    plan = TankPlan(
        capacity_kg=20000.0,
        diameter_m=2.5,
        start_kg=18000.0,
        draw_kg_per_day=1500.0,
        extra=((LEAK[0], LEAK[1], 3000.0),),
    )
    steady = TankPlan(capacity_kg=20000.0, diameter_m=2.5, start_kg=19500.0, draw_kg_per_day=500.0)

    async def go() -> list[tuple[Rule, int, Severity, dict[str, object]]]:
        conn = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
        async with conn:
            cur = await conn.execute("SELECT id FROM organisations WHERE code = 'SYT-79'")
            row = await cur.fetchone()
            assert row
            out = []
            for code, p in (("BV-LEAK", plan), ("BV-OK", steady)):
                fac = await add_facility(conn, code, int(row[0]), "79")
                _tank, sensor = await add_tank(
                    conn, fac, "T1", p, valid_from=NOW - timedelta(days=60), min_usable_kg=1000.0
                )
                assert sensor is not None
                await copy_readings(conn, readings(p, sensor, NOW - timedelta(days=8), NOW))
                await conn.execute(
                    "SELECT rollup_recompute(%s, %s, %s)", (sensor, NOW - timedelta(days=8), NOW)
                )
                out.append((code, fac))
            conds = await evaluate_rules(
                conn,
                NOW,
                AlertSettings(),
                AccountingConfig.defaults(),
                only=[Rule.DAYS_OF_SUPPLY, Rule.ABNORMAL_CONSUMPTION],
            )
            names = {fac: code for code, fac in out}
            return [(c.rule, names[c.facility_id], c.severity, c.details) for c in conds]

    found = asyncio.run(go())
    by = {(rule, code): (sev, det) for rule, code, sev, det in found}
    assert set(by) == {(Rule.DAYS_OF_SUPPLY, "BV-LEAK"), (Rule.ABNORMAL_CONSUMPTION, "BV-LEAK")}
    sev, det = by[(Rule.DAYS_OF_SUPPLY, "BV-LEAK")]
    # Truth: 18,000 - 8 d x 1,500 - 3,000 leak = 3,000 kg, 2,000 usable; 7-day mean ≈ 1,929/day.
    assert sev == Severity.WARNING
    assert 0.8 < float(det["days"]) < 1.4  # type: ignore[arg-type]
    sev, det = by[(Rule.ABNORMAL_CONSUMPTION, "BV-LEAK")]
    assert 4000 < float(det["consumption_kg"]) < 5000  # type: ignore[arg-type]
