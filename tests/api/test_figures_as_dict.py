"""FacilityFigures.as_dict (a fast copy for the BYT map with 2,000 facilities) gives exactly what
dataclasses.asdict gave, status as its value, and containers the caller may change freely."""

from __future__ import annotations

from dataclasses import asdict

from api.accounting.stock import Status
from api.reports.figures import FacilityFigures


def test_as_dict_is_asdict_with_the_status_value() -> None:
    f = FacilityFigures(
        facility_id=7,
        code="BV-X",
        name="BV X",
        parent_id=3,
        province_code="79",
        reported=True,
        on_oxygen={"mask": 4, "hfnc": 1},
        stock_liquid_kg=1234.5,
        status=Status.NEEDS_MORE,
        sources={"stock_liquid_kg": "telemetry"},
        warnings=[{"field": "patients_new", "key": "report.warn.outlier"}],
    )
    want = asdict(f)
    want["status"] = Status.NEEDS_MORE.value
    got = f.as_dict()
    assert got == want
    got["on_oxygen"]["mask"] = 99
    got["warnings"][0]["field"] = "changed"
    assert f.on_oxygen["mask"] == 4 and f.warnings[0]["field"] == "patients_new"
