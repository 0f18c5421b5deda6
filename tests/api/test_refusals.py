"""Domain refusals are answered by one handler per error family, registered by create_app."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from api.accounting.corrections import CorrectionError
from api.app import create_app
from api.coordination.errors import CoordinationError, NotFound
from api.policy import Scope, policy
from api.reports.errors import Conflict, FieldError, Incomplete, Locked, ValidationFailed
from oxy.settings import Settings

RAISED: list[Exception] = []


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(Settings(database_url="postgresql://unused@127.0.0.1:1/none"))
    router = APIRouter()

    @router.get("/api/raise", dependencies=[policy(scope=Scope.PUBLIC)])
    async def raise_api() -> None:
        raise RAISED[-1]

    @router.get("/raise-page", dependencies=[policy(scope=Scope.PUBLIC)])
    async def raise_page() -> None:
        raise RAISED[-1]

    app.include_router(router)
    yield TestClient(app, raise_server_exceptions=False)


def _answer(
    client: TestClient, exc: Exception, path: str = "/api/raise", **headers: str
) -> httpx.Response:
    RAISED.append(exc)
    return client.get(path, headers=headers, params={"lang": "en"})


def test_refused_figures_are_422_field_by_field(client: TestClient) -> None:
    r = _answer(client, ValidationFailed([FieldError("patients_total", "report.error.negative")]))
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail["confirmable"] is False
    assert [e["field"] for e in detail["errors"]] == ["patients_total"]
    assert detail["errors"][0]["message"]


def test_a_locked_report_is_409_with_why(client: TestClient) -> None:
    r = _answer(client, Locked("report.locked.approved"))
    assert r.status_code == 409
    assert r.json()["detail"]["locked"] == "report.locked.approved"


def test_incomplete_and_conflict_are_409(client: TestClient) -> None:
    r = _answer(client, Incomplete({"5": {"contributors": 1, "expected": 2}}))
    assert (r.status_code, r.json()["detail"]["incomplete"]) == (
        409,
        {"5": {"contributors": 1, "expected": 2}},
    )
    r = _answer(client, Conflict("syt.error.not_sent"))
    assert (r.status_code, r.json()["detail"]["key"]) == (409, "syt.error.not_sent")


def test_coordination_refusals_keep_their_status(client: TestClient) -> None:
    r = _answer(client, CoordinationError("coord.error.amount", field="amount", status=422))
    assert r.status_code == 422
    assert r.json()["detail"]["errors"][0]["field"] == "amount"
    r = _answer(client, NotFound())
    assert (r.status_code, r.json()["detail"]) == (404, "not found")


def test_a_refused_correction_names_its_field(client: TestClient) -> None:
    r = _answer(client, CorrectionError("correction.error.range", "ts_to"))
    assert r.status_code == 422
    assert r.json()["detail"]["errors"][0]["field"] == "ts_to"


def test_a_page_gets_the_html_404(client: TestClient) -> None:
    r = _answer(client, NotFound(), "/raise-page", accept="text/html")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
