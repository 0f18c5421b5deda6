"""The range of dates the platform accepts, checked once for every route.

A date far outside the platform's life (`9999-12-31`, `0001-01-01`, `day=0` read as 1970-01-01)
has no data and used to overflow date arithmetic further down (a 500). `date_guard` is an
application-wide dependency (installed by `create_app`): for the route being called it reads the
declared types of its path, query and JSON-body fields, and refuses any `date` / `datetime`
outside [EARLIEST_DAY, today + FUTURE_DAYS] with a 422 naming the field — before the handler
runs, for every route present and future. HTML forms use `check_day` through
`api.web.forms` (`past_day`, `date_field`, `local_datetime_field`).
"""

from __future__ import annotations

import json
import types
import typing
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError

EARLIEST_DAY = date(2020, 1, 1)  # before the platform: no telemetry, no reports
FUTURE_DAYS = 3660  # ten years: plans, deliveries, token expiry dates

DATE_RANGE_MESSAGE = "The date must be between %(earliest)s and %(latest)s."


def latest_day(today: date | None = None) -> date:
    """The last day accepted."""
    return (today or datetime.now(UTC).date()) + timedelta(days=FUTURE_DAYS)


def in_range(value: date | datetime) -> bool:
    """Whether `value` (a day or an instant) lies in the accepted range."""
    day = value.date() if isinstance(value, datetime) else value
    return EARLIEST_DAY <= day <= latest_day()


class DateOutOfRange(RequestValidationError):
    """A 422 for a date outside the accepted range; `loc` names the field."""

    def __init__(self, loc: tuple[str, ...]) -> None:
        self.field = loc[-1]
        super().__init__(
            [
                {
                    "loc": loc,
                    "msg": DATE_RANGE_MESSAGE
                    % {"earliest": EARLIEST_DAY.isoformat(), "latest": latest_day().isoformat()},
                    "type": "date_out_of_range",
                }
            ]
        )


def check_day(value: date | datetime | None, field: str) -> None:
    """Raise DateOutOfRange (naming `field`) when `value` is outside the range."""
    if value is not None and not in_range(value):
        raise DateOutOfRange(("form", field))


def _date_kind(annotation: Any) -> type[date] | None:
    """date or datetime when `annotation` is one of them (optionally `| None`)."""
    options = (
        typing.get_args(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType)
        else (annotation,)
    )
    for opt in options:
        if opt is datetime:
            return datetime
        if opt is date:
            return date
    return None


_ADAPTERS: dict[type[date], TypeAdapter[Any]] = {
    date: TypeAdapter(date),
    datetime: TypeAdapter(datetime),
}


def _check_raw(raw: Any, kind: type[date], loc: tuple[str, ...]) -> None:
    try:
        value = _ADAPTERS[kind].validate_python(raw)
    except (ValidationError, ValueError, OverflowError):
        return  # not a date at all: FastAPI's own validation answers 422 for it
    if not in_range(value):
        raise DateOutOfRange(loc)


def _fields(dependant: Any) -> typing.Iterator[tuple[str, Any]]:
    """(location, ModelField) of a dependant and its sub-dependencies."""
    for kind, fields in (
        ("path", dependant.path_params),
        ("query", dependant.query_params),
        ("body", dependant.body_params),
    ):
        for f in fields:
            yield kind, f
    for sub in dependant.dependencies:
        yield from _fields(sub)


async def date_guard(request: Request) -> None:
    """Refuse dates outside the accepted range in any path, query or JSON-body field."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    body: Any = None
    for where, f in _fields(dependant):
        annotation = f.field_info.annotation
        if where == "path" and (kind := _date_kind(annotation)):
            if f.alias in request.path_params:
                _check_raw(request.path_params[f.alias], kind, ("path", f.alias))
        elif where == "query" and (kind := _date_kind(annotation)):
            for raw in request.query_params.getlist(f.alias):
                _check_raw(raw, kind, ("query", f.alias))
        elif where == "body":
            model = _model_of(annotation)
            dated = [
                (mf.alias or name, kind)
                for name, mf in (model.model_fields.items() if model else ())
                if (kind := _date_kind(mf.annotation))
            ]
            if not dated:
                continue  # the body is parsed only for models that carry dates
            if body is None:
                body = await _json_body(request)
            if not isinstance(body, dict):
                continue
            for key, kind in dated:
                if body.get(key) is not None:
                    _check_raw(body[key], kind, ("body", key))


def _model_of(annotation: Any) -> type[BaseModel] | None:
    options = (
        typing.get_args(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType)
        else (annotation,)
    )
    for opt in options:
        if isinstance(opt, type) and issubclass(opt, BaseModel):
            return opt
    return None


async def _json_body(request: Request) -> Any:
    if "json" not in request.headers.get("content-type", ""):
        return {}
    try:
        return json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}


def schema_dates(node: Any) -> typing.Iterator[dict[str, Any]]:
    """Every `date` / `date-time` string schema in (a part of) an OpenAPI document."""
    if isinstance(node, dict):
        if node.get("type") == "string" and node.get("format") in ("date", "date-time"):
            yield node
        for value in node.values():
            yield from schema_dates(value)
    elif isinstance(node, list):
        for value in node:
            yield from schema_dates(value)


def declare_range(document: dict[str, Any]) -> dict[str, Any]:
    """Declare the accepted range on every `date` / `date-time` string of an OpenAPI document.

    JSON Schema has no standard bound for formatted strings, so the range is carried by the
    `formatMinimum` / `formatMaximum` keywords (JSON Schema's proposed format-range vocabulary,
    implemented by ajv-formats; the conformance test's generators honour them) and spelled out in
    the description. Requests outside it are answered 422 `date_out_of_range`.
    """
    earliest, latest = EARLIEST_DAY.isoformat(), latest_day().isoformat()
    note = f"Between {earliest} and {latest} (422 `date_out_of_range` otherwise)."
    for node in schema_dates(document):
        if node["format"] == "date":
            node.setdefault("formatMinimum", earliest)
            node.setdefault("formatMaximum", latest)
        else:
            node.setdefault("formatMinimum", f"{earliest}T00:00:00Z")
            node.setdefault("formatMaximum", f"{latest}T23:59:59Z")
        if note not in node.get("description", ""):
            node["description"] = (node.get("description", "") + " " + note).strip()
    return document
