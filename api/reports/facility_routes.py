"""The facility daily report's JSON routes: live and pre-filled, filing, the morning update.

Every route declares its policy (api.policy); refused input answers through the
handlers of api.refusals (422 field by field, 409 with why)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date

from fastapi import APIRouter

from api.audit import audit
from api.deps import CfgDep, DbDep, LocaleDep, NowDep, PrincipalDep
from api.policy import Scope, policy
from api.public import RevisionPublic
from api.reports.http import (
    FACILITY_READERS,
    check_facility,
)
from api.reports.public import (
    FacilityFiguresPublic,
    FacilityReportPublic,
    FacilityReportSavedPublic,
    FacilityRevisionPublic,
    PrefillPublic,
    ReportWarningPublic,
)
from api.scope import Role

from . import facility
from .messages import text

router = APIRouter(prefix="/api", tags=["reports"])


# --------------------------------------------------------------------------------------------
# Facility daily report


@router.get(
    "/facilities/{facility_id}/reports/{day}",
    response_model=FacilityReportPublic,
    response_model_exclude_unset=True,
    dependencies=[policy(roles=FACILITY_READERS, scope=Scope.FACILITY)],
    summary="Facility daily report for day D (16:00 D−1 → 16:00 D), live and pre-filled",
)
async def get_facility_report(
    facility_id: int, day: date, conn: DbDep, cfg: CfgDep, now: NowDep
) -> FacilityReportPublic:
    """The report with its live figures, pre-filled telemetry, lock reason and revisions."""
    await check_facility(conn, facility_id)
    return facility_report_public(
        await facility.report_view(conn, facility_id, day, cfg=cfg, now=now)
    )


def facility_report_public(v: facility.FacilityReportView) -> FacilityReportPublic:
    """The report as its answer; the pre-fill empty when no tank is monitored."""
    pre = v.prefill
    return FacilityReportPublic(
        facility_id=v.facility_id,
        report_day=v.report_day,
        revision=v.revision,
        submitted_at=v.submitted_at,
        late=v.late,
        discharged_morning=v.discharged_morning,
        overrides=v.overrides,
        entered_units=v.entered_units,
        locked=v.locked,
        figures=FacilityFiguresPublic.model_validate(v.figures.as_dict()),
        prefill=(
            PrefillPublic(
                refilled_liquid_kg=pre.refilled_liquid_kg,
                stock_liquid_kg=pre.stock_liquid_kg,
                usable_liquid_kg=pre.usable_liquid_kg,
                consumption_kg=pre.consumption_kg,
                avg_daily_kg=pre.avg_daily_kg,
                coverage=pre.coverage,
            )
            if pre is not None
            else PrefillPublic()
        ),
        revisions=[FacilityRevisionPublic.model_validate(asdict(r)) for r in v.revisions],
    )


@router.put(
    "/facilities/{facility_id}/reports/{day}",
    response_model=FacilityReportSavedPublic,
    dependencies=[policy(roles=(Role.FACILITY, Role.ADMIN), scope=Scope.FACILITY)],
    summary="File or edit the 16:00 report (a new revision; reasons for changed pre-fills)",
)
async def put_facility_report(
    *,
    facility_id: int,
    day: date,
    body: facility.FacilityReportIn,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    locale: LocaleDep,
) -> FacilityReportSavedPublic:
    """All-or-nothing: refused fields are listed one by one, nothing is stored."""
    await check_facility(conn, facility_id)
    async with conn.transaction():
        saved = await facility.file_report(
            conn, facility_id, day, body, author=me.username, cfg=cfg, now=now
        )
        await audit(
            conn,
            me,
            "file",
            "facility_report",
            f"{facility_id}/{day}",
            saved.before,
            saved.snapshot,
            org_id=facility_id,
        )
    return FacilityReportSavedPublic(
        revision=saved.revision,
        late=saved.late,
        warnings=[
            ReportWarningPublic.model_validate({**w, "message": text(w["key"], locale)})
            for w in saved.warnings
        ],
    )


@router.put(
    "/facilities/{facility_id}/reports/{day}/morning",
    response_model=RevisionPublic,
    dependencies=[policy(roles=(Role.FACILITY, Role.ADMIN), scope=Scope.FACILITY)],
    summary="Morning update: discharges as of 08:00 (added to the 16:00 report's discharges)",
)
async def put_morning_update(
    *,
    facility_id: int,
    day: date,
    body: facility.MorningUpdateIn,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
) -> RevisionPublic:
    """Record the morning discharge figure."""
    await check_facility(conn, facility_id)
    async with conn.transaction():
        saved = await facility.morning_update(
            conn,
            facility_id,
            day,
            body,
            author=me.username,
            cfg=cfg,
            now=now,
        )
        await audit(
            conn,
            me,
            "morning_update",
            "facility_report",
            f"{facility_id}/{day}",
            {"discharged_morning": (saved.before or {}).get("discharged_morning")},
            {"discharged_morning": body.discharged_morning},
            org_id=facility_id,
        )
    return RevisionPublic(revision=saved.revision)
