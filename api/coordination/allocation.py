"""Suggested allocation: who should ship how much oxygen to whom.

A linear program (HiGHS through highspy). Given facilities' needs (from usable stock, consumption,
days of supply and open requests), suppliers' available oxygen and dispatch capacity, and road
distances, it proposes shipments that minimise unmet need weighted by urgency first and transport
distance second. The two goals are kept lexicographic by a weight gap: one kg of unmet need at the
lowest urgency costs more than shipping one kg across the longest allowed route.

Every suggestion is explained (why this supplier, what stays uncovered) and is only a proposal
until a person assigns it. The same model runs what-if scenarios (a supplier down, a surge in a
province) through :func:`what_if`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from api.accounting.stock import urgency_weight

# Unmet-need penalty per kg per unit of urgency. Transport costs at most max_km / 1000 per kg,
# so with the default 1,000 km reach the penalty gap keeps unmet need strictly first.
_UNMET_WEIGHT = 10.0
ROAD_FACTOR = 1.3  # great-circle → road distance, a planning figure for Vietnam's network


@dataclass(frozen=True, slots=True)
class Need:
    """A facility that needs oxygen within the planning horizon."""

    facility_id: int
    name: str
    province: str
    lat: float
    lon: float
    need_kg: float  # shortfall to reach the target days of supply, plus open requests
    free_capacity_kg: float  # what its tanks can take now (math.inf for cylinders only)
    days_of_supply: float | None  # None: unknown (no telemetry, no report)
    needs_more_days: float  # the "needs more" threshold (setting), which makes a need high

    @property
    def urgency(self) -> float:
        """Weight of one kg left unmet: rises steeply as days of supply fall."""
        return urgency_weight(self.days_of_supply, self.needs_more_days)


@dataclass(frozen=True, slots=True)
class Supply:
    """A supplier (producer, filling station) or a facility with surplus."""

    supplier_id: int
    name: str
    province: str
    lat: float
    lon: float
    available_kg: float  # stock plus production within the horizon
    dispatch_kg: float = math.inf  # tankers × tanker size × trips within the horizon
    max_km: float = 1000.0  # how far its tankers can deliver within the horizon


@dataclass(frozen=True, slots=True)
class Shipment:
    """One proposed flow."""

    supplier_id: int
    facility_id: int
    kg: float
    road_km: float


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a facility gets what it gets."""

    facility_id: int
    need_kg: float
    covered_kg: float
    unmet_kg: float
    urgency: float
    reasons: tuple[str, ...]


@dataclass
class Plan:
    """The result of one run: shipments, per-facility explanations and totals."""

    shipments: list[Shipment]
    explanations: dict[int, Explanation]
    unmet_weighted: float
    unmet_kg: float
    transport_kg_km: float
    status: str
    supplier_left_kg: dict[int, float] = field(default_factory=dict)


def road_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Planning road distance: haversine great-circle distance × ROAD_FACTOR."""
    r = 6371.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a)) * ROAD_FACTOR


def _arcs(
    needs: Sequence[Need], supplies: Sequence[Supply], nearest: int | None
) -> list[tuple[int, int, float]]:
    """Candidate (need index, supply index, km): every reachable supplier, or the `nearest`."""
    if not needs or not supplies:
        return []
    nlat = np.radians([n.lat for n in needs])[:, None]
    nlon = np.radians([n.lon for n in needs])[:, None]
    slat = np.radians([s.lat for s in supplies])[None, :]
    slon = np.radians([s.lon for s in supplies])[None, :]
    a = (
        np.sin((slat - nlat) / 2) ** 2
        + np.cos(nlat) * np.cos(slat) * np.sin((slon - nlon) / 2) ** 2
    )
    km = 2 * 6371.0 * np.arcsin(np.sqrt(a)) * ROAD_FACTOR
    reach = km <= np.array([s.max_km for s in supplies])[None, :]
    reach &= np.array([s.available_kg > 0 for s in supplies])[None, :]
    reach &= np.array([n.need_kg > 0 for n in needs])[:, None]
    arcs: list[tuple[int, int, float]] = []
    for i in range(len(needs)):
        js = np.flatnonzero(reach[i])
        if nearest is not None and len(js) > nearest:
            js = js[np.argsort(km[i, js])[:nearest]]
        arcs.extend((i, int(j), float(km[i, j])) for j in js)
    return arcs


def allocate(needs: Sequence[Need], supplies: Sequence[Supply], nearest: int | None = None) -> Plan:
    """Solve the allocation LP and explain it. Never fails on shortage: it reports the shortfall.

    Column generation keeps the LP small and exact: it starts with each facility's `nearest`
    reachable suppliers (8 by default), and after each solve adds every reachable route whose
    reduced cost is negative, until none is: then no route left out could improve the plan.
    """
    import highspy

    n, m = len(needs), len(supplies)
    arcs_all = _arcs(needs, supplies, None)
    if n == 0:
        return _explain(needs, supplies, [], np.zeros(0), "Optimal")
    ai = np.array([a[0] for a in arcs_all], dtype=np.int32)
    aj = np.array([a[1] for a in arcs_all], dtype=np.int32)
    cost_all = np.array([a[2] for a in arcs_all]) / 1000.0
    inf = highspy.kHighsInf

    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    # Columns 0..n-1: unmet need u_i. Rows: need (delivered + unmet ≥ need), capacity (never
    # more than the tanks take), supply (never more than the supplier has and can dispatch).
    need_kg = np.array([max(x.need_kg, 0.0) for x in needs])
    h.addVars(n, np.zeros(n), np.full(n, inf))
    h.changeColsCost(
        n, np.arange(n, dtype=np.int32), np.array([_UNMET_WEIGHT * x.urgency for x in needs])
    )
    h.addRows(
        n,
        need_kg,
        np.full(n, inf),
        n,
        np.arange(n, dtype=np.int32),
        np.arange(n, dtype=np.int32),
        np.ones(n),
    )
    caps = np.array([max(min(x.need_kg, x.free_capacity_kg), 0.0) for x in needs])
    h.addRows(
        n, np.zeros(n), caps, 0, np.zeros(n, dtype=np.int32), np.zeros(0, np.int32), np.zeros(0)
    )
    sup = np.array([max(min(s.available_kg, s.dispatch_kg), 0.0) for s in supplies])
    if m:
        h.addRows(
            m, np.zeros(m), sup, 0, np.zeros(m, dtype=np.int32), np.zeros(0, np.int32), np.zeros(0)
        )

    in_model = np.zeros(len(arcs_all), dtype=bool)
    order: list[np.ndarray] = []

    def add(sel: np.ndarray) -> None:
        k = len(sel)
        index = np.stack([ai[sel], n + ai[sel], 2 * n + aj[sel]], axis=1).ravel()
        h.addCols(
            k,
            cost_all[sel],
            np.zeros(k),
            np.full(k, inf),
            3 * k,
            np.arange(k, dtype=np.int32) * 3,
            index.astype(np.int32),
            np.ones(3 * k),
        )
        in_model[sel] = True
        order.append(sel)

    first = _arcs(needs, supplies, nearest or 8)
    if first:
        key = {(i, j): k for k, (i, j, _) in enumerate(arcs_all)}
        add(np.array([key[(i, j)] for i, j, _ in first], dtype=np.int64))
    for _ in range(100):
        h.run()
        if len(arcs_all) == int(in_model.sum()):
            break
        duals = np.array(h.getSolution().row_dual)
        reduced = cost_all - duals[ai] - duals[n + ai] - duals[2 * n + aj]
        cand = np.flatnonzero(~in_model & (reduced < -1e-7))
        if len(cand) == 0:
            break
        add(cand[np.argsort(reduced[cand])[:20000]])
    status = h.modelStatusToString(h.getModelStatus())
    values = np.array(h.getSolution().col_value)
    chosen = np.concatenate(order) if order else np.zeros(0, dtype=np.int64)
    arcs = [arcs_all[int(k)] for k in chosen]
    x = np.concatenate([values[n:], values[:n]])
    return _explain(needs, supplies, arcs, x, status)


def _explain(
    needs: Sequence[Need],
    supplies: Sequence[Supply],
    arcs: list[tuple[int, int, float]],
    x: np.ndarray,
    status: str,
) -> Plan:
    n_arcs = len(arcs)
    shipments: list[Shipment] = []
    got: dict[int, list[Shipment]] = {}
    left = {s.supplier_id: min(s.available_kg, s.dispatch_kg) for s in supplies}
    for k, (i, j, km) in enumerate(arcs):
        kg = float(x[k])
        if kg > 0.5:  # half a kilogram: solver noise, not a shipment
            sh = Shipment(supplies[j].supplier_id, needs[i].facility_id, round(kg, 1), round(km, 1))
            shipments.append(sh)
            got.setdefault(i, []).append(sh)
            left[supplies[j].supplier_id] -= kg
    reachable = {i for i, _, _ in arcs}
    explanations: dict[int, Explanation] = {}
    unmet_w = unmet_kg = kgkm = 0.0
    names = {s.supplier_id: s.name for s in supplies}
    for i, n in enumerate(needs):
        need = max(n.need_kg, 0.0)
        covered = sum(s.kg for s in got.get(i, []))
        unmet = max(min(float(x[n_arcs + i]), need), 0.0)
        reasons: list[str] = []
        for s in sorted(got.get(i, []), key=lambda s: s.road_km):
            reasons.append(f"{s.kg:,.0f} kg from {names[s.supplier_id]} ({s.road_km:,.0f} km)")
        if unmet > 0.5:
            if i not in reachable:
                reasons.append("no supplier with oxygen can reach it within its delivery range")
            elif need > n.free_capacity_kg:
                reasons.append(f"its tanks can take only {n.free_capacity_kg:,.0f} kg now")
            else:
                reasons.append(
                    "reachable suppliers are exhausted by facilities with more urgent need"
                )
        explanations[n.facility_id] = Explanation(
            n.facility_id, need, covered, unmet, n.urgency, tuple(reasons)
        )
        unmet_w += unmet * n.urgency
        unmet_kg += unmet
    for s in shipments:
        kgkm += s.kg * s.road_km
    return Plan(shipments, explanations, unmet_w, unmet_kg, kgkm, status, left)


def greedy(needs: Sequence[Need], supplies: Sequence[Supply]) -> Plan:
    """Baseline: most urgent first, each takes from its nearest supplier that has oxygen left."""
    left = {j: min(s.available_kg, s.dispatch_kg) for j, s in enumerate(supplies)}
    order = sorted(range(len(needs)), key=lambda i: -needs[i].urgency)
    arcs: list[tuple[int, int, float]] = []
    flows: list[float] = []
    unmet = np.zeros(len(needs))
    for i in order:
        n = needs[i]
        want = min(max(n.need_kg, 0.0), n.free_capacity_kg)
        cands = sorted(
            (road_km(n.lat, n.lon, s.lat, s.lon), j) for j, s in enumerate(supplies) if left[j] > 0
        )
        for km, j in cands:
            if want <= 0:
                break
            if km > supplies[j].max_km:
                continue
            take = min(want, left[j])
            left[j] -= take
            want -= take
            arcs.append((i, j, km))
            flows.append(take)
        unmet[i] = max(n.need_kg, 0.0) - (min(max(n.need_kg, 0.0), n.free_capacity_kg) - want)
    x = np.concatenate([np.array(flows), unmet])
    return _explain(needs, supplies, arcs, x, "Greedy")


def what_if(
    needs: Sequence[Need],
    supplies: Sequence[Supply],
    *,
    suppliers_down: Iterable[int] = (),
    surge: dict[str, float] | None = None,
) -> Plan:
    """Run the same model with suppliers out of service and/or need multiplied per province."""
    down = set(suppliers_down)
    surge = surge or {}
    s2 = [replace(s, available_kg=0.0) if s.supplier_id in down else s for s in supplies]
    n2 = [replace(n, need_kg=n.need_kg * surge.get(n.province, 1.0)) for n in needs]
    return allocate(n2, s2)


def apply_what_if(
    needs: Sequence[Need],
    supplies: Sequence[Supply],
    *,
    suppliers_down: Iterable[int] = (),
    surge: dict[str, float] | None = None,
) -> tuple[list[Need], list[Supply]]:
    """The needs and supplies of a what-if scenario (what :func:`what_if` solves), for callers
    that explain the plan against the scenario's own figures."""
    down = set(suppliers_down)
    surge = surge or {}
    s2 = [replace(s, available_kg=0.0) if s.supplier_id in down else s for s in supplies]
    n2 = [replace(n, need_kg=n.need_kg * surge.get(n.province, 1.0)) for n in needs]
    return n2, s2
