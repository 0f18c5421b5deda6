"""Validation rules as data (after DHIS2's validation rules and min–max outlier bounds).

A rule is a left expression, an operator, a right expression, an importance and a message id:

- importance ERROR refuses the figure (nothing is stored; the form shows why next to the field);
- importance WARNING refuses it too unless the user confirms the figure with a reason, which is
  stored with the report (`warnings[].reason`), so an unusual figure is never stored silently.

Expressions are sums of terms, each a number, a name or `number * name` ("1.05 * tank_kg",
"prev_patients_current + patients_new"). Names are looked up in the values of one report: the
typed fields, the context (yesterday's report, the registry: beds, tank capacity, registered
capacity) and the bounds learned from the facility's own history (`max.<field>`, median + z·MAD
over the last 28 filed days, see `history_bounds`). A rule whose operands are unknown (None) is
not evaluated, except `required`, which is exactly the check that a value is there.

One set of rules serves the JSON API, the HTML forms (the same field names and message ids, so the
messages come from the i18n catalogs in Vietnamese and English), the supplier report and the
registry import.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, TypedDict

from .errors import FieldError


class Importance(StrEnum):
    """ERROR refuses; WARNING refuses unless confirmed with a reason."""

    ERROR = "error"
    WARNING = "warning"


class Op(StrEnum):
    """Comparison of a rule (`required` ignores the right side)."""

    LE = "<="
    GE = ">="
    REQUIRED = "required"


@dataclass(frozen=True, slots=True)
class Rule:
    """One validation rule: `left op right`, reported on `field` with message `key`."""

    field: str
    left: str
    op: Op
    right: str
    importance: Importance
    key: str


# The largest number a count column holds (PostgreSQL integer): anything above is a field error.
INT_MAX: Final = 2_147_483_647
# Hard limits for one facility and one day. Viet Nam's largest hospitals have a few thousand
# beds; the largest hospital LOX tanks hold ~30 t. Far above those, a figure is a typing slip.
MAX_PATIENTS: Final = 50_000
MAX_KG: Final = 1_000_000.0  # 1,000 t of LOX at one facility
MAX_NM3: Final = 1_000_000.0  # ≈ 1,430 t of LOX as gas
# A supplier: Viet Nam produced ~1,115 t/day nationally in 2021 (MISSION.md); one plant far
# above the national total is a slip.
MAX_SUPPLIER_TPD: Final = 5_000.0
MAX_CYLINDERS: Final = 1_000_000

_TERM = re.compile(r"^\s*(?:(?P<k>[0-9.]+)\s*\*\s*)?(?P<name>[A-Za-z_][\w.]*)\s*$")


def evaluate(expr: str, values: Mapping[str, Any]) -> float | None:
    """The value of a sum expression over `values`; None when any name is unknown."""
    total = 0.0
    for raw in expr.split("+"):
        term = raw.strip()
        try:
            total += float(term)
            continue
        except ValueError:
            pass
        m = _TERM.match(term)
        if m is None:
            raise ValueError(f"bad rule expression {expr!r}")
        v = values.get(m["name"])
        if v is None:
            return None
        total += float(m["k"] or 1.0) * float(v)
    return total


def parse(table: str) -> tuple[Rule, ...]:
    """Rules from a table, one a line: `field | left op right | importance | message id`
    (`left required` for a required value)."""
    out = []
    # A line starting with white space continues the rule above it.
    lines = re.sub(r"\n\s+", " ", table.strip()).splitlines()
    for line in lines:
        field, expr, importance, key = (part.strip() for part in line.split("|"))
        m = re.match(r"^(?P<left>.+?)\s+(?P<op><=|>=|required)\s*(?P<right>.*)$", expr)
        if m is None:
            raise ValueError(f"bad rule {line!r}")
        rule = Rule(field, m["left"], Op(m["op"]), m["right"], Importance(importance), key)
        if rule.op is not Op.REQUIRED:
            evaluate(rule.left, {})  # checks the syntax now, not on the first report
            evaluate(rule.right, {})
        out.append(rule)
    return tuple(out)


def _limits(fields: Iterable[tuple[str, str]], limit: float) -> str:
    return "\n".join(f"{f} | {c} <= {limit} | error | report.error.too_large" for f, c in fields)


FACILITY_COUNTS: Final = ("patients_current", "patients_new", "discharged_evening")
THERAPY_FIELDS: Final = ("o2_mask", "o2_hfnc", "o2_niv", "o2_invasive", "o2_ecmo")

FACILITY_RULES: Final[tuple[Rule, ...]] = parse(
    "\n".join(f"{n} | {n} required | error | report.error.required" for n in FACILITY_COUNTS)
    + "\n"
    + _limits(((n, n) for n in (*FACILITY_COUNTS, *THERAPY_FIELDS)), MAX_PATIENTS)
    + "\n"
    + _limits(
        (("refilled_liquid", "refilled_liquid_kg"), ("stock_liquid", "stock_liquid_kg")), MAX_KG
    )
    + "\n"
    + _limits(
        (
            ("refilled_gas", "refilled_gas_nm3"),
            ("stock_gas", "stock_gas_nm3"),
            ("capacity", "capacity_nm3"),
            ("avg_need", "avg_need_nm3"),
        ),
        MAX_NM3,
    )
    + """
patients_new | patients_new <= patients_current
    | error | report.error.new_exceeds_current
on_oxygen | on_oxygen <= patients_current
    | error | report.error.on_oxygen_exceeds_patients
discharged_evening | discharged <= prev_patients_current + patients_new
    | error | report.error.discharged_exceeds_patients
refilled_liquid | refilled_liquid_kg <= 1.05 * tank_kg
    | error | report.error.refill_exceeds_capacity
stock_liquid | stock_liquid_kg <= 1.05 * tank_kg
    | error | report.error.stock_exceeds_capacity
patients_current | patients_current <= beds
    | warning | report.warning.over_beds
capacity | capacity_nm3 <= 1.5 * registry_capacity_nm3
    | warning | report.warning.over_registry_capacity
patients_current | patients_current <= max.patients_current
    | warning | report.warning.implausible
patients_new | patients_new <= max.patients_new
    | warning | report.warning.implausible
refilled_liquid | refilled_liquid_kg <= max.refilled_liquid_kg
    | warning | report.warning.implausible
avg_need | avg_need_nm3 <= max.avg_need_nm3
    | warning | report.warning.implausible
"""
)  # fmt: skip

# Supplier: far above its full capacity (typed, else the registry's) is refused; above it, the
# figure needs confirming.
SUPPLIER_RULES: Final[tuple[Rule, ...]] = parse(
    _limits(
        ((n, n) for n in ("production_t", "capacity_normal_tpd", "capacity_full_tpd")),
        MAX_SUPPLIER_TPD,
    )
    + "\n"
    + _limits((("lox_stock", "lox_stock_kg"),), MAX_SUPPLIER_TPD * 1000)
    + "\n"
    + _limits((("cylinders_filled", "cylinders_filled"),), MAX_CYLINDERS)
    + """
production_t | production_t required
    | error | report.error.required
capacity_full_tpd | capacity_normal_tpd <= capacity_full_tpd
    | error | supplier.error.capacity_order
production_t | production_t <= 1.5 * full_capacity
    | error | supplier.error.production_above_capacity
production_t | production_t <= full_capacity
    | warning | supplier.warning.production_above_capacity
"""
)  # fmt: skip

# The registry import (facilities and suppliers), row by row.
REGISTRY_RULES: Final[tuple[Rule, ...]] = parse(
    _limits((("beds", "beds"), ("icu_beds", "icu_beds")), MAX_PATIENTS)
    + "\n"
    + _limits(
        ((n, n) for n in ("capacity_normal_tpd", "capacity_full_tpd")),
        MAX_SUPPLIER_TPD,
    )
    + """
icu_beds | icu_beds <= beds
    | error | registry.error.icu_beds
capacity_full_tpd | capacity_normal_tpd <= capacity_full_tpd
    | error | supplier.error.capacity_order
"""
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule that failed, with the values it compared."""

    rule: Rule
    left: float | None
    right: float | None

    def error(self) -> FieldError:
        """The refusal as a field error (importance and compared values in its params)."""
        params: dict[str, Any] = {"importance": self.rule.importance.value, "rule": self.rule.left}
        if self.left is not None:
            params["value"] = _num(self.left)
        if self.right is not None:
            params["limit"] = _num(self.right)
        return FieldError(self.rule.field, self.rule.key, params)


class StoredWarning(TypedDict):
    """A warning the reporter confirmed with a reason, as stored with the report (JSON)."""

    field: str
    key: str  # the rule's message id
    value: float | None  # the figure the rule judged
    limit: float | None  # the bound it was compared with
    reason: str


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() else round(v, 3)


def check(rules: Iterable[Rule], values: Mapping[str, Any]) -> list[Finding]:
    """Every failed rule, in rule order (one finding per field and importance)."""
    out: list[Finding] = []
    seen: set[tuple[str, Importance]] = set()
    for rule in rules:
        if (rule.field, rule.importance) in seen:
            continue
        left = evaluate(rule.left, values) if rule.op is not Op.REQUIRED else None
        if rule.op is Op.REQUIRED:
            failed = values.get(rule.left) is None
        else:
            right = evaluate(rule.right, values)
            if left is None or right is None:
                continue
            failed = left > right if rule.op is Op.LE else left < right
        if failed:
            seen.add((rule.field, rule.importance))
            right_v = None if rule.op is Op.REQUIRED else evaluate(rule.right, values)
            out.append(Finding(rule, left, right_v))
    return out


def split(
    findings: Sequence[Finding], confirmed: Mapping[str, str]
) -> tuple[list[FieldError], list[StoredWarning]]:
    """Refusals (errors, and warnings not confirmed) and the confirmed warnings to store.

    A warning is confirmed by a non-empty reason under its field's name in `confirmed`. A field
    that also has an error reports the error only.
    """
    errors = [f.error() for f in findings if f.rule.importance is Importance.ERROR]
    refused = {e.field for e in errors}
    stored: list[StoredWarning] = []
    for f in findings:
        if f.rule.importance is not Importance.WARNING or f.rule.field in refused:
            continue
        reason = (confirmed.get(f.rule.field) or "").strip()
        if reason:
            stored.append(
                {
                    "field": f.rule.field,
                    "key": f.rule.key,
                    "value": f.left,
                    "limit": f.right,
                    "reason": reason,
                }
            )
        else:
            errors.append(f.error())
    return errors, stored


def history_bounds(
    history: Sequence[Mapping[str, Any]], columns: Iterable[str], z: float
) -> dict[str, float]:
    """Upper bounds learned from a facility's own history: median + z·MAD (robust to skew).

    Needs at least 7 past values; MAD is floored at 10 % of the median (and 1) so a perfectly
    steady history does not flag the smallest change.
    """
    out: dict[str, float] = {}
    for column in columns:
        past = [float(h[column]) for h in history if h.get(column) is not None]
        if len(past) < 7:
            continue
        med = statistics.median(past)
        mad = statistics.median(abs(x - med) for x in past)
        spread = max(mad * 1.4826, 0.1 * abs(med), 1.0)
        out[f"max.{column}"] = med + z * spread
    return out


def is_confirmable(errors: Sequence[FieldError]) -> bool:
    """True when every refusal is a warning (the user may confirm each with a reason)."""
    return bool(errors) and all(
        (e.params or {}).get("importance") == Importance.WARNING.value for e in errors
    )
