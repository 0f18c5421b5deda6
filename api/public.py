"""Building blocks of the typed response models (`*Public`) shared by the routers.

The services produce JSON-ready dicts; a route declares the shape it answers with
`response_model=...Public`, so the OpenAPI document is a contract and FastAPI checks every answer
against it. Instants are passed through as the services format them (ISO 8601 with offset), so
typing a route does not change its bytes.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Instant = Annotated[
    str,
    Field(description="ISO 8601 instant with offset", json_schema_extra={"format": "date-time"}),
]
# One value of a stored snapshot, a change or a message's parameters (null: unknown or absent).
Scalar = bool | int | float | str | None


class PublicModel(BaseModel):
    """A response body: every field documented, nothing else sent."""

    model_config = ConfigDict(extra="ignore")


class RevisionPublic(PublicModel):
    """A report stored as a new revision."""

    revision: int = Field(description="The report's revision number after this change")
