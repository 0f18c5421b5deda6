"""A record's form pages declared once: new / create / edit / update.

An entity declares its form page, how one record is read, how the typed form is checked and
written, and the organisation its audit entries belong to; `mount` adds its routes under the
entity's policy: `GET|POST {path}/new` (left out when the entity has no `blank` form) and
`GET|POST {path}/{item_id}/edit`. A refused form comes back with its errors (422); a saved one
is audited (before and after) and redirects with the flash message "Saved." and its notes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import APIRouter, HTTPException, Request
from fastapi.params import Depends
from psycopg import AsyncConnection
from starlette.responses import Response

from api import i18n
from api.audit import audit
from api.deps import DbDep, LocaleDep, PrincipalDep
from api.scope import Principal
from api.web.forms import FormErrors, read_form, redirect_saved

Conn = AsyncConnection[Any]
Record = dict[str, Any]

# The message of a write refused because another record already has the code.
CODE_TAKEN = "This code is already used."


class Checked(Protocol):
    """A form the entity's checks accepted: the values to write and the message ids of what the
    checks did on the user's behalf (shown after "Saved.")."""

    @property
    def values(self) -> dict[str, Any]: ...

    @property
    def notes(self) -> list[str]: ...


class FormPage(Protocol):
    """Renders the entity's form: `record` is None for a new one; errors make it a 422."""

    def __call__(  # noqa: PLR0917
        self,
        request: Request,
        conn: Conn,
        me: Principal,
        locale: str,
        form: dict[str, str],
        errors: dict[str, str],
        record: Record | None,
        /,
    ) -> Awaitable[Response]: ...


def _same(record: Record) -> Mapping[str, Any]:
    return record


def _written(checked: Checked, record: Record | None) -> Mapping[str, Any]:
    del record
    return checked.values


@dataclass(frozen=True, kw_only=True)
class Entity:
    """One kind of record edited through forms (see the module's docstring)."""

    kind: str  # the audit's record type
    path: str  # the forms live under it
    policy: Depends  # who may use the forms (api.policy.policy)
    page: FormPage
    load: Callable[[Conn, int], Awaitable[Record | None]]
    form_of: Callable[[Record, str], dict[str, str]]  # a record as form text, in a locale
    check: Callable[[Conn, dict[str, str], FormErrors, Record | None], Awaitable[Checked | None]]
    # Writes a checked form (record None: create); the record's id, or None if its code is taken.
    write: Callable[[Conn, Checked, Record | None], Awaitable[int | None]]
    org_of: Callable[[Record], int]  # the organisation the audit entry belongs to
    saved_to: Callable[[int, bool], str]  # where a saved form goes (id, created)
    blank: Callable[[Request], dict[str, str]] | None = None  # a new record's form
    audit_before: Callable[[Record], Mapping[str, Any]] = _same
    audit_after: Callable[[Checked, Record | None], Mapping[str, Any]] = _written

    async def record(self, conn: Conn, item_id: int) -> Record:
        """The record, or 404."""
        row = await self.load(conn, item_id)
        if row is None:
            raise HTTPException(404, "not found")
        return row


def saved_message(locale: str, notes: Sequence[str]) -> str:
    """ "Saved." followed by what the checks did on the user's behalf, in the user's language."""
    saved = i18n.gettext(locale, "Saved.")
    return " ".join([saved, *(i18n.gettext(locale, n) for n in notes)])


async def save(  # noqa: PLR0917
    entity: Entity,
    request: Request,
    conn: Conn,
    me: Principal,
    locale: str,
    record: Record | None,
) -> Response:
    """Check the posted form and write it (record None: a new one), or show it with its errors."""
    form = await read_form(request)
    errors = FormErrors(locale)
    checked = await entity.check(conn, form, errors, record)
    item_id = None
    if checked is not None and not errors:
        item_id = await entity.write(conn, checked, record)
        if item_id is None:
            errors.add("code", CODE_TAKEN)
    if checked is None or item_id is None:
        return await entity.page(request, conn, me, locale, form, errors.errors, record)
    if record is None:
        created = await entity.record(conn, item_id)
        after = entity.audit_after(checked, None)
        org_id = entity.org_of(created)
        await audit(conn, me, "create", entity.kind, item_id, after=after, org_id=org_id)
    else:
        await audit(
            conn,
            me,
            "update",
            entity.kind,
            item_id,
            before=entity.audit_before(record),
            after=entity.audit_after(checked, record),
            org_id=entity.org_of(record),
        )
    target = entity.saved_to(item_id, record is None)
    return await redirect_saved(conn, target, saved_message(locale, checked.notes))


def mount(router: APIRouter, entity: Entity) -> None:
    """Add the entity's form routes to the router (see the module's docstring)."""
    deps = [entity.policy]
    blank = entity.blank
    if blank is not None:

        async def new(
            *, request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep
        ) -> Response:
            """The form for a new record."""
            return await entity.page(request, conn, me, locale, blank(request), {}, None)

        async def create(
            *, request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep
        ) -> Response:
            """Create a record from the form."""
            return await save(entity, request, conn, me, locale, None)

        router.add_api_route(f"{entity.path}/new", new, methods=["GET"], dependencies=deps)
        router.add_api_route(f"{entity.path}/new", create, methods=["POST"], dependencies=deps)

    async def edit(
        *, request: Request, item_id: int, conn: DbDep, me: PrincipalDep, locale: LocaleDep
    ) -> Response:
        """The form to edit a record."""
        row = await entity.record(conn, item_id)
        form = entity.form_of(row, locale)
        return await entity.page(request, conn, me, locale, form, {}, row)

    async def update(
        *, request: Request, item_id: int, conn: DbDep, me: PrincipalDep, locale: LocaleDep
    ) -> Response:
        """Save a record's changes from the form."""
        row = await entity.record(conn, item_id)
        return await save(entity, request, conn, me, locale, row)

    path = f"{entity.path}/{{item_id}}/edit"
    router.add_api_route(path, edit, methods=["GET"], dependencies=deps)
    router.add_api_route(path, update, methods=["POST"], dependencies=deps)
