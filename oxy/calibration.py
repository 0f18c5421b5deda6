"""Tank calibration (strapping) tables: differential pressure (inH2O) → contents (kg LOX).

Level comes from a DP gauge between liquid and head space; height = DP / (ρ·g), and contents need
the tank's geometry, so each tank has a versioned table interpolated linearly (shared DOMAIN.md,
"How a LOX tank is measured"). The registry owns the tables; the simulator and the demo seed build
them from geometry with :func:`vertical_tank_table`.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from oxy import OxyError
from oxy.contract import LOX_DENSITY_KG_PER_L

G = 9.80665
PA_PER_INH2O = 249.08891
LOX_DENSITY = LOX_DENSITY_KG_PER_L * 1000.0  # kg/m3


class CalibrationError(OxyError):
    """A strapping table that cannot be used (too few points, not monotonic)."""


@dataclass(frozen=True, slots=True)
class CalibrationTable:
    """A monotonic piecewise-linear map DP (inH2O) → contents (kg), clamped at both ends."""

    dp: tuple[float, ...]
    kg: tuple[float, ...]
    version: int = 1

    def __post_init__(self) -> None:
        if len(self.dp) < 2 or len(self.dp) != len(self.kg):
            raise CalibrationError("a calibration table needs at least two (dp, kg) points")
        if any(b <= a for a, b in zip(self.dp, self.dp[1:], strict=False)):
            raise CalibrationError("calibration DP points must strictly increase")
        if any(b < a for a, b in zip(self.kg, self.kg[1:], strict=False)):
            raise CalibrationError("calibration contents must not decrease as DP rises")
        if not all(math.isfinite(x) and x >= 0 for x in (*self.dp, *self.kg)):
            raise CalibrationError("calibration points must be finite and non-negative")

    @classmethod
    def from_points(cls, points: list[tuple[float, float]], version: int = 1) -> CalibrationTable:
        """Build from (dp, kg) pairs in any order."""
        pts = sorted(points)
        return cls(tuple(p[0] for p in pts), tuple(p[1] for p in pts), version)

    def contents_kg(self, dp_inh2o: float) -> float:
        """Contents for a DP reading, clamped to the first and last points of the table."""
        return _interp(self.dp, self.kg, dp_inh2o)

    def dp_for(self, kg: float) -> float:
        """The DP that shows `kg` of contents (inverse; used by the tank simulator)."""
        return _interp(self.kg, self.dp, kg)

    @property
    def capacity_kg(self) -> float:
        """Contents at the top of the table."""
        return self.kg[-1]


def _interp(xs: tuple[float, ...], ys: tuple[float, ...], x: float) -> float:
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    i = bisect.bisect_right(xs, x)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    if x1 == x0:
        return y1
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def dp_inh2o_for_height(height_m: float) -> float:
    """DP of a LOX column of `height_m` metres, in inH2O (density at the normal boiling point)."""
    return LOX_DENSITY * G * height_m / PA_PER_INH2O


def vertical_tank_table(
    capacity_kg: float, diameter_m: float, points: int = 21
) -> CalibrationTable:
    """Strapping table of a vertical cylinder with 2:1 ellipsoidal heads holding `capacity_kg`."""
    if capacity_kg <= 0 or diameter_m <= 0 or points < 3:
        raise CalibrationError("capacity, diameter and point count must be positive")
    r = diameter_m / 2.0
    a = diameter_m / 4.0  # head depth of a 2:1 ellipsoidal head
    area = math.pi * r * r
    head_vol = (2.0 / 3.0) * area * a
    total_vol = capacity_kg / LOX_DENSITY
    shell = (total_vol - 2.0 * head_vol) / area
    if shell <= 0:
        raise CalibrationError("diameter too large for that capacity")
    height = shell + 2.0 * a

    def volume(h: float) -> float:
        if h <= a:
            return area * (h * h / a - h**3 / (3.0 * a * a))
        if h <= a + shell:
            return head_vol + area * (h - a)
        t = h - a - shell  # into the top head
        return head_vol + area * shell + area * (t - t**3 / (3.0 * a * a))

    pts = []
    for i in range(points):
        h = height * i / (points - 1)
        pts.append((round(dp_inh2o_for_height(h), 3), round(volume(h) * LOX_DENSITY, 2)))
    return CalibrationTable.from_points(pts)
