"""The centre's one settings tree: the platform `Settings` and the sub-trees of its features.

Built and validated once, at start-up (`create_app`, the alerts and coordination services), by
`load_centre_settings`: a bad `OXY_*` value stops the process with one line naming it, never a
request later. The core (`oxy.settings`) knows nothing of these sub-trees.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from api.accounting.config import AccountingConfig, AccountingSettings, build_config
from api.alerts.config import AlertSettings
from oxy.settings import Settings, SettingsError, settings_error


@dataclass(frozen=True, slots=True)
class CentreSettings:
    """The platform settings, the accounting config derived from them, the alert settings."""

    platform: Settings
    accounting: AccountingConfig
    alerts: AlertSettings


def load_centre_settings(platform: Settings) -> CentreSettings:
    """Read and validate the feature sub-trees (`OXY_*`); SettingsError names a bad value."""
    problems: list[str] = []
    try:
        accounting = AccountingSettings()
    except ValidationError as exc:
        problems.append(str(settings_error(exc)))
    try:
        alerts = AlertSettings()
    except ValidationError as exc:
        problems.append(str(settings_error(exc)))
    if problems:
        raise SettingsError("; ".join(problems))
    return CentreSettings(
        platform=platform, accounting=build_config(platform, accounting), alerts=alerts
    )
