"""Typed answers of the reports API: saved revisions, the SYT workflow, the national view."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import Field

from api.public import Instant, PublicModel, RevisionPublic
from api.reports.syt import SytFilters


class StoredWarningPublic(PublicModel):
    """A plausibility warning the reporter confirmed with a reason, as stored with the report."""

    field: str
    key: str = Field(description="Message id of the rule")
    value: float | None = Field(description="The figure the rule judged (null: unknown)")
    limit: float | None = Field(description="The bound it was compared with (null: unknown)")
    reason: str


class ReportWarningPublic(StoredWarningPublic):
    """A confirmed warning with the rule's text."""

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


class SentReportPublic(PublicModel):
    """An SYT report sent to BYT, with its state and number of revisions."""

    id: int
    org_id: int
    org_name: str
    report_day: date
    state: str = Field(description="sent, approved or sent_back")
    revision: int
    sent_at: Instant | None
    sent_by: str | None
    approved_at: Instant | None
    approved_by: str | None
    sent_back_at: Instant | None
    sent_back_reason: str | None
    revisions: int


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
    warnings: list[StoredWarningPublic]
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


class EnteredCapacityPublic(PublicModel):
    """Field 15: the SYT's own capacity, canonical and as typed."""

    nm3: float | None
    entered: Any = Field(description="What was typed (value and unit)")


class EnteredNeedPublic(PublicModel):
    """Field 16: the SYT's own daily need, canonical and as typed."""

    nm3_per_day: float | None
    entered: Any = Field(description="What was typed (value and unit)")


class SytEnteredPublic(PublicModel):
    """The fields the SYT types itself (12, 15, 16)."""

    notice: str | None = Field(alias="12", description="Field 12: notice")
    own_capacity: EnteredCapacityPublic = Field(alias="15")
    own_need: EnteredNeedPublic = Field(alias="16")


class SytRevisionPublic(PublicModel):
    """One revision of an SYT report (append-only history)."""

    revision: int
    action: str
    author: str
    created_at: Instant
    diff: Any = Field(description="What changed: field → [before, after]")
    note: str | None


class SytReportPublic(PublicModel):
    """An SYT report for day D: live seed fields, entered fields, state and history."""

    org_id: int
    report_day: date
    filters: SytFilters
    fields: dict[str, Any] = Field(description="Seed fields 1–16 by number, live")
    completeness: dict[str, dict[str, int]] = Field(
        description="Per summed field: how many facilities it stands for of those expected"
    )
    facilities: list[FacilityFiguresPublic]
    units: dict[str, str]
    state: str = Field(description="draft, sent, approved or sent_back")
    revision: int
    locked: str | None = Field(description="Why it cannot be changed (message id)")
    entered: SytEnteredPublic | None
    changed_since_sent: bool | None
    changes: list[dict[str, Any]] = Field(description="Differences from the copy sent")
    as_sent: dict[str, Any] | None = Field(description="The copy that was sent, whole")
    revisions: list[SytRevisionPublic]
    id: int | None = None
    sent_at: Instant | None = None
    approved_at: Instant | None = None
    sent_back_reason: str | None = None


class PrefillPublic(PublicModel):
    """Telemetry values offered to pre-fill the report (empty when no tank is monitored)."""

    refilled_liquid_kg: float | None = None
    stock_liquid_kg: float | None = None
    usable_liquid_kg: float | None = None
    consumption_kg: float | None = None
    avg_daily_kg: float | None = None
    coverage: float | None = None


class FacilityRevisionPublic(PublicModel):
    """One revision of a facility report (append-only history)."""

    revision: int
    author: str
    created_at: Instant
    kind: str
    late: bool
    snapshot: dict[str, Any]
    diff: dict[str, Any] | None


class FacilityReportPublic(PublicModel):
    """A facility's report for day D as staff see it: figures, pre-fills, lock, history."""

    facility_id: int
    report_day: date
    revision: int = Field(description="0: not filed yet")
    submitted_at: Instant | None
    late: bool
    discharged_morning: int | None
    overrides: dict[str, Any] = Field(description="Pre-filled values replaced, with reasons")
    entered_units: dict[str, Any] = Field(description="The unit each value was typed in")
    locked: str | None = Field(description="Why it cannot be changed (message id)")
    figures: FacilityFiguresPublic
    prefill: PrefillPublic
    revisions: list[FacilityRevisionPublic]


class SupplierDeliveryPublic(PublicModel):
    """A delivery the supplier reported, cross-checked against the facility's own refill."""

    facility_id: int
    code: str
    name: str
    liquid_kg: float | None
    gas_nm3: float | None
    cylinders: int | None
    match: bool | None = Field(description="Agrees with the facility's refill; null: unknown")
    facility_refilled_liquid_kg: float | None = Field(
        default=None, description="National roles only"
    )
    facility_refilled_gas_nm3: float | None = Field(default=None, description="National roles only")


class SupplierRevisionPublic(PublicModel):
    """One revision of a supplier report."""

    revision: int
    author: str
    created_at: Instant
    diff: Any


class SupplierReportPublic(PublicModel):
    """A supplier's report of the day with its deliveries cross-checked."""

    supplier_id: int
    report_day: date
    revision: int
    production_t: float
    capacity_normal_tpd: float | None
    capacity_full_tpd: float | None
    lox_stock_kg: float | None
    cylinders_filled: int | None
    deliveries: list[SupplierDeliveryPublic]
    updated_at: Instant
    updated_by: str | None
    revisions: list[SupplierRevisionPublic]
