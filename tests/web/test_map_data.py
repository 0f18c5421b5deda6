"""The BYT map's popups say how many facilities a province's picture stands for ("n/m facilities
reporting", as the BYT table does) and, for a facility with silent tanks, how many tanks its
stock stands for (issue 15)."""

from __future__ import annotations

from typing import Any

from api.accounting.stock import Status
from api.reports.byt_pages import map_data
from api.reports.figures import FacilityFigures


def _fac(i: int, province: str) -> dict[str, Any]:
    return {
        "id": i,
        "name": f"BV {i}",
        "province_name": province,
        "parent_name": "SYT",
        "latitude": 10.0 + i / 100,
        "longitude": 106.0,
    }


def _fig(i: int, **figures: Any) -> FacilityFigures:
    return FacilityFigures.stored(
        {
            "facility_id": i,
            "code": f"BV{i}",
            "name": f"BV {i}",
            "parent_id": None,
            "province_code": None,
            **figures,
        }
    )


def test_province_popup_counts_reporting_facilities_and_facility_popup_counts_tanks() -> None:
    facilities = [_fac(1, "Hà Nội"), _fac(2, "Hà Nội"), _fac(3, "Hà Nội"), _fac(4, "Huế")]
    live: dict[int, FacilityFigures] = {
        1: _fig(1, status=Status.ENOUGH, reported=True, days_of_supply=5.0),
        2: _fig(
            2,
            status=Status.NEEDS_MORE,
            reported=False,
            days_of_supply=1.0,
            stock_liquid_kg=900.0,
            monitored_tanks=4,
            observed_tanks=3,
            incomplete=["stock_liquid", "days_of_supply"],
        ),
        # 3: nothing known at all
        4: _fig(4, status=Status.ENOUGH, reported=True, days_of_supply=9.0),
    }
    data = map_data(facilities, live, [], "en")
    hanoi = next(p for p in data["provinces"] if p["name"] == "Hà Nội")
    assert (hanoi["facilities"], hanoi["reporting"], hanoi["known"]) == (3, 1, 2)
    assert hanoi["reporting_text"] == "1/3 facilities reporting"
    assert hanoi["known_text"] == "2/3 with days of supply"
    points = {p["id"]: p for p in data["facilities"]}
    assert points[2]["tanks"] == "3/4 tanks reporting"
    assert points[1]["tanks"] == "" and points[3]["tanks"] == ""
    vi = map_data(facilities, live, [], "vi")
    assert next(p for p in vi["provinces"] if p["name"] == "Hà Nội")["reporting_text"] == (
        "1/3 cơ sở đã báo cáo"
    )


def test_map_script_shows_the_counts() -> None:
    from pathlib import Path

    js = (Path(__file__).parents[2] / "api" / "static" / "src" / "map.js").read_text()
    assert "p.reporting_text" in js and "p.known_text" in js and "f.tanks" in js
