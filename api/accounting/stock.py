"""Pure figures over report windows, and the one home of each stock figure: usable stock, days of
supply, status (threshold from the settings), urgency, a facility's pre-fill from telemetry, leaks.

Reports, alerts, tank pages and coordination call these; none computes them itself.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from .config import AccountingConfig

if TYPE_CHECKING:
    from oxy.contract import Reference

    from .telemetry import FacilityTelemetry


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


def usable_kg(contents_kg: float | None, min_usable_kg: float) -> float | None:
    """A tank's usable stock: contents above its minimum usable level (never below 0; None when
    the contents are unknown)."""
    return None if contents_kg is None else max(0.0, contents_kg - min_usable_kg)


def facility_gas_nm3(
    liquid_kg: float | None, stock_gas_nm3: float | None, m3_per_kg: float
) -> float | None:
    """A facility's stock as gas: its tanks' liquid (as gas) plus its cylinders' gas; with the
    tanks' usable liquid, its usable stock. A part that is unknown adds nothing; both unknown is
    unknown (None), never 0."""
    if liquid_kg is None and stock_gas_nm3 is None:
        return None
    return (liquid_kg or 0.0) * m3_per_kg + (stock_gas_nm3 or 0.0)


def facility_usable_kg(
    usable_liquid_kg: float | None, stock_gas_nm3: float | None, reference: Reference
) -> float | None:
    """The same usable stock in kg LOX (the unit of the allocation model)."""
    if usable_liquid_kg is None and stock_gas_nm3 is None:
        return None
    return (usable_liquid_kg or 0.0) + (
        reference.m3_to_kg(stock_gas_nm3) if stock_gas_nm3 is not None else 0.0
    )


def usable_after_override(
    entered_stock_kg: float, tele_stock_kg: float | None, tele_usable_kg: float | None
) -> float:
    """Usable stock of a facility whose staff entered the stock: the entered stock less the tanks'
    reserve under their minimum usable level (as measured), all of it without telemetry."""
    if tele_stock_kg is None:
        return entered_stock_kg
    reserve = max(0.0, tele_stock_kg - (tele_usable_kg or 0.0))
    return max(0.0, entered_stock_kg - reserve)


def days_of_supply(usable_kg: float | None, avg_daily_kg: float | None) -> float | None:
    """Usable stock ÷ average daily consumption (any one unit: kg or Nm3), capped at
    DOS_HORIZON_DAYS (None when the stock is unknown, or consumption unknown or zero)."""
    if usable_kg is None or avg_daily_kg is None or avg_daily_kg <= 0:
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


@dataclass(frozen=True, slots=True)
class Prefill:
    """A facility's 16:00 figures pre-filled from telemetry (None: not monitored or unknown)."""

    refilled_liquid_kg: float | None = None
    stock_liquid_kg: float | None = None
    usable_liquid_kg: float | None = None
    consumption_kg: float | None = None
    avg_daily_kg: float | None = None
    avg_need_nm3: float | None = None
    capacity_nm3: float | None = (
        None  # registry: all tanks (as gas) and cylinders, monitored or not
    )
    coverage: float = 0.0
    monitored: bool = False


def prefill(tele: FacilityTelemetry | None, reference: Reference) -> Prefill:
    """The one pre-fill of a facility's report from its telemetry (form, validation, figures)."""
    if tele is None:
        return Prefill()
    capacity = (
        reference.kg_to_m3(tele.capacity_kg) + tele.cylinder_capacity_nm3
        if (tele.capacity_kg or tele.cylinder_capacity_nm3)
        else None
    )
    if tele.monitored_tanks <= 0:
        return Prefill(capacity_nm3=capacity)
    return Prefill(
        refilled_liquid_kg=tele.refilled_kg,
        stock_liquid_kg=tele.stock_kg,
        usable_liquid_kg=tele.usable_kg,
        consumption_kg=tele.consumption_kg,
        avg_daily_kg=tele.avg_daily_kg,
        avg_need_nm3=None if tele.avg_daily_kg is None else reference.kg_to_m3(tele.avg_daily_kg),
        capacity_nm3=capacity,
        coverage=tele.coverage,
        monitored=True,
    )


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
