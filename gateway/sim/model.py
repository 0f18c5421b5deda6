"""The physics of one simulated LOX tank: patient load, day/night draw, tanker refills, pressure.

The DP register comes from the contents through :func:`oxy.calibration.vertical_tank_table`, the
same strapping table the registry holds for the tank, so the centre recovers the contents.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from gateway.registers import Order, ValueType, encode
from oxy.calibration import CalibrationTable, vertical_tank_table

LOCAL_UTC_OFFSET_H = 7.0  # Asia/Ho_Chi_Minh: the hospital's day and night
MAX_STEP_S = 60.0

# Register map of a simulated tank telemetry unit (holding registers, also readable as input).
REG_DP = 0  # float32 big-endian, inH2O
REG_PRESSURE = 2  # uint16, 0.01 bar
REG_STATUS = 3  # bit 0 refilling, bit 1 fault active
REG_CONTENTS = 4  # float32, kg (the unit's own display; the centre recomputes from DP)
REGISTER_COUNT = 8
PRESSURE_SENTINEL = 0xFFFF  # what the unit sends when its pressure transmitter fails


@dataclass(frozen=True, slots=True)
class TankSpec:
    """One simulated tank and the Modbus server that exposes it."""

    code: str
    capacity_kg: float
    diameter_m: float
    fill: float = 0.6
    daily_kg: float = 1000.0
    host: str = "127.0.0.1"
    port: int = 5020
    unit_id: int = 1
    refill_below: float = 0.2
    refill_to: float = 0.92
    tanker_delay_h: float = 3.0
    refill_minutes: float = 45.0
    pressure_bar: float = 10.0
    dp_noise: float = 0.02  # inH2O, one standard deviation
    site: str = ""


@dataclass
class TankModel:
    """State of one tank, advanced in simulated time."""

    spec: TankSpec
    rng: random.Random
    table: CalibrationTable = field(init=False)
    contents_kg: float = field(init=False)
    pressure_bar: float = field(init=False)
    load: float = 1.0
    tanker_at: float | None = None
    refilling: bool = False
    refill_rate: float = 0.0
    refills: int = 0
    delivered_kg: float = 0.0
    consumed_kg: float = 0.0

    def __post_init__(self) -> None:
        self.table = vertical_tank_table(self.spec.capacity_kg, self.spec.diameter_m)
        self.contents_kg = self.spec.capacity_kg * self.spec.fill
        self.pressure_bar = self.spec.pressure_bar

    def day_factor(self, t: float) -> float:
        """Relative draw by local hour: more in the afternoon, least before dawn."""
        hour = ((t / 3600.0) + LOCAL_UTC_OFFSET_H) % 24.0
        return 1.0 + 0.3 * math.cos(2.0 * math.pi * (hour - 14.0) / 24.0)

    def advance(self, t: float, dt: float) -> list[str]:
        """Advance by `dt` simulated seconds ending at `t`; returns event descriptions."""
        events: list[str] = []
        while dt > 0:
            step = min(dt, MAX_STEP_S)
            events += self._step(t - dt + step, step)
            dt -= step
        return events

    def _step(self, t: float, dt: float) -> list[str]:
        s, events = self.spec, []
        # Patient load: mean-reverting random walk (admissions and discharges).
        self.load += 0.5 * (1.0 - self.load) * dt / 86400.0 + 0.15 * math.sqrt(
            dt / 86400.0
        ) * self.rng.gauss(0, 1)
        self.load = min(max(self.load, 0.3), 2.5)
        draw = (
            s.daily_kg
            / 86400.0
            * self.load
            * self.day_factor(t)
            * max(0.0, 1 + 0.05 * self.rng.gauss(0, 1))
        )
        used = min(self.contents_kg, draw * dt)
        self.contents_kg -= used
        self.consumed_kg += used
        if (
            not self.refilling
            and self.tanker_at is None
            and self.contents_kg < s.refill_below * s.capacity_kg
        ):
            self.tanker_at = t + s.tanker_delay_h * 3600.0
            events.append(f"tank {s.code}: low ({self.contents_kg:.0f} kg), tanker ordered")
        if self.tanker_at is not None and t >= self.tanker_at:
            self.tanker_at = None
            self.refilling = True
            target = s.refill_to * s.capacity_kg
            self.refill_rate = max(target - self.contents_kg, 0.0) / (s.refill_minutes * 60.0)
            events.append(f"tank {s.code}: tanker arrived, refilling")
        if self.refilling:
            add = min(self.refill_rate * dt, s.refill_to * s.capacity_kg - self.contents_kg)
            self.contents_kg += max(add, 0.0)
            self.delivered_kg += max(add, 0.0)
            if self.contents_kg >= s.refill_to * s.capacity_kg - 1e-6:
                self.refilling = False
                self.refills += 1
                events.append(f"tank {s.code}: refill done ({self.contents_kg:.0f} kg)")
        # Head pressure: heat leak builds it when the draw is light; top-filling collapses it.
        target = s.pressure_bar + 1.0 * (1.0 - self.load * self.day_factor(t))
        if self.refilling:
            target = s.pressure_bar - 2.0
        self.pressure_bar += (target - self.pressure_bar) * min(1.0, dt / 1200.0)
        self.pressure_bar = min(max(self.pressure_bar, 0.5), 17.0)
        return events

    def registers(self) -> list[int]:
        """The unit's register block now (with measurement noise)."""
        dp = self.table.dp_for(self.contents_kg) + self.rng.gauss(0, self.spec.dp_noise)
        p = self.pressure_bar + self.rng.gauss(0, 0.01)
        regs = [0] * REGISTER_COUNT
        regs[REG_DP : REG_DP + 2] = encode(max(dp, 0.0), ValueType.FLOAT32, Order.BIG, Order.BIG)
        regs[REG_PRESSURE] = min(max(round(p * 100), 0), 0xFFFE)
        regs[REG_STATUS] = 1 if self.refilling else 0
        regs[REG_CONTENTS : REG_CONTENTS + 2] = encode(self.contents_kg, ValueType.FLOAT32)
        return regs
