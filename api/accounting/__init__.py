"""Oxygen accounting from telemetry: contents, refills, consumption, days of supply, status."""

from .config import AccountingConfig, AccountingSettings, build_config
from .series import Point, Refill, WindowFigures, detect_refills, window_figures
from .stock import Status, average_daily, days_of_supply, status
from .therapy import Therapy, need_m3_per_day

__all__ = [
    "AccountingConfig",
    "AccountingSettings",
    "Point",
    "Refill",
    "Status",
    "Therapy",
    "WindowFigures",
    "average_daily",
    "build_config",
    "days_of_supply",
    "detect_refills",
    "need_m3_per_day",
    "status",
    "window_figures",
]
