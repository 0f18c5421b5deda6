"""What the reporting rate's JSON routes and pages share: who may read, the period parameter,
and the figures of the nation or of one department as the caller may see them (an SYT officer
never counts another province's facilities)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from api.scope import Principal, Role
from api.web.queries import department

from .rate import MAX_DAYS, default_period, reporting_rate

NATIONAL_READERS = (Role.ADMIN, Role.BYT)
PROVINCE_READERS = (Role.ADMIN, Role.BYT, Role.SYT)
DaysQ = Annotated[int, Query(ge=1, le=MAX_DAYS, description="Days in the period (default 30)")]


async def national(conn: Any, me: Principal, cfg: Any, now: Any, days: int) -> dict[str, Any]:
    """The national figures over the last `days` days, within `me`'s visible facilities."""
    return await reporting_rate(conn, default_period(now, cfg, days), visible=me.facility_ids)


async def province(
    conn: Any, me: Principal, org_id: int, *, cfg: Any, now: Any, days: int
) -> dict[str, Any]:
    """One department's figures (404 when `org_id` is not a department)."""
    await department(conn, org_id)
    return await reporting_rate(
        conn, default_period(now, cfg, days), visible=me.facility_ids, parents=[org_id]
    )
