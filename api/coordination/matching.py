"""Match deliveries with the refills the facility's tank sensors saw.

A liquid delivery is matched when the refills detected in its time window (from dispatch to a
few hours after delivery; a supplier report's line: the report day's window) add up to its
amount within the tolerance: 5 % or 50 kg, whichever is larger (the reports package's
cross-check uses the same figure). A refill counts for one delivery only. When the window has
closed and the sensors saw nothing, or an amount outside the tolerance, the delivery is flagged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from api.accounting.config import AccountingConfig
from api.accounting.series import Refill
from api.accounting.telemetry import CONTEXT, calibrations, level_sensors, tank_refills
from api.audit import audit
from api.reports.supplier import MATCH_TOLERANCE

logger = logging.getLogger(__name__)

MIN_TOLERANCE_KG = 50.0  # the floor of the tolerance (a tanker's meter and a DP gauge disagree)
AFTER_DELIVERY = timedelta(hours=6)  # a refill may be logged by the tanker a little late
BEFORE_DISPATCH = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class SeenRefill:
    """A refill of one of the facility's tanks."""

    tank_id: int
    refill: Refill

    def key(self) -> str:
        """Identity of the refill (one tank, one start)."""
        return f"{self.tank_id}@{self.refill.started_at.isoformat()}"


def tolerance_kg(kg: float) -> float:
    """How far the sensors' figure may be from the delivery's and still match."""
    return max(MATCH_TOLERANCE * kg, MIN_TOLERANCE_KG)


async def refills_between(
    conn: AsyncConnection[Any],
    facility_id: int,
    start: datetime,
    end: datetime,
    cfg: AccountingConfig,
) -> tuple[int, list[SeenRefill]]:
    """(monitored tanks, refills that started in [start, end]) of a facility's tanks."""
    cur = await conn.execute("SELECT id FROM tanks WHERE facility_id = %s", (facility_id,))
    tanks = [int(r[0]) for r in await cur.fetchall()]
    sensors = await level_sensors(conn, tanks)
    cals = await calibrations(conn, list(sensors))
    seen: list[SeenRefill] = []
    for tank_id, sensor in sensors.items():
        # CONTEXT either side: the draw rate around a refill is needed to size it.
        _points, refills = await tank_refills(
            conn, sensor, cals.get(tank_id), (start - CONTEXT, end + CONTEXT), cfg
        )
        for r in refills:
            if start <= r.started_at <= end:
                seen.append(SeenRefill(tank_id, r))
    return len(sensors), seen


_CLAIMED = """
SELECT r->>'key' FROM deliveries d, jsonb_array_elements(d.matched_refills) r
WHERE d.facility_id = %(facility)s AND d.id <> %(id)s AND d.match_state = 'matched'
"""
_SET_MATCH = """
UPDATE deliveries SET match_state = %(state)s, matched_kg = %(kg)s, matched_refills = %(refills)s,
    match_note = %(note)s, matched_at = %(now)s, updated_at = %(now)s
WHERE id = %(id)s
"""


# One matcher per facility at a time (until the caller's transaction ends): the sync job and a
# delivery's transition would otherwise both see a refill unclaimed and both claim it.
_FACILITY_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtextextended('oxy.coordination.match:' || %s, 0))"
)


async def match_delivery(
    conn: AsyncConnection[Any], delivery: dict[str, Any], cfg: AccountingConfig, now: datetime
) -> str:
    """Compare one delivered delivery with the refills; store and audit the verdict.

    Call it inside a transaction holding the delivery's row (its update, or FOR UPDATE).
    """
    await conn.execute(_FACILITY_LOCK, (str(delivery["facility_id"]),))
    state, kg_seen, refills, note = await _verdict(conn, delivery, cfg, now)
    if state == delivery["match_state"] and state in ("pending", "not_applicable"):
        return state
    params = {
        "state": state,
        "kg": kg_seen,
        "refills": Jsonb(refills),
        "note": note,
        "now": now,
        "id": delivery["id"],
    }
    await conn.execute(_SET_MATCH, params)
    if state != delivery["match_state"]:
        await audit(
            conn,
            "coordination-matcher",
            "match",
            "delivery",
            delivery["id"],
            {"match_state": delivery["match_state"]},
            {"match_state": state, "matched_kg": kg_seen, "note": note},
            org_id=int(delivery["facility_id"]),
        )
        log = logger.warning if state == "mismatch" else logger.info
        log("delivery %s: match %s (%s)", delivery["id"], state, note)
    return state


async def _verdict(
    conn: AsyncConnection[Any], d: dict[str, Any], cfg: AccountingConfig, now: datetime
) -> tuple[str, float | None, list[dict[str, Any]], str]:
    if d["form"] != "liquid":
        return "not_applicable", None, [], "coord.match.not_liquid"
    start, end = d["expected_from"], d["expected_to"]
    if start is None or end is None:
        return "pending", None, [], "coord.match.waiting"
    monitored, seen = await refills_between(conn, int(d["facility_id"]), start, end, cfg)
    if monitored == 0:
        return "no_telemetry", None, [], "coord.match.no_telemetry"
    cur = await conn.execute(_CLAIMED, {"facility": d["facility_id"], "id": d["id"]})
    claimed = {str(r[0]) for r in await cur.fetchall()}
    free = [s for s in seen if s.key() not in claimed]
    kg = float(d["amount_kg"])
    total = sum(s.refill.amount_kg for s in free)
    refills = [
        {
            "key": s.key(),
            "tank_id": s.tank_id,
            "started_at": s.refill.started_at.isoformat(),
            "ended_at": s.refill.ended_at.isoformat(),
            "kg": round(s.refill.amount_kg, 1),
        }
        for s in free
    ]
    closed = end <= now
    if free and abs(total - kg) <= tolerance_kg(kg):
        return "matched", total, refills, "coord.match.matched"
    if not closed:
        # The window is still open: more may show (a second tank, a late reading).
        return "pending", total if free else None, refills, "coord.match.waiting"
    if free:
        return "mismatch", total, refills, "coord.match.amount"
    return "mismatch", 0.0, [], "coord.match.none"


async def match_pending(
    conn: AsyncConnection[Any],
    cfg: AccountingConfig,
    now: datetime,
    *,
    facility_ids: list[int] | None,
) -> int:
    """Re-examine delivered deliveries still waiting for their refill; returns how many.

    In one transaction. A delivery another transaction holds (a transition being saved, which
    matches it itself) is skipped: the rows are locked before any facility's matcher lock, in
    the order a transition takes them, so the two never wait on each other in a cycle.
    """
    async with conn.transaction():
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT * FROM deliveries WHERE match_state = 'pending' "
                "AND state IN ('delivered', 'confirmed') "
                "AND (%(ids)s::bigint[] IS NULL OR facility_id = ANY(%(ids)s::bigint[])) "
                "ORDER BY id FOR UPDATE SKIP LOCKED",
                {"ids": facility_ids},
            )
            rows = list(await cur.fetchall())
        for d in rows:
            await match_delivery(conn, d, cfg, now)
    return len(rows)
