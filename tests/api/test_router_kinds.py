"""Each feature keeps its JSON routes and its pages in separate modules: a module defines one
router, and that router's routes are either all in the OpenAPI document (JSON) or all out of it
(pages, redirects, files for the browser)."""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter
from fastapi.routing import APIRoute

import api


def _own_routers() -> dict[str, list[APIRouter]]:
    """The routers each module under api/ defines (not those it imports), by module."""
    found: dict[str, list[APIRouter]] = {}
    seen: set[int] = set()
    modules = [importlib.import_module(i.name) for i in pkgutil.walk_packages(api.__path__, "api.")]
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, APIRouter) and id(value) not in seen:
                owner = next(
                    (r.endpoint.__module__ for r in value.routes if isinstance(r, APIRoute)),
                    module.__name__,
                )
                seen.add(id(value))
                found.setdefault(owner, []).append(value)
    return found


def _in_schema(router: APIRouter, route: APIRoute) -> bool:
    return bool(router.include_in_schema and route.include_in_schema)


def test_a_module_defines_one_router() -> None:
    several = sorted(m for m, rs in _own_routers().items() if len(rs) > 1)
    assert several == []


def test_a_router_is_all_json_or_all_pages() -> None:
    mixed = []
    for module, found in sorted(_own_routers().items()):
        for router in found:
            kinds = {_in_schema(router, r) for r in router.routes if isinstance(r, APIRoute)}
            if len(kinds) > 1:
                mixed.append(module)
    assert mixed == []
