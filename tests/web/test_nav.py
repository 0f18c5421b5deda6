"""The role menus: one explicit list (api.web.nav.MENU), the same for each role as before it
stopped being assembled by the page modules on import, and every entry leads to a page its
roles may open."""

from __future__ import annotations

import pytest

from api.app import create_app, routers
from api.policy import route_table
from api.scope import Role
from api.web import nav
from oxy.settings import Settings

# Each role's menu, in display order, as the import-time registration built it (commit 856b84f).
EXPECTED: dict[Role, list[str]] = {
    Role.ADMIN: [
        "/alerts",
        "/byt",
        "/byt/reporting-rate",
        "/coordination",
        "/admin/facilities",
        "/admin/tanks",
        "/admin/gateways",
        "/audit",
        "/admin/users",
        "/account",
    ],
    Role.BYT: [
        "/alerts",
        "/byt",
        "/byt/reporting-rate",
        "/coordination",
        "/audit",
        "/accounts",
        "/account",
    ],
    Role.SYT: [
        "/alerts",
        "/syt",
        "/syt/reports",
        "/syt/reporting-rate",
        "/syt/facilities",
        "/coordination",
        "/audit",
        "/accounts",
        "/account",
    ],
    Role.FACILITY: [
        "/alerts",
        "/facility/report",
        "/facility",
        "/facility/coming",
        "/audit",
        "/account",
    ],
    Role.SUPPLIER: ["/supplier", "/supplier/assignments", "/audit", "/account"],
    Role.ENGINEER: ["/alerts", "/facilities", "/gateways", "/audit", "/account"],
}


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_each_role_menu_is_what_it_was(role: Role) -> None:
    assert [i.path for i in nav.menu_for(role)] == EXPECTED[role]


def test_building_the_app_adds_nothing_to_the_menu() -> None:
    before = {role: nav.menu_for(role) for role in Role}
    routers()
    create_app(Settings(database_url="postgresql://unused@127.0.0.1:1/x"))
    assert {role: nav.menu_for(role) for role in Role} == before


def test_every_entry_leads_to_a_page_its_roles_may_open() -> None:
    app = create_app(Settings(database_url="postgresql://unused@127.0.0.1:1/x"))
    pages = {r.path: r.policy for r in route_table(app) if "GET" in r.methods}
    wrong = []
    for item in nav.MENU:
        policy = pages.get(item.path)
        if policy is None or not item.roles <= policy.roles:
            wrong.append(item.path)
    assert wrong == []


def test_no_two_entries_of_a_role_share_a_path_or_a_place() -> None:
    for role in Role:
        items = nav.menu_for(role)
        assert len({i.path for i in items}) == len(items)
        assert len({i.order for i in items}) == len(items), role
