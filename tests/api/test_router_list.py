"""The routers the application mounts are listed once, explicitly, in api.app.routers."""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter

import api
from api.app import create_app, routers
from oxy.settings import Settings


def _module_routers() -> dict[int, str]:
    """Every APIRouter defined at module level anywhere under api/, by identity."""
    found: dict[int, str] = {}
    for info in pkgutil.walk_packages(api.__path__, "api."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, APIRouter):
                found.setdefault(id(value), f"{info.name}.{name}")
    return found


def test_every_router_is_listed_once() -> None:
    listed = routers()
    assert len({id(r) for r in listed}) == len(listed), "a router is listed twice"
    missing = sorted(
        where for key, where in _module_routers().items() if key not in {id(r) for r in listed}
    )
    assert missing == [], f"routers defined but not listed in api.app.routers: {missing}"


def test_the_app_mounts_the_list_in_its_order() -> None:
    app = create_app(Settings(database_url="postgresql://unused@127.0.0.1:1/none"))
    mounted = [getattr(r, "original_router", None) for r in app.router.routes]
    assert [id(r) for r in mounted if r is not None] == [id(r) for r in routers()]
