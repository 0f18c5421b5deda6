"""Quantities of a request or delivery: the figure as typed, with an explicit unit, as kg of LOX.

Liquid is kg of LOX; gas is m3 at the declared reference (Nm3 by default); a cylinder is the
common Vietnamese 40 L / 150 bar cylinder, about 6 m3 of gas (shared DOMAIN.md). Urgency lives
with days of supply in api.accounting.stock.
"""

from __future__ import annotations

from enum import StrEnum

from oxy.contract import Reference

from .errors import CoordinationError

CYLINDER_NM3 = 6.0  # 40 L water volume at ~150 bar (shared DOMAIN.md "Oxygen quantities")


class Form(StrEnum):
    """The form of oxygen asked for or delivered."""

    LIQUID = "liquid"
    GAS = "gas"
    CYLINDERS = "cylinders"


class AmountUnit(StrEnum):
    """The units a person may type a requested amount in (never guessed)."""

    KG = "kg"
    M3_LIQUID = "m3_liquid"
    NM3 = "nm3"
    CYLINDERS = "cylinders"


_UNITS_OF_FORM: dict[Form, frozenset[AmountUnit]] = {
    Form.LIQUID: frozenset({AmountUnit.KG, AmountUnit.M3_LIQUID, AmountUnit.NM3}),
    Form.GAS: frozenset({AmountUnit.NM3, AmountUnit.KG}),
    Form.CYLINDERS: frozenset({AmountUnit.CYLINDERS}),
}


def to_kg(value: float, unit: AmountUnit, ref: Reference) -> float:
    """An amount in `unit` as kg of oxygen (gas and cylinders as their kg equivalent)."""
    if unit is AmountUnit.KG:
        return value
    if unit is AmountUnit.M3_LIQUID:
        return ref.liquid_m3_to_kg(value)
    if unit is AmountUnit.NM3:
        return ref.m3_to_kg(value)
    return ref.m3_to_kg(value * CYLINDER_NM3)


def checked_kg(value: float, unit: AmountUnit, form: Form, ref: Reference, field: str) -> float:
    """`to_kg` after refusing a non-positive amount or a unit that does not fit the form."""
    if not value > 0:
        raise CoordinationError("coord.error.amount", field=field)
    if unit not in _UNITS_OF_FORM[form]:
        raise CoordinationError("coord.error.unit_form", field=field)
    return to_kg(value, unit, ref)
