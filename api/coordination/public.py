"""Typed answers of the coordination API: support requests, assignments, deliveries."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import Field

from api.public import Instant, PublicModel


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


class MatchVerdictPublic(PublicModel):
    """The cross-check's verdict: a message id, its parameters and the text in the caller's
    language."""

    key: str
    params: dict[str, Any]
    message: str


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
    matched_refills: Any
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


class CoordinationMapPublic(PublicModel):
    """Everything the coordination map draws, in the caller's scope."""

    requests: list[MapRequestPublic]
    flows: list[MapFlowPublic]
    suggested_flows: list[dict[str, Any]] | None = Field(
        default=None, description="With ?suggested=true: the allocation's proposed shipments"
    )
    note: Any = Field(default=None, description="With ?suggested=true: the allocation's note")
