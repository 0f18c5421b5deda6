"""Pure figures over report windows: average daily consumption, days of supply, status, outliers."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from .config import AccountingConfig


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


# Days of supply are stated up to this horizon: beyond it (an idle tank, a tiny draw) the figure
# says nothing useful and is shown as "> 60" (an idle tank once showed 3,159 days).
DOS_HORIZON_DAYS = 60.0


def days_of_supply(usable_kg: float, avg_daily_kg: float | None) -> float | None:
    """Usable stock ÷ average daily consumption, capped at DOS_HORIZON_DAYS (None when
    consumption is unknown or zero)."""
    if avg_daily_kg is None or avg_daily_kg <= 0:
        return None
    return min(max(0.0, usable_kg) / avg_daily_kg, DOS_HORIZON_DAYS)


def beyond_horizon(days: float | None) -> bool:
    """Whether days of supply stand at the horizon (shown as "> N")."""
    return days is not None and days >= DOS_HORIZON_DAYS


def status(days: float | None, needs_more_days: float) -> Status:
    """Enough, or Needs more when days of supply fall under the threshold (setting)."""
    if days is None:
        return Status.UNKNOWN
    return Status.NEEDS_MORE if days < needs_more_days else Status.ENOUGH


class Urgency(StrEnum):
    """How urgent a facility's need is, from its days of supply."""

    CRITICAL = "critical"  # under a day
    HIGH = "high"  # under the "needs more" threshold (setting OXY_NEEDS_MORE_DAYS)
    NORMAL = "normal"
    UNKNOWN = "unknown"  # no telemetry and no report


# Weight of one kg of unmet need in the allocation model, by urgency.
URGENCY_WEIGHTS: dict[Urgency, float] = {
    Urgency.CRITICAL: 10.0,
    Urgency.HIGH: 4.0,
    Urgency.NORMAL: 1.0,
    Urgency.UNKNOWN: 2.0,
}


def urgency_of(days: float | None, needs_more_days: float) -> Urgency:
    """Critical under a day, high under the threshold, normal otherwise, unknown without data."""
    if days is None:
        return Urgency.UNKNOWN
    if days < 1.0:
        return Urgency.CRITICAL
    if days < needs_more_days:
        return Urgency.HIGH
    return Urgency.NORMAL


def urgency_weight(days: float | None, needs_more_days: float) -> float:
    """The allocation model's weight of one kg of unmet need at these days of supply."""
    return URGENCY_WEIGHTS[urgency_of(days, needs_more_days)]


def robust_z(
    value: float, history: Sequence[float], *, floor_rel: float = 0.0, floor_abs: float = 0.0
) -> float | None:
    """(value − median) / spread over the history; None with fewer than 5 points.

    The spread is 1.4826 × MAD, but never below `floor_rel` × |median| nor `floor_abs`: a few very
    steady days have a MAD near the measurement noise, and dividing by it turns a 0.6 % change
    into a "z of 5". A flat history with no floor given is compared against 5 % of its level.
    """
    if len(history) < 5:
        return None
    med = statistics.median(history)
    mad = 1.4826 * statistics.median(abs(h - med) for h in history)
    floor = max(abs(med) * floor_rel, floor_abs)
    scale = max(mad, floor) if mad > 0 or floor > 0 else max(abs(med) * 0.05, 1e-9)
    return (value - med) / scale


def is_abnormal(
    value: float,
    history: Sequence[float],
    z: float,
    *,
    floor_rel: float = 0.0,
    floor_abs: float = 0.0,
) -> bool:
    """True when `value` is above its own history by more than z robust deviations (a leak)."""
    score = robust_z(value, history, floor_rel=floor_rel, floor_abs=floor_abs)
    return score is not None and score > z


def is_leak(value: float, history: Sequence[float], cfg: AccountingConfig) -> bool:
    """The one leak check (report figures and the `abnormal_consumption` alert): a day's
    consumption above its own history by more than `outlier_z` spreads, the spread floored at
    `leak_floor_pct` % of the typical day and `leak_floor_kg`."""
    return is_abnormal(
        value,
        history,
        cfg.outlier_z,
        floor_rel=cfg.leak_floor_pct / 100.0,
        floor_abs=cfg.leak_floor_kg,
    )


def is_outlier(value: float, history: Sequence[float], z: float) -> bool:
    """True when `value` is further than z robust deviations from its history, either side."""
    score = robust_z(value, history)
    return score is not None and abs(score) > z
