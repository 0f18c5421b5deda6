"""Minute traces of one simulated tank with the truth beside them, for accuracy checks.

Drives :class:`gateway.sim.model.TankModel` (the physics the Modbus simulator serves) minute by
minute, with tanker deliveries at chosen times instead of the level-triggered ones, an optional
leak and data gaps; records the DP each minute as the gauge shows it and the true contents,
consumption and deliveries. Used by the accounting tests and ``bench/accuracy.py``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from gateway.sim.model import TankModel, TankSpec

STEP = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A tanker: arrives at `at`, pumps for `minutes` up to `to_fraction` of capacity."""

    at: datetime
    minutes: float
    to_fraction: float


@dataclass(frozen=True, slots=True)
class TrueRefill:
    """What a delivery really put into the tank, and when."""

    started_at: datetime
    ended_at: datetime
    amount_kg: float


@dataclass
class Trace:
    """Readings (ts, DP inH2O) and the truth at every minute of [start, end]."""

    readings: list[tuple[datetime, float]] = field(default_factory=list)
    contents: dict[datetime, float] = field(default_factory=dict)
    consumed: dict[datetime, float] = field(default_factory=dict)  # cumulative from start
    refills: list[TrueRefill] = field(default_factory=list)

    def consumption(self, a: datetime, b: datetime) -> float:
        """True consumption over [a, b], kg."""
        return self.consumed[b] - self.consumed[a]

    def delivered(self, a: datetime, b: datetime) -> float:
        """True deliveries whose start lies in [a, b), kg."""
        return sum(r.amount_kg for r in self.refills if a <= r.started_at < b)


def simulate(
    spec: TankSpec,
    start: datetime,
    end: datetime,
    deliveries: tuple[Delivery, ...] = (),
    *,
    seed: int = 0,
    noise: bool = True,
    gaps: tuple[tuple[datetime, datetime], ...] = (),
    leak: tuple[datetime, datetime, float] | None = None,
    steady: bool = False,
) -> Trace:
    """Run the tank model minute by minute over [start, end]; `leak` adds kg/day over a span;
    `steady` holds the patient load constant (day/night cycle and minute noise remain)."""
    rng = random.Random(seed)
    # No level-triggered tanker: deliveries come when the scenario says.
    model = TankModel(replace(spec, refill_below=-1.0), rng)
    trace = Trace()
    pending = sorted(deliveries, key=lambda d: d.at)
    consumed = 0.0
    ts = start
    open_refill: tuple[datetime, float] | None = None
    while ts <= end:
        if ts > start:
            before = model.consumed_kg
            if not model.refilling and pending and model.tanker_at is None:
                nxt = pending[0]
                if nxt.at < ts:
                    pending.pop(0)
                    model.spec = replace(
                        model.spec, refill_minutes=nxt.minutes, refill_to=nxt.to_fraction
                    )
                    model.tanker_at = nxt.at.timestamp()
            delivered = model.delivered_kg
            if steady:
                model.load = 1.0
            model.advance(ts.timestamp(), STEP.total_seconds())
            if leak is not None and leak[0] < ts <= leak[1]:
                lost = min(model.contents_kg, leak[2] / 1440.0)
                model.contents_kg -= lost
                model.consumed_kg += lost
            consumed += model.consumed_kg - before
            if model.delivered_kg > delivered and open_refill is None:
                open_refill = (ts - STEP, delivered)
            if open_refill is not None and not model.refilling:
                t0, d0 = open_refill
                trace.refills.append(TrueRefill(t0, ts, model.delivered_kg - d0))
                open_refill = None
        trace.contents[ts] = model.contents_kg
        trace.consumed[ts] = consumed
        if not any(a <= ts < b for a, b in gaps):
            dp = model.table.dp_for(model.contents_kg)
            if noise:
                dp += rng.gauss(0.0, spec.dp_noise)
            trace.readings.append((ts, max(dp, 0.0)))
        ts += STEP
    return trace
