import math

import pytest

from api.accounting.stock import urgency_weight
from api.coordination.allocation import (
    Need,
    Supply,
    allocate,
    greedy,
    road_km,
    what_if,
)

# Points near Hồ Chí Minh City; 0.1° of latitude ≈ 11.1 km great-circle.
BASE = (10.77, 106.70)


def need(
    fid: int,
    kg: float,
    dos: float | None,
    dlat: float = 0.0,
    cap: float = math.inf,
    province: str = "79",
) -> Need:
    return Need(fid, f"F{fid}", province, BASE[0] + dlat, BASE[1], kg, cap, dos, 3.0)


def supply(sid: int, kg: float, dlat: float = 0.0, max_km: float = 1000.0) -> Supply:
    return Supply(sid, f"S{sid}", "79", BASE[0] + dlat, BASE[1], kg, max_km=max_km)


def test_urgent_need_is_served_first() -> None:
    plan = allocate([need(1, 80, 0.5), need(2, 80, 5.0)], [supply(10, 100, 0.2)])
    got = {e.facility_id: e.covered_kg for e in plan.explanations.values()}
    assert got[1] == pytest.approx(80)
    assert got[2] == pytest.approx(20)
    assert plan.unmet_kg == pytest.approx(60)
    assert plan.unmet_weighted == pytest.approx(60 * urgency_weight(5.0, 3.0))
    assert any("more urgent" in r for r in plan.explanations[2].reasons)


def test_nearest_supplier_wins_when_need_is_covered() -> None:
    plan = allocate([need(1, 50, 2.0)], [supply(10, 500, 1.0), supply(11, 500, 0.1)])
    assert [(s.supplier_id, s.kg) for s in plan.shipments] == [(11, 50)]
    assert plan.explanations[1].unmet_kg == 0
    assert plan.explanations[1].reasons[0].startswith("50 kg from S11")


def test_lp_beats_greedy_when_nearest_choice_strands_another_facility() -> None:
    # F1 sits between S10 (near) and S11 (farther); F2 can only be reached by S10.
    needs = [need(1, 100, 0.5, dlat=0.0), need(2, 100, 0.5, dlat=-0.5)]
    supplies = [supply(10, 100, dlat=-0.05, max_km=80), supply(11, 100, dlat=0.3, max_km=80)]
    assert road_km(*BASE, BASE[0] - 0.5, BASE[1]) < 80  # F2 ↔ S10 reachable
    assert road_km(BASE[0] - 0.5, BASE[1], BASE[0] + 0.3, BASE[1]) > 80  # F2 ↔ S11 not
    lp, gr = allocate(needs, supplies), greedy(needs, supplies)
    assert lp.unmet_kg == pytest.approx(0)
    assert gr.unmet_kg == pytest.approx(100)
    assert lp.unmet_weighted < gr.unmet_weighted


def test_shortage_is_explained_not_failed() -> None:
    plan = allocate(
        [need(1, 300, 2.0), need(2, 50, 0.5, cap=20), need(3, 40, 0.5, dlat=9.0)],
        [supply(10, 100, 0.1, max_km=200)],
    )
    assert plan.status == "Optimal"
    e1, e2, e3 = (plan.explanations[i] for i in (1, 2, 3))
    assert e2.covered_kg == pytest.approx(20)
    assert any("can take only 20 kg" in r for r in e2.reasons)
    assert e3.covered_kg == 0 and any("no supplier" in r for r in e3.reasons)
    assert e1.covered_kg == pytest.approx(80)
    assert plan.supplier_left_kg[10] == pytest.approx(0, abs=1e-6)


def test_what_if_supplier_down_and_surge() -> None:
    needs = [need(1, 100, 2.0), need(2, 100, 2.0, province="75")]
    supplies = [supply(10, 150, 0.1), supply(11, 150, 0.2)]
    assert allocate(needs, supplies).unmet_kg == pytest.approx(0)
    assert what_if(needs, supplies, suppliers_down=[10]).unmet_kg == pytest.approx(50)
    assert what_if(needs, supplies, surge={"75": 3.0}).unmet_kg == pytest.approx(100)


def test_empty_inputs() -> None:
    plan = allocate([], [])
    assert plan.shipments == [] and plan.unmet_kg == 0


def test_urgency_threshold_is_the_setting_not_a_literal() -> None:
    # 2.5 days of supply: high urgency under the default 3-day threshold, normal under 2 days.
    assert urgency_weight(2.5, 3.0) == 4.0
    assert urgency_weight(2.5, 2.0) == 1.0
    assert need(1, 10, 2.5).urgency == 4.0
    from dataclasses import replace

    assert replace(need(1, 10, 2.5), needs_more_days=2.0).urgency == 1.0
