"""Suggested allocations and the coordination map (JSON), for coordinators."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from api.coordination.http import (
    COORDINATORS,
    jsonable,
)
from api.coordination.public import (
    CoordinationMapPublic,
    MapFlowPublic,
    MapRequestPublic,
    SuggestionPublic,
)
from api.deps import CfgDep, DbDep, LocaleDep, NowDep, PrincipalDep
from api.policy import Scope, policy
from api.scope import Role

from .mapview import map_data
from .suggest import Suggestion, SuggestParams, parse_surge, suggest

router = APIRouter(prefix="/api", tags=["coordination"])


# ---------------------------------------------------------------------------- suggestions


@router.get(
    "/coordination/suggestions",
    response_model=SuggestionPublic,
    response_model_exclude_unset=True,
    dependencies=[policy(roles=COORDINATORS, scope=Scope.NATIONAL)],
    summary="Suggested shipments for the caller's scope, explained (a proposal: writes nothing)",
)
async def suggestions(
    *,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    locale: LocaleDep,
    province: Annotated[str | None, Query(max_length=8, description="BYT: one province")] = None,
    down: Annotated[
        list[int] | None, Query(description="what-if: supplier ids out of service")
    ] = None,
    surge: Annotated[
        list[str] | None, Query(description="what-if: province:factor, e.g. 79:1.5")
    ] = None,
    target_days: Annotated[float, Query(gt=0, le=30)] = 3.0,
    horizon_days: Annotated[float, Query(gt=0, le=14)] = 1.0,
) -> SuggestionPublic:
    """Runs the allocation LP on live figures; assign a shipment to make it real."""
    params = SuggestParams(
        province=province if me.role != Role.SYT else None,
        suppliers_down=tuple(down or ()),
        surge=parse_surge(surge or []),
        target_days=target_days,
        horizon_days=horizon_days,
    )
    return suggestion_public(await suggest(conn, me, params, cfg=cfg, now=now, locale=locale))


def suggestion_public(s: Suggestion) -> SuggestionPublic:
    """The proposal as its answer: dates as ISO strings, an infinite figure null (`jsonable`)."""
    body = jsonable(asdict(s))
    if s.scope.org_id is None:
        # Only an SYT's proposal names the organisation planning (unset: left out).
        del body["scope"]["org_id"]
    return SuggestionPublic.model_validate(body)


@router.get(
    "/coordination/map",
    response_model=CoordinationMapPublic,
    response_model_exclude_unset=True,
    dependencies=[policy(roles=COORDINATORS, scope=Scope.NATIONAL)],
    summary="Coordination map: open requests, flows in flight and (optionally) suggested flows",
)
async def coordination_map(
    *,
    conn: DbDep,
    me: PrincipalDep,
    cfg: CfgDep,
    now: NowDep,
    locale: LocaleDep,
    suggested: bool = False,
) -> CoordinationMapPublic:
    """Everything the map draws, in the caller's scope; suggested flows are proposals only."""
    plan = None
    if suggested:
        # First, while the connection is idle, so that it runs in its read-only transaction.
        plan = await suggest(conn, me, SuggestParams(), cfg=cfg, now=now, locale=locale)
    data = await map_data(conn, me)
    out = CoordinationMapPublic(
        requests=[MapRequestPublic.model_validate(jsonable(asdict(r))) for r in data.requests],
        flows=[MapFlowPublic.model_validate(jsonable(asdict(f))) for f in data.flows],
    )
    if plan is None:
        return out  # no suggested flows nor note: left out of the answer
    body = suggestion_public(plan)
    return out.model_copy(update={"suggested_flows": body.shipments, "note": body.note})
