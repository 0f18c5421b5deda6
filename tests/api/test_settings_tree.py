"""The centre's settings tree is read and validated once, when the application is built."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from api.accounting.config import AccountingConfig, AccountingSettings
from api.app import create_app
from api.settings import load_centre_settings
from oxy.settings import Settings, SettingsError

UNUSED_DB = "postgresql://unused@127.0.0.1:1/none"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("OXY_REFILL_MIN_KG", "-1"), ("OXY_ALERT_CRITICAL_DAYS", "0"), ("OXY_FLOW_HFNC_LPM", "x")],
)
def test_a_bad_value_stops_create_app_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        create_app(Settings(database_url=UNUSED_DB))


def test_every_bad_value_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OXY_OUTLIER_Z", "0")
    monkeypatch.setenv("OXY_SMTP_PORT", "70000")
    with pytest.raises(SettingsError) as caught:
        load_centre_settings(Settings(database_url=UNUSED_DB))
    assert "OXY_OUTLIER_Z" in str(caught.value)
    assert "OXY_SMTP_PORT" in str(caught.value)


def test_the_tree_is_built_once_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OXY_REFILL_MIN_KG", "150")
    monkeypatch.setenv("OXY_ALERT_CRITICAL_DAYS", "2")
    app = create_app(Settings(database_url=UNUSED_DB, report_cutoff_hour=15))
    monkeypatch.setenv("OXY_REFILL_MIN_KG", "-1")  # read at start-up only
    centre = app.state.centre
    assert centre.platform is app.state.settings
    assert centre.accounting.refill_min_kg == 150
    assert centre.accounting.cutoff_hour == 15
    assert centre.alerts.alert_critical_days == 2


def test_defaults_are_the_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("OXY_")]:
        monkeypatch.delenv(name)
    built = load_centre_settings(Settings(database_url=UNUSED_DB)).accounting
    assert built == AccountingConfig.defaults()
    assert built.refill_min_kg == AccountingSettings.model_fields["refill_min_kg"].default


def test_oxy_api_run_refuses_a_bad_value_before_serving() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXY_")}
    env |= {"OXY_DATABASE_URL": UNUSED_DB, "OXY_LEAK_FLOOR_KG": "-3", "OXY_API_PORT": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "oxy", "api", "run"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "OXY_LEAK_FLOOR_KG" in lines[0]
