"""One home per figure (issue 15): usable stock, days of supply and the facility pre-fill come
from api.accounting.stock, and the modules that show them call it instead of computing them."""

import re
from pathlib import Path

import pytest

from api.accounting.stock import (
    DOS_HORIZON_DAYS,
    days_of_supply,
    facility_gas_nm3,
    facility_usable_kg,
    prefill,
    usable_after_override,
    usable_kg,
)
from api.accounting.telemetry import FacilityTelemetry
from oxy.contract import Reference

API = Path(__file__).parents[2] / "api"
REF = Reference()


def _tele(**kw: object) -> FacilityTelemetry:
    base: dict[str, object] = {
        "facility_id": 1,
        "monitored_tanks": 2,
        "stock_kg": 9000.0,
        "usable_kg": 8000.0,
        "refilled_kg": 5000.0,
        "refills": 1,
        "consumption_kg": 1200.0,
        "avg_daily_kg": 1000.0,
        "capacity_kg": 20000.0,
        "cylinder_capacity_nm3": 60.0,
        "coverage": 0.9,
    }
    return FacilityTelemetry(**(base | kw))  # type: ignore[arg-type]


def test_usable_stock_is_contents_above_the_minimum_and_unknown_stays_unknown() -> None:
    assert usable_kg(5000.0, 1000.0) == 4000.0
    assert usable_kg(500.0, 1000.0) == 0.0  # under the minimum: nothing usable, never negative
    assert usable_kg(None, 1000.0) is None
    # Staff typed the stock: the measured reserve under the minimum stays out of it.
    assert usable_after_override(7000.0, 9000.0, 8000.0) == 6000.0
    assert usable_after_override(500.0, 9000.0, 8000.0) == 0.0
    assert usable_after_override(7000.0, None, None) == 7000.0


def test_facility_stock_is_tanks_plus_cylinders_and_unknown_stays_unknown() -> None:
    m3_per_kg = REF.kg_to_m3(1.0)
    assert facility_gas_nm3(1000.0, 50.0, m3_per_kg) == pytest.approx(1000.0 * m3_per_kg + 50.0)
    assert facility_gas_nm3(1000.0, None, m3_per_kg) == pytest.approx(1000.0 * m3_per_kg)
    assert facility_gas_nm3(None, 50.0, m3_per_kg) == pytest.approx(50.0)
    assert facility_gas_nm3(None, None, m3_per_kg) is None  # unknown, never 0
    assert facility_usable_kg(1000.0, 50.0, REF) == pytest.approx(1000.0 + REF.m3_to_kg(50.0))
    assert facility_usable_kg(None, None, REF) is None


def test_days_of_supply_unknown_when_stock_or_use_is_unknown_and_capped() -> None:
    assert days_of_supply(3000.0, 1000.0) == pytest.approx(3.0)
    assert days_of_supply(None, 1000.0) is None
    assert days_of_supply(3000.0, None) is None
    assert days_of_supply(3000.0, 0.0) is None
    assert days_of_supply(1e9, 1.0) == DOS_HORIZON_DAYS


def test_prefill_from_telemetry() -> None:
    p = prefill(_tele(), REF)
    assert p.monitored
    assert (p.refilled_liquid_kg, p.stock_liquid_kg, p.usable_liquid_kg) == (5000.0, 9000.0, 8000.0)
    assert p.avg_need_nm3 == pytest.approx(REF.kg_to_m3(1000.0))
    assert p.capacity_nm3 == pytest.approx(REF.kg_to_m3(20000.0) + 60.0)
    # No monitored tank: only the registry capacity is pre-filled, the rest is unknown (None).
    q = prefill(_tele(monitored_tanks=0, avg_daily_kg=None, stock_kg=None), REF)
    assert not q.monitored and q.stock_liquid_kg is None and q.refilled_liquid_kg is None
    assert q.avg_need_nm3 is None and q.capacity_nm3 == pytest.approx(REF.kg_to_m3(20000.0) + 60.0)
    empty = prefill(None, REF)
    assert empty.capacity_nm3 is None and not empty.monitored


@pytest.mark.parametrize(
    "pattern",
    [
        r"max\(0\.0,\s*\w[\w.\[\]\"']*\s*-\s*[\w.\[\]\"']*min_usable",  # usable stock
        r"days_of_supply\(.*\bif\s+\w+\.usable_kg\s+is not None",  # None-guarded, per caller
        r"t(ele)?\.refilled_kg if \(t(ele)? and monitored\)",  # a copy of the pre-fill
        r"usable_liquid_kg\s+or\s+0(\.0)?\)\s*\+",  # a facility's usable stock, added up
        r"def _gas_total\(",  # the same, as a private helper
    ],
)
def test_no_module_computes_the_figures_itself(pattern: str) -> None:
    found = [
        f"{p.relative_to(API)}"
        for p in API.rglob("*.py")
        if p.name != "stock.py" and re.search(pattern, p.read_text(encoding="utf-8"))
    ]
    assert found == []
