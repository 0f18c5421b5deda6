"""Typed answers of the accounting API (telemetry figures, series, corrections)."""

from __future__ import annotations

from datetime import date

from pydantic import Field

from api.accounting.correction_preview import Preview
from api.public import Instant, PublicModel


class WindowPublic(PublicModel):
    """A report day's window (16:00 D−1 → 16:00 D, local time)."""

    start: Instant
    end: Instant


class AccountingPublic(PublicModel):
    """A facility's telemetry figures for a report day; null = unknown (shown as "—")."""

    facility_id: int
    report_day: date
    window: WindowPublic
    monitored_tanks: int
    stock_kg: float | None = Field(description="Contents at the window's end, kg LOX")
    stock_m3: float | None
    usable_kg: float | None = Field(description="Above each tank's minimum usable level")
    usable_m3: float | None
    refilled_kg: float | None
    refilled_m3: float | None
    refills: int
    consumption_kg: float | None = Field(description="In the window, refills excluded")
    consumption_m3: float | None
    avg_daily_kg: float | None = Field(description="Last 7 complete windows")
    avg_daily_m3: float | None
    capacity_kg: float
    cylinder_capacity_m3: float
    coverage: float = Field(description="Observed fraction of the window (0..1)")
    gas_unit: str = Field(description="The m3 reference (label)")


class SeriesPointPublic(PublicModel):
    """Contents of a tank in one bucket."""

    ts: Instant
    kg: float
    m3: float


class SeriesRefillPublic(PublicModel):
    """A refill detected in the series."""

    started_at: Instant
    ended_at: Instant
    amount_kg: float
    amount_m3: float


class SeriesPublic(PublicModel):
    """A tank's contents series (corrected readings) and its refills."""

    tank_id: int
    monitored: bool
    gas_unit: str | None = None
    points: list[SeriesPointPublic]
    refills: list[SeriesRefillPublic]


class CorrectionPublic(PublicModel):
    """A correction of a sensor's readings (the raw readings are kept)."""

    id: int
    sensor_id: int
    ts_from: Instant
    ts_to: Instant
    action: str
    value: float | None
    reason: str
    created_by: str
    created_at: Instant
    reverted_at: Instant | None
    reverted_by: str | None
    revert_reason: str | None
    active: bool


class CorrectionCreatedPublic(CorrectionPublic):
    """The stored correction and the effect it had."""

    preview: Preview = Field(description="What the correction changed")
