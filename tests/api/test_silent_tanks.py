"""A facility where some monitored tanks are silent: its stock and days of supply stand for the
tanks that report only, so they say how many ("3/4 tanks reporting") and are flagged incomplete,
never passed off as the facility's whole stock (issue 15)."""

from __future__ import annotations

from api.accounting.config import AccountingConfig
from api.accounting.telemetry import FacilityTelemetry
from api.reports.figures import FacilityRef, resolve
from api.web.templating import environment

CFG = AccountingConfig.defaults()
REF = FacilityRef(1, "BV-X", "Bệnh viện X", 2, "79")


def _tele(observed: int, monitored: int = 4) -> FacilityTelemetry:
    return FacilityTelemetry(
        facility_id=1,
        monitored_tanks=monitored,
        stock_kg=9000.0 if observed else None,
        usable_kg=8000.0 if observed else None,
        refilled_kg=0.0 if observed else None,
        refills=0,
        consumption_kg=1000.0 if observed else None,
        avg_daily_kg=1000.0,
        capacity_kg=40000.0,
        cylinder_capacity_nm3=0.0,
        coverage=observed / monitored,
        observed_tanks=observed,
    )


def test_some_tanks_silent_flags_the_telemetry_figures_incomplete() -> None:
    f = resolve(REF, None, _tele(3), CFG)
    assert (f.observed_tanks, f.monitored_tanks) == (3, 4)
    assert f.stock_liquid_kg == 9000.0  # what the reporting tanks hold, shown...
    assert {"stock_liquid", "days_of_supply"} <= set(f.incomplete)  # ... and flagged
    d = f.as_dict()
    assert (d["observed_tanks"], d["monitored_tanks"]) == (3, 4)
    assert "stock_liquid" in d["incomplete"]


def test_all_tanks_reporting_or_stock_entered_is_not_incomplete() -> None:
    assert resolve(REF, None, _tele(4), CFG).incomplete == []
    # None reporting: unknown ("—" with its reason), not incomplete.
    silent = resolve(REF, None, _tele(0), CFG)
    assert silent.stock_liquid_kg is None and "stock_liquid" not in silent.incomplete
    # Staff typed the stock: that figure is theirs, whatever the tanks say.
    row = {"submitted_at": None, "stock_liquid_kg": 12000.0}
    typed = resolve(REF, row, _tele(3), CFG)
    assert "stock_liquid" not in typed.incomplete and "days_of_supply" not in typed.incomplete


def test_pages_show_how_many_tanks_a_figure_stands_for() -> None:
    env = environment()
    macros = env.get_template("web/_macros.html").make_module(
        {"_": lambda s, **kw: s % kw if kw else s, "dos_horizon": 60}
    )
    f = resolve(REF, None, _tele(3), CFG).as_dict()
    html = str(macros.tanks_reporting(f, "stock_liquid"))  # type: ignore[attr-defined]
    assert "3/4" in html and 'data-testid="tanks-reporting"' in html
    assert "incomplete" in html
    whole = resolve(REF, None, _tele(4), CFG).as_dict()
    assert str(macros.tanks_reporting(whole, "stock_liquid")).strip() == ""  # type: ignore[attr-defined]
