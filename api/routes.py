"""The routers the application mounts.

A package adds its routers from its own `api/<package>/routes.py` module
(`ROUTERS.append(router)`); `api.app.create_app` imports every such module before mounting, so
no central edit is needed. Every route must declare a policy (see `api.policy`).
"""

from __future__ import annotations

from fastapi import APIRouter

from api.views import account, admin_users, audit_views, directory, health, pages

ROUTERS: list[APIRouter] = [
    health.router,
    pages.router,
    account.router,
    admin_users.router,
    audit_views.router,
    directory.router,
]
