"""The accounts' JSON shapes: the caller, API tokens, accounts and audit records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class Me(BaseModel):
    """The caller's identity and scope."""

    user_id: int
    username: str
    display_name: str
    role: str
    org_id: int | None
    national: bool
    facility_ids: list[int] | None
    locale: str


class TokenIn(BaseModel):
    """A new API token request."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    expires_at: datetime | None = None


class TokenOut(BaseModel):
    """An API token as listed (never its secret)."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenIssued(BaseModel):
    """A newly issued token: `token` is shown this once."""

    id: int
    name: str
    token: str


class UserOut(BaseModel):
    """An account as administrators see it."""

    id: int
    username: str
    display_name: str
    role: str
    org_code: str | None
    national: bool
    locale: str
    is_active: bool
    must_change_password: bool
    created_at: datetime
    disabled_at: datetime | None


class DelegatedUserOut(BaseModel):
    """An account as the issuing department or Ministry sees it."""

    id: int
    username: str
    display_name: str
    role: str
    org_code: str | None
    org_name: str | None
    is_active: bool
    must_change_password: bool
    created_at: datetime
    disabled_at: datetime | None


class AuditEntry(BaseModel):
    """One audit record."""

    id: int
    at: datetime
    username: str
    role: str | None
    action: str
    entity: str
    entity_id: str | None
    org_id: int | None
    before: Any
    after: Any
