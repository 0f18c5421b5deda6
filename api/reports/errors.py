"""Errors of the reports package: refused figures (field by field) and locked reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oxy import OxyError

from .messages import text


@dataclass(frozen=True, slots=True)
class FieldError:
    """One refused field: its name, the message id and the values the message refers to."""

    field: str
    key: str
    params: dict[str, Any] | None = None

    def as_dict(self, locale: str) -> dict[str, Any]:
        """JSON form with the translated message."""
        return {
            "field": self.field,
            "key": self.key,
            "message": text(self.key, locale),
            "params": self.params or {},
        }


class ReportError(OxyError):
    """Base of the package's errors."""


class ValidationFailed(ReportError):
    """Impossible figures: nothing was stored."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.key}" for e in errors))
        self.errors = errors


class Locked(ReportError):
    """The report cannot be changed; `key` says why (approved / past deadline / closed)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class Conflict(ReportError):
    """The requested transition is not allowed in the report's state."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class Incomplete(Conflict):
    """Sending or approving an SYT report whose sums do not cover every expected facility, without
    the explicit confirmation: `fields` maps each incomplete seed field to its completeness
    ({"contributors": n, "expected": m})."""

    def __init__(self, fields: dict[str, dict[str, int]]) -> None:
        super().__init__("syt.error.incomplete")
        self.fields = fields
