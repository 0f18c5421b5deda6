"""The coordination map's data after first paint (GET /map/data): the facilities in the caller's
scope with their status, the supplier sites; BYT and the SYT each see their own; the BYT page no
longer carries every facility's point in its HTML (the page paints first, the points follow)."""

from __future__ import annotations

import json
import re

import psycopg
from fastapi.testclient import TestClient

from tests.api.conftest import World, login


def _place(world: World) -> None:
    with psycopg.connect(world.db_url) as conn:
        conn.execute(
            "UPDATE facilities SET latitude = 10.76, longitude = 106.66 WHERE org_id = %s",
            (world.fac_in,),
        )
        conn.execute(
            "UPDATE facilities SET latitude = 21.0, longitude = 105.8 WHERE org_id = %s",
            (world.fac_out,),
        )


def test_byt_sees_every_facility_the_syt_its_own(client: TestClient, world: World) -> None:
    _place(world)
    login(client, "byt1")
    r = client.get("/map/data?lang=en")
    assert r.status_code == 200
    data = r.json()
    ids = {f["id"] for f in data["facilities"]}
    assert {world.fac_in, world.fac_out} <= ids
    point = next(f for f in data["facilities"] if f["id"] == world.fac_in)
    assert point["url"] == f"/facilities/{world.fac_in}/tanks"
    assert point["status"] in ("enough", "needs_more", "unknown")
    assert point["days"] == "—"  # unknown is a dash, never 0
    assert {"provinces", "suppliers"} <= data.keys()
    client.cookies.clear()
    login(client, "syt79")
    data = client.get("/map/data").json()
    assert {f["id"] for f in data["facilities"]} == {world.fac_in}


def test_roles_without_a_map_are_refused(client: TestClient, world: World) -> None:
    login(client, "staff-in")
    assert client.get("/map/data").status_code == 403


def test_byt_page_paints_without_the_points(client: TestClient, world: World) -> None:
    _place(world)
    login(client, "byt1")
    page = client.get("/byt")
    assert page.status_code == 200
    assert 'data-src="/map/data"' in page.text
    assert 'id="map-data"' not in page.text  # the points come after first paint
    i18n = re.search(
        r'<script type="application/json" id="map-i18n">(.*?)</script>', page.text, re.S
    )
    assert i18n is not None
    labels = json.loads(i18n.group(1))
    assert labels["open_request"] and labels["state"]["pending"] != "cstate.pending"
