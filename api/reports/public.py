"""Typed answers of the reports API: saved revisions, the SYT workflow, the national view."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from api.public import Instant, PublicModel, RevisionPublic, Scalar
from api.reports.filters import SytFilters
from api.reports.units import EntryUnit


class EnteredQuantityPublic(PublicModel):
    """An oxygen quantity as the person typed it, with its unit."""

    value: float
    unit: EntryUnit


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
    entered: EnteredQuantityPublic | None = Field(description="What was typed (null: nothing)")


class EnteredNeedPublic(PublicModel):
    """Field 16: the SYT's own daily need, canonical and as typed."""

    nm3_per_day: float | None
    entered: EnteredQuantityPublic | None = Field(description="What was typed (null: nothing)")


class SytEnteredPublic(PublicModel):
    """The fields the SYT types itself (12, 15, 16)."""

    model_config = ConfigDict(populate_by_name=True)

    notice: str | None = Field(alias="12", description="Field 12: notice")
    own_capacity: EnteredCapacityPublic = Field(alias="15")
    own_need: EnteredNeedPublic = Field(alias="16")


class LiquidFieldPublic(PublicModel):
    """Field 9: liquid oxygen refilled, in kg, m3 of liquid and m3 of gas (null: unknown)."""

    kg: float | None
    m3_liquid: float | None
    nm3: float | None


class CapacityFieldPublic(PublicModel):
    """Field 13: storage capacity of the facilities that reported, and of all (registry)."""

    reporting_nm3: float | None
    registry_all_nm3: float | None


class SytFieldsPublic(PublicModel):
    """The computed seed fields by number (null: unknown — a sum of nothing)."""

    model_config = ConfigDict(populate_by_name=True)

    current_patients: int | None = Field(alias="5", description="Field 5: current patients")
    new_patients: int | None = Field(alias="6", description="Field 6: new patients today")
    discharged: int | None = Field(alias="7", description="Field 7: discharged")
    not_reported: int = Field(alias="8", description="Field 8: facilities not reported")
    refilled_liquid: LiquidFieldPublic = Field(alias="9")
    facilities: int = Field(alias="10", description="Field 10: facilities of the department")
    refilled_gas_nm3: float | None = Field(alias="11", description="Field 11: gas refilled")
    capacity: CapacityFieldPublic = Field(alias="13")
    avg_need_nm3: float | None = Field(alias="14", description="Field 14: average daily need")


class CompletenessPublic(PublicModel):
    """How many facilities a summed field stands for, of those expected."""

    contributors: int
    expected: int


class SytChangePublic(PublicModel):
    """One difference between the copy sent and the live report."""

    item: str = Field(
        description="entered.<no>[.<part>], field.<no>[.<part>] or facility.<code>.<figure>"
    )
    sent: Scalar | EnteredQuantityPublic = Field(description="In the copy sent")
    now: Scalar | EnteredQuantityPublic = Field(description="Now")


def _pair(what: str) -> Any:
    """The constraints of a [before, after] pair."""
    return Field(min_length=2, max_length=2, description=f"{what}: [before, after]")


class SytEditPublic(PublicModel):
    """What a save or a decision changed, per field: [before, after]; unchanged fields absent."""

    notice: Annotated[list[str | None], _pair("Field 12")] | None = Field(None, alias="12")
    own_capacity: Annotated[list[EnteredCapacityPublic | None], _pair("Field 15")] | None = Field(
        None, alias="15"
    )
    own_need: Annotated[list[EnteredNeedPublic | None], _pair("Field 16")] | None = Field(
        None, alias="16"
    )
    filters: Annotated[list[SytFilters | None], _pair("Fields 1 and 2")] | None = None
    state: Annotated[list[str | None], _pair("State")] | None = None


class SytRevisionPublic(PublicModel):
    """One revision of an SYT report (append-only history)."""

    revision: int
    action: str
    author: str
    created_at: Instant
    diff: SytEditPublic | list[SytChangePublic] | None = Field(
        description="save, approve, send back: the fields changed; send: the differences from "
        "the copy sent before (empty the first time)"
    )
    note: str | None


class SytSnapshotPublic(PublicModel):
    """The copy of an SYT report sent to BYT, whole (revisions are append-only)."""

    revision: int
    sent_at: Instant
    org_id: int
    report_day: date
    filters: SytFilters
    fields: SytFieldsPublic
    completeness: dict[str, CompletenessPublic] = Field(default_factory=dict)
    facilities: list[FacilityFiguresPublic]
    units: dict[str, str] = Field(default_factory=dict)
    entered: SytEnteredPublic | None = None


class SytReportPublic(PublicModel):
    """An SYT report for day D: live seed fields, entered fields, state and history."""

    org_id: int
    report_day: date
    filters: SytFilters
    fields: SytFieldsPublic = Field(description="Seed fields by number, live")
    completeness: dict[str, CompletenessPublic] = Field(
        description="Per summed field: how many facilities it stands for of those expected"
    )
    facilities: list[FacilityFiguresPublic]
    units: dict[str, str]
    state: str = Field(description="draft, sent, approved or sent_back")
    revision: int
    locked: str | None = Field(description="Why it cannot be changed (message id)")
    entered: SytEnteredPublic | None
    changed_since_sent: bool | None
    changes: list[SytChangePublic] = Field(description="Differences from the copy sent")
    as_sent: SytSnapshotPublic | None = Field(description="The copy that was sent, whole")
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


class FacilitySnapshotPublic(PublicModel):
    """The figures a facility report revision keeps (null: not given; absent in copies stored
    before the figure existed)."""

    patients_current: int | None = None
    patients_new: int | None = None
    discharged_morning: int | None = None
    discharged_evening: int | None = None
    o2_mask: int | None = None
    o2_hfnc: int | None = None
    o2_niv: int | None = None
    o2_invasive: int | None = None
    o2_ecmo: int | None = None
    refilled_liquid_kg: float | None = None
    refilled_gas_nm3: float | None = None
    stock_liquid_kg: float | None = None
    stock_gas_nm3: float | None = None
    capacity_nm3: float | None = None
    avg_need_nm3: float | None = None
    notes: str | None = None
    overrides: dict[str, str] | None = Field(
        None, description="Pre-filled values replaced: field → reason"
    )
    entered_units: dict[str, EnteredQuantityPublic] | None = Field(
        None, description="Each quantity as typed: field → value and unit"
    )


# A figure of a facility report revision: a number or text, or the report's overrides
# (field → reason) or quantities as typed (field → value and unit).
FacilityValue = Scalar | dict[str, EnteredQuantityPublic] | dict[str, str]


class FacilityRevisionPublic(PublicModel):
    """One revision of a facility report (append-only history)."""

    revision: int
    author: str
    created_at: Instant
    kind: str
    late: bool
    snapshot: FacilitySnapshotPublic
    diff: dict[str, Annotated[list[FacilityValue], _pair("A figure")]] | None = Field(
        description="The figures changed (names as in `snapshot`)"
    )


class FacilityReportPublic(PublicModel):
    """A facility's report for day D as staff see it: figures, pre-fills, lock, history."""

    facility_id: int
    report_day: date
    revision: int = Field(description="0: not filed yet")
    submitted_at: Instant | None
    late: bool
    discharged_morning: int | None
    overrides: dict[str, str] = Field(description="Pre-filled values replaced: field → reason")
    entered_units: dict[str, EnteredQuantityPublic] = Field(
        description="Each quantity as typed: field → value and unit"
    )
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


class SupplierDeliveryEnteredPublic(PublicModel):
    """A delivery as the supplier typed it."""

    facility_id: int
    liquid: EnteredQuantityPublic | None
    gas: EnteredQuantityPublic | None
    cylinders: int


class SupplierEditPublic(PublicModel):
    """What a supplier report revision changed, per field: [before, after]; unchanged fields
    absent (before is null in the first revision)."""

    production_t: Annotated[list[float | None], _pair("Production, t")] | None = None
    capacity_normal_tpd: Annotated[list[float | None], _pair("t/day")] | None = None
    capacity_full_tpd: Annotated[list[float | None], _pair("t/day")] | None = None
    lox_stock: Annotated[list[EnteredQuantityPublic | None], _pair("LOX stock")] | None = None
    cylinders_filled: Annotated[list[int | None], _pair("Cylinders")] | None = None
    deliveries: (
        Annotated[list[list[SupplierDeliveryEnteredPublic] | None], _pair("Deliveries")] | None
    ) = None
    confirm: Annotated[list[dict[str, str] | None], _pair("Warnings confirmed")] | None = None


class SupplierRevisionPublic(PublicModel):
    """One revision of a supplier report."""

    revision: int
    author: str
    created_at: Instant
    diff: SupplierEditPublic | None


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
