"""The decision of issue 19 (docs/security.md, "Suppliers' deliveries"): a supplier may report a
delivery to any existing facility, in any province — audited under its own organisation — and a
facility id that does not exist is refused, naming the field."""

from __future__ import annotations

from datetime import date

import psycopg
from fastapi.testclient import TestClient

from api.auth import SESSION_COOKIE, csrf_for_session
from tests.api.conftest import World, login


def test_a_supplier_reports_a_delivery_to_another_province_audited(
    client: TestClient, world: World
) -> None:
    login(client, "ncc-in")  # supplier of province 79
    csrf = {"x-csrf-token": csrf_for_session(client.cookies[SESSION_COOKIE])}
    url = f"/api/suppliers/{world.sup_in}/reports/{date.today().isoformat()}"
    body = {
        "production_t": 10,
        "deliveries": [{"facility_id": world.fac_out, "liquid": {"value": 2, "unit": "t"}}],
    }  # BV-OUT is in province 01
    unknown = {**body, "deliveries": [{"facility_id": 987654321, "cylinders": 3}]}
    r = client.put(url, json=unknown, headers=csrf)
    assert r.status_code == 422
    assert r.json()["detail"]["errors"][0]["field"] == "deliveries.0.facility_id"
    r = client.put(url, json=body, headers=csrf)
    assert r.status_code == 200, r.text
    with psycopg.connect(world.db_url) as conn:
        rows = conn.execute(
            "SELECT username, org_id, after -> 'deliveries' -> 0 ->> 'facility_id' FROM audit_log"
            " WHERE entity = 'supplier_report'"
        ).fetchall()
    assert rows == [("ncc-in", world.sup_in, str(world.fac_out))]
