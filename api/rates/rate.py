"""The reporting rate of the facility daily report over a period (last 30 days by default).

DHIS2's definition (shared DOMAIN.md): a facility is *expected* to report for day D when it is
active on D (``active_from ≤ D ≤ active_to``; a facility opened mid-period is expected only from
its first day); *reported* when its 16:00 report for D was filed (``submitted_at`` set; a morning
update alone does not count); *on time* when filed before the deadline, *late* after it;
*missing* = expected − reported. A report for a day the facility was not expected does not count.
The period ends at the latest day whose deadline has passed, so today's report is never counted
missing before it is due. Rates are None (unknown, shown "—") when nothing was expected.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from api.accounting.config import AccountingConfig
from api.accounting.windows import deadline, local_today

DEFAULT_DAYS = 30
MAX_DAYS = 366

# Every (facility, day) the facility was expected, joined to its filed report of that day.
_EXPECTED = """
WITH days AS (
    SELECT d::date AS day
    FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS d
), expected AS (
    SELECT o.id AS facility_id, days.day
    FROM organisations o
    LEFT JOIN facilities f ON f.org_id = o.id
    JOIN days ON coalesce(f.active_from, DATE '2000-01-01') <= days.day
             AND (f.active_to IS NULL OR f.active_to >= days.day)
    WHERE o.kind = 'facility'
      AND (%(parents)s::bigint[] IS NULL OR o.parent_id = ANY(%(parents)s::bigint[]))
      AND (%(scope_national)s OR o.id = ANY(%(scope_facilities)s::bigint[]))
)
SELECT e.facility_id, e.day,
       r.submitted_at IS NOT NULL AS reported,
       coalesce(r.submitted_at IS NOT NULL AND r.late, false) AS late
FROM expected e
LEFT JOIN facility_reports r ON r.facility_id = e.facility_id AND r.report_day = e.day
"""

_FACILITIES = """
SELECT o.id, o.code, o.name, o.parent_id, o.province_code, a.name AS province_name,
       f.active_from, f.active_to
FROM organisations o
LEFT JOIN facilities f ON f.org_id = o.id
LEFT JOIN admin_units a ON a.code = o.province_code
WHERE o.id = ANY(%(ids)s::bigint[])
"""

_PARENTS = """
SELECT o.id, o.code, o.name, o.kind, o.province_code
FROM organisations o WHERE o.id = ANY(%(ids)s::bigint[])
"""

# The registry's contacts of the facilities (primary first).
_CONTACTS = """
SELECT org_id, full_name, role, phone, email, is_primary
FROM contacts WHERE org_id = ANY(%(ids)s::bigint[])
ORDER BY org_id, is_primary DESC, id
"""


@dataclass(frozen=True, slots=True)
class Period:
    """The days counted: `first` … `last` inclusive."""

    first: date
    last: date

    @property
    def days(self) -> int:
        """How many days the period covers."""
        return (self.last - self.first).days + 1


def default_period(now: datetime, cfg: AccountingConfig, days: int = DEFAULT_DAYS) -> Period:
    """The last `days` days ending at the latest day whose report deadline has passed."""
    today = local_today(now, cfg)
    last = today if now >= deadline(today, cfg) else today - timedelta(days=1)
    days = max(1, min(days, MAX_DAYS))
    return Period(last - timedelta(days=days - 1), last)


def counts(expected: int, reported: int, late: int) -> dict[str, Any]:
    """The figures of one row: counts and rates (None when nothing was expected)."""
    on_time = reported - late
    return {
        "expected": expected,
        "reported": reported,
        "on_time": on_time,
        "late": late,
        "missing": expected - reported,
        "reporting_rate": round(100.0 * reported / expected, 1) if expected else None,
        "on_time_rate": round(100.0 * on_time / expected, 1) if expected else None,
    }


@dataclass(slots=True)
class _Tally:
    expected: int = 0
    reported: int = 0
    late: int = 0

    def add(self, reported: bool, late: bool) -> None:
        self.expected += 1
        self.reported += int(reported)
        self.late += int(reported and late)

    def figures(self) -> dict[str, Any]:
        return counts(self.expected, self.reported, self.late)


async def reporting_rate(
    conn: AsyncConnection[Any],
    period: Period,
    *,
    visible: frozenset[int] | None,
    parents: Sequence[int] | None = None,
) -> dict[str, Any]:
    """The period's figures per facility, per reporting parent, per day and in total.

    `visible` is the caller's facility scope (None: national); `parents` limits the facilities
    to those reporting to these SYT / ministry offices (None: all)."""
    params = {
        "first": period.first,
        "last": period.last,
        "parents": list(parents) if parents is not None else None,
        "scope_national": visible is None,
        "scope_facilities": sorted(visible or ()),
    }
    per_facility: dict[int, _Tally] = defaultdict(_Tally)
    per_day: dict[date, _Tally] = defaultdict(_Tally)
    missing_last: set[int] = set()
    last_reported: dict[int, date] = {}
    async with conn.cursor() as cur:
        await cur.execute(_EXPECTED, params)
        for fid, day, reported, late in await cur.fetchall():
            per_facility[fid].add(reported, late)
            per_day[day].add(reported, late)
            if reported:
                if fid not in last_reported or day > last_reported[fid]:
                    last_reported[fid] = day
            elif day == period.last:
                missing_last.add(fid)
    ids = sorted(per_facility)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_FACILITIES, {"ids": ids})
        registry = {r["id"]: r for r in await cur.fetchall()}
        await cur.execute(_CONTACTS, {"ids": ids})
        contacts: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for c in await cur.fetchall():
            contacts[c.pop("org_id")].append(c)
        parent_ids = sorted({r["parent_id"] for r in registry.values() if r["parent_id"]})
        await cur.execute(_PARENTS, {"ids": parent_ids})
        heads = {r["id"]: r for r in await cur.fetchall()}

    facilities = []
    per_parent: dict[int | None, _Tally] = defaultdict(_Tally)
    members: dict[int | None, int] = defaultdict(int)
    for fid in ids:
        reg, t = registry[fid], per_facility[fid]
        pt = per_parent[reg["parent_id"]]
        pt.expected += t.expected
        pt.reported += t.reported
        pt.late += t.late
        members[reg["parent_id"]] += 1
        head = heads.get(reg["parent_id"], {})
        facilities.append(
            {
                "facility_id": fid,
                "code": reg["code"],
                "name": reg["name"],
                "parent_id": reg["parent_id"],
                "parent_name": head.get("name"),
                "province_code": reg["province_code"],
                "province_name": reg["province_name"],
                "active_from": _iso(reg["active_from"]),
                "active_to": _iso(reg["active_to"]),
                "last_reported": _iso(last_reported.get(fid)),
                "missing_last_day": fid in missing_last,
                "contacts": contacts.get(fid, []),
                **t.figures(),
            }
        )
    facilities.sort(key=lambda f: (f["province_code"] or "99", f["code"]))
    parents_rows = []
    for pid, t in per_parent.items():
        head = heads.get(pid, {}) if pid is not None else {}
        parents_rows.append(
            {
                "org_id": pid,
                "code": head.get("code"),
                "name": head.get("name"),
                "kind": head.get("kind"),
                "province_code": head.get("province_code"),
                "facilities": members[pid],
                **t.figures(),
            }
        )
    parents_rows.sort(key=lambda r: (r["province_code"] or "99", r["code"] or ""))
    total = _Tally()
    for t in per_facility.values():
        total.expected += t.expected
        total.reported += t.reported
        total.late += t.late
    days_rows = []
    d = period.first
    while d <= period.last:
        days_rows.append({"day": d.isoformat(), **per_day.get(d, _Tally()).figures()})
        d += timedelta(days=1)
    return {
        "first_day": period.first.isoformat(),
        "last_day": period.last.isoformat(),
        "days": period.days,
        "total": {"facilities": len(ids), **total.figures()},
        "parents": parents_rows,
        "facilities": facilities,
        "by_day": days_rows,
    }


def not_reported(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The drill-down: facilities with a missing report in the period, most missing first."""
    rows = [f for f in figures["facilities"] if f["missing"] > 0]
    rows.sort(key=lambda f: (-f["missing"], f["code"]))
    return rows


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d is not None else None
