"""The BYT map page's 7-day chart reads each day's supply figures alone (national.chart_day);
they must be the national view's own, day by day, on the demo country with its reports."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg import AsyncConnection

from api.accounting.windows import local_today
from api.reports import national
from api.settings import load_centre_settings
from oxy.settings import Settings


def test_chart_days_are_the_national_views_supply(web_db_url: str) -> None:
    cfg = load_centre_settings(Settings(database_url=web_db_url)).accounting
    now = datetime.now(UTC)
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []

    async def compare() -> None:
        async with await AsyncConnection.connect(web_db_url) as conn:
            today = local_today(now, cfg)
            for i in range(7):
                d = today - timedelta(days=i)
                full = await national.national_view(conn, d, visible=None, cfg=cfg, now=now)
                pairs.append(
                    (await national.chart_day(conn, d, visible=None, cfg=cfg, now=now), full)
                )

    # Playwright's sync API may run a loop in this thread (same module as browser tests).
    t = threading.Thread(target=lambda: asyncio.run(compare()))
    t.start()
    t.join()
    assert len(pairs) == 7
    for fast, full in pairs:
        # The same need, summed over facilities rather than over provinces' sums: equal to
        # the last bits of a float (the chart shows two decimals).
        demand = fast.pop("demand_t_per_day")
        expected = dict(full["supply"])
        assert demand == pytest.approx(expected.pop("demand_t_per_day"), rel=1e-12)
        assert fast == expected
        fast["demand_t_per_day"] = demand
    assert any(fast["demand_t_per_day"] is not None for fast, _ in pairs)
