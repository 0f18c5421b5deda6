"""Errors of the coordination package: refused input (with its field) and impossible states."""

from __future__ import annotations

from typing import Any

from oxy import OxyError

from .messages import text


class CoordinationError(OxyError):
    """A refused action; `status` is the HTTP status the API answers with."""

    def __init__(self, key: str, *, field: str = "", status: int = 422, **params: Any) -> None:
        super().__init__(f"{field}: {key}" if field else key)
        self.key = key
        self.field = field
        self.status = status
        self.params = params

    def as_dict(self, locale: str) -> dict[str, Any]:
        """JSON form with the translated message."""
        return {
            "field": self.field,
            "key": self.key,
            "params": self.params,
            "message": text(self.key, locale, self.params),
        }


class NotFound(CoordinationError):
    """The object does not exist or is outside the caller's scope (never say which)."""

    def __init__(self) -> None:
        super().__init__("not found", status=404)
