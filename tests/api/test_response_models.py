"""Which JSON routes answer with a typed, documented model (issue 19: the OpenAPI document is a
contract). Every 2xx answer is classified from the document itself; the routes still answering
an untyped object are listed here by name, so typing one more means removing it from the list
(the test fails until then) and a new untyped route fails the test."""

from __future__ import annotations

from typing import Any

from api.app import create_app
from oxy.settings import Settings

# Still untyped (a `dict[str, Any]` answer): none left; a new one fails the test.
UNTYPED: set[str] = set()


def _typed(schema: dict[str, Any] | None) -> bool:
    if not schema:
        return False
    if "$ref" in schema or "properties" in schema:
        return True
    if schema.get("type") == "array":
        return _typed(schema.get("items"))
    return any(_typed(s) for s in schema.get("anyOf", []) if s.get("type") != "null")


def classify(document: dict[str, Any]) -> dict[str, str]:
    """'typed', 'untyped', 'file' (not JSON) or 'empty' per operation of the API."""
    out = {}
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            ok = [code for code in op["responses"] if code.startswith("2")]
            content = op["responses"][ok[0]].get("content", {}) if ok else {}
            if not content:
                kind = "empty"
            elif "application/json" not in content:
                kind = "file"
            else:
                kind = "typed" if _typed(content["application/json"].get("schema")) else "untyped"
            out[f"{method.upper()} {path}"] = kind
    return out


def test_json_routes_answer_typed_models() -> None:
    app = create_app(Settings(database_url="postgresql://unused@127.0.0.1:1/none"))
    kinds = classify(app.openapi())
    untyped = {op for op, kind in kinds.items() if kind == "untyped"}
    json_routes = [op for op, kind in kinds.items() if kind in ("typed", "untyped")]
    print(
        f"{len(json_routes) - len(untyped)} of {len(json_routes)} JSON routes typed "
        f"({sum(k == 'file' for k in kinds.values())} file, "
        f"{sum(k == 'empty' for k in kinds.values())} empty answers)"
    )
    assert untyped - UNTYPED == set(), "new untyped JSON routes: give them a *Public model"
    assert UNTYPED - untyped == set(), "typed now: remove them from UNTYPED"
    # The priorities of issue 19 are typed: accounting, facilities, the aggregate views.
    for op in (
        "GET /api/facilities/{facility_id}/accounting",
        "GET /api/facilities/{facility_id}/tanks/{tank_id}/series",
        "GET /api/facilities",
        "GET /api/byt/national",
        "PUT /api/facilities/{facility_id}/reports/{day}",
        "POST /api/byt/syt-reports/{report_id}/approve",
    ):
        assert kinds[op] == "typed", op


def test_error_answers_are_documented_on_every_operation() -> None:
    app = create_app(Settings(database_url="postgresql://unused@127.0.0.1:1/none"))
    for path, operations in app.openapi()["paths"].items():
        for method, op in operations.items():
            if path == "/health":
                continue
            for code in ("401", "403", "404", "422", "503"):
                body = op["responses"].get(code, {}).get("content", {})
                assert "application/json" in body, f"{method.upper()} {path} {code}"
