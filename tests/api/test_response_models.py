"""Which JSON routes answer with a typed, documented model (issue 19: the OpenAPI document is a
contract). Every 2xx answer is classified from the document itself; the routes still answering
an untyped object are listed here by name, so typing one more means removing it from the list
(the test fails until then) and a new untyped route fails the test."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from api.app import create_app
from api.errors import json_error
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


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The application's OpenAPI document, built once for the module (the tests only read it)."""
    return create_app(Settings(database_url="postgresql://unused@127.0.0.1:1/none")).openapi()


def test_json_routes_answer_typed_models(document: dict[str, Any]) -> None:
    kinds = classify(document)
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


def test_error_answers_are_documented_on_every_operation(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            if path == "/health":
                continue
            for code in ("401", "403", "404", "422", "503"):
                body = op["responses"].get(code, {}).get("content", {})
                assert "application/json" in body, f"{method.upper()} {path} {code}"


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        own = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return own.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def test_every_reference_names_a_schema_of_the_document(document: dict[str, Any]) -> None:
    """The error answers are written as references (api.errors.json_error, not FastAPI's
    per-route models): each must name a schema the document carries, under its plain name."""
    schemas = document["components"]["schemas"]
    dangling = {
        r for r in _refs(document) if r.removeprefix("#/components/schemas/") not in schemas
    }
    assert dangling == set()
    assert {"ErrorOut", "ValidationOut", "ValidationProblem"} <= set(schemas)
    assert not [name for name in schemas if "__" in name]  # no module-qualified duplicate names


def test_an_error_body_outside_the_documented_set_is_refused_where_declared() -> None:
    """A `json_error` naming another model would leave a dangling reference: refused where the
    route declares it (at import)."""

    class Other(BaseModel):
        detail: str

    with pytest.raises(ValueError, match="ERROR_MODELS"):
        json_error(Other, "never documented")


# Parts of a typed answer still described as "anything" (`{}`) or a free-form object. The SYT
# report's fields, changes and copy sent, revision snapshots and diffs, matched refills and
# message parameters are typed now; these are left, each on purpose, and a new one fails:
FREE_FORM: set[str] = {
    "AlertOut.details",  # what the rule saw: its own figures, per alert rule
    "AuditEntry.before",  # the audited row as it was: any audited table's columns
    "AuditEntry.after",
    # Error bodies: a message, or the form check's {errors: [...]} object.
    "ValidationOut.detail",
    "ErrorOut.detail",
}


def _free_form(schema: dict[str, Any]) -> bool:
    """Whether a property's schema says nothing about its shape (`{}`, a free-form object, or
    an array/object/union made of such parts)."""
    shape = {k: v for k, v in schema.items() if k not in ("description", "title", "default")}
    if not shape:
        return True
    if "$ref" in shape or "enum" in shape or "const" in shape:
        return False
    for key in ("anyOf", "oneOf", "allOf"):
        if key in shape:
            return any(_free_form(s) for s in shape[key])
    if shape.get("type") == "array":
        items = shape.get("items")
        prefix = shape.get("prefixItems")
        return (items is None and prefix is None) or (
            (items is not None and items is not False and _free_form(items))
            or any(_free_form(s) for s in prefix or [])
        )
    if shape.get("type") == "object":
        if "properties" in shape:
            return False  # an inline model: its properties are checked where it is declared
        extra = shape.get("additionalProperties", True)
        return extra is True or (isinstance(extra, dict) and _free_form(extra))
    return "type" not in shape


def free_form_parts(document: dict[str, Any]) -> set[str]:
    """`Model.property` of every component whose property is free-form."""
    found = set()
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        for prop, sub in (schema.get("properties") or {}).items():
            if _free_form(sub):
                found.add(f"{name}.{prop}")
    return found


def test_typed_answers_have_no_free_form_parts(document: dict[str, Any]) -> None:
    found = free_form_parts(document)
    assert found - FREE_FORM == set(), "free-form parts: give them a typed model"
    assert FREE_FORM - found == set(), "typed now: remove them from FREE_FORM"
