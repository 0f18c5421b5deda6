"""The periodic coordination job (`oxy coordination sync`) and the read-only delivery list:
supplier-report lines and refill matches come from the job, once, whoever else runs it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from api.accounting.windows import report_day_of
from api.coordination.service import SyncRound, run_once

from .conftest import REFILL_KG, World
from .test_workflow import CFG, _assigned, sync

LIST_URLS = (
    "/api/coordination/deliveries",
    "/api/coordination/deliveries?match=pending",
    "/api/coordination/deliveries.csv",
)


def _report(client: TestClient, w: World, lines: dict[str, float]) -> None:
    day = report_day_of(w.refill_at, CFG)
    r = client.put(
        f"/api/suppliers/{w.ids['S79']}/reports/{day.isoformat()}",
        json={
            "production_t": 20,
            "deliveries": [
                {"facility_id": w.ids[f], "liquid": {"value": kg, "unit": "kg"}}
                for f, kg in lines.items()
            ],
        },
        headers=w.h("S79"),
    )
    assert r.status_code == 200, r.text


def _snapshot(db_url: str) -> tuple[Any, ...]:
    """Every delivery as stored, and the size of the audit log."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT id, state, match_state, matched_kg, amount_kg, supplier_report_id, updated_at "
            "FROM deliveries ORDER BY id"
        ).fetchall()
        audit = conn.execute("SELECT count(*) FROM audit_log").fetchone()
    return tuple(rows), audit


def _audits(db_url: str, action: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_log WHERE entity = 'delivery' AND action = %s", (action,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_listing_deliveries_writes_nothing(client: TestClient, world: World, db_url: str) -> None:
    w = world
    # A delivered delivery still waiting for its window to close, and a report line not taken in.
    aid = _assigned(client, w, "B", 3000)
    d = client.post(
        f"/api/coordination/assignments/{aid}/dispatch", json={}, headers=w.h("S79")
    ).json()
    r = client.post(
        f"/api/coordination/deliveries/{d['id']}/advance",
        json={"state": "delivered"},
        headers=w.h("S79"),
    )
    assert r.json()["match_state"] == "pending"
    _report(client, w, {"A": REFILL_KG})
    before = _snapshot(db_url)
    for who in ("byt", "syt79", "S79", "A", "B"):
        for url in LIST_URLS:
            assert client.get(url, headers=w.h(who)).status_code == 200, (who, url)
    assert _snapshot(db_url) == before
    listed = client.get("/api/coordination/deliveries", headers=w.h("byt")).json()
    assert [x["id"] for x in listed] == [d["id"]]  # the report's line waits for the job
    # The job takes it in; the list then shows it (matched with A's refill).
    assert sync(db_url).new_lines == 1
    listed = client.get("/api/coordination/deliveries", headers=w.h("A")).json()
    assert [(x["facility_id"], x["match_state"]) for x in listed] == [(w.ids["A"], "matched")]
    # B's window closes without a refill: the job, not a list, flags it.
    later = sync(db_url, datetime.now(UTC) + timedelta(hours=7))
    assert later.examined == 1
    (b,) = client.get("/api/coordination/deliveries", headers=w.h("B")).json()
    assert (b["match_state"], b["match"]["key"]) == ("mismatch", "coord.match.none")


def test_the_job_twice_matches_once(client: TestClient, world: World, db_url: str) -> None:
    w = world
    _report(client, w, {"A": REFILL_KG, "B": 4000})
    first = sync(db_url)
    assert (first.ran, first.new_lines) == (True, 2)
    after_first = _snapshot(db_url)
    second = sync(db_url)
    assert (second.ran, second.new_lines, second.examined) == (True, 0, 0)
    assert _snapshot(db_url) == after_first  # nothing new: nothing written
    assert _audits(db_url, "from_report") == 2
    assert _audits(db_url, "match") == 2  # A matched, B flagged: one verdict each
    rows = client.get("/api/coordination/deliveries", headers=w.h("byt")).json()
    assert sorted(x["match_state"] for x in rows) == ["matched", "mismatch"]


def test_a_second_runner_skips_while_one_holds_the_lock(
    client: TestClient, world: World, db_url: str
) -> None:
    w = world
    _report(client, w, {"A": REFILL_KG})

    async def contend() -> tuple[SyncRound, SyncRound, list[SyncRound]]:
        async with (
            await psycopg.AsyncConnection.connect(db_url, autocommit=True) as holder,
            await psycopg.AsyncConnection.connect(db_url, autocommit=True) as other,
        ):
            # `holder` is in the middle of a round (lock taken, transaction open).
            async with holder.transaction():
                await holder.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended('oxy.coordination.sync', 0))"
                )
                blocked = await run_once(other, CFG, datetime.now(UTC))
            free = await run_once(other, CFG, datetime.now(UTC))
            # Two runners at once: between them the line is taken in exactly once.
            both = await asyncio.gather(
                run_once(holder, CFG, datetime.now(UTC)), run_once(other, CFG, datetime.now(UTC))
            )
            return blocked, free, list(both)

    blocked, free, both = asyncio.run(contend())
    assert blocked == SyncRound(ran=False)
    assert free.new_lines == 1
    assert sum(r.new_lines for r in both) == 0
    rows = client.get("/api/coordination/deliveries", headers=w.h("A")).json()
    assert len(rows) == 1 and rows[0]["match_state"] == "matched"
    assert _audits(db_url, "from_report") == 1 and _audits(db_url, "match") == 1


def test_the_matcher_skips_a_delivery_a_transition_holds(
    client: TestClient, world: World, db_url: str
) -> None:
    w = world
    _report(client, w, {"B": 4000})
    assert sync(db_url).new_lines == 1  # B saw no refill: flagged at once (window closed)
    aid = _assigned(client, w, "B", 3000)
    d = client.post(
        f"/api/coordination/assignments/{aid}/dispatch", json={}, headers=w.h("S79")
    ).json()
    client.post(
        f"/api/coordination/deliveries/{d['id']}/advance",
        json={"state": "delivered"},
        headers=w.h("S79"),
    )
    later = datetime.now(UTC) + timedelta(hours=7)
    with psycopg.connect(db_url) as held:
        held.execute("SELECT 1 FROM deliveries WHERE id = %s FOR UPDATE", (d["id"],))
        assert sync(db_url, later).examined == 0  # not waited for, not judged
    assert sync(db_url, later).examined == 1


def test_oxy_coordination_sync_once(client: TestClient, world: World, db_url: str) -> None:
    _report(client, world, {"A": REFILL_KG})
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXY_")}
    env["OXY_DATABASE_URL"] = db_url
    cmd = [sys.executable, "-m", "oxy", "coordination", "sync", "--once"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert "new supplier-report lines: 1" in r.stdout
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert "new supplier-report lines: 0" in r.stdout, r.stdout + r.stderr
