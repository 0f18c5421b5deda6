"""Dates outside the platform's range (api.dates) are a 422 naming the field — on every route,
checked once by the application-wide date guard — never a 500 from date arithmetic."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import World, csrf_of, login

FAR = "9999-12-31"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/facilities/{fac}/accounting?day=" + FAR, "day"),
        ("/api/facilities/{fac}/reports/" + FAR, "day"),
        ("/api/syt/{syt}/report?day=" + FAR, "day"),
        ("/api/syt/{syt}/reports?first=0001-01-01", "first"),
        ("/api/syt/{syt}/reports/" + FAR + "/facilities.csv", "day"),
        ("/api/syt/{syt}/reports/" + FAR + "/print", "day"),
        ("/api/byt/national?day=" + FAR, "day"),
        ("/api/byt/national.csv?day=" + FAR, "day"),
        ("/api/byt/national?day=0", "day"),  # a number is read as 1970-01-01
        ("/api/facilities/{fac}/tanks/1/series?start=0001-01-01T00:00:00Z&end=" + FAR, "start"),
    ],
)
def test_extreme_dates_are_a_422_naming_the_field(
    client: TestClient, world: World, path: str, field: str
) -> None:
    login(client, "byt1")
    r = client.get(path.format(fac=world.fac_in, syt=world.syt_in))
    assert r.status_code == 422, (path, r.status_code, r.text[:300])
    (problem,) = r.json()["detail"]
    assert problem["loc"][-1] == field and problem["type"] == "date_out_of_range"
    assert "2020-01-01" in problem["msg"]


def test_a_correction_ending_in_year_9999_is_refused(client: TestClient, world: World) -> None:
    login(client, "eng-in")
    r = client.post(
        f"/api/facilities/{world.fac_in}/corrections",
        headers={"x-csrf-token": csrf_of(client.get("/account").text)},
        json={
            "sensor_id": 1,
            "ts_from": "2026-11-01T00:00:00Z",
            "ts_to": "9999-12-31T23:00:00Z",
            "action": "invalidate",
            "reason": "probe",
        },
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "ts_to"]


def test_html_pages_answer_a_vietnamese_page_naming_the_field(
    client: TestClient, world: World
) -> None:
    login(client, "byt1")
    r = client.get(
        f"/facilities/{world.fac_in}/report?day=0001-01-01", headers={"accept": "text/html"}
    )
    assert r.status_code == 422
    assert "Ngày phải nằm trong khoảng từ 2020-01-01" in r.text and "<code>day</code>" in r.text
    # A day in range still works.
    ok = client.get(f"/facilities/{world.fac_in}/report?day=2026-11-28")
    assert ok.status_code == 200
