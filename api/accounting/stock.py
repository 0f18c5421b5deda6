"""Pure figures over report windows: average daily consumption, days of supply, status, outliers."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """A facility's oxygen status (the seed's filter: Đủ / Cần bổ sung)."""

    ENOUGH = "enough"
    NEEDS_MORE = "needs_more"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class DayUse:
    """Consumption observed over one report window and the fraction of it that was observed."""

    consumption_kg: float | None
    coverage: float


def average_daily(days: Sequence[DayUse]) -> float | None:
    """Average daily consumption over the windows, adjusted for days without data.

    OpenLMIS adjusts for stock-out days with C × days / (days − missing_days); a partly observed
    window counts as its observed fraction, which is the same formula when days are whole.
    """
    observed = [(d.consumption_kg, d.coverage) for d in days if d.consumption_kg is not None]
    covered = sum(c for _, c in observed if c > 0)
    if covered <= 0:
        return None
    return sum(c for c, cov in observed if cov > 0) / covered


def days_of_supply(usable_kg: float, avg_daily_kg: float | None) -> float | None:
    """Usable stock ÷ average daily consumption (None when consumption is unknown or zero)."""
    if avg_daily_kg is None or avg_daily_kg <= 0:
        return None
    return max(0.0, usable_kg) / avg_daily_kg


def status(days: float | None, needs_more_days: float) -> Status:
    """Enough, or Needs more when days of supply fall under the threshold (setting)."""
    if days is None:
        return Status.UNKNOWN
    return Status.NEEDS_MORE if days < needs_more_days else Status.ENOUGH


def robust_z(value: float, history: Sequence[float]) -> float | None:
    """(value − median) / (1.4826 × MAD) over the history; None with fewer than 5 points."""
    if len(history) < 5:
        return None
    med = statistics.median(history)
    mad = 1.4826 * statistics.median(abs(h - med) for h in history)
    # A flat history has no spread: compare against 5 % of its level so one value is not infinite.
    scale = mad if mad > 0 else max(abs(med) * 0.05, 1e-9)
    return (value - med) / scale


def is_abnormal(value: float, history: Sequence[float], z: float) -> bool:
    """True when `value` is above its own history by more than z robust deviations (a leak)."""
    score = robust_z(value, history)
    return score is not None and score > z


def is_outlier(value: float, history: Sequence[float], z: float) -> bool:
    """True when `value` is further than z robust deviations from its history, either side."""
    score = robust_z(value, history)
    return score is not None and abs(score) > z
