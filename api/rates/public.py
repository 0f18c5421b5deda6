"""Typed answers of the reporting-rate API."""

from __future__ import annotations

from datetime import date

from pydantic import Field

from api.public import PublicModel


class RateFiguresPublic(PublicModel):
    """Expected, reported, on-time, late and missing facility reports; rates in per cent
    (null when nothing was expected)."""

    expected: int
    reported: int
    on_time: int
    late: int
    missing: int
    reporting_rate: float | None
    on_time_rate: float | None


class RateTotalPublic(RateFiguresPublic):
    """The period's total."""

    facilities: int


class RateDayPublic(RateFiguresPublic):
    """One day of the period."""

    day: date


class RateParentPublic(RateFiguresPublic):
    """One reporting parent (SYT / ministry office)."""

    org_id: int | None
    code: str | None
    name: str | None
    kind: str | None
    province_code: str | None
    facilities: int


class ContactPublic(PublicModel):
    """A registry contact of a facility."""

    full_name: str | None
    role: str | None
    phone: str | None
    email: str | None
    is_primary: bool | None


class RateFacilityPublic(RateFiguresPublic):
    """One facility, with its registry contacts."""

    facility_id: int
    code: str
    name: str
    parent_id: int | None
    parent_name: str | None
    province_code: str | None
    province_name: str | None
    active_from: date | None
    active_to: date | None
    last_reported: date | None
    missing_last_day: bool
    contacts: list[ContactPublic]


class ReportingRatePublic(PublicModel):
    """The reporting rate over the last N days."""

    first_day: date
    last_day: date
    days: int
    total: RateTotalPublic
    parents: list[RateParentPublic]
    facilities: list[RateFacilityPublic]
    by_day: list[RateDayPublic]


class ProvinceRatePublic(ReportingRatePublic):
    """One department's reporting rate, with the facilities that missed a report."""

    not_reported: list[RateFacilityPublic] = Field(description="Most missing first")
