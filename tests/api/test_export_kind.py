"""The export routes (`….{kind}`) of reports, reporting rates and coordination declare `kind` as
an enum (csv, xlsx) in the OpenAPI document, and answer another kind the same way everywhere: a
422 whose `loc` names `kind` (issue 19), after the role check as for any other input."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from oxy.settings import Settings
from tests.api.conftest import USERNAMES, World, login

DAY = "2026-12-01"


def _export_operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        path: op["get"]
        for path, op in document["paths"].items()
        if path.endswith(".{kind}") and "get" in op
    }


def _kind_schema(document: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    (param,) = [p for p in op["parameters"] if p["name"] == "kind"]
    assert param["in"] == "path" and param["required"] is True
    schema: dict[str, Any] = param["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_every_export_kind_is_an_enum_with_a_documented_422() -> None:
    document = create_app(Settings(database_url="postgresql://unused@127.0.0.1:1/none")).openapi()
    ops = _export_operations(document)
    tags = {tag for op in ops.values() for tag in op["tags"]}
    assert {"reports", "reporting rate", "coordination"} <= tags, tags
    assert len(ops) >= 10, sorted(ops)
    for path, op in ops.items():
        assert _kind_schema(document, op)["enum"] == ["csv", "xlsx"], path
        body = op["responses"]["422"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/ValidationOut"}, path
        assert "422" in op["responses"]["200"]["description"], path


def _url(path: str, world: World, kind: str) -> str:
    values = {"org_id": str(world.syt_in), "supplier_id": str(world.sup_in), "day": DAY}
    values["kind"] = kind
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def test_an_unknown_kind_is_the_same_422_everywhere(client: TestClient, world: World) -> None:
    ops = _export_operations(client.app.openapi())  # type: ignore[attr-defined]
    login(client, USERNAMES["byt"])
    for path in sorted(ops):
        for kind in ("pdf", "CSV", "csv.exe", ""):
            r = client.get(_url(path, world, kind), headers={"Accept": "application/json"})
            if kind == "":  # `….` alone matches no route
                assert r.status_code == 404, (path, r.status_code)
                continue
            assert r.status_code == 422, (path, kind, r.status_code, r.text[:200])
            assert r.headers["content-type"] == "application/json"
            (problem,) = r.json()["detail"]
            assert problem["loc"] == ["path", "kind"], (path, problem)
            assert problem["type"] == "enum", (path, problem)
        for kind, start in (("csv", "text/csv"), ("xlsx", "application/vnd.openxmlformats")):
            r = client.get(_url(path, world, kind))
            assert r.status_code == 200, (path, kind, r.status_code, r.text[:200])
            assert r.headers["content-type"].startswith(start), path
            assert r.headers["content-disposition"].endswith(f'.{kind}"'), path


def test_the_role_check_comes_before_the_kind(client: TestClient, world: World) -> None:
    login(client, USERNAMES["supplier"])
    for path in ("/api/byt/national.pdf", "/api/reporting-rate.pdf"):
        r = client.get(path, headers={"Accept": "application/json"})
        assert r.status_code == 403, (path, r.status_code)
    anonymous = TestClient(client.app)
    r = anonymous.get("/api/coordination/requests.pdf")
    assert r.status_code == 401, r.status_code
