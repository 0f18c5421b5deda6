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


_RETRY = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}

COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not authenticated (no or bad session / token)"},
    403: {"model": ErrorOut, "description": "Forbidden for this role, or password change needed"},
    404: {"model": ErrorOut, "description": "Not found, or outside the caller's scope"},
    422: {"model": ValidationOut, "description": "Invalid input; `loc` names the field"},
    429: {"model": ErrorOut, "description": "Too many attempts", "headers": _RETRY},
    503: {"model": ErrorOut, "description": "Database unavailable", "headers": _RETRY},
}


def _as_json(entry: dict[str, Any]) -> dict[str, Any]:
    model = entry["model"]
    out = {k: v for k, v in entry.items() if k != "model"}
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    out["content"] = {"application/json": {"schema": ref}}
    return out


# For a route whose success answer is not JSON (response_class=HTMLResponse, a file): FastAPI
# documents extra responses in the route's media type, but the errors are still JSON.
JSON_ERRORS: dict[int | str, dict[str, Any]] = {
    code: _as_json(entry) for code, entry in COMMON_RESPONSES.items()
}


_CSV = "text/csv"
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# An export route (`….{kind}`, kind csv or xlsx): a file attachment, errors as JSON.
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **JSON_ERRORS,
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
