"""Pure accounting over a tank's contents series: refills, window figures, consumption.

The series is a list of (time, kg) points at any resolution: one per reading, or the first and
last value of each hourly bucket. A refill is a sustained rise much steeper than the noise; the
draw that goes on while the tanker fills the tank is estimated from the neighbouring draw rate and
counted both as delivered and as consumed (shared ARCHITECTURE.md, "Accounting").
"""

from __future__ import annotations

import bisect
import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .config import AccountingConfig


@dataclass(frozen=True, slots=True)
class Point:
    """Contents of one tank at one time, kg of LOX."""

    ts: datetime
    kg: float


@dataclass(frozen=True, slots=True)
class Refill:
    """A detected refill: when, contents before and after, and the amount delivered."""

    started_at: datetime
    ended_at: datetime
    before_kg: float
    after_kg: float
    amount_kg: float


@dataclass(frozen=True, slots=True)
class WindowFigures:
    """What one report window says about one tank."""

    open_kg: float | None
    close_kg: float | None
    min_kg: float | None
    consumption_kg: float | None
    refilled_kg: float
    refills: int
    coverage: float
    readings: int


def _minutes(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 60.0


def noise_sigma(points: Sequence[Point]) -> float:
    """Robust spread (1.4826 × MAD) of the step changes once the typical draw is taken out, kg."""
    if len(points) < 3:
        return 0.0
    steps = [(b.kg - a.kg, max(_minutes(a.ts, b.ts), 1e-9)) for a, b in itertools.pairwise(points)]
    # Steps may differ in length (first/last of hourly buckets): detrend by the median rate.
    rate = statistics.median(d / dt for d, dt in steps)
    resid = [d - rate * dt for d, dt in steps]
    med = statistics.median(resid)
    return 1.4826 * statistics.median(abs(r - med) for r in resid)


def draw_rate(points: Sequence[Point], refills: Sequence[Refill] = ()) -> float:
    """Typical draw in kg/min over the points (positive = consumption), ignoring refill spans."""
    rates = []
    for a, b in itertools.pairwise(points):
        dt = _minutes(a.ts, b.ts)
        if dt <= 0 or any(r.started_at <= a.ts < r.ended_at for r in refills):
            continue
        rates.append(((a.kg - b.kg) / dt, dt))
    if not rates:
        return 0.0
    # Time-weighted: a long gap step says as much as many short ones.
    total = sum(dt for _, dt in rates)
    return max(0.0, sum(r * dt for r, dt in rates) / total)


def detect_refills(points: Sequence[Point], cfg: AccountingConfig) -> list[Refill]:
    """Sustained steep rises well above the noise, merged when close, at least refill_min_kg."""
    if len(points) < 2:
        return []
    sigma = noise_sigma(points)
    steep: list[int] = []  # index i means the step points[i] -> points[i + 1]
    for i, (a, b) in enumerate(itertools.pairwise(points)):
        dt = max(_minutes(a.ts, b.ts), 1e-9)
        rise = b.kg - a.kg
        if rise > cfg.refill_noise_k * sigma and rise / dt >= cfg.refill_min_rate_kg_min:
            steep.append(i)
    groups: list[list[int]] = []
    for i in steep:
        if (
            groups
            and _minutes(points[groups[-1][-1] + 1].ts, points[i].ts) <= cfg.refill_merge_minutes
        ):
            groups[-1].append(i)
        else:
            groups.append([i])
    events = []
    for g in groups:
        first, last = g[0], g[-1] + 1
        before, after = points[first], points[last]
        rise = after.kg - before.kg
        if rise < cfg.refill_min_kg:
            continue
        events.append((first, last))
    refills = []
    for first, last in events:
        before, after = points[first], points[last]
        # The draw goes on during the refill: estimate it from two hours on either side.
        lo = before.ts - timedelta(hours=2)
        hi = after.ts + timedelta(hours=2)
        pre = [p for p in points if lo <= p.ts <= before.ts]
        post = [p for p in points if after.ts <= p.ts <= hi]
        rate = _segment_rate(pre, post)
        amount = after.kg - before.kg + rate * _minutes(before.ts, after.ts)
        refills.append(Refill(before.ts, after.ts, before.kg, after.kg, max(0.0, amount)))
    return refills


def _segment_rate(pre: Sequence[Point], post: Sequence[Point]) -> float:
    rates = []
    for seg in (pre, post):
        if len(seg) >= 2 and seg[-1].ts > seg[0].ts:
            rates.append((seg[0].kg - seg[-1].kg) / _minutes(seg[0].ts, seg[-1].ts))
    return max(0.0, sum(rates) / len(rates)) if rates else 0.0


def value_at(points: Sequence[Point], ts: datetime, max_gap: timedelta) -> float | None:
    """Contents at `ts`: a reading at that time, else interpolated across a gap up to max_gap."""
    times = [p.ts for p in points]
    i = bisect.bisect_left(times, ts)
    if i < len(points) and points[i].ts == ts:
        return points[i].kg
    if i == 0 or i == len(points):
        return None
    a, b = points[i - 1], points[i]
    if b.ts - a.ts > max_gap:
        return None
    return a.kg + (b.kg - a.kg) * (ts - a.ts) / (b.ts - a.ts)


def delivered_by(
    points: Sequence[Point], refill: Refill, ts: datetime, max_gap: timedelta
) -> float:
    """Part of a refill's amount delivered by `ts`: its rise so far in the contents series plus
    the draw estimated for the time elapsed; time-proportional where the series cannot say."""
    if ts <= refill.started_at:
        return 0.0
    if ts >= refill.ended_at:
        return refill.amount_kg
    share = (ts - refill.started_at) / (refill.ended_at - refill.started_at)
    kg = value_at(points, ts, max_gap)
    if kg is None:
        return refill.amount_kg * share
    # amount = rise + draw during the refill; the draw is spread evenly over its duration.
    draw = refill.amount_kg - (refill.after_kg - refill.before_kg)
    part = kg - refill.before_kg + draw * share
    return min(max(part, 0.0), refill.amount_kg)


def window_figures(
    points: Sequence[Point],
    refills: Sequence[Refill],
    start: datetime,
    end: datetime,
    cfg: AccountingConfig,
) -> WindowFigures:
    """Contents at the window's ends, refills in it and consumption = open + refilled − close."""
    gap = timedelta(hours=cfg.max_interp_gap_hours)
    inside = [p for p in points if start <= p.ts < end]
    open_kg = value_at(points, start, gap)
    t_open = start
    if open_kg is None and inside:
        open_kg, t_open = inside[0].kg, inside[0].ts
    close_kg = value_at(points, end, gap)
    t_close = end
    if close_kg is None and inside:
        close_kg, t_close = inside[-1].kg, inside[-1].ts
    if open_kg is None or close_kg is None or t_close <= t_open:
        return WindowFigures(None, None, None, None, 0.0, 0, 0.0, len(inside))
    # A refill straddling 16:00 counts in each window for the part delivered on its side, so
    # that open + refilled − close holds in both and the two parts add up to the event.
    refilled = sum(
        delivered_by(points, r, end, gap) - delivered_by(points, r, start, gap)
        for r in refills
        if r.started_at < end and r.ended_at > start
    )
    mine = [r for r in refills if start <= r.started_at < end]
    consumption = max(0.0, open_kg + refilled - close_kg)
    lows = [p.kg for p in inside] + [open_kg, close_kg]
    coverage = min(1.0, (t_close - t_open) / (end - start))
    return WindowFigures(
        open_kg, close_kg, min(lows), consumption, refilled, len(mine), coverage, len(inside)
    )
