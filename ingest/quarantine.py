"""Replay quarantined readings once the registry knows their gateway and sensor."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg

from ingest import queries
from ingest.registry import valid_range
from ingest.rollups import recompute
from oxy.contract import (
    QUALITY_CODE,
    ContractError,
    Quality,
    Quantity,
    to_canonical,
    value_problem,
)

logger = logging.getLogger(__name__)

_RELEASABLE: Final = """
SELECT q.id, s.id, s.quantity, q.ts, q.value, q.unit, q.quality, q.received_at,
       s.unit, s.valid_min, s.valid_max
FROM quarantine q
JOIN gateways g ON g.code = q.gateway AND g.revoked_at IS NULL
JOIN organisations o ON o.id = g.facility_id AND o.code = q.site
JOIN sensors s ON s.gateway_id = g.id AND s.code = q.sensor
WHERE q.sensor IS NOT NULL
  AND (%(gateway)s::text IS NULL OR q.gateway = %(gateway)s)
  AND (%(sensors)s::bigint[] IS NULL OR s.id = ANY(%(sensors)s::bigint[]))
ORDER BY q.id
FOR UPDATE OF q SKIP LOCKED
"""
_INSERT: Final = """
INSERT INTO readings (sensor_id, ts, value, quality, received_at)
VALUES (%s, %s, %s, %s, %s) ON CONFLICT (sensor_id, ts) DO NOTHING
"""
_LATEST: Final = """
INSERT INTO sensor_latest AS l (sensor_id, ts, value, quality, received_at)
SELECT sensor_id, ts, value, quality, received_at FROM readings
WHERE sensor_id = %s ORDER BY ts DESC LIMIT 1
ON CONFLICT (sensor_id) DO UPDATE
    SET ts = EXCLUDED.ts, value = EXCLUDED.value, quality = EXCLUDED.quality,
        received_at = EXCLUDED.received_at
    WHERE EXCLUDED.ts > l.ts
"""
_RELEASE: Final = "DELETE FROM quarantine WHERE id = ANY(%s)"
_REASON: Final = "UPDATE quarantine SET reason = %s WHERE id = %s"


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay did."""

    released: int  # left quarantine (stored, or already stored)
    inserted: int  # new rows in readings
    kept: int  # still not storable (unit mismatch, value out of the domain); reason updated


def replay(
    conn: psycopg.Connection[Any],
    *,
    gateway: str | None = None,
    sensors: Sequence[int] | None = None,
) -> ReplayResult:
    """Move every quarantined reading whose gateway/sensor is now registered into readings
    (canonical unit, idempotent), then rebuild the rollups and latest value they touch.
    `gateway` (its code) limits the replay to that gateway's readings, `sensors` (their ids) to
    those sensors' readings (an engineer's gateway or tank page)."""
    released: list[int] = []
    inserted = kept = 0
    spans: dict[int, tuple[datetime, datetime]] = {}
    with conn.transaction():
        for (
            qid, sid, quantity, ts, value, unit, sent_quality, received, s_unit, vmin, vmax
        ) in conn.execute(
            _RELEASABLE,
            {"gateway": gateway, "sensors": None if sensors is None else list(sensors)},
        ).fetchall():  # fmt: skip
            q = Quantity(quantity)
            quality = sent_quality
            try:
                canonical = None if value is None else to_canonical(q, value, unit)
            except ContractError as exc:
                conn.execute(_REASON, (f"sensor now known, but {exc.reason}", qid))
                kept += 1
                continue
            if canonical is not None:
                # The same domains as live ingest (issue 14): never a non-finite value, and a
                # value outside the sensor's valid range is out_of_range, not good.
                problem = value_problem(canonical)
                if problem:
                    conn.execute(_REASON, (f"sensor now known, but {problem}", qid))
                    kept += 1
                    continue
                low, high = valid_range(q, s_unit, vmin, vmax)
                if not low <= canonical <= high and quality != QUALITY_CODE[Quality.COMM_ERROR]:
                    quality = QUALITY_CODE[Quality.OUT_OF_RANGE]
            cur = conn.execute(_INSERT, (sid, ts, canonical, quality, received))
            inserted += max(cur.rowcount, 0)
            released.append(qid)
            lo, hi = spans.get(sid, (ts, ts))
            spans[sid] = (min(lo, ts), max(hi, ts))
        if released:
            conn.execute(_RELEASE, (released,))
        storage = conn.execute(queries.STORAGE_KIND).fetchone()
        for sid, (lo, hi) in spans.items():
            conn.execute(_LATEST, (sid,))
            if not storage or storage[0] != "timescaledb":  # caggs pick the rows up themselves
                recompute(conn, sid, lo, hi)
    if released or kept:
        logger.info(
            "quarantine replay: %d released (%d new readings), %d kept",
            len(released),
            inserted,
            kept,
        )
    return ReplayResult(len(released), inserted, kept)
