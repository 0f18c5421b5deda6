"""HTTP routes of the accounting: tank figures and contents series, corrections of readings.

Every route declares its policy; the facility in the path is checked against the caller's scope
by the policy, and tanks, sensors and corrections are checked to belong to that facility.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict

from api.audit import audit
from api.deps import CfgDep, DbDep, LocaleDep, NowDep, PrincipalDep
from api.policy import Scope, policy
from api.reports.messages import text
from api.scope import Role

from . import correction_preview as cp
from . import corrections as corr
from .config import AccountingConfig
from .public import (
    AccountingPublic,
    CorrectionCreatedPublic,
    CorrectionPublic,
    SeriesPublic,
)
from .series import detect_refills, refill_regions
from .telemetry import (
    Source,
    calibrations,
    contents_series,
    dense_series,
    facility_telemetry,
    level_sensors,
)
from .windows import last_complete_day, window

router = APIRouter(prefix="/api", tags=["accounting"])

READERS = (Role.ADMIN, Role.BYT, Role.SYT, Role.FACILITY, Role.ENGINEER)
CORRECTORS = (Role.ADMIN, Role.FACILITY, Role.ENGINEER)


def not_found() -> HTTPException:
    """404 without revealing whether the object exists outside the caller's scope."""
    return HTTPException(status.HTTP_404_NOT_FOUND, "not found")


class CorrectionIn(BaseModel):
    """A correction of one sensor's readings over a time range, with its reason."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    sensor_id: int
    ts_from: datetime
    ts_to: datetime
    action: corr.CorrectionAction
    value: float | None = None
    # The unit `value` is typed in: the sensor's own, kg of LOX in the tank, or % of capacity.
    value_unit: cp.ValueUnit = cp.ValueUnit.SENSOR
    reason: str
    # A correction that creates a refill or flips the status is saved only when confirmed.
    confirm: bool = False


class RevertIn(BaseModel):
    """Why a correction is reverted."""

    reason: str


def _correction_json(c: corr.Correction) -> dict[str, Any]:
    return {
        "id": c.id,
        "sensor_id": c.sensor_id,
        "ts_from": c.ts_from.isoformat(),
        "ts_to": c.ts_to.isoformat(),
        "action": c.action.value,
        "value": c.value,
        "reason": c.reason,
        "created_by": c.created_by,
        "created_at": c.created_at.isoformat(),
        "reverted_at": c.reverted_at.isoformat() if c.reverted_at else None,
        "reverted_by": c.reverted_by,
        "revert_reason": c.revert_reason,
        "active": c.reverted_at is None,
    }


@router.get(
    "/facilities/{facility_id}/accounting",
    response_model=AccountingPublic,
    dependencies=[policy(roles=READERS, scope=Scope.FACILITY)],
    summary="Telemetry figures of a facility for a report day (kg LOX and m3 at the reference)",
)
async def facility_accounting(
    facility_id: int,
    conn: DbDep,
    cfg: CfgDep,
    now: NowDep,
    day: Annotated[date | None, Query()] = None,
) -> dict[str, Any]:
    """Stock, usable stock, refills, consumption, 7-day average of the facility's tanks."""
    d = day or last_complete_day(now, cfg) + timedelta(days=1)
    t = (await facility_telemetry(conn, [facility_id], d, cfg, now=now))[facility_id]
    ref = cfg.reference

    def m3(kg: float | None) -> float | None:
        return None if kg is None else ref.kg_to_m3(kg)

    return {
        "facility_id": facility_id,
        "report_day": d.isoformat(),
        "window": {
            "start": window(d, cfg).start.isoformat(),
            "end": window(d, cfg).end.isoformat(),
        },
        "monitored_tanks": t.monitored_tanks,
        "stock_kg": t.stock_kg,
        "stock_m3": m3(t.stock_kg),
        "usable_kg": t.usable_kg,
        "usable_m3": m3(t.usable_kg),
        "refilled_kg": t.refilled_kg,
        "refilled_m3": m3(t.refilled_kg),
        "refills": t.refills,
        "consumption_kg": t.consumption_kg,
        "consumption_m3": m3(t.consumption_kg),
        "avg_daily_kg": t.avg_daily_kg,
        "avg_daily_m3": m3(t.avg_daily_kg),
        "capacity_kg": t.capacity_kg,
        "cylinder_capacity_m3": t.cylinder_capacity_nm3,
        "coverage": t.coverage,
        "gas_unit": ref.label,
    }


@router.get(
    "/facilities/{facility_id}/tanks/{tank_id}/series",
    response_model=SeriesPublic,
    dependencies=[policy(roles=READERS, scope=Scope.FACILITY)],
    summary="Contents series of a tank (corrected readings) and its refills",
)
async def tank_series(
    *,
    facility_id: int,
    tank_id: int,
    conn: DbDep,
    cfg: CfgDep,
    start: datetime,
    end: datetime,
    minutes: Annotated[int, Query(ge=1, le=1440)] = 60,
) -> dict[str, Any]:
    """Contents (kg, and m3 at the reference) per bucket and the refills detected."""
    if await corr.tank_facility(conn, tank_id) != facility_id:
        raise not_found()
    if end <= start or end - start > timedelta(days=92):
        raise HTTPException(422, "range must be 0 < end-start <= 92 days")
    sensors = await level_sensors(conn, [tank_id])
    sensor = sensors.get(tank_id)
    if sensor is None:
        return {"tank_id": tank_id, "monitored": False, "points": [], "refills": []}
    cals = await calibrations(conn, [tank_id])
    width = timedelta(minutes=minutes)
    points = await contents_series(
        conn,
        sensor,
        cals.get(tank_id),
        start,
        end,
        width=width,
        source=Source.STORED if minutes == 60 else Source.RAW,
    )
    dense = await dense_series(conn, sensor, cals.get(tank_id), refill_regions(points, cfg))
    refills = detect_refills(points, cfg, dense)
    ref = cfg.reference
    return {
        "tank_id": tank_id,
        "monitored": True,
        "gas_unit": ref.label,
        "points": [{"ts": p.ts.isoformat(), "kg": p.kg, "m3": ref.kg_to_m3(p.kg)} for p in points],
        "refills": [
            {
                "started_at": r.started_at.isoformat(),
                "ended_at": r.ended_at.isoformat(),
                "amount_kg": r.amount_kg,
                "amount_m3": ref.kg_to_m3(r.amount_kg),
            }
            for r in refills
        ],
    }


@router.get(
    "/facilities/{facility_id}/tanks/{tank_id}/corrections",
    response_model=list[CorrectionPublic],
    dependencies=[policy(roles=READERS, scope=Scope.FACILITY)],
    summary="Corrections of a tank's readings (active and reverted)",
)
async def list_corrections(facility_id: int, tank_id: int, conn: DbDep) -> list[dict[str, Any]]:
    """Every correction of the tank's sensors, newest first."""
    if await corr.tank_facility(conn, tank_id) != facility_id:
        raise not_found()
    return [_correction_json(c) for c in await corr.for_tank(conn, tank_id)]


@router.post(
    "/facilities/{facility_id}/corrections",
    response_model=CorrectionCreatedPublic,
    dependencies=[policy(roles=CORRECTORS, scope=Scope.FACILITY)],
    status_code=201,
    summary="Mark readings invalid or replace their value, with a reason (raw kept, audited)",
)
async def create_correction(
    *,
    facility_id: int,
    body: CorrectionIn,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    locale: LocaleDep,
) -> dict[str, Any]:
    """Create a correction; derived figures are recomputed from raw + corrections.

    The value may be typed in kg or % and is stored in the sensor's unit. When the preview shows
    a refill created or a status flipped, the answer is 409 with the preview unless `confirm`."""
    if await corr.sensor_facility(conn, body.sensor_id) != facility_id:
        raise not_found()
    async with conn.transaction():
        effect = await _preview(conn, body, me.username, cfg, now)
        if effect.needs_confirmation and not body.confirm:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                {
                    "key": "correction.error.confirm",
                    "message": text("correction.error.confirm", locale),
                    "preview": effect.as_dict(),
                },
            )
        c = await corr.create(
            conn,
            sensor_id=body.sensor_id,
            ts_from=body.ts_from,
            ts_to=body.ts_to,
            action=body.action,
            value=effect.value_sensor,
            reason=body.reason,
            author=me.username,
            cfg=cfg,
        )
        out = _correction_json(c)
        after = {**out, "typed": {"value": body.value, "unit": body.value_unit.value}}
        await audit(conn, me, "create", "correction", c.id, None, after, org_id=facility_id)
    return {**out, "preview": effect.as_dict()}


async def _preview(
    conn: DbDep, body: CorrectionIn, author: str, cfg: AccountingConfig, now: datetime
) -> cp.Preview:
    return await cp.preview(
        conn,
        sensor_id=body.sensor_id,
        ts_from=body.ts_from,
        ts_to=body.ts_to,
        action=body.action,
        value=body.value,
        unit=body.value_unit,
        reason=body.reason,
        author=author,
        cfg=cfg,
        now=now,
    )


@router.post(
    "/facilities/{facility_id}/corrections/preview",
    response_model=cp.Preview,
    dependencies=[policy(roles=CORRECTORS, scope=Scope.FACILITY)],
    summary="What a correction would change (readings, refills, consumption, days of supply)",
)
async def preview_correction(
    *,
    facility_id: int,
    body: CorrectionIn,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
) -> dict[str, Any]:
    """Nothing is saved: the correction is applied in a transaction that is rolled back."""
    if await corr.sensor_facility(conn, body.sensor_id) != facility_id:
        raise not_found()
    effect = await _preview(conn, body, me.username, cfg, now)
    return effect.as_dict()


@router.post(
    "/facilities/{facility_id}/corrections/{correction_id}/revert",
    response_model=CorrectionPublic,
    dependencies=[policy(roles=CORRECTORS, scope=Scope.FACILITY)],
    summary="Revert a correction (kept in the history, audited)",
)
async def revert_correction(
    *,
    facility_id: int,
    correction_id: int,
    body: RevertIn,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
) -> dict[str, Any]:
    """Revert an active correction."""
    existing = await corr.get(conn, correction_id)
    if existing is None or await corr.sensor_facility(conn, existing.sensor_id) != facility_id:
        raise not_found()
    async with conn.transaction():
        c = await corr.revert(conn, correction_id, author=me.username, reason=body.reason, cfg=cfg)
        if c is None:
            raise HTTPException(status.HTTP_409_CONFLICT, "already reverted")
        out = _correction_json(c)
        await audit(
            conn,
            me,
            "revert",
            "correction",
            c.id,
            _correction_json(existing),
            out,
            org_id=facility_id,
        )
    return out
