"""Message ids of the coordination package: stable keys, each with its English message id.

The English text is the gettext message id (api.i18n); translations live in
api/i18n/locales/{vi,en}/LC_MESSAGES/coordination.po. Responses carry the key, its parameters and
the translated text, so a client may also render the key itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from api.i18n import gettext
from api.public import Scalar

MESSAGES: Final[dict[str, str]] = {
    "coord.error.amount": "The amount must be a number above zero.",
    "coord.error.unit_form": "This unit does not fit the form of oxygen requested.",
    "coord.error.needed_by_past": "The time needed by is already past.",
    "coord.error.naive_time": "Times must carry a time zone.",
    "coord.error.not_facility": "Oxygen can only be requested for a facility.",
    "coord.error.closed_request": "The request is closed (fulfilled or cancelled).",
    "coord.error.over_assigned": "The parts add up to more than the request still needs.",
    "coord.error.source_unknown": "Unknown supplier or facility.",
    "coord.error.source_out_of_province": (
        "A provincial department can only assign suppliers and facilities in its province; "
        "escalate the request to the Ministry instead."
    ),
    "coord.error.source_is_recipient": "A facility cannot supply its own request.",
    "coord.error.no_parts": "Give at least one part to assign.",
    "coord.error.reason_required": "Declining needs a reason.",
    "coord.error.state": "Not possible in the current state ({state}).",
    "coord.error.already_escalated": "The request was already escalated to the Ministry.",
    "coord.error.nothing_to_escalate": "Nothing is left uncovered to escalate.",
    "coord.error.bad_transition": (
        "A delivery goes dispatched → in transit → delivered → confirmed."
    ),
    "coord.error.surge": "A surge is written as province:factor, e.g. 79:1.5.",
    "coord.error.time_range": "The time must be within the last 90 days and not in the future.",
    "coord.error.too_long": "The text is too long (2000 characters at most).",
    "coord.match.matched": "Matched with the refill seen by the tank sensors.",
    "coord.match.amount": (
        "The tank sensors saw {seen_kg} kg arrive, the delivery says {kg} kg "
        "(tolerance {tolerance_kg} kg)."
    ),
    "coord.match.none": "No refill seen by the tank sensors between {start} and {end}.",
    "coord.match.no_telemetry": "The facility has no monitored tank: nothing to compare.",
    "coord.match.not_liquid": "Gas and cylinders do not show on tank sensors.",
    "coord.match.waiting": "Waiting for the refill to show in the tank sensors.",
    "coord.why.nearest": "{kg} kg from {source}, the nearest source with oxygen ({km} km).",
    "coord.why.next": (
        "{kg} kg from {source} ({km} km): nearer sources were used up by more urgent needs "
        "or could not deliver more."
    ),
    "coord.why.unreachable": (
        "{kg} kg left uncovered: no source with oxygen can reach it within its delivery range."
    ),
    "coord.why.capacity": "{kg} kg left uncovered: its tanks can take only {free_kg} kg now.",
    "coord.why.exhausted": (
        "{kg} kg left uncovered: the sources in reach are taken by facilities with more "
        "urgent need."
    ),
    "coord.why.nothing": "Enough oxygen for the planning horizon: nothing to ship.",
    "coord.why.no_coordinates": "Left out: no coordinates in the registry.",
    "coord.why.stock_unknown": (
        "Left out: its stock is unknown today (no telemetry and no report); only a request "
        "would say its need."
    ),
    "coord.why.left": "{kg} kg left after this plan.",
    "coord.note.proposal": "A proposal only: nothing is assigned until a person assigns it.",
}


def text(key: str, locale: str, params: dict[str, Any] | None = None) -> str:
    """The message of `key` in `locale` (its English id if untranslated), with its parameters."""
    msg = gettext(locale, MESSAGES.get(key, key))
    if params:
        try:
            return msg.format(**params)
        except (KeyError, IndexError, ValueError):
            return msg
    return msg


@dataclass(frozen=True, slots=True)
class Message:
    """A message of an answer: its id, its parameters and its text in the caller's language."""

    key: str
    params: dict[str, Scalar]
    message: str


def said(key: str, locale: str, **params: Scalar) -> Message:
    """The message `key` in `locale` with its parameters, as a typed value."""
    return Message(key, params, text(key, locale, params))


def message(key: str, locale: str, **params: Any) -> dict[str, Any]:
    """A message object for a response: key, parameters and translated text."""
    return {"key": key, "params": params, "message": text(key, locale, params)}
