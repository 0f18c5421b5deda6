"""Typed answers of the reports API: saved revisions, the SYT workflow, the national view."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import Field

from api.public import PublicModel, RevisionPublic


class ReportWarningPublic(PublicModel):
    """A plausibility warning the reporter confirmed with a reason."""

    field: str
    key: str = Field(description="Message id of the rule")
    value: float | None
    limit: float | None
    reason: str
    message: str = Field(description="The rule's text in the caller's language")


class FacilityReportSavedPublic(RevisionPublic):
    """A facility report stored as a new revision."""

    late: bool = Field(description="Filed after the day's cut-off")
    warnings: list[ReportWarningPublic]


class SytReportStatePublic(RevisionPublic):
    """An SYT report after a save or a send."""

    id: int
    state: str = Field(description="draft, sent, approved or sent_back")


class SytDecisionPublic(SytReportStatePublic):
    """BYT's decision on a sent SYT report."""

    org_id: int
    report_day: date


class SupplierReportSavedPublic(RevisionPublic):
    """A supplier report stored as a new revision."""

    id: int


class FacilityFiguresPublic(PublicModel):
    """Everything a facility contributes to the reports of one day; null = unknown ("—")."""

    facility_id: int
    code: str
    name: str
    parent_id: int | None
    province_code: str | None
    reported: bool
    on_time: bool
    late: bool
    monitored: bool
    patients_current: int | None
    patients_new: int | None
    discharged: int | None
    on_oxygen: dict[str, int] = Field(description="Patients on oxygen per kind of support")
    refilled_liquid_kg: float | None
    refilled_gas_nm3: float | None
    stock_liquid_kg: float | None
    usable_liquid_kg: float | None
    stock_gas_nm3: float | None
    capacity_nm3: float | None
    registry_capacity_nm3: float | None
    avg_need_nm3: float | None
    estimated_need_nm3: float | None
    consumption_kg: float | None
    days_of_supply: float | None
    status: str
    leak: bool
    sources: dict[str, str] = Field(description="Where each figure comes from")
    unknown: dict[str, str] = Field(description="Why a figure is null, per figure")
    days_of_supply_beyond: bool
    warnings: list[dict[str, Any]]
    notes: str | None


class TotalsPublic(PublicModel):
    """Summable figures of a set of facilities. A sum of nothing is null (unknown), and
    `contributors` says how many facilities each sum stands for."""

    expected: int = 0
    reported: int = 0
    on_time: int = 0
    not_reported: int = 0
    patients_current: int | None = None
    patients_new: int | None = None
    discharged: int | None = None
    on_oxygen: int | None = None
    refilled_liquid_kg: float | None = None
    refilled_gas_nm3: float | None = None
    need_reported_nm3_per_day: float | None = None
    stock_nm3: float | None = None
    usable_nm3: float | None = None
    need_nm3_per_day: float | None = None
    capacity_nm3: float | None = None
    needs_more: int = 0
    leaks: int | None = None
    days_of_supply: float | None = None
    status: str | None = None
    contributors: dict[str, int] = Field(default_factory=dict)


class ProvinceTotalsPublic(TotalsPublic):
    """One reporting parent (or location province) of the national view."""

    org_id: int | None = None
    code: str | None = None
    name: str | None = None
    kind: str | None = None
    province_code: str | None = None
    facilities: list[FacilityFiguresPublic] | None = Field(
        default=None, description="With ?facilities=true"
    )


class SupplierSupplyPublic(PublicModel):
    """A supplier's production and capacity for the day."""

    supplier_id: int
    code: str
    reported: bool
    production_t: float | None
    capacity_normal_t_per_day: float | None
    capacity_full_t_per_day: float | None
    capacity_source: str = Field(description="report, last_report, registry or unknown")
    capacity_as_of: date | None


class SupplyPublic(PublicModel):
    """National production and capacity against demand."""

    supplier_reports: int
    suppliers: int
    production_t: float
    capacity_normal_t_per_day: float
    capacity_full_t_per_day: float
    capacity_sources: dict[str, int]
    lox_stock_kg: float
    by_supplier: list[SupplierSupplyPublic]
    demand_t_per_day: float | None


class NationalPublic(PublicModel):
    """The national view of a report day."""

    report_day: date
    provinces: list[ProvinceTotalsPublic]
    nation: TotalsPublic
    supply: SupplyPublic
    units: dict[str, str] = Field(description="The unit of each kind of figure")
