"""What the coordination's JSON routes share: who may call them, and rows made JSON-safe (ISO
dates, volumes at the reference conditions); the package's refusals answer through api.refusals
with the app-wide 422 body (api.errors.ValidationOut)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import Path
from pydantic import BaseModel

from api.accounting.config import AccountingConfig
from api.scope import Role

from .public import SupportRequestPublic
from .support import SupportRequest

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

M = TypeVar("M", bound=BaseModel)


Id = Annotated[int, Path(ge=1, le=2**62)]

REQUEST_READERS = (Role.ADMIN, Role.BYT, Role.SYT, Role.FACILITY)
REQUESTERS = (Role.ADMIN, Role.BYT, Role.SYT, Role.FACILITY)
COORDINATORS = (Role.ADMIN, Role.BYT, Role.SYT)
PARTIES = (Role.ADMIN, Role.BYT, Role.SYT, Role.FACILITY, Role.SUPPLIER)
SOURCES = (Role.ADMIN, Role.SUPPLIER, Role.FACILITY)  # a facility may lend from its surplus
RECIPIENTS = (Role.ADMIN, Role.FACILITY)


def iso(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def public(model: type[M], result: DataclassInstance) -> M:
    """A service's typed result as the route's response model, instants as ISO 8601 strings
    (as `iso` formats a row: the bytes of the answer do not depend on the result's type)."""
    return model.model_validate(iso(asdict(result)))


def request_json(r: SupportRequest, cfg: AccountingConfig) -> dict[str, Any]:
    """A support request as its JSON body, with the amounts in gas volume too."""
    out = iso(asdict(r))
    ref = cfg.reference
    out["amount_nm3"] = ref.kg_to_m3(r.amount_kg)
    out["remaining_nm3"] = ref.kg_to_m3(r.remaining_kg)
    out["units"] = {"mass": "kg LOX", "gas": ref.label}
    return out


def request_public(r: SupportRequest, cfg: AccountingConfig) -> SupportRequestPublic:
    """A support request as the routes answer it."""
    return SupportRequestPublic.model_validate(request_json(r, cfg))


def jsonable(v: Any) -> Any:
    """Dates and infinities made JSON-safe (an unbounded tank capacity is null)."""
    import math
    from datetime import date

    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, datetime | date):
        return v.isoformat()
    return v
