"""Suggested allocation from live data: who should ship how much to whom, explained.

Needs come from each facility's live figures (usable stock, average daily need, days of supply),
its open requests and what is already on its way; supplies from each supplier's latest report
(stock plus production over the horizon, less what it has already been assigned) and from
facilities with a large surplus. The scope is the caller's: an SYT plans its province's
facilities with the suppliers located in its province, BYT the country (or one province). The
result is a proposal only: nothing is written (the whole computation runs in a read-only
transaction, on raw telemetry rather than the stored-window cache).
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from psycopg import AsyncConnection, pq

from api.accounting.config import AccountingConfig
from api.accounting.stock import facility_usable_kg, urgency_of
from api.accounting.telemetry import Source
from api.public import Scalar
from api.scope import NATIONAL_ROLES, Principal, Role

from .allocation import Need, Plan, Supply, allocate, apply_what_if, road_km
from .errors import CoordinationError
from .live import facility_figures, facility_sites, free_capacity_kg, open_day, supplier_sites
from .messages import Message, said

logger = logging.getLogger(__name__)

FACILITY_REACH_KM = 300.0  # a facility lending from its surplus hires a tanker for short trips


@dataclass(frozen=True, slots=True)
class SuggestParams:
    """What-if and planning parameters of one suggestion run."""

    province: str | None = None  # national roles only: plan one province
    suppliers_down: tuple[int, ...] = ()
    surge: dict[str, float] = field(default_factory=dict)
    target_days: float = 3.0  # bring every facility up to this many days of supply
    horizon_days: float = 1.0  # production counted over this many days
    surplus_days: float = 10.0  # a facility above this many days may lend the rest


def parse_surge(items: list[str]) -> dict[str, float]:
    """'79:1.5' items → {'79': 1.5}; refuses anything else."""
    out: dict[str, float] = {}
    for item in items:
        code, sep, factor = item.partition(":")
        try:
            value = float(factor)
        except ValueError:
            raise CoordinationError("coord.error.surge", field="surge") from None
        if not sep or not code.strip() or not (0 <= value <= 100) or math.isnan(value):
            raise CoordinationError("coord.error.surge", field="surge")
        out[code.strip()] = value
    return out


_OPEN_REQUESTS = """
SELECT r.facility_id, r.id, r.amount_kg - coalesce(
         (SELECT sum(a.amount_kg) FROM assignments a WHERE a.request_id = r.id
          AND a.state IN ('pending', 'accepted', 'dispatched', 'delivered')), 0),
       r.days_of_supply
FROM support_requests r
WHERE r.state IN ('open', 'partly_assigned') AND r.facility_id = ANY(%(ids)s::bigint[])
"""
_IN_FLIGHT = """
SELECT r.facility_id, sum(a.amount_kg)
FROM assignments a JOIN support_requests r ON r.id = a.request_id
WHERE a.state IN ('pending', 'accepted', 'dispatched') AND r.facility_id = ANY(%(ids)s::bigint[])
GROUP BY r.facility_id
"""
_COMMITTED = """
SELECT source_id, sum(amount_kg) FROM assignments
WHERE state IN ('pending', 'accepted') GROUP BY source_id
"""
_SYT_PROVINCE = "SELECT province_code FROM organisations WHERE id = %(id)s"
_PROVINCE_FACILITIES = """
SELECT id FROM organisations WHERE kind = 'facility'
  AND (%(province)s::text IS NULL OR province_code = %(province)s)
"""


@dataclass(frozen=True, slots=True)
class Site:
    """A facility or a source of the scenario: who and where, and the figures that explain its
    part in the plan (a facility's stock and need; a supplier's stock, production, commitments).
    """

    id: int
    kind: str  # "facility" or "supplier"
    code: str
    name: str
    province: str | None
    lat: float | None
    lon: float | None
    # A facility's figures.
    usable_kg: float | None = None
    avg_daily_kg: float | None = None
    days_of_supply: float | None = None
    urgency: str | None = None
    in_flight_kg: float = 0.0
    requested_kg: float = 0.0
    surplus_kg: float = 0.0
    # A supplier's figures.
    supplier_kind: str | None = None
    stock_kg: float | None = None
    production_tpd: float | None = None
    report_day: date | None = None
    committed_kg: float = 0.0


@dataclass(frozen=True, slots=True)
class Excluded:
    """A facility or source left out of the model, and why (a message id and its parameters)."""

    id: int
    name: str
    key: str
    params: dict[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Scope:
    """What the suggestion covers: its level (province or national), the province, and the SYT
    planning (absent for national roles: `org_id` is then left out of the answer)."""

    level: str
    province: str | None
    org_id: int | None = None


@dataclass(frozen=True, slots=True)
class Point:
    """Where a shipment starts or ends (unknown coordinates: None)."""

    lat: float | None
    lon: float | None


@dataclass(frozen=True, slots=True)
class Amount:
    """An amount as typed: value and unit."""

    value: float
    unit: str


@dataclass(frozen=True, slots=True)
class AssignPart:
    """A shipment ready to post to /api/coordination/requests/{id}/assignments as one part."""

    source_id: int
    amount: Amount


@dataclass(frozen=True, slots=True)
class SuggestedShipment:
    """One proposed shipment from a source (supplier, or a facility's surplus) to a facility."""

    source_id: int
    source_kind: str
    source_name: str | None
    source_province: str | None
    facility_id: int
    facility_name: str | None
    facility_province: str | None
    kg: float
    nm3: float
    road_km: float
    from_: Point
    to: Point
    open_request_ids: list[int]
    reason: Message
    assign_part: AssignPart


@dataclass(frozen=True, slots=True)
class SuggestedFacility:
    """Per facility: what it needs, what it gets and why, and what stays uncovered and why."""

    facility_id: int
    code: str | None
    name: str | None
    province: str | None
    days_of_supply: float | None
    urgency: str | None
    urgency_weight: float | None
    usable_kg: float | None
    avg_daily_kg: float | None
    requested_kg: float | None
    in_flight_kg: float | None
    need_kg: float
    covered_kg: float
    unmet_kg: float
    open_request_ids: list[int]
    reasons: list[Message]


@dataclass(frozen=True, slots=True)
class SuggestionSource:
    """A source the model could draw from, with what it has left after the proposal."""

    id: int
    kind: str
    name: str | None
    province: str | None
    available_kg: float | None
    left_kg: float | None
    down: bool
    report_day: date | None
    lat: float | None
    lon: float | None


@dataclass(frozen=True, slots=True)
class SuggestionExcluded:
    """A facility or source left out of the model, with the reason as a message."""

    id: int
    name: str | None
    key: str
    params: dict[str, Scalar]
    message: str


@dataclass(frozen=True, slots=True)
class SuggestionParameters:
    """The what-if and planning parameters the proposal was computed with."""

    suppliers_down: list[int]
    surge: dict[str, float]
    target_days: float
    horizon_days: float
    surplus_days: float


@dataclass(frozen=True, slots=True)
class SuggestionTotals:
    """What the proposal covers and leaves uncovered, in kg LOX."""

    need_kg: float
    covered_kg: float
    unmet_kg: float
    unmet_weighted: float | None
    transport_kg_km: float | None


@dataclass(frozen=True, slots=True)
class Suggestion:
    """The allocation's proposal for the caller's scope (nothing is written)."""

    proposal_only: bool
    note: Message
    scope: Scope
    parameters: SuggestionParameters
    computed_at: datetime
    units: dict[str, str]
    status: str
    solve_ms: float
    totals: SuggestionTotals
    shipments: list[SuggestedShipment]
    facilities: list[SuggestedFacility]
    sources: list[SuggestionSource]
    excluded: list[SuggestionExcluded]


@dataclass
class Scenario:
    """The model's input and what is needed to explain its output."""

    scope: Scope
    needs: list[Need]
    supplies: list[Supply]
    info: dict[int, Site]  # org id → the facility or source
    open_requests: dict[int, list[int]]
    excluded: list[Excluded]


async def _scope(
    conn: AsyncConnection[Any], principal: Principal, params: SuggestParams
) -> tuple[Scope, list[int], str | None]:
    """(scope description, facility ids, supplier province or None for all)."""
    if principal.role == Role.SYT:
        cur = await conn.execute(_SYT_PROVINCE, {"id": principal.org_id})
        row = await cur.fetchone()
        province = row[0] if row else None
        ids = sorted(principal.facility_ids or ())
        return Scope("province", province, principal.org_id), ids, (province or "--")
    assert principal.role in NATIONAL_ROLES
    cur = await conn.execute(_PROVINCE_FACILITIES, {"province": params.province})
    ids = [int(r[0]) for r in await cur.fetchall()]
    level = "province" if params.province else "national"
    return Scope(level, params.province), ids, params.province


async def build(
    conn: AsyncConnection[Any],
    principal: Principal,
    params: SuggestParams,
    cfg: AccountingConfig,
    now: datetime,
) -> Scenario:
    """Needs and supplies of the caller's scope from live data."""
    ref = cfg.reference
    scope, ids, supplier_province = await _scope(conn, principal, params)
    figs = await facility_figures(conn, ids, cfg, now, source=Source.RAW) if ids else {}
    sites = await facility_sites(conn, ids) if ids else {}
    cur = await conn.execute(_OPEN_REQUESTS, {"ids": ids})
    requested: dict[int, float] = defaultdict(float)
    request_dos: dict[int, float | None] = {}
    open_requests: dict[int, list[int]] = defaultdict(list)
    for fid, rid, rest, dos in await cur.fetchall():
        requested[int(fid)] += max(0.0, float(rest))
        open_requests[int(fid)].append(int(rid))
        request_dos.setdefault(int(fid), dos)
    cur = await conn.execute(_IN_FLIGHT, {"ids": ids})
    in_flight = {int(r[0]): float(r[1]) for r in await cur.fetchall()}
    info: dict[int, Site] = {}
    excluded: list[Excluded] = []
    needs: list[Need] = []
    supplies: list[Supply] = []
    for fid in ids:
        site = sites.get(fid)
        f = figs.get(fid)
        if site is None or f is None:
            continue  # inactive today
        avg_kg = ref.m3_to_kg(f.avg_need_nm3) if f.avg_need_nm3 is not None else None
        # Unknown stock is no shortfall and no surplus (only an open request says a need).
        usable_kg = facility_usable_kg(f.usable_liquid_kg, f.stock_gas_nm3, ref)
        dos = f.days_of_supply if f.days_of_supply is not None else request_dos.get(fid)
        coming = in_flight.get(fid, 0.0)
        shortfall = (
            max(0.0, params.target_days * avg_kg - usable_kg)
            if avg_kg and usable_kg is not None
            else 0.0
        )
        need_kg = max(shortfall - coming, requested.get(fid, 0.0), 0.0)
        surplus = (
            usable_kg - params.surplus_days * avg_kg
            if avg_kg and usable_kg is not None and dos is not None and dos > params.surplus_days
            else 0.0
        )
        info[fid] = Site(
            id=fid,
            kind="facility",
            code=site.code,
            name=site.name,
            province=site.province,
            lat=site.lat,
            lon=site.lon,
            usable_kg=usable_kg,
            avg_daily_kg=avg_kg,
            days_of_supply=dos,
            urgency=urgency_of(dos, cfg.needs_more_days).value,
            in_flight_kg=coming,
            requested_kg=requested.get(fid, 0.0),
            surplus_kg=max(0.0, surplus),
        )
        if need_kg <= 0 and surplus <= 0:
            if usable_kg is None and not requested.get(fid):
                # Not "enough": nobody knows. Said, so that a coordinator can ask for a report.
                excluded.append(Excluded(fid, site.name, "coord.why.stock_unknown"))
            continue
        if site.lat is None or site.lon is None:
            excluded.append(Excluded(fid, site.name, "coord.why.no_coordinates"))
            continue
        if need_kg > 0:
            stock = f.stock_liquid_kg
            needs.append(
                Need(
                    fid,
                    site.name,
                    site.province or "",
                    site.lat,
                    site.lon,
                    need_kg,
                    max(0.0, free_capacity_kg(site, stock) - coming),
                    dos,
                    cfg.needs_more_days,
                )
            )
        elif surplus > 0:
            supplies.append(
                Supply(
                    fid,
                    site.name,
                    site.province or "",
                    site.lat,
                    site.lon,
                    surplus,
                    max_km=FACILITY_REACH_KM,
                )
            )
    cur = await conn.execute(_COMMITTED)
    committed = {int(r[0]): float(r[1]) for r in await cur.fetchall()}
    for s in await supplier_sites(conn, open_day(now, cfg), supplier_province):
        available = max(
            0.0,
            s.stock_kg + s.production_tpd * 1000.0 * params.horizon_days - committed.get(s.id, 0.0),
        )
        info[s.id] = Site(
            id=s.id,
            kind="supplier",
            supplier_kind=s.kind,
            code=s.code,
            name=s.name,
            province=s.province,
            lat=s.lat,
            lon=s.lon,
            stock_kg=s.stock_kg,
            production_tpd=s.production_tpd,
            report_day=s.report_day,
            committed_kg=committed.get(s.id, 0.0),
        )
        if s.lat is None or s.lon is None:
            excluded.append(Excluded(s.id, s.name, "coord.why.no_coordinates"))
            continue
        supplies.append(Supply(s.id, s.name, s.province or "", s.lat, s.lon, available))
    return Scenario(scope, needs, supplies, info, dict(open_requests), excluded)


def explain(
    sc: Scenario,
    needs: list[Need],
    supplies: list[Supply],
    plan: Plan,
    locale: str,
    *,
    shipment_reasons: dict[tuple[int, int], Message] | None = None,
) -> list[SuggestedFacility]:
    """Per facility: what it gets from whom and why, and what stays uncovered and why; each
    shipment's own reason also goes to `shipment_reasons` by (facility, source)."""
    by_fac: dict[int, list[Any]] = defaultdict(list)
    for sh in plan.shipments:
        by_fac[sh.facility_id].append(sh)
    out: list[SuggestedFacility] = []
    for n in sorted(needs, key=lambda n: (-n.urgency, n.facility_id)):
        ex = plan.explanations[n.facility_id]
        reach = sorted(
            (road_km(n.lat, n.lon, s.lat, s.lon), s.supplier_id)
            for s in supplies
            if s.available_kg > 0 and road_km(n.lat, n.lon, s.lat, s.lon) <= s.max_km
        )
        nearest = reach[0][1] if reach else None
        reasons: list[Message] = []
        for sh in sorted(by_fac.get(n.facility_id, []), key=lambda s: s.road_km):
            key = "coord.why.nearest" if sh.supplier_id == nearest else "coord.why.next"
            why = said(
                key,
                locale,
                kg=round(sh.kg),
                source=sc.info[sh.supplier_id].name,
                km=round(sh.road_km),
            )
            reasons.append(why)
            if shipment_reasons is not None:
                shipment_reasons[(sh.facility_id, sh.supplier_id)] = why
        if ex.unmet_kg > 0.5:
            kg = round(ex.unmet_kg)
            if not reach:
                reasons.append(said("coord.why.unreachable", locale, kg=kg))
            elif ex.need_kg > n.free_capacity_kg:
                reasons.append(
                    said("coord.why.capacity", locale, kg=kg, free_kg=round(n.free_capacity_kg))
                )
            else:
                reasons.append(said("coord.why.exhausted", locale, kg=kg))
        fi = sc.info[n.facility_id]
        out.append(
            SuggestedFacility(
                facility_id=n.facility_id,
                code=fi.code,
                name=fi.name,
                province=fi.province,
                days_of_supply=fi.days_of_supply,
                urgency=fi.urgency,
                urgency_weight=n.urgency,
                usable_kg=fi.usable_kg,
                avg_daily_kg=fi.avg_daily_kg,
                requested_kg=fi.requested_kg,
                in_flight_kg=fi.in_flight_kg,
                need_kg=ex.need_kg,
                covered_kg=ex.covered_kg,
                unmet_kg=ex.unmet_kg,
                open_request_ids=sc.open_requests.get(n.facility_id, []),
                reasons=reasons,
            )
        )
    return out


async def suggest(
    conn: AsyncConnection[Any],
    principal: Principal,
    params: SuggestParams,
    *,
    cfg: AccountingConfig,
    now: datetime,
    locale: str,
) -> Suggestion:
    """Run the allocation model on the caller's scope; a proposal, nothing is written."""
    if conn.info.transaction_status == pq.TransactionStatus.IDLE:
        async with conn.transaction():
            # Read-only: any write (even a cache fill) would fail loudly instead of happening.
            await conn.execute("SET TRANSACTION READ ONLY")
            return await _suggest(conn, principal, params, cfg=cfg, now=now, locale=locale)
    return await _suggest(conn, principal, params, cfg=cfg, now=now, locale=locale)


async def _suggest(
    conn: AsyncConnection[Any],
    principal: Principal,
    params: SuggestParams,
    *,
    cfg: AccountingConfig,
    now: datetime,
    locale: str,
) -> Suggestion:
    sc = await build(conn, principal, params, cfg, now)
    needs, supplies = apply_what_if(
        sc.needs, sc.supplies, suppliers_down=params.suppliers_down, surge=params.surge
    )
    t0 = time.perf_counter()
    plan = allocate(needs, supplies)
    solve_ms = (time.perf_counter() - t0) * 1000.0
    ref = cfg.reference
    why: dict[tuple[int, int], Message] = {}
    facilities = explain(sc, needs, supplies, plan, locale, shipment_reasons=why)
    shipments: list[SuggestedShipment] = []
    for sh in sorted(plan.shipments, key=lambda s: (s.facility_id, s.road_km)):
        src, dst = sc.info[sh.supplier_id], sc.info[sh.facility_id]
        shipments.append(
            SuggestedShipment(
                source_id=sh.supplier_id,
                source_kind=src.kind,
                source_name=src.name,
                source_province=src.province,
                facility_id=sh.facility_id,
                facility_name=dst.name,
                facility_province=dst.province,
                kg=sh.kg,
                nm3=round(ref.kg_to_m3(sh.kg), 1),
                road_km=sh.road_km,
                from_=Point(src.lat, src.lon),
                to=Point(dst.lat, dst.lon),
                open_request_ids=sc.open_requests.get(sh.facility_id, []),
                reason=why[(sh.facility_id, sh.supplier_id)],
                # Ready to post to /api/coordination/requests/{id}/assignments as one part.
                assign_part=AssignPart(sh.supplier_id, Amount(sh.kg, "kg")),
            )
        )
    down = set(params.suppliers_down)
    sources: list[SuggestionSource] = []
    for s in supplies:
        si = sc.info[s.supplier_id]
        sources.append(
            SuggestionSource(
                id=s.supplier_id,
                kind=si.kind,
                name=si.name,
                province=si.province,
                available_kg=s.available_kg,
                left_kg=max(0.0, plan.supplier_left_kg.get(s.supplier_id, 0.0)),
                down=s.supplier_id in down,
                report_day=si.report_day,
                lat=si.lat,
                lon=si.lon,
            )
        )
    logger.info(
        "suggestion for %s: %d needs, %d sources, %d shipments, unmet %.0f kg (%.0f ms)",
        principal.username,
        len(needs),
        len(supplies),
        len(shipments),
        plan.unmet_kg,
        solve_ms,
    )
    return Suggestion(
        proposal_only=True,
        note=said("coord.note.proposal", locale),
        scope=sc.scope,
        parameters=SuggestionParameters(
            suppliers_down=sorted(down),
            surge=params.surge,
            target_days=params.target_days,
            horizon_days=params.horizon_days,
            surplus_days=params.surplus_days,
        ),
        computed_at=now,
        units={"mass": "kg LOX", "gas": ref.label},
        status=plan.status,
        solve_ms=round(solve_ms, 1),
        totals=SuggestionTotals(
            need_kg=sum(n.need_kg for n in needs),
            covered_kg=sum(s.kg for s in plan.shipments),
            unmet_kg=plan.unmet_kg,
            unmet_weighted=plan.unmet_weighted,
            transport_kg_km=plan.transport_kg_km,
        ),
        shipments=shipments,
        facilities=facilities,
        sources=sources,
        excluded=[_left_out(e, locale) for e in sc.excluded],
    )


def _left_out(e: Excluded, locale: str) -> SuggestionExcluded:
    m = said(e.key, locale, **e.params)
    return SuggestionExcluded(e.id, e.name, m.key, m.params, m.message)
