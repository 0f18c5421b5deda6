"""Seed fields 1 and 2 of the SYT report: the status filter and the facilities chosen.

Apart from api.reports.syt so that the typed answers (api.reports.public), which the SYT service
returns, may use them without an import cycle."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class StatusFilter(StrEnum):
    """Seed field 1: All (default) / Enough / Needs more."""

    ALL = "all"
    ENOUGH = "enough"
    NEEDS_MORE = "needs_more"


class SytFilters(BaseModel):
    """Seed fields 1 and 2 (the date, field 3, is the report's own)."""

    model_config = ConfigDict(extra="forbid")

    status: StatusFilter = StatusFilter.ALL
    facility_ids: list[int] | None = None
