"""What the reporting chain's JSON routes share: who may read, and the scope checks of a path's
facility or reporting parent (refusals answer through api.refusals, exports through ExportDep)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from api.accounting.routes import not_found
from api.deps import DbDep
from api.scope import Role

from . import facility
from .public import SentReportPublic
from .syt import SentReport

FACILITY_READERS = (Role.ADMIN, Role.BYT, Role.SYT, Role.FACILITY, Role.ENGINEER)
SYT_READERS = (Role.ADMIN, Role.BYT, Role.SYT)
NATIONAL_READERS = (Role.ADMIN, Role.BYT)


async def check_facility(conn: DbDep, facility_id: int) -> None:
    if await facility.facility_ref(conn, facility_id) is None:
        raise not_found()


async def org_code(conn: DbDep, org_id: int) -> str:
    cur = await conn.execute("SELECT code FROM organisations WHERE id = %(id)s", {"id": org_id})
    row = await cur.fetchone()
    return str(row[0]) if row else str(org_id)


async def check_parent(conn: DbDep, org_id: int) -> None:
    cur = await conn.execute(
        "SELECT 1 FROM organisations WHERE id = %(id)s AND kind IN ('syt', 'ministry_office')",
        {"id": org_id},
    )
    if await cur.fetchone() is None:
        raise not_found()


def sent_public(r: SentReport) -> SentReportPublic:
    """A sent report as its answer, instants as ISO 8601 strings (as they always were)."""
    return SentReportPublic.model_validate(
        {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(r).items()}
    )
