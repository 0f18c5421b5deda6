"""Pure accounting over a tank's contents series: refills, window figures, consumption.

The series is a list of (time, kg) points at any resolution: one per reading, or the first and
last value of each hourly bucket. A refill is a sustained rise much steeper than the noise; the
draw that goes on while the tanker fills the tank is estimated from the neighbouring draw rate and
counted both as delivered and as consumed (shared ARCHITECTURE.md, "Accounting").
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import statistics
import struct
import threading
from collections import OrderedDict
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
    points: Sequence[Point],
    refill: Refill,
    ts: datetime,
    max_gap: timedelta,
    refills: Sequence[Refill] = (),
) -> float:
    """Part of a refill's amount delivered by `ts`: its rise so far in the contents series plus
    the draw estimated for the time elapsed; time-proportional where the series cannot say."""
    if ts <= refill.started_at:
        return 0.0
    if ts >= refill.ended_at:
        return refill.amount_kg
    share = (ts - refill.started_at) / (refill.ended_at - refill.started_at)
    kg = level_at(points, ts, refills or (refill,), max_gap)
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
    open_kg = level_at(points, start, refills, gap)
    t_open = start
    if open_kg is None and inside:
        open_kg, t_open = inside[0].kg, inside[0].ts
    close_kg = level_at(points, end, refills, gap)
    t_close = end
    if close_kg is None and inside:
        close_kg, t_close = inside[-1].kg, inside[-1].ts
    if open_kg is None or close_kg is None or t_close <= t_open:
        return WindowFigures(None, None, None, None, 0.0, 0, 0.0, len(inside))
    # A refill straddling 16:00 counts in each window for the part delivered on its side, so
    # that open + refilled − close holds in both and the two parts add up to the event.
    refilled = sum(
        delivered_by(points, r, end, gap, refills) - delivered_by(points, r, start, gap, refills)
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


# --------------------------------------------------------------------------------------------
# Refinement on dense data: refill edges and amounts, and the contents at a window's end, must
# not depend on where hourly buckets happen to cut the series.

Span = tuple[datetime, datetime]

# Minutes of draw either side of a refill used to fit the draw line.
REFINE_CONTEXT = timedelta(hours=2)
# Readings either side of a window end used for its robust estimate.
END_HALF_WIDTH = timedelta(minutes=30)


def merge(points: Sequence[Point], dense: Sequence[Point]) -> list[Point]:
    """One series from coarse points and dense readings (one point per timestamp)."""
    if not dense:
        return list(points)
    by_ts = {p.ts: p for p in points}
    by_ts.update((p.ts, p) for p in dense)
    return [by_ts[t] for t in sorted(by_ts)]


# Index pairs (first, last) into a series: its refill candidates (`candidates`).
Candidates = Sequence[tuple[int, int]]


def refill_regions(
    points: Sequence[Point], cfg: AccountingConfig, found: Candidates | None = None
) -> list[Span]:
    """Where the refills of a coarse series may lie, with the draw context to refine each one
    (`found`: the series' `candidates`, when already known)."""
    spans = _search_spans(points, cfg, found)
    return [(lo - REFINE_CONTEXT, hi + REFINE_CONTEXT) for lo, hi in spans]


def reaches_past(
    points: Sequence[Point],
    start: datetime,
    end: datetime,
    cfg: AccountingConfig,
    found: Candidates | None = None,
) -> tuple[bool, bool]:
    """Whether a refill candidate of a series read over [start, end) needs data before `start`
    (resp. from `end` on) to be found and measured as on a longer series: it is within two steps
    of the series' first (last) point, where its search span is cut, or its draw context reaches
    past the range, where a neighbouring refill that stops that context may lie unread."""
    early = late = False
    n = len(points)
    for first, last in candidates(points, cfg) if found is None else found:
        lo = points[max(first - 2, 0)].ts - REFINE_CONTEXT
        hi = points[min(last + 2, n - 1)].ts + REFINE_CONTEXT
        early = early or first < 2 or lo < start
        late = late or last > n - 3 or hi >= end
    return early, late


def candidates(points: Sequence[Point], cfg: AccountingConfig) -> list[tuple[int, int]]:
    """Index pairs (first, last) of sustained steep rises of at least refill_min_kg. The
    functions that need them take them computed once per series (`found`): at national scale
    their noise estimate was a third of the refill search's CPU, computed three times."""
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
    out = []
    for g in groups:
        first, last = g[0], g[-1] + 1
        if points[last].kg - points[first].kg >= cfg.refill_min_kg:
            out.append((first, last))
    return out


def _search_spans(
    points: Sequence[Point], cfg: AccountingConfig, found: Candidates | None = None
) -> list[Span]:
    """Each candidate widened by two steps either side (a whole bucket of a coarse series): a
    bucket boundary may hide the first or last minutes of pumping inside steps too flat, or too
    short to stand above the noise, to count as steep. Overlapping spans are merged."""
    spans: list[Span] = []
    for first, last in candidates(points, cfg) if found is None else found:
        lo = points[max(first - 2, 0)].ts
        hi = points[min(last + 2, len(points) - 1)].ts
        if spans and lo <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(hi, spans[-1][1]))
        else:
            spans.append((lo, hi))
    return spans


def _ramp_fit(
    pts: Sequence[Point], knot_lo: datetime, knot_hi: datetime
) -> tuple[float, float, float, int, int] | None:
    """Least-squares fit of draw line + linear ramp + the same draw line shifted by the amount.

    Model: kg = a + b·t + c·(clip(t, s, e) − s), with the knots s < e at readings in
    [knot_lo, knot_hi]; every pair is tried (prefix sums make each O(1)). Returns
    (a, b, c, i_s, i_e) of the least residual, t in minutes from pts[0].
    """
    n = len(pts)
    if n < 4:
        return None
    t0 = pts[0].ts
    ts = [_minutes(t0, p.ts) for p in pts]
    ys = [p.kg for p in pts]
    # Prefix sums of 1, t, t², y, t·y (index k: over the first k points).
    pt, ptt, py, pty = [0.0], [0.0], [0.0], [0.0]
    for t, y in zip(ts, ys, strict=True):
        pt.append(pt[-1] + t)
        ptt.append(ptt[-1] + t * t)
        py.append(py[-1] + y)
        pty.append(pty[-1] + t * y)
    st, stt, sy, sty = pt[n], ptt[n], py[n], pty[n]
    syy = sum(y * y for y in ys)
    knots = [i for i, p in enumerate(pts) if knot_lo <= p.ts <= knot_hi]
    best: tuple[float, float, float, float, int, int] | None = None
    for a_i, i in enumerate(knots):
        s = ts[i]
        for j in knots[a_i + 1 :]:
            e = ts[j]
            d = e - s
            # Ramp points: i..j inclusive; after: j+1..n-1.
            nb = j - i + 1
            tb, ttb = pt[j + 1] - pt[i], ptt[j + 1] - ptt[i]
            yb, tyb = py[j + 1] - py[i], pty[j + 1] - pty[i]
            nc = n - j - 1
            tc, yc = st - pt[j + 1], sy - py[j + 1]
            sr = tb - nb * s + nc * d
            srr = ttb - 2 * s * tb + nb * s * s + nc * d * d
            str_ = ttb - s * tb + d * tc
            syr = tyb - s * yb + d * yc
            sol = _solve3(((float(n), st, sr), (st, stt, str_), (sr, str_, srr)), (sy, sty, syr))
            if sol is None:
                continue
            a, b, c = sol
            rss = syy - (a * sy + b * sty + c * syr)
            if best is None or rss < best[0]:
                best = (rss, a, b, c, i, j)
    if best is None:
        return None
    return best[1], best[2], best[3], best[4], best[5]


def _solve3(
    m: tuple[tuple[float, float, float], ...], v: tuple[float, float, float]
) -> tuple[float, float, float] | None:
    """Cramer's rule for a 3×3 system (None when singular)."""

    def det(x: Sequence[Sequence[float]]) -> float:
        return (
            x[0][0] * (x[1][1] * x[2][2] - x[1][2] * x[2][1])
            - x[0][1] * (x[1][0] * x[2][2] - x[1][2] * x[2][0])
            + x[0][2] * (x[1][0] * x[2][1] - x[1][1] * x[2][0])
        )

    d = det(m)
    if abs(d) < 1e-9 * max(1.0, abs(m[0][0] * m[1][1] * m[2][2])):
        return None
    out = []
    for k in range(3):
        mk = [list(row) for row in m]
        for r in range(3):
            mk[r][k] = v[r]
        out.append(det(mk) / d)
    return out[0], out[1], out[2]


# Refinements already made, by their exact input: the readings of [lo, hi] and the span. The
# windows of a tank are recomputed every round while open (the alert round, the windows-ahead
# job), and a refill that ended earlier in the day is refined again on the very same readings each
# time: a fit over every pair of knots, the bulk of a round's arithmetic. The key is a 128-bit
# digest of the input (timestamps and kg exactly, as their IEEE doubles) and the value is what
# the same input gives, so a hit returns what a computation would: figures stay equal to a full
# recompute, and any change of the readings (a late one, a correction) is a new key. Bounded
# (least recently used first out): a few thousand tanks' refills.
_REFINED: OrderedDict[bytes, Refill | None] = OrderedDict()
_REFINED_MAX = 20_000
_REFINED_LOCK = threading.Lock()


def _refine_key(pts: Sequence[Point], span: Span) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    h.update(struct.pack("<2d", span[0].timestamp(), span[1].timestamp()))
    h.update(struct.pack(f"<{2 * len(pts)}d", *(v for p in pts for v in (p.ts.timestamp(), p.kg))))
    return h.digest()


def _refine(
    series: Sequence[Point],
    span: tuple[datetime, datetime],
    lo: datetime,
    hi: datetime,
) -> Refill | None:
    """The refill inside `span`, located and measured on the readings of [lo, hi) (memoized on
    exactly those readings: `_REFINED`).

    Half-open, as the minute data loaded for it (`refill_regions`, `dense_series`): a reading at
    `hi` itself came only from the coarse series, and only when the windows computed together
    reached that far, so a window's figures depended on which days were computed with it."""
    pts = [p for p in series if lo <= p.ts < hi]
    key = _refine_key(pts, span)
    with _REFINED_LOCK:  # the API's windows-ahead thread and its requests share it
        if key in _REFINED:
            _REFINED.move_to_end(key)
            return _REFINED[key]
    got = _refine_fit(pts, span)
    with _REFINED_LOCK:
        _REFINED[key] = got
        if len(_REFINED) > _REFINED_MAX:
            _REFINED.popitem(last=False)
    return got


def _refine_fit(pts: Sequence[Point], span: tuple[datetime, datetime]) -> Refill | None:
    fit = _ramp_fit(pts, span[0], span[1])
    if fit is None:
        return None
    a, b, c, i, j = fit
    t0 = pts[0].ts
    s, e = _minutes(t0, pts[i].ts), _minutes(t0, pts[j].ts)
    amount = c * (e - s)
    if amount <= 0:
        return None
    # A refill leaves the tank fuller: the readings after it must sit on the shifted draw line.
    # A gauge spike that falls back (a fault) fits no such line and is no refill.
    resid = [
        p.kg - (a + b * t + c * (min(max(t, s), e) - s)) for p in pts for t in (_minutes(t0, p.ts),)
    ]
    # Gauge noise from the reading-to-reading steps (a misfit would inflate the residuals').
    noise = noise_sigma(pts) / 1.4142
    post = [r for k, r in enumerate(resid) if k > j]
    pre = [r for k, r in enumerate(resid) if k < i]
    limit = max(4.0 * noise, 0.05 * amount)
    for side in (pre, post):
        half = len(side) // 2
        for part in (side[:half], side[half:]):
            if part and abs(statistics.median(part)) > limit:
                return None
    before = a + b * s
    after = a + b * e + amount
    return Refill(pts[i].ts, pts[j].ts, before, after, amount)


def _slope(pts: Sequence[Point]) -> tuple[float, float]:
    """Least-squares slope (kg/min) of the points and the spread of its x (Σ(t − t̄)²)."""
    xs = [_minutes(pts[0].ts, p.ts) for p in pts]
    mx = sum(xs) / len(xs)
    my = sum(p.kg for p in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 0:
        return 0.0, 0.0
    return sum((x - mx) * (p.kg - my) for x, p in zip(xs, pts, strict=True)) / sxx, sxx


def _split(series: Sequence[Point], span: Span, cfg: AccountingConfig) -> list[Span]:
    """Two tankers one after the other may fall in one coarse candidate: on dense data, the
    minutes of pumping (a local slope well above the noise) that a pause of at least
    refill_merge_minutes separates are refills of their own."""
    pts = [p for p in series if span[0] <= p.ts <= span[1]]
    if len(pts) < 12:
        return [span]
    sigma = noise_sigma(pts) / 1.4142
    half = timedelta(minutes=5)
    pumping: list[datetime] = []
    lo = 0
    hi = 0
    for p in pts:
        while pts[lo].ts < p.ts - half:
            lo += 1
        while hi < len(pts) and pts[hi].ts <= p.ts + half:
            hi += 1
        near = pts[lo:hi]
        if len(near) < 4:
            continue
        slope, sxx = _slope(near)
        if slope >= max(cfg.refill_min_rate_kg_min, 4.0 * sigma / sxx**0.5):
            pumping.append(p.ts)
    runs: list[list[datetime]] = []
    for ts in pumping:
        if runs and _minutes(runs[-1][-1], ts) <= cfg.refill_merge_minutes:
            runs[-1].append(ts)
        else:
            runs.append([ts])
    if len(runs) < 2:
        return [span]
    pad = timedelta(minutes=10)
    out: list[Span] = []
    for k, run in enumerate(runs):
        a = (
            span[0]
            if k == 0
            else max(run[0] - pad, runs[k - 1][-1] + (run[0] - runs[k - 1][-1]) / 2)
        )
        b = (
            span[1]
            if k == len(runs) - 1
            else min(run[-1] + pad, run[-1] + (runs[k + 1][0] - run[-1]) / 2)
        )
        out.append((a, b))
    return out


def detect_refills(
    points: Sequence[Point],
    cfg: AccountingConfig,
    dense: Sequence[Point] = (),
    found: Candidates | None = None,
) -> list[Refill]:
    """Refills of a contents series: candidates are sustained steep rises of the (possibly
    coarse) series (`found`, when already known); each is then located and measured on the
    dense readings around it (`dense`, else the series itself) by fitting draw line, ramp and
    shifted draw line."""
    series = merge(points, dense)
    spans = [sub for span in _search_spans(points, cfg, found) for sub in _split(series, span, cfg)]
    refills: list[Refill] = []
    for k, span in enumerate(spans):
        lo = span[0] - REFINE_CONTEXT
        hi = span[1] + REFINE_CONTEXT
        # The draw context stops at the neighbouring refills (back-to-back deliveries).
        if k > 0:
            lo = max(lo, spans[k - 1][1])
        if k + 1 < len(spans):
            hi = min(hi, spans[k + 1][0])
        r = _refine(series, span, lo, hi)
        if r is not None and r.amount_kg >= cfg.refill_min_kg:
            refills.append(r)
    return refills


def _line_at(pts: Sequence[Point], ts: datetime) -> float | None:
    """Least-squares line through the points evaluated at `ts`, after dropping outliers once."""
    if len(pts) < 3:
        return None
    for _ in range(2):
        xs = [_minutes(ts, p.ts) for p in pts]
        ys = [p.kg for p in pts]
        n = len(xs)
        mx, my = sum(xs) / n, sum(ys) / n
        sxx = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
        icpt = my - slope * mx
        resid = [y - (icpt + slope * x) for x, y in zip(xs, ys, strict=True)]
        mad = 1.4826 * statistics.median(abs(r) for r in resid)
        keep = [p for p, r in zip(pts, resid, strict=True) if mad == 0 or abs(r) <= 4.0 * mad]
        if len(keep) == len(pts) or len(keep) < 3:
            return icpt
        pts = keep
    return icpt


def level_at(
    points: Sequence[Point],
    ts: datetime,
    refills: Sequence[Refill],
    max_gap: timedelta,
    half_width: timedelta = END_HALF_WIDTH,
) -> float | None:
    """Contents at `ts` estimated from the readings around it: a line fitted to those within
    `half_width` on the same side of every refill edge; interpolation across a gap otherwise."""
    lo, hi = ts - half_width, ts + half_width
    for r in refills:
        if r.started_at <= ts <= r.ended_at:
            lo, hi = max(lo, r.started_at), min(hi, r.ended_at)
        elif r.ended_at < ts:
            lo = max(lo, r.ended_at)
        elif r.started_at > ts:
            hi = min(hi, r.started_at)
    near = [p for p in points if lo <= p.ts <= hi]
    has_before = any(p.ts <= ts for p in near)
    has_after = any(p.ts >= ts for p in near)
    if has_before and has_after:
        kg = _line_at(near, ts)
        if kg is not None:
            return kg
    for r in refills:
        if r.started_at < ts < r.ended_at:
            share = (ts - r.started_at) / (r.ended_at - r.started_at)
            return r.before_kg + (r.after_kg - r.before_kg) * share
    return value_at(points, ts, max_gap)
