"""Accounting data layer: contents series from readings (with corrections), per-window figures.

Per tank and report window the figures are kept in `tank_windows` so that SYT and BYT views
read a few rows per facility. A settled window (closed plus a grace period for late readings, and
the last UTC day of its data over) is recomputed when it was computed before it settled or its
readings changed since; an open one is reused while younger than `open_window_fresh_seconds`, a
closed one not settled yet while no late reading changed its hours; corrections delete the
windows they touch. The API's periodic job (api.accounting.ahead) keeps every monitored tank's
windows of D−12..D stored; a range nobody computed yet is computed on first read, so totals stay
live.

Windows to (re)compute are computed set-based, `BATCH_TANKS` tanks at a time (`tanks_figures`):
one query for the corrections touching their ranges, one for their hourly rollups, one for the
raw readings of those a correction touches or without rollups, one for the minute data around
their refill candidates and window ends, then one transaction storing them (`_store`: the tanks'
cache locks, the upserts pipelined, their refills replaced). That is a handful of round trips per
500 tanks where there were six per tank; JIT is off for them (`without_jit`). Per tank the rows,
and so the points and the figures, are the ones the single-tank functions got, which now call the
set-based ones with one tank. The arithmetic's costliest part, the refill fit, is memoized on its
exact readings (api.accounting.series `_REFINED`), so an open window recomputed every round
refits only a refill whose readings changed (one still in progress, a late reading, a
correction). Measured on the national country (bench/alert_round.py, 3,000 tanks, every open
window stale): the supply rule of the alert round 7.8–14.4 s before, 2.1–3.8 s after on the
shared 2-core machine (docs/scaling.md).
"""

from __future__ import annotations

import bisect
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus

from oxy.calibration import CalibrationTable

from . import queries as q
from .config import AccountingConfig
from .series import (
    END_HALF_WIDTH,
    Candidates,
    Point,
    Refill,
    WindowFigures,
    candidates,
    detect_refills,
    merge,
    reaches_past,
    refill_regions,
    window_figures,
)
from .stock import DayUse, average_daily, usable_kg
from .windows import Window, days, report_day_of, window

logger = logging.getLogger(__name__)

# Context around a range so that a refill at its edge sees the neighbouring draw rate.
CONTEXT = timedelta(hours=3)
# How much further a side of the series is read when a refill at its edge needs it (a long
# delivery across 16:00): past any tanker's pumping and the draw context either side of it.
REACH = timedelta(hours=24)

# Version of the window arithmetic, kept above the reading count in a stored window's fingerprint
# so that rows computed under an older rule are redone on read. 2: a refill straddling the cutoff
# is split between the two windows. 3: refills and window ends refined on minute data. 4: a
# refill is measured on the half-open range of minute data loaded for it (series._refine) and
# the series is read past a refill at its edge (`REACH`): a window is the same whichever windows
# are computed with it.
RULES = 4
_RULES_SHIFT = 40  # far above any count of readings over a window's UTC days

# Tanks computed (and stored) together: a few queries per batch instead of several per tank.
# Each batch commits on its own in autocommit (the windows-ahead job), so pages see a long first
# round's windows as they come; 500 tanks hold a few MB of points.
BATCH_TANKS = 500
_ZERO = timedelta(0)


def _stamp(readings: int) -> int:
    """The fingerprint stored with (and expected of) a window: rule version and reading count."""
    return (RULES << _RULES_SHIFT) | readings


class Source(StrEnum):
    """Where window figures come from: stored windows (rollups) or raw readings every time."""

    STORED = "stored"
    RAW = "raw"


@dataclass(frozen=True, slots=True)
class LevelSensor:
    """The sensor that gives a tank's contents, and the tank's limits."""

    tank_id: int
    sensor_id: int
    quantity: str
    capacity_kg: float
    min_usable_kg: float
    facility_id: int


@dataclass(frozen=True, slots=True)
class TankWindow:
    """Stored figures of one tank over one report window."""

    tank_id: int
    day: date
    figures: WindowFigures
    computed_at: datetime


@dataclass(frozen=True, slots=True)
class Calibrations:
    """A tank's calibration versions, each valid from its time until the next one."""

    valid_from: tuple[datetime, ...]
    tables: tuple[CalibrationTable, ...]

    def at(self, ts: datetime) -> CalibrationTable | None:
        """The version valid at `ts` (None before the first one)."""
        i = bisect.bisect_right(self.valid_from, ts) - 1
        return self.tables[i] if i >= 0 else None


@contextlib.asynccontextmanager
async def without_jit(conn: AsyncConnection[Any]) -> AsyncIterator[None]:
    """PostgreSQL's JIT off for the block (the session's setting back after it).

    The set-based queries over thousands of tanks are estimated far above `jit_above_cost` (the
    planner cannot know that each range holds a few readings), and compiling them took 0.6 s of a
    0.7 s query on the national bench (bench/alert_round.py); they run in tens of ms without."""
    cur = await conn.execute("SELECT current_setting('jit'), set_config('jit', 'off', false)")
    row = await cur.fetchone()
    try:
        yield
    finally:
        if row and row[0] != "off" and conn.info.transaction_status != TransactionStatus.INERROR:
            with contextlib.suppress(psycopg.Error):
                await conn.execute("SELECT set_config('jit', %s, false)", (row[0],))


async def level_sensors(
    conn: AsyncConnection[Any], tank_ids: Sequence[int]
) -> dict[int, LevelSensor]:
    """The level sensor of each monitored tank among `tank_ids`."""
    cur = await conn.execute(q.LEVEL_SENSORS, {"tanks": list(tank_ids)})
    return {
        int(r[0]): LevelSensor(int(r[0]), int(r[1]), str(r[2]), float(r[3]), float(r[4]), int(r[5]))
        for r in await cur.fetchall()
    }


async def calibrations(
    conn: AsyncConnection[Any], tank_ids: Sequence[int]
) -> dict[int, Calibrations]:
    """Every calibration version of the tanks, in validity order."""
    cur = await conn.execute(q.CALIBRATIONS, {"tanks": list(tank_ids)})
    acc: dict[int, tuple[list[datetime], list[CalibrationTable]]] = defaultdict(lambda: ([], []))
    for tank_id, _cid, version, valid_from, dp, kg in await cur.fetchall():
        froms, tables = acc[int(tank_id)]
        froms.append(valid_from)
        tables.append(CalibrationTable(tuple(dp), tuple(kg), int(version)))
    return {t: Calibrations(tuple(f), tuple(tb)) for t, (f, tb) in acc.items()}


def _to_kg(
    sensor: LevelSensor, cal: Calibrations | None, ts: datetime, value: float
) -> float | None:
    if sensor.quantity == "contents":
        return value
    if sensor.quantity == "level_pct":
        return sensor.capacity_kg * value / 100.0
    table = cal.at(ts) if cal else None
    return table.contents_kg(value) if table else None


async def contents_series(
    conn: AsyncConnection[Any],
    sensor: LevelSensor,
    cal: Calibrations | None,
    start: datetime,
    end: datetime,
    *,
    width: timedelta = timedelta(hours=1),
    source: Source = Source.STORED,
) -> list[Point]:
    """Contents (kg) of a tank over [start, end): the first and last reading of each bucket.

    The hourly rollups are used when `source` allows it, the width is an hour and no active
    correction touches the range; otherwise raw readings with the corrections overlay.
    """
    got = await contents_series_many(
        conn,
        {sensor.tank_id: sensor},
        {sensor.tank_id: cal} if cal else {},
        {sensor.tank_id: (start, end)},
        width=width,
        source=source,
    )
    return got[sensor.tank_id]


def _bucket_points(
    rows: Iterable[Sequence[Any]],
    sensor: LevelSensor,
    cal: Calibrations | None,
    span: tuple[datetime, datetime] | None,
) -> list[Point]:
    """Points from bucket rows (bucket, first ts, first value, last ts, last value, …): each
    bucket's first and last reading in time order, inside `span` when one is given."""
    points: list[Point] = []
    for _bucket, first_ts, first_value, last_ts, last_value, *_rest in rows:
        for ts, value in ((first_ts, first_value), (last_ts, last_value)):
            if points and ts <= points[-1].ts:
                continue
            if span is not None and not (span[0] <= ts < span[1]):
                continue
            kg = _to_kg(sensor, cal, ts, float(value))
            if kg is not None:
                points.append(Point(ts, kg))
    return points


def _by_sensor(rows: Iterable[Sequence[Any]]) -> dict[int, list[Sequence[Any]]]:
    """Rows whose first column is a sensor id, grouped by it (order kept), without that column."""
    out: dict[int, list[Sequence[Any]]] = defaultdict(list)
    for r in rows:
        out[int(r[0])].append(r[1:])
    return out


async def contents_series_many(
    conn: AsyncConnection[Any],
    sensors: dict[int, LevelSensor],
    cals: dict[int, Calibrations],
    spans: dict[int, tuple[datetime, datetime]],
    *,
    width: timedelta = timedelta(hours=1),
    source: Source = Source.STORED,
) -> dict[int, list[Point]]:
    """`contents_series` of many tanks (keys of `spans`), each over its own range, in at most
    three queries whatever their number: the corrections that touch the ranges, the hourly
    rollups of the tanks without one, the raw readings (with the overlay) of the others and of
    those without rollup rows. Per tank the same rows, so the same points, as one at a time."""
    tanks = list(spans)
    out: dict[int, list[Point]] = {}
    raw = set(tanks)
    if source is Source.STORED and width == timedelta(hours=1) and tanks:
        cur = await conn.execute(
            q.ACTIVE_CORRECTIONS_OVERLAP_EACH,
            {
                "sensors": [sensors[t].sensor_id for t in tanks],
                "start": [spans[t][0] for t in tanks],
                "end": [spans[t][1] for t in tanks],
            },
        )
        corrected = {int(r[0]) for r in await cur.fetchall()}
        rolled = [t for t in tanks if sensors[t].sensor_id not in corrected]
        if rolled:
            # Rollup buckets are whole hours: widen to the hours that cover each range.
            cur = await conn.execute(
                q.ROLLUP_1H_BUCKETS_EACH,
                {
                    "sensors": [sensors[t].sensor_id for t in rolled],
                    "start": [_hour(spans[t][0]) for t in rolled],
                    "end": [spans[t][1] for t in rolled],
                },
                binary=True,  # rows in binary: timestamps parsed in C
            )
            rows = _by_sensor(await cur.fetchall())
            for t in rolled:
                got = rows.get(sensors[t].sensor_id)
                if got:
                    # No rollup rows (ingest not maintaining it here): raw, below.
                    out[t] = _bucket_points(got, sensors[t], cals.get(t), spans[t])
                    raw.discard(t)
    if raw:
        order = [t for t in tanks if t in raw]
        cur = await conn.execute(
            q.RAW_BUCKETS_EACH,
            {
                "sensors": [sensors[t].sensor_id for t in order],
                "start": [spans[t][0] for t in order],
                "end": [spans[t][1] for t in order],
                "width": width,
            },
            binary=True,  # rows in binary: timestamps parsed in C
        )
        rows = _by_sensor(await cur.fetchall())
        for t in order:
            out[t] = _bucket_points(
                rows.get(sensors[t].sensor_id, []), sensors[t], cals.get(t), spans[t]
            )
    return out


def figures_for_days(
    points: Sequence[Point],
    windows: Sequence[Window],
    cfg: AccountingConfig,
    dense: Sequence[Point] = (),
    found: Candidates | None = None,
) -> tuple[list[WindowFigures], list[tuple[date, Refill]]]:
    """Window figures and the refills (with their report day) from one contents series; `dense`
    (minute data around the refill candidates and window ends) refines both (`found`: the
    series' refill candidates, when already known)."""
    refills = detect_refills(points, cfg, dense, found)
    series = merge(points, dense)
    figs = [window_figures(series, refills, w.start, w.end, cfg) for w in windows]
    dated = []
    for r in refills:
        for w in windows:
            if w.start <= r.started_at < w.end:
                dated.append((w.day, r))
    return figs, dated


def dense_intervals(
    points: Sequence[Point],
    windows: Sequence[Window],
    cfg: AccountingConfig,
    found: Candidates | None = None,
) -> list[tuple[datetime, datetime]]:
    """Disjoint intervals whose minute data the figures need: around every refill candidate of
    the coarse series (`found`, when already known) and around every window end."""
    ivs = refill_regions(points, cfg, found)
    for w in windows:
        for ts in (w.start, w.end):
            ivs.append((ts - END_HALF_WIDTH, ts + END_HALF_WIDTH + timedelta(minutes=1)))
    ivs.sort()
    out: list[tuple[datetime, datetime]] = []
    for lo, hi in ivs:
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


async def dense_series(
    conn: AsyncConnection[Any],
    sensor: LevelSensor,
    cal: Calibrations | None,
    intervals: Sequence[tuple[datetime, datetime]],
) -> list[Point]:
    """Contents from the raw readings (corrections applied) over the intervals, per minute."""
    got = await dense_series_many(
        conn,
        {sensor.tank_id: sensor},
        {sensor.tank_id: cal} if cal else {},
        {sensor.tank_id: intervals},
    )
    return got[sensor.tank_id]


def _minutes_around(ivs: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """The intervals widened to whole minutes (the minute rollups' buckets), merged where they
    meet: a raw bucket and a rollup row then hold the same readings."""
    out: list[tuple[datetime, datetime]] = []
    for start, end in sorted(ivs):
        lo = start.replace(second=0, microsecond=0)
        top = end.replace(second=0, microsecond=0)
        hi = top if top == end else top + timedelta(minutes=1)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


async def dense_series_many(
    conn: AsyncConnection[Any],
    sensors: dict[int, LevelSensor],
    cals: dict[int, Calibrations],
    intervals: Mapping[int, Sequence[tuple[datetime, datetime]]],
    *,
    source: Source = Source.STORED,
) -> dict[int, list[Point]]:
    """`dense_series` of many tanks (keys of `intervals`, each with its disjoint intervals, read
    as whole minutes): from the minute rollups where `source` allows it and no correction
    touches a tank's intervals, else from the raw readings with the overlay; at most three
    queries whatever their number. Per tank the same points either way once the rollups hold
    the minutes (on PostgreSQL the ingest flushes a minute after it has closed, `rollup_1h` in
    the same transaction): a window computed before that is redone, an open one when it is no
    longer fresh, a closed one when its hours' count (`live_fingerprints`) changes."""
    spans = {t: _minutes_around(ivs) for t, ivs in intervals.items()}
    flat = [(sensors[t].sensor_id, lo, hi) for t, ivs in spans.items() for lo, hi in ivs]

    def each(part: list[tuple[int, datetime, datetime]]) -> dict[str, Any]:
        return {"sensors": [s for s, _, _ in part], "start": [lo for _, lo, _ in part],
                "end": [hi for _, _, hi in part]}  # fmt: skip

    rows: dict[int, list[Sequence[Any]]] = {}
    raw = flat
    if flat and source is Source.STORED:
        cur = await conn.execute(q.ACTIVE_CORRECTIONS_OVERLAP_EACH, each(flat))
        corrected = {int(r[0]) for r in await cur.fetchall()}
        rolled = [f for f in flat if f[0] not in corrected]
        if rolled:
            # rows in binary: timestamps parsed in C
            cur = await conn.execute(q.ROLLUP_1M_BUCKETS_EACH, each(rolled), binary=True)
            rows = _by_sensor(await cur.fetchall())
            # A tank without a rollup row in any of its intervals (ingest not maintaining them
            # here, or no data there): raw, below.
            raw = [f for f in flat if f[0] not in rows]
    if raw:
        cur = await conn.execute(
            q.RAW_BUCKETS_EACH, each(raw) | {"width": timedelta(minutes=1)}, binary=True
        )
        rows |= _by_sensor(await cur.fetchall())
    return {
        t: _bucket_points(rows.get(sensors[t].sensor_id, []), sensors[t], cals.get(t), None)
        for t in intervals
    }


async def tanks_figures(
    conn: AsyncConnection[Any],
    sensors: dict[int, LevelSensor],
    cals: dict[int, Calibrations],
    spans: Mapping[int, Sequence[Window]],
    cfg: AccountingConfig,
    *,
    source: Source = Source.STORED,
) -> dict[int, tuple[list[WindowFigures], list[tuple[date, Refill]]]]:
    """Window figures and refills of many tanks (keys of `spans`, each with its consecutive
    windows): the coarse series finds the candidates, minute data around them and around the
    window ends measures them. One tank or 500, a handful of queries (`contents_series_many`,
    `dense_series_many`), and per tank the same rows and the same arithmetic."""
    ranges = {t: (w[0].start - CONTEXT, w[-1].end + CONTEXT) for t, w in spans.items()}
    points = await contents_series_many(conn, sensors, cals, ranges, source=source)
    # A refill at an edge of the series is found and measured on data past it, as when the
    # windows beyond were computed in the same span: a window's figures must not depend on
    # which days are computed with it (the BYT chart reads 7 days at once, a day's view one).
    # Each series' refill candidates are found once, for the three steps that need them.
    found = {t: candidates(p, cfg) for t, p in points.items()}
    wider: dict[int, tuple[datetime, datetime]] = {}
    for t, (start, end) in ranges.items():
        early, late = reaches_past(points[t], start, end, cfg, found[t])
        if early or late:
            wider[t] = (start - (REACH if early else _ZERO), end + (REACH if late else _ZERO))
    if wider:
        longer = await contents_series_many(conn, sensors, cals, wider, source=source)
        points |= longer
        found |= {t: candidates(p, cfg) for t, p in longer.items()}
    dense = await dense_series_many(
        conn,
        sensors,
        cals,
        {t: dense_intervals(points[t], w, cfg, found[t]) for t, w in spans.items()},
        source=source,
    )
    return {t: figures_for_days(points[t], w, cfg, dense[t], found[t]) for t, w in spans.items()}


async def tank_refills(
    conn: AsyncConnection[Any],
    sensor: LevelSensor,
    cal: Calibrations | None,
    span: tuple[datetime, datetime],
    cfg: AccountingConfig,
    *,
    source: Source = Source.STORED,
) -> tuple[list[Point], list[Refill]]:
    """The contents series of [start, end) and its refills, refined on minute data."""
    points = await contents_series(conn, sensor, cal, span[0], span[1], source=source)
    dense = await dense_series(conn, sensor, cal, refill_regions(points, cfg))
    return points, detect_refills(points, cfg, dense)


async def compute_windows(
    conn: AsyncConnection[Any],
    tank_ids: Sequence[int],
    first: date,
    last: date,
    cfg: AccountingConfig,
    *,
    source: Source,
) -> tuple[dict[tuple[int, date], WindowFigures], dict[int, list[tuple[date, Refill]]]]:
    """Compute (not store) the window figures of the tanks for report days first..last."""
    sensors = await level_sensors(conn, tank_ids)
    cals = await calibrations(conn, list(sensors))
    wins = [window(d, cfg) for d in days(first, last)]
    out: dict[tuple[int, date], WindowFigures] = {}
    refills: dict[int, list[tuple[date, Refill]]] = {}
    tanks = list(sensors)
    for i in range(0, len(tanks), BATCH_TANKS):
        async with without_jit(conn):
            got = await tanks_figures(
                conn,
                sensors,
                cals,
                dict.fromkeys(tanks[i : i + BATCH_TANKS], wins),
                cfg,
                source=source,
            )
        for tank_id, (figs, found) in got.items():
            for w, f in zip(wins, figs, strict=True):
                out[(tank_id, w.day)] = f
            refills[tank_id] = found
    return out, refills


async def fingerprints(
    conn: AsyncConnection[Any],
    sensors: dict[int, LevelSensor],
    first: date,
    last: date,
    cfg: AccountingConfig,
) -> dict[tuple[int, date], int]:
    """Per tank and report day: good readings the daily rollup counts over the UTC days the
    window (with its context) overlaps. A late reading changes it, so the window is redone."""
    if not sensors:
        return {}
    ds = days(first, last)
    lo, hi = [], []
    for d in ds:
        w = window(d, cfg)
        lo.append(datetime.combine((w.start - CONTEXT).astimezone(UTC).date(), time(), UTC))
        last_day = (w.end + CONTEXT - timedelta(microseconds=1)).astimezone(UTC).date()
        hi.append(datetime.combine(last_day + timedelta(days=1), time(), UTC))
    cur = await conn.execute(
        q.WINDOW_COUNTS,
        {"days": ds, "lo": lo, "hi": hi, "sensors": [s.sensor_id for s in sensors.values()]},
    )
    tank_of = {s.sensor_id: t for t, s in sensors.items()}
    return {(tank_of[int(r[0])], r[1]): int(r[2]) for r in await cur.fetchall()}


def settles(w: Window, cfg: AccountingConfig) -> datetime:
    """When a closed window is checked against the daily rollup (`fingerprints`): after the late
    grace, and once the last UTC day its data reaches has ended. Before that, that day's count
    grows with the readings of its hours past the window, so every check would find the window
    stale (a national soak's alert round recomputed up to all 3,000 windows of the last closed
    day for it); the window is checked by the hours of its data instead (`live_fingerprints`)."""
    last_day = (w.end + CONTEXT - timedelta(microseconds=1)).astimezone(UTC).date()
    day_ended = datetime.combine(last_day + timedelta(days=1), time(), UTC)
    return max(w.end + timedelta(minutes=cfg.late_grace_minutes), day_ended)


def _hour(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def _live_span(w: Window, computed_at: datetime) -> tuple[datetime, datetime]:
    """The whole hours of an unsettled window's data (with its context) that had passed at
    `computed_at`: what its fingerprint counts."""
    return _hour(w.start - CONTEXT), min(_hour(computed_at), w.end + CONTEXT)


async def live_fingerprints(
    conn: AsyncConnection[Any],
    sensors: dict[int, LevelSensor],
    wanted: Sequence[tuple[int, date, datetime]],
    cfg: AccountingConfig,
) -> dict[tuple[int, date], int]:
    """Per (tank, day, computed at): good readings the hourly rollup counts over the hours of
    the window that had passed when it was computed. A window still open gets new readings all
    the time, which its freshness covers; a reading arriving for an hour already past (a replayed
    outbox, a rollup catching up) changes this count, so the stored window is redone."""
    if not wanted:
        return {}
    spans = [(t, d, *_live_span(window(d, cfg), at)) for t, d, at in wanted]
    cur = await conn.execute(
        q.HOUR_COUNTS,
        {
            "sensors": [sensors[t].sensor_id for t, *_ in spans],
            "days": [d for _, d, _, _ in spans],
            "lo": [lo for *_, lo, _ in spans],
            "hi": [hi for *_, hi in spans],
        },
    )
    tank_of = {s.sensor_id: t for t, s in sensors.items()}
    return {(tank_of[int(r[0])], r[1]): int(r[2]) for r in await cur.fetchall()}


async def ensure_windows(
    conn: AsyncConnection[Any],
    tank_ids: Sequence[int],
    first: date,
    last: date,
    cfg: AccountingConfig,
    *,
    now: datetime | None = None,
    fresh: timedelta | None = None,
    closing_grace: timedelta = timedelta(0),
) -> dict[tuple[int, date], WindowFigures]:
    """Stored window figures for the tanks and days, recomputing the missing and stale ones.

    A settled window (closed more than the late grace ago and the last UTC day of its data
    over: `settles`) is stale when it was computed before it settled or its readings changed
    since (late readings: `fingerprints`); corrections and calibration changes delete the rows
    they touch. A window still open, or closed but not settled, is read from its row while that
    row is younger than `fresh` (default: the setting `open_window_fresh_seconds`; the periodic
    job passes its interval) or was computed once all hours of its data had passed, was computed
    after the window closed if it has closed, and no reading arrived since for an hour already
    past (`live_fingerprints`); otherwise it is recomputed, so a page shows figures at most that
    old.

    `closing_grace` (the alert round's: the windows-ahead job recomputes within its interval
    what a cut-off or midnight changed) keeps reading, for that long after a window closed or
    settled, the row computed before: one computed less than `fresh` before (just closed, the
    same age an open window may have), or once all its hours had passed (just settled: its
    hours' fingerprint still decides). Otherwise the first round after 16:00 computed the
    6,000 windows of the day just closed and the new one itself (5.0-5.5 s), the first after
    00:00 UTC the 3,000 of the day settling (4.3 s): docs/scaling.md."""
    if not tank_ids:
        return {}
    async with without_jit(conn):
        return await _ensure_windows(
            conn, tank_ids, first, last, cfg, now=now, fresh=fresh, closing_grace=closing_grace
        )


async def _ensure_windows(
    conn: AsyncConnection[Any],
    tank_ids: Sequence[int],
    first: date,
    last: date,
    cfg: AccountingConfig,
    *,
    now: datetime | None = None,
    fresh: timedelta | None = None,
    closing_grace: timedelta = timedelta(0),
) -> dict[tuple[int, date], WindowFigures]:
    now = now or datetime.now(UTC)
    fresh = timedelta(seconds=cfg.open_window_fresh_seconds) if fresh is None else fresh
    sensors = await level_sensors(conn, list(tank_ids))
    all_days = days(first, last)
    wins = {d: window(d, cfg) for d in all_days}
    settle = {d: settles(w, cfg) for d, w in wins.items()}
    settled = [d for d in all_days if settle[d] <= now]
    prints = await fingerprints(conn, sensors, min(settled), max(settled), cfg) if settled else {}
    cur = await conn.execute(
        q.STORED_WINDOWS, {"tanks": list(sensors), "first": first, "last": last}
    )
    have: dict[tuple[int, date], WindowFigures] = {}
    live: dict[tuple[int, date], tuple[WindowFigures, datetime, int]] = {}
    for r in await cur.fetchall():
        key, day, at = (int(r[0]), r[1]), r[1], r[10]
        row = WindowFigures(r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9])
        end, complete = wins[day].end, _hour(at) >= wins[day].end + CONTEXT
        if settle[day] <= now:
            if at >= settle[day] and (r[11] or 0) == _stamp(prints.get(key, 0)):
                have[key] = row
            elif at < settle[day] and complete and now - settle[day] < closing_grace:
                live[key] = (row, at, r[11] or 0)  # just settled: still its hours' fingerprint
        elif (
            timedelta(0) <= now - at
            and (now < end or at >= end or now - end < closing_grace)
            # Fresh enough, or computed once every hour of its data had passed: then its hourly
            # fingerprint covers all of them and only a late reading can change it.
            and (now - at < fresh or complete)
        ):
            live[key] = (row, at, r[11] or 0)
    if live:
        counts = await live_fingerprints(
            conn, sensors, [(t, d, at) for (t, d), (_f, at, _p) in live.items()], cfg
        )
        for key, (row, _at, stored) in live.items():
            if stored == _stamp(counts.get(key, 0)):
                have[key] = row
    wanted = [d for d in all_days if wins[d].start <= now]
    todo: dict[int, list[date]] = defaultdict(list)
    for t in sensors:
        for d in wanted:
            if (t, d) not in have:
                todo[t].append(d)
    if not todo:
        return have
    # The fingerprints of the unsettled windows about to be computed, counted before they are
    # (a reading landing in between makes the stored count too low: redone, never missed).
    unsettled = [
        (t, d, now) for t, ds in todo.items() for d in days(min(ds), max(ds)) if settle[d] > now
    ]
    prints |= await live_fingerprints(conn, sensors, unsettled, cfg)
    cals = await calibrations(conn, list(todo))
    pending = list(todo.items())
    for i in range(0, len(pending), BATCH_TANKS):
        spans = {
            t: [wins[d] for d in days(min(ds), max(ds))] for t, ds in pending[i : i + BATCH_TANKS]
        }
        got = await tanks_figures(conn, sensors, cals, spans, cfg)
        await _store(conn, spans, got, now=now, prints=prints)
        for tank_id, (figs, _found) in got.items():
            for w, f in zip(spans[tank_id], figs, strict=True):
                have[(tank_id, w.day)] = f
    return have


async def monitored_tanks(conn: AsyncConnection[Any]) -> list[int]:
    """Every tank with a level sensor (the periodic job computes their windows ahead)."""
    cur = await conn.execute(q.MONITORED_TANKS)
    return [int(r[0]) for r in await cur.fetchall()]


async def _store(
    conn: AsyncConnection[Any],
    spans: Mapping[int, Sequence[Window]],
    got: dict[int, tuple[list[WindowFigures], list[tuple[date, Refill]]]],
    *,
    now: datetime,
    prints: dict[tuple[int, date], int],
) -> None:
    """Store the tanks' computed windows (and replace their refills over the same days) in one
    transaction, a few statements whatever the number of tanks."""
    async with conn.transaction(), conn.cursor() as cur:
        # Stored windows are a cache: a transaction that cannot have a tank's cache at once (an
        # alert round or another page holding it uncommitted) leaves storing that tank to the
        # holder rather than wait on its rows. Waiting deadlocked: the alert round stores day
        # D+1's windows and then D's in one transaction, while a BYT page stores D−12..D.
        await cur.execute(q.TRY_TANK_CACHE_LOCKS, {"tanks": list(spans)})
        locked = {int(r[0]) for r in await cur.fetchall()}
        mine = [t for t in spans if t in locked]
        if not mine:
            return
        await cur.executemany(
            q.UPSERT_WINDOW,
            [
                {
                    "tank": tank_id,
                    "day": w.day,
                    "open": f.open_kg,
                    "close": f.close_kg,
                    "min": f.min_kg,
                    "consumption": f.consumption_kg,
                    "refilled": f.refilled_kg,
                    "refills": f.refills,
                    "coverage": f.coverage,
                    "readings": f.readings,
                    "computed_at": now,
                    "fingerprint": _stamp(prints.get((tank_id, w.day), 0)),
                }
                for tank_id in mine
                for w, f in zip(spans[tank_id], got[tank_id][0], strict=True)
            ],
        )
        await cur.execute(
            q.DELETE_REFILLS_EACH,
            {
                "tanks": mine,
                "first": [spans[t][0].day for t in mine],
                "last": [spans[t][-1].day for t in mine],
            },
        )
        rows = [
            {
                "tank": tank_id,
                "started_at": r.started_at,
                "ended_at": r.ended_at,
                "day": d,
                "before": r.before_kg,
                "after": r.after_kg,
                "amount": r.amount_kg,
            }
            for tank_id in mine
            for d, r in got[tank_id][1]
        ]
        if rows:
            await cur.executemany(q.INSERT_REFILL, rows)


@dataclass(frozen=True, slots=True)
class FacilityTelemetry:
    """Telemetry figures of one facility for report day D (kg of LOX unless named otherwise)."""

    facility_id: int
    monitored_tanks: int
    stock_kg: float | None  # contents at 16:00 D, monitored tanks with data (None: none)
    usable_kg: float | None  # above each tank's minimum usable level
    refilled_kg: float | None  # delivered in the window of D (a refill across 16:00 is split)
    refills: int
    consumption_kg: float | None  # in the window of D, refills excluded
    avg_daily_kg: float | None  # last 7 complete windows, adjusted for days without data
    capacity_kg: float  # all tanks, monitored or not
    cylinder_capacity_nm3: float
    coverage: float  # observed fraction of the window of D (mean over monitored tanks)
    history_kg: tuple[float, ...] = ()  # fully observed daily consumption of D−6..D−1
    # Why the figures of D are unknown (None when known): Unknown.NO_TELEMETRY when no monitored
    # tank has a reading in the window, Unknown.CALIBRATION_MISSING when they have readings but
    # no calibration valid then to turn DP into contents.
    unknown: str | None = None
    observed_tanks: int = 0  # monitored tanks with data in the window of D (the sums' scope)


class Unknown(StrEnum):
    """Why a figure is unknown (null in JSON, "—" with this reason on the pages)."""

    NO_TELEMETRY = "no_telemetry"
    CALIBRATION_MISSING = "calibration_missing"
    NOT_REPORTED = "not_reported"


# (facility, tank, capacity kg, minimum usable kg, monitored)
_Tank = tuple[int, int, float, float, bool]


async def _tanks(
    conn: AsyncConnection[Any], facility_ids: Sequence[int]
) -> tuple[list[_Tank], dict[int, float]]:
    """The facilities' tanks and their cylinder banks' capacity (Nm3)."""
    cur = await conn.execute(q.FACILITY_TANKS, {"facilities": list(facility_ids)})
    tanks = [
        (int(r[0]), int(r[1]), float(r[2]), float(r[3]), bool(r[4])) for r in await cur.fetchall()
    ]
    cur = await conn.execute(q.FACILITY_CYLINDERS, {"facilities": list(facility_ids)})
    return tanks, {int(r[0]): float(r[1]) for r in await cur.fetchall()}


async def facility_telemetry(
    conn: AsyncConnection[Any],
    facility_ids: Sequence[int],
    day: date,
    cfg: AccountingConfig,
    *,
    source: Source = Source.STORED,
    now: datetime | None = None,
) -> dict[int, FacilityTelemetry]:
    """Per-facility telemetry figures for report day D from its tanks' windows D−6..D."""
    tanks, cylinders = await _tanks(conn, facility_ids)
    monitored = [t[1] for t in tanks if t[4]]
    first = day - timedelta(days=6)
    if source is Source.RAW:
        figs, _ = await compute_windows(conn, monitored, first, day, cfg, source=Source.RAW)
    else:
        figs = await ensure_windows(conn, monitored, first, day, cfg, now=now)
    blind = await _uncalibrated(conn, monitored, window(day, cfg))
    return _assemble(
        facility_ids, tanks=tanks, cylinders=cylinders, figs=figs, day=day, blind=blind
    )


async def facility_telemetry_days(
    conn: AsyncConnection[Any],
    facility_ids: Sequence[int],
    report_days: Sequence[date],
    cfg: AccountingConfig,
    *,
    now: datetime | None = None,
    fresh: timedelta | None = None,
    closing_grace: timedelta = timedelta(0),
) -> dict[date, dict[int, FacilityTelemetry]]:
    """`facility_telemetry` for several report days at once (stored windows): the tanks, their
    windows over the whole span and the uncalibrated tanks are each read once, then every day
    is assembled from them. A window is the same whichever day asks for it. `fresh`,
    `closing_grace`: as in `ensure_windows`."""
    if not report_days:
        return {}
    tanks, cylinders = await _tanks(conn, facility_ids)
    monitored = [t[1] for t in tanks if t[4]]
    first, last = min(report_days) - timedelta(days=6), max(report_days)
    figs = await ensure_windows(
        conn, monitored, first, last, cfg, now=now, fresh=fresh, closing_grace=closing_grace
    )
    blind = await _uncalibrated_days(conn, monitored, report_days, cfg)
    return {
        d: _assemble(
            facility_ids,
            tanks=tanks,
            cylinders=cylinders,
            figs=figs,
            day=d,
            blind=blind.get(d, set()),
        )
        for d in report_days
    }


def _assemble(
    facility_ids: Sequence[int],
    *,
    tanks: Sequence[_Tank],
    cylinders: dict[int, float],
    figs: dict[tuple[int, date], WindowFigures],
    day: date,
    blind: set[int],
) -> dict[int, FacilityTelemetry]:
    """Per-facility figures of report day D from the tanks' windows D−6..D (pure)."""
    by_fac: dict[int, list[tuple[int, float, float, bool]]] = defaultdict(list)
    for fac, tank, cap, min_usable, mon in tanks:
        by_fac[fac].append((tank, cap, min_usable, mon))
    out: dict[int, FacilityTelemetry] = {}
    week = days(day - timedelta(days=6), day)
    for fac in facility_ids:
        if fac not in by_fac:
            # No tank at all (most facilities of a country): nothing measured, nothing to sum —
            # what the loop below gives for an empty tank list, without its work.
            out[fac] = FacilityTelemetry(
                fac, 0, None, None, None, 0, None, None, 0.0, cylinders.get(fac, 0.0), 0.0
            )
            continue
        stock_parts: list[float] = []
        usable_parts: list[float] = []
        cons_parts: list[float] = []
        refilled_parts: list[float] = []
        reasons: list[str] = []
        avg = None
        refills = 0
        coverages = []
        n_mon = observed = 0
        capacity = 0.0
        for tank, cap, min_usable, mon in by_fac.get(fac, []):
            capacity += cap
            if not mon:
                continue
            n_mon += 1
            f = figs.get((tank, day))
            # Tanks without data in the window are left out of the sums and counted (`observed`
            # says how many tanks a figure stands for); with none observed it is unknown, not 0.
            if f is None or f.coverage <= 0:
                reasons.append(
                    Unknown.CALIBRATION_MISSING.value
                    if tank in blind
                    else Unknown.NO_TELEMETRY.value
                )
                if f is not None:
                    coverages.append(0.0)
            else:
                observed += 1
                if f.close_kg is not None:
                    stock_parts.append(f.close_kg)
                    usable_parts.append(usable_kg(f.close_kg, min_usable) or 0.0)
                refilled_parts.append(f.refilled_kg)
                refills += f.refills
                coverages.append(f.coverage)
                if f.consumption_kg is not None:
                    cons_parts.append(f.consumption_kg)
            tank_avg = average_daily(
                [
                    DayUse(g.consumption_kg, g.coverage)
                    if (g := figs.get((tank, d)))
                    else DayUse(None, 0.0)
                    for d in week
                ]
            )
            if tank_avg is not None:
                avg = (avg or 0.0) + tank_avg
        history = []
        mon_tanks = [tk for tk, _c, _m, is_mon in by_fac.get(fac, []) if is_mon]
        for d in week[:-1]:
            day_figs = [figs.get((tk, d)) for tk in mon_tanks]
            if mon_tanks and all(
                g is not None and g.consumption_kg is not None and g.coverage >= 0.95
                for g in day_figs
            ):
                history.append(sum(g.consumption_kg or 0.0 for g in day_figs if g is not None))
        stock = sum(stock_parts) if stock_parts else None
        usable = sum(usable_parts) if usable_parts else None
        cons = sum(cons_parts) if cons_parts else None
        refilled = sum(refilled_parts) if observed else None
        unknown = None
        if not observed and reasons:
            # Calibration missing explains more than silence when both occur.
            missing = Unknown.CALIBRATION_MISSING.value
            unknown = missing if missing in reasons else Unknown.NO_TELEMETRY.value
        out[fac] = FacilityTelemetry(
            fac,
            n_mon,
            stock,
            usable,
            refilled,
            refills,
            cons,
            avg,
            capacity,
            cylinders.get(fac, 0.0),
            sum(coverages) / len(coverages) if coverages else 0.0,
            tuple(history),
            unknown,
            observed,
        )
    return out


async def _uncalibrated(
    conn: AsyncConnection[Any], tank_ids: Sequence[int], win: Window
) -> set[int]:
    """Tanks measured by DP that have readings in the window but no calibration valid then."""
    if not tank_ids:
        return set()
    cur = await conn.execute(
        q.UNCALIBRATED_TANKS, {"tanks": list(tank_ids), "start": win.start, "end": win.end}
    )
    return {int(r[0]) for r in await cur.fetchall()}


async def _uncalibrated_days(
    conn: AsyncConnection[Any],
    tank_ids: Sequence[int],
    report_days: Sequence[date],
    cfg: AccountingConfig,
) -> dict[date, set[int]]:
    """`_uncalibrated` of each report day's window, in one query."""
    if not tank_ids:
        return {}
    wins = [window(d, cfg) for d in report_days]
    cur = await conn.execute(
        q.UNCALIBRATED_TANKS_DAYS,
        {
            "tanks": list(tank_ids),
            "days": [w.day for w in wins],
            "starts": [w.start for w in wins],
            "ends": [w.end for w in wins],
        },
    )
    out: dict[date, set[int]] = defaultdict(set)
    for day, tank in await cur.fetchall():
        out[day].add(int(tank))
    return out


async def invalidate(
    conn: AsyncConnection[Any],
    sensor_id: int,
    start: datetime,
    end: datetime,
    cfg: AccountingConfig,
) -> None:
    """Drop the stored windows of the sensor's tank that [start, end] can affect."""
    # A refill's draw estimate looks CONTEXT either side, so the neighbouring windows go too.
    await conn.execute(
        q.INVALIDATE_WINDOWS,
        {
            "sensor": sensor_id,
            "first": report_day_of(start - CONTEXT, cfg),
            "last": report_day_of(end + CONTEXT, cfg),
        },
    )
