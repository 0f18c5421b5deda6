"""The account pages: administrators issue, disable, enable and reset accounts; the Ministry
and the departments those of the roles below them (the JSON is routes.py)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from api import i18n
from api.deps import DbDep, LocaleDep, PrincipalDep
from api.scope import Principal, Role
from api.users import (
    NewUser,
    UserError,
    create_user,
    list_users,
    reset_password,
    set_active,
    set_engineer_scope,
)
from api.web import page_exports
from api.web.templating import flash, render

from .service import (
    ADMIN,
    DELEGATES,
    delegated_orgs,
    delegated_users,
    issues,
    managed,
    organisations,
)

router = APIRouter()
ROLE_CHOICES = [Role.FACILITY, Role.SUPPLIER, Role.ENGINEER, Role.SYT, Role.BYT, Role.ADMIN]


def _codes(text: str) -> tuple[str, ...]:
    # Codes may be separated by commas, spaces or new lines.
    return tuple(c for c in text.replace(",", " ").split() if c)


async def _engineer_facilities(conn: DbDep) -> dict[int, str]:
    """Each engineer's assigned facility codes, space separated (to prefill the scope form)."""
    cur = await conn.execute(
        "SELECT uf.user_id, string_agg(o.code, ' ' ORDER BY o.code) FROM user_facilities uf "
        "JOIN organisations o ON o.id = uf.facility_id GROUP BY uf.user_id"
    )
    return {int(r[0]): str(r[1]) for r in await cur.fetchall()}


async def _page_context(conn: DbDep) -> dict[str, Any]:
    return {
        "users": await list_users(conn),
        "orgs": await organisations(conn),
        # Least privilege first, and selected by default: never an administrator by mistake.
        "roles": ROLE_CHOICES,
        "engineer_facilities": await _engineer_facilities(conn),
    }


def _temp_password() -> str:
    # Readable temporary passwords (no 0/O, 1/l confusion), 15 characters.
    alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(15))


@router.get("/admin/users", include_in_schema=False, dependencies=ADMIN)
async def users_page(
    request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """The account list and the form to issue one."""
    if kind := page_exports.requested(request):
        rows = page_exports.account_rows(await list_users(conn), locale)
        cols = page_exports.ACCOUNT_COLUMNS
        return page_exports.download(kind, "accounts", cols, rows, locale=locale)
    return render(
        request,
        "accounts/admin_users.html",
        await _page_context(conn),
        locale=locale,
        principal=me,
    )


@router.post("/admin/users", include_in_schema=False, dependencies=ADMIN)
async def users_create(
    *,
    request: Request,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    username: Annotated[str, Form(max_length=64)],
    display_name: Annotated[str, Form(max_length=200)],
    role: Annotated[Role, Form()],
    org_code: Annotated[str, Form(max_length=64)] = "",
    national: Annotated[bool, Form()] = False,
    facility_codes: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Issue an account with a temporary password shown once to the administrator."""
    password = _temp_password()
    new = NewUser(
        username=username,
        display_name=display_name,
        role=role,
        password=password,
        org_code=org_code.strip() or None,
        national=national,
        facility_codes=_codes(facility_codes),
    )
    try:
        async with conn.transaction():
            await create_user(conn, me, new)
    except UserError as exc:
        response = RedirectResponse("/admin/users", status_code=303)
        flash(response, exc.translated(i18n.translator(locale)), "error")
        return response
    return render(
        request,
        "accounts/admin_users.html",
        {**await _page_context(conn), "issued": (new.username.strip().lower(), password)},
        locale=locale,
        principal=me,
    )


@router.post("/admin/users/{user_id}/disable", include_in_schema=False, dependencies=ADMIN)
async def users_disable(user_id: int, conn: DbDep, me: PrincipalDep, locale: LocaleDep) -> Response:
    """Disable an account (its sessions and tokens stop at once)."""
    return await _toggle(conn, me, locale, user_id, active=False)


@router.post("/admin/users/{user_id}/enable", include_in_schema=False, dependencies=ADMIN)
async def users_enable(user_id: int, conn: DbDep, me: PrincipalDep, locale: LocaleDep) -> Response:
    """Enable an account again."""
    return await _toggle(conn, me, locale, user_id, active=True)


async def _toggle(
    conn: DbDep,
    me: PrincipalDep,
    locale: str,
    user_id: int,
    *,
    active: bool,
    back: str = "/admin/users",
) -> Response:
    response = RedirectResponse(back, status_code=303)
    try:
        await set_active(conn, me, user_id, active)
    except UserError as exc:
        if str(exc) == "No such account.":
            raise HTTPException(status.HTTP_404_NOT_FOUND, "not found") from exc
        flash(response, exc.translated(i18n.translator(locale)), "error")
        return response
    done = (
        i18n.gettext(locale, "Account enabled.")
        if active
        else i18n.gettext(locale, "Account disabled.")
    )
    flash(response, done, "success")
    return response


@router.post("/admin/users/{user_id}/reset-password", include_in_schema=False, dependencies=ADMIN)
async def users_reset(
    request: Request, user_id: int, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """Give the account a new temporary password, shown once."""
    password = _temp_password()
    try:
        await reset_password(conn, me, user_id, password)
    except UserError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found") from exc
    ctx = await _page_context(conn)
    name = next((u["username"] for u in ctx["users"] if u["id"] == user_id), "")
    return render(
        request,
        "accounts/admin_users.html",
        {**ctx, "issued": (name, password)},
        locale=locale,
        principal=me,
    )


@router.post("/admin/users/{user_id}/scope", include_in_schema=False, dependencies=ADMIN)
async def users_scope(
    *,
    user_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    national: Annotated[bool, Form()] = False,
    facility_codes: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Change an engineer's scope; their sessions end so the new scope applies at once."""
    response = RedirectResponse("/admin/users", status_code=303)
    try:
        async with conn.transaction():
            await set_engineer_scope(
                conn, me, user_id, national=national, facility_codes=_codes(facility_codes)
            )
    except UserError as exc:
        if str(exc) == "No such account.":
            raise HTTPException(status.HTTP_404_NOT_FOUND, "not found") from exc
        flash(response, exc.translated(i18n.translator(locale)), "error")
        return response
    flash(response, i18n.gettext(locale, "Engineer scope changed."), "success")
    return response


# --------------------------------------------------------------------------------------------
# Accounts down the chain (the rules: service.ISSUES, delegated_orgs, managed).

# Form field each refusal belongs to (the rest are shown above the form).
_FIELD_OF = {
    "This username is already taken.": "username",
    "Username and display name are required.": "username",
    "Unknown organisation code: %(code)s": "org_code",
    "The organisation does not match the role.": "org_code",
}


async def _accounts_page(
    request: Request,
    conn: DbDep,
    me: Principal,
    locale: str,
    *,
    issued: tuple[str, str] | None = None,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    role, _ = issues(me)
    return render(
        request,
        "accounts/accounts.html",
        {
            "users": await delegated_users(conn, me),
            "orgs": await delegated_orgs(conn, me),
            "issued_role": role.value,
            "issued": issued,
            "form": form or {},
            "errors": errors or {},
        },
        locale=locale,
        principal=me,
        status_code=422 if errors else 200,
    )


@router.get("/accounts", include_in_schema=False, dependencies=DELEGATES)
async def accounts_page(
    request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """The accounts the caller manages and the form to issue one."""
    if kind := page_exports.requested(request):
        rows = page_exports.account_rows(await delegated_users(conn, me), locale)
        cols = page_exports.ACCOUNT_COLUMNS
        return page_exports.download(kind, "accounts", cols, rows, locale=locale)
    return await _accounts_page(request, conn, me, locale)


@router.post("/accounts", include_in_schema=False, dependencies=DELEGATES)
async def accounts_create(
    *,
    request: Request,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    username: Annotated[str, Form(max_length=64)] = "",
    display_name: Annotated[str, Form(max_length=200)] = "",
    org_code: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Issue an account of the role below the caller, for an organisation in the caller's
    scope; the temporary password is shown once."""
    role, _ = issues(me)
    form = {"username": username, "display_name": display_name, "org_code": org_code}
    g = i18n.translator(locale)
    errors: dict[str, str] = {}
    if not username.strip():
        errors["username"] = g("This field is required.")
    if not display_name.strip():
        errors["display_name"] = g("This field is required.")
    if org_code.strip() not in {o.code for o in await delegated_orgs(conn, me)}:
        errors["org_code"] = g("Choose an organisation you issue accounts for.")
    if errors:
        return await _accounts_page(request, conn, me, locale, form=form, errors=errors)
    password = _temp_password()
    new = NewUser(
        username=username,
        display_name=display_name,
        role=role,
        password=password,
        org_code=org_code.strip(),
    )
    try:
        async with conn.transaction():
            await create_user(conn, me, new)
    except UserError as exc:
        field = _FIELD_OF.get(exc.message_id, "form")
        return await _accounts_page(
            request, conn, me, locale, form=form, errors={field: exc.translated(g)}
        )
    return await _accounts_page(
        request, conn, me, locale, issued=(new.username.strip().lower(), password)
    )


@router.post("/accounts/{user_id}/disable", include_in_schema=False, dependencies=DELEGATES)
async def accounts_disable(
    user_id: int, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """Disable an account the caller manages (its sessions and tokens stop at once)."""
    await managed(conn, me, user_id)
    return await _toggle(conn, me, locale, user_id, active=False, back="/accounts")


@router.post("/accounts/{user_id}/enable", include_in_schema=False, dependencies=DELEGATES)
async def accounts_enable(
    user_id: int, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """Enable again an account the caller manages."""
    await managed(conn, me, user_id)
    return await _toggle(conn, me, locale, user_id, active=True, back="/accounts")


@router.post("/accounts/{user_id}/reset-password", include_in_schema=False, dependencies=DELEGATES)
async def accounts_reset(
    request: Request, user_id: int, conn: DbDep, me: PrincipalDep, locale: LocaleDep
) -> Response:
    """A new temporary password for an account the caller manages, shown once."""
    user = await managed(conn, me, user_id)
    password = _temp_password()
    await reset_password(conn, me, user_id, password)
    return await _accounts_page(request, conn, me, locale, issued=(user["username"], password))
