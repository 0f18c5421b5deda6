"""Typed answers of the coordination API: support requests, assignments, deliveries."""

from __future__ import annotations

from datetime import date

from pydantic import ConfigDict, Field

from api.public import Instant, PublicModel, Scalar


class SupportRequestPublic(PublicModel):
    """A facility's request for oxygen, with what is assigned and delivered so far."""

    id: int
    facility_id: int
    parent_id: int
    province_code: str | None
    form: str = Field(description="liquid, gas or cylinders")
    amount_value: float = Field(description="As typed, in amount_unit")
    amount_unit: str
    amount_kg: float
    needed_by: Instant
    days_of_supply: float | None
    urgency: str
    state: str
    note: str | None
    escalated: bool
    escalated_at: Instant | None
    escalated_by: str | None
    escalated_kg: float | None
    escalation_note: str | None
    created_by: str
    created_at: Instant
    updated_at: Instant
    facility_code: str | None
    facility_name: str | None
    parent_name: str | None
    assigned_kg: float
    confirmed_kg: float
    remaining_kg: float
    parts: int = Field(description="Live assignments")
    amount_nm3: float
    remaining_nm3: float
    units: dict[str, str]


class AssignmentPublic(PublicModel):
    """A part of a request given to a source (supplier or facility)."""

    id: int
    request_id: int
    source_id: int
    source_kind: str
    amount_kg: float
    level: str
    state: str
    from_suggestion: bool
    note: str | None
    assigned_by: str
    assigned_at: Instant
    responded_by: str | None
    responded_at: Instant | None
    decline_reason: str | None
    source_code: str | None
    source_name: str | None
    source_province: str | None
    facility_id: int
    facility_code: str | None
    facility_name: str | None
    facility_province: str | None
    form: str
    needed_by: Instant
    urgency: str
    delivery_id: int | None
    delivery_state: str | None


class CoordMessagePublic(PublicModel):
    """A message: its id, its parameters and the text in the caller's language."""

    key: str
    params: dict[str, Scalar] = Field(
        description="The message's parameters (numbers, names), by name; they vary by message id"
    )
    message: str


class MatchVerdictPublic(CoordMessagePublic):
    """The cross-check's verdict: a message id, its parameters and the text in the caller's
    language."""


class MatchedRefillPublic(PublicModel):
    """A refill the tank sensors saw, counted towards a delivery."""

    key: str | None = Field(
        None, description="The refill's identity (tank and start), claimed by one delivery"
    )
    tank_id: int
    started_at: Instant
    ended_at: Instant | None = None
    kg: float = Field(description="Oxygen the refill added, kg")


class DeliveryPublic(PublicModel):
    """A delivery, with its cross-check against the facility's measured refills."""

    id: int
    assignment_id: int | None
    supplier_report_id: int | None
    report_day: date | None
    source_id: int
    facility_id: int
    form: str
    amount_kg: float
    gas_nm3: float
    cylinders: int
    state: str
    dispatched_at: Instant | None
    in_transit_at: Instant | None
    delivered_at: Instant | None
    confirmed_at: Instant | None
    confirmed_by: str | None
    received_kg: float | None
    expected_from: Instant | None
    expected_to: Instant | None
    match_state: str
    matched_kg: float | None
    matched_refills: list[MatchedRefillPublic] = Field(
        description="The refills counted towards the delivery (empty: none, or not checked yet)"
    )
    match_note: str | None
    matched_at: Instant | None
    created_by: str
    created_at: Instant
    updated_at: Instant
    source_code: str | None
    source_name: str | None
    facility_code: str | None
    facility_name: str | None
    facility_province: str | None
    request_id: int | None
    match: MatchVerdictPublic | None
    mismatch: bool


class SupportRequestDetailPublic(SupportRequestPublic):
    """One request with its parts and their deliveries."""

    assignments: list[AssignmentPublic]
    deliveries: list[DeliveryPublic]


class MapRequestPublic(PublicModel):
    """An open request where its facility is."""

    id: int
    facility_id: int
    code: str | None
    name: str | None
    province_code: str | None
    lat: float | None
    lon: float | None
    form: str
    amount_kg: float
    urgency: str
    state: str
    needed_by: Instant
    escalated: bool
    remaining_kg: float


class MapFlowPublic(PublicModel):
    """An assignment not yet delivered, or a delivery on the road, from source to facility."""

    assignment_id: int
    delivery_id: int | None
    request_id: int
    state: str
    amount_kg: float
    source_id: int
    source_name: str | None
    source_kind: str
    from_lat: float | None
    from_lon: float | None
    facility_id: int
    facility_name: str | None
    to_lat: float | None
    to_lon: float | None


class PointPublic(PublicModel):
    """A place on the map (null: no coordinates in the registry)."""

    lat: float | None
    lon: float | None


class AmountPublic(PublicModel):
    """An amount as typed: value and unit."""

    value: float
    unit: str


class AssignPartPublic(PublicModel):
    """A shipment ready to post to /api/coordination/requests/{id}/assignments as one part."""

    source_id: int
    amount: AmountPublic


class SuggestedShipmentPublic(PublicModel):
    """One proposed shipment from a source (supplier, or a facility's surplus) to a facility."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    source_id: int
    source_kind: str = Field(description="supplier or facility")
    source_name: str | None
    source_province: str | None
    facility_id: int
    facility_name: str | None
    facility_province: str | None
    kg: float
    nm3: float = Field(description="The same amount in gas at the reference conditions")
    road_km: float
    from_: PointPublic = Field(alias="from")
    to: PointPublic
    open_request_ids: list[int]
    reason: CoordMessagePublic = Field(description="Why this source: nearest, or the next one")
    assign_part: AssignPartPublic


class SuggestionScopePublic(PublicModel):
    """Whose facilities and sources the proposal covers."""

    level: str = Field(description="province or national")
    org_id: int | None = Field(default=None, description="The SYT planning (SYT only)")
    province: str | None


class SuggestionParametersPublic(PublicModel):
    """The what-if and planning parameters the proposal was computed with."""

    suppliers_down: list[int]
    surge: dict[str, float] = Field(description="Demand factor per province code")
    target_days: float
    horizon_days: float
    surplus_days: float


class SuggestionTotalsPublic(PublicModel):
    """What the proposal covers and leaves uncovered, in kg LOX."""

    need_kg: float
    covered_kg: float
    unmet_kg: float
    unmet_weighted: float | None
    transport_kg_km: float | None


class SuggestedFacilityPublic(PublicModel):
    """Per facility: what it needs, what it gets and why, and what stays uncovered and why."""

    facility_id: int
    code: str | None
    name: str | None
    province: str | None
    days_of_supply: float | None
    urgency: str
    urgency_weight: float | None
    usable_kg: float | None
    avg_daily_kg: float | None
    requested_kg: float | None
    in_flight_kg: float | None
    need_kg: float
    covered_kg: float
    unmet_kg: float
    open_request_ids: list[int]
    reasons: list[CoordMessagePublic]


class SuggestionSourcePublic(PublicModel):
    """A source the model could draw from, with what it has left after the proposal."""

    id: int
    kind: str = Field(description="supplier or facility")
    name: str | None
    province: str | None
    available_kg: float | None
    left_kg: float | None
    down: bool = Field(description="Out of service in this what-if")
    report_day: date | None = Field(description="The supplier report the figures come from")
    lat: float | None
    lon: float | None


class SuggestionExcludedPublic(CoordMessagePublic):
    """A facility or source left out of the model, and why."""

    id: int
    name: str | None


class SuggestionPublic(PublicModel):
    """The allocation's proposal for the caller's scope: nothing is written."""

    proposal_only: bool
    note: CoordMessagePublic
    scope: SuggestionScopePublic
    parameters: SuggestionParametersPublic
    computed_at: Instant
    units: dict[str, str]
    status: str = Field(description="The solver's model status")
    solve_ms: float
    totals: SuggestionTotalsPublic
    shipments: list[SuggestedShipmentPublic]
    facilities: list[SuggestedFacilityPublic]
    sources: list[SuggestionSourcePublic]
    excluded: list[SuggestionExcludedPublic]


class CoordinationMapPublic(PublicModel):
    """Everything the coordination map draws, in the caller's scope."""

    requests: list[MapRequestPublic]
    flows: list[MapFlowPublic]
    suggested_flows: list[SuggestedShipmentPublic] | None = Field(
        default=None, description="With ?suggested=true: the allocation's proposed shipments"
    )
    note: CoordMessagePublic | None = Field(
        default=None, description="With ?suggested=true: the allocation's note"
    )
