"""The national view of a day on which no facility was active yet (a deployment's first days):
the nation row has every key, its figures unknown (None, shown as "—"), never a missing key
that made the BYT dashboard fail with a 500 (found by the soak on a freshly seeded country)."""

from __future__ import annotations

import asyncio
from datetime import date

from psycopg import AsyncConnection

from api.reports.national import national_view
from api.settings import load_centre_settings
from oxy.demo_seed import seed_demo
from oxy.settings import Settings


def test_day_before_any_facility(db_url: str) -> None:
    seed_demo(db_url)  # facilities active from 2020-01-01
    cfg = load_centre_settings(Settings(database_url=db_url)).accounting

    async def view(day: date) -> dict[str, object]:
        async with await AsyncConnection.connect(db_url) as conn:
            v = await national_view(conn, day, visible=None, cfg=cfg)
            return {"nation": v.nation.as_dict()}

    before = asyncio.run(view(date(2019, 12, 31)))
    after = asyncio.run(view(date(2020, 1, 2)))
    nation, busy = before["nation"], after["nation"]
    assert isinstance(nation, dict) and isinstance(busy, dict)
    assert set(nation) == set(busy)
    assert nation["expected"] == 0 and busy["expected"] > 0
    assert nation["need_nm3_per_day"] is None and nation["days_of_supply"] is None
    assert nation["stock_nm3"] is None
