"""The generic form pages (api/web/crud.py): `mount` adds a record's new/create pages only when the
entity has a blank form, its edit/update pages always, each under the entity's own policy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute

from api.policy import Scope, policy, policy_of
from api.scope import Role
from api.web import crud


async def _never(*_args: Any) -> Any:
    raise AssertionError("not called when mounting")


def _entity(*, with_new: bool) -> crud.Entity:
    return crud.Entity(
        kind="thing",
        path="/admin/things",
        policy=policy(roles=(Role.ADMIN,), scope=Scope.NATIONAL),
        page=_never,
        load=_never,
        form_of=lambda _row, _locale: {},
        check=_never,
        write=_never,
        org_of=lambda _row: 0,
        saved_to=lambda _id, _created: "/admin/things",
        blank=(lambda _request: {}) if with_new else None,
    )


def _routes(router: APIRouter) -> set[tuple[str, str]]:
    return {(r.path, m) for r in router.routes if isinstance(r, APIRoute) for m in r.methods or ()}


def test_mount_adds_new_pages_only_with_a_blank_form() -> None:
    full, edit_only = APIRouter(), APIRouter()
    crud.mount(full, _entity(with_new=True))
    crud.mount(edit_only, _entity(with_new=False))
    edit = {("/admin/things/{item_id}/edit", "GET"), ("/admin/things/{item_id}/edit", "POST")}
    new = {("/admin/things/new", "GET"), ("/admin/things/new", "POST")}
    assert _routes(full) == edit | new
    assert _routes(edit_only) == edit


def test_every_mounted_route_carries_the_entity_policy() -> None:
    router = APIRouter()
    crud.mount(router, _entity(with_new=True))
    for route in router.routes:
        declared = policy_of(route)
        assert declared is not None, route
        assert declared.roles == frozenset({Role.ADMIN})
        assert declared.scope is Scope.NATIONAL


def test_saved_message_adds_the_notes_in_the_users_language() -> None:
    note = "The pre-2025 province code was replaced by its 2025 code."
    assert crud.saved_message("en", []) == "Saved."
    vi = crud.saved_message("vi", [note])
    assert vi.startswith(crud.saved_message("vi", []) + " ")
    assert note not in vi  # translated, not echoed in English
