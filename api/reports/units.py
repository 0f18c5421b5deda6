"""Units of figures typed by staff: always an explicit choice, converted to kg or Nm3 once.

Liquid is stored in kg of LOX, gas in m3 at the declared reference (Nm3 by default); a figure
typed as m3 of liquid, kg or Nm3 is converted with oxy.contract.Reference, never guessed.
"""

from __future__ import annotations

from enum import StrEnum

from oxy.contract import Reference


class EntryUnit(StrEnum):
    """The units a person may type an oxygen quantity in."""

    KG = "kg"
    M3_LIQUID = "m3_liquid"
    NM3 = "nm3"
    TONNE = "t"


def to_kg(value: float, unit: EntryUnit, ref: Reference) -> float:
    """An oxygen quantity in `unit` as kg."""
    if unit is EntryUnit.KG:
        return value
    if unit is EntryUnit.TONNE:
        return value * 1000.0
    if unit is EntryUnit.M3_LIQUID:
        return ref.liquid_m3_to_kg(value)
    return ref.m3_to_kg(value)


def to_nm3(value: float, unit: EntryUnit, ref: Reference) -> float:
    """An oxygen quantity in `unit` as gas m3 at the reference."""
    return ref.kg_to_m3(to_kg(value, unit, ref))


def kg_to_liquid_m3(kg: float) -> float:
    """kg of LOX as m3 of liquid (1 m3 = 1,141 kg at the normal boiling point)."""
    return kg / Reference().liquid_m3_to_kg(1.0)


def unit_labels(ref: Reference) -> dict[str, str]:
    """Labels every response carries so that no figure is shown without its unit."""
    return {
        "liquid": "kg LOX",
        "liquid_volume": "m3 LOX (liquid, 1.141 kg/L)",
        "gas": ref.label,
        "gas_per_day": ref.label + " / day",
        "production": "t/day LOX",
    }
