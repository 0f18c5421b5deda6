"""The BYT map page's 7-day chart reads the supply figures of the seven days set-based
(national.chart_days: facilities, reports, tank windows and supplier reports read once for the
span); its figures must be those of the old per-day computation — each day's national view —
day by day, on the demo country with its reports, whether the tanks' windows are computed on the
way (cold) or already stored (warm), nationally and in a department's scope."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from psycopg import AsyncConnection

from api.accounting.windows import local_today
from api.reports import national
from api.settings import load_centre_settings
from oxy.settings import Settings

Days = dict[date, dict[str, Any]]


async def _per_day(conn: AsyncConnection[Any], days: list[date], **kw: Any) -> Days:
    """The old way: one national view per day, oldest first (as the chart asked for them)."""
    return {d: asdict((await national.national_view(conn, d, **kw)).supply) for d in days}


def _dicts(days: dict[date, national.Supply]) -> Days:
    return {d: asdict(s) for d, s in days.items()}


def _same(new: Days, old: Days) -> None:
    assert list(new) == list(old)
    for d in old:
        fast, full = dict(new[d]), dict(old[d])
        # The same need, summed over facilities rather than over provinces' sums: equal to
        # the last bits of a float (the chart shows two decimals).
        demand, expected = fast.pop("demand_t_per_day"), full.pop("demand_t_per_day")
        assert demand == pytest.approx(expected, rel=1e-12), d
        assert (demand is None) == (expected is None), d
        assert fast == full, d


def test_chart_days_are_the_per_day_national_views(web_db_url: str) -> None:
    cfg = load_centre_settings(Settings(database_url=web_db_url)).accounting
    now = datetime.now(UTC)
    got: dict[str, tuple[Days, Days]] = {}

    async def compare() -> None:
        async with await AsyncConnection.connect(web_db_url) as conn:
            today = local_today(now, cfg)
            first = today - timedelta(days=6)
            days = [first + timedelta(days=i) for i in range(7)]
            cur = await conn.execute(
                "SELECT array_agg(o.id) FROM organisations o JOIN organisations p "
                "ON p.id = o.parent_id WHERE p.code = 'SYT-79'"
            )
            row = await cur.fetchone()
            assert row is not None and row[0]
            syt79 = frozenset(int(i) for i in row[0])
            for label, visible in (("national", None), ("syt79", syt79)):
                kw: dict[str, Any] = {"visible": visible, "cfg": cfg, "now": now}
                # Cold: no stored window, both ways compute (and store) them on the way.
                async with conn.transaction(force_rollback=True):
                    await conn.execute("DELETE FROM tank_windows")
                    cold_new = _dicts(await national.chart_days(conn, first, today, **kw))
                async with conn.transaction(force_rollback=True):
                    await conn.execute("DELETE FROM tank_windows")
                    cold_old = await _per_day(conn, days, **kw)
                got[f"{label} cold"] = (cold_new, cold_old)
                # Warm: the windows stored.
                warm_old = await _per_day(conn, days, **kw)
                got[f"{label} warm"] = (
                    _dicts(await national.chart_days(conn, first, today, **kw)),
                    warm_old,
                )
                await conn.commit()

    # Playwright's sync API may run a loop in this thread (same module as browser tests).
    t = threading.Thread(target=lambda: asyncio.run(compare()))
    t.start()
    t.join()
    assert set(got) == {"national cold", "national warm", "syt79 cold", "syt79 warm"}
    for label, (new, old) in got.items():
        assert len(new) == 7, label
        _same(new, old)
        # Something to compare: a known demand on some days, every day's capacity.
        assert any(v["demand_t_per_day"] is not None for v in new.values()), label
    national_days = got["national warm"][0]
    assert all(v["capacity_normal_t_per_day"] > 0 for v in national_days.values())
    # The department's demand is part of the nation's, not all of it.
    last = max(national_days)
    assert got["syt79 warm"][0][last]["demand_t_per_day"] < national_days[last]["demand_t_per_day"]
