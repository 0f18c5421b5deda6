"""The tank simulator: day/night consumption near the declared mean, refills, DP from the table."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import load as load_gateway
from gateway.demo import DemoSite, DemoTank, build_demo, write_demo_configs
from gateway.registers import ValueType, decode
from gateway.sim.config import load as load_sim
from gateway.sim.model import REG_DP, TankModel, TankSpec
from oxy.calibration import vertical_tank_table
from oxy.contract import Quantity

DAY = 86400.0


def test_consumption_follows_the_declared_mean_with_day_night_shape() -> None:
    spec = TankSpec(
        "T1", capacity_kg=50000.0, diameter_m=3.0, fill=0.95, daily_kg=2000.0, refill_below=0.0
    )
    m = TankModel(spec, random.Random(3))
    t0 = 1_780_000_000.0 - (1_780_000_000.0 % DAY)  # midnight UTC = 07:00 local
    hourly = []
    for h in range(1, 24 * 7 + 1):
        before = m.consumed_kg
        m.advance(t0 + h * 3600, 3600)
        hourly.append(m.consumed_kg - before)
    per_day = m.consumed_kg / 7
    assert per_day == pytest.approx(2000.0, rel=0.35)
    # afternoon (14:00 local = 07:00 UTC) draws more than before dawn (02:00 local = 19:00 UTC)
    afternoon = sum(hourly[d * 24 + 7] for d in range(7))
    night = sum(hourly[d * 24 + 19] for d in range(7))
    assert afternoon > night * 1.2


def test_tanker_refills_a_low_tank() -> None:
    spec = TankSpec(
        "T1", capacity_kg=10000.0, diameter_m=2.2, fill=0.25, daily_kg=3000.0, tanker_delay_h=2.0
    )
    m = TankModel(spec, random.Random(1))
    t, low = 0.0, 1e9
    for _ in range(int(2 * DAY / 60)):
        t += 60
        m.advance(t, 60)
        low = min(low, m.contents_kg)
    assert m.refills >= 1 and m.delivered_kg > 4000
    assert low > 0 and low < 0.2 * 10000


def test_dp_register_recovers_contents_through_the_same_table() -> None:
    spec = TankSpec("T1", capacity_kg=12000.0, diameter_m=2.4, fill=0.37, dp_noise=0.0)
    m = TankModel(spec, random.Random(1))
    dp = decode(m.registers()[REG_DP : REG_DP + 2], ValueType.FLOAT32)
    table = vertical_tank_table(12000.0, 2.4)
    assert table.contents_kg(dp) == pytest.approx(m.contents_kg, rel=0.002)


def test_demo_configs_parse_and_match_the_sensor_list(tmp_path: Path) -> None:
    sites = [
        DemoSite(
            "BV-A", "gw-bv-a", [DemoTank("A1", 10000, 2.2, 0.5, 1500), DemoTank("A2", 5000, 1.8)]
        ),
        DemoSite("BV-B", "gw-bv-b", (DemoTank("B1", 20000, 2.6, 0.25, 3000),)),
    ]
    out = write_demo_configs(
        sites, "mqtt://127.0.0.1:1883", tmp_path, username="u", password="p", speed=120
    )
    sim = load_sim(out.sim_config)
    assert sim.speed == 120 and [t.code for t in sim.tanks] == ["BV-A.A1", "BV-A.A2", "BV-B.B1"]
    assert len({t.port for t in sim.tanks}) == 3
    gws = [load_gateway(p) for p in out.gateway_configs]
    assert [(g.site, g.gateway) for g in gws] == [("BV-A", "gw-bv-a"), ("BV-B", "gw-bv-b")]
    assert gws[0].mqtt.username == "u" and gws[0].mqtt.password == "p"
    configured = {(g.gateway, s.code, s.tank, s.quantity, s.unit) for g in gws for s in g.sensors}
    returned = {(s.gateway, s.code, s.tank, s.quantity, s.unit) for s in out.sensors}
    assert configured == returned
    assert ("gw-bv-a", "A1-dp", "A1", Quantity.DIFF_PRESSURE, "inH2O") in returned
    assert ("gw-bv-b", "B1-p", "B1", Quantity.HEAD_PRESSURE, "bar") in returned
    # every gateway device points at its simulated tank
    ports = {t.code: t.port for t in sim.tanks}
    for g in gws:
        for d in g.devices:
            assert d.transport.port == ports[f"{g.site}.{d.sensors[0].tank}"]  # type: ignore[union-attr]


def test_gateway_process_does_not_load_the_centre_stack() -> None:
    code = (
        "import sys, gateway.main, gateway.service, gateway.sim.server, gateway.status\n"
        "heavy = [m for m in ('fastapi', 'psycopg', 'uvicorn', 'jinja2', 'starlette',"
        " 'psycopg_pool', 'openpyxl', 'highspy', 'yoyo') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_build_demo_takes_the_demo_seed_facilities(tmp_path: Path) -> None:
    from oxy.demo_seed import FACILITIES

    out = build_demo(FACILITIES, tmp_path, "mqtt://127.0.0.1:1883")
    assert out.simulator_config == out.sim_config
    sim = load_sim(out.sim_config)
    assert len(sim.tanks) == sum(len(f.tanks) for f in FACILITIES)
    gws = [load_gateway(p) for p in out.gateway_configs]
    assert [g.gateway for g in gws] == [f.gateway_code for f in FACILITIES]
    assert len(out.sensors) == 2 * len(sim.tanks)
