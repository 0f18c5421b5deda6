"""The error bodies every JSON route may answer, documented once for the whole OpenAPI document.

`create_app` passes `COMMON_RESPONSES` to FastAPI, so each operation lists 401 (not logged in),
403 (wrong role, or a temporary password), 404 (absent or outside the caller's scope), 422
(validation: a list of problems, or a form's `{"errors": [...]}`), 429 and 503 (the database is
away; `Retry-After`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    """An error: `detail` is a message, or an object with a machine-readable `code`."""

    detail: str | dict[str, Any]


class ValidationProblem(BaseModel):
    """One refused input: where (`loc`, last item the field), why (`msg`), which rule (`type`)."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationOut(BaseModel):
    """422: the refused inputs (request validation), or a form's field errors."""

    detail: list[ValidationProblem] | dict[str, Any] | str = Field(
        description="A list of problems, or {'errors': [{'field', 'message'}]} from a form check"
    )


# The bodies `json_error` may name; `add_error_schemas` puts each into the OpenAPI document.
ERROR_MODELS: tuple[type[BaseModel], ...] = (ErrorOut, ValidationOut)

_RETRY = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}


def json_error(model: type[BaseModel], description: str, **extra: Any) -> dict[str, Any]:
    """A documented error answer: a JSON body of `model` (a reference into the document's
    components, which `add_error_schemas` fills), whatever the route's own media type.

    Not FastAPI's `{"model": …}` form: FastAPI builds a pydantic TypeAdapter for each such entry
    of each route, in each app, the first time a request walks the router — 6 × 126 of them,
    0.1-0.25 CPU-s per app start (the API's workers, each test's app) for a body only the OpenAPI
    document describes."""
    if model not in ERROR_MODELS:  # its schema would be missing from the document
        raise ValueError(f"{model.__name__} is not one of api.errors.ERROR_MODELS")
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"description": description, **extra, "content": {"application/json": {"schema": ref}}}


COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: json_error(ErrorOut, "Not authenticated (no or bad session / token)"),
    403: json_error(ErrorOut, "Forbidden for this role, or password change needed"),
    404: json_error(ErrorOut, "Not found, or outside the caller's scope"),
    422: json_error(ValidationOut, "Invalid input; `loc` names the field"),
    429: json_error(ErrorOut, "Too many attempts", headers=_RETRY),
    503: json_error(ErrorOut, "Database unavailable", headers=_RETRY),
}


def add_error_schemas(document: dict[str, Any]) -> dict[str, Any]:
    """Put the error bodies' schemas (and those they refer to) into the document's components."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in ERROR_MODELS:
        schema = model.model_json_schema(
            ref_template="#/components/schemas/{model}", mode="serialization"
        )
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    return document


_CSV = "text/csv"
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# An export route (`….{kind}`, kind csv or xlsx): a file attachment, errors as JSON.
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **COMMON_RESPONSES,
    200: {
        "description": "The rows as an attachment (`Content-Disposition`), headed in the "
        "caller's language. `kind` is csv or xlsx; another kind is a 422 whose `loc` "
        "names `kind`",
        "content": {
            _CSV: {"schema": {"type": "string"}},
            _XLSX: {"schema": {"type": "string", "format": "binary"}},
        },
    },
}
