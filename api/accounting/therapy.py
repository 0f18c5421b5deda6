"""Oxygen therapies counted in the daily report, and the need they imply."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Therapy(StrEnum):
    """The therapies Vietnam's MoH counted severe patients by."""

    MASK = "mask"
    HFNC = "hfnc"
    NIV = "niv"
    INVASIVE = "invasive"
    ECMO = "ecmo"


def need_m3_per_day(patients: Mapping[Therapy, int], flows_lpm: Mapping[Therapy, float]) -> float:
    """Gas need in m3/day at the reference: patients on each therapy × its flow (L/min)."""
    # L/min × 1440 min/day ÷ 1000 L/m3: WHO's 10 L/min is 14.4 m3/day.
    return sum(max(0, n) * flows_lpm.get(t, 0.0) * 1.44 for t, n in patients.items())
