"""The functions each role sees: the navigation bar and the home page list (seed screen 1).

The menu is one explicit list, `MENU`, built here (as `api.app.routers` lists the routers): no
module adds to it when imported. A new page gets its entry here, next to its feature's others;
tests/web/test_nav.py pins each role's menu and checks every entry's page admits its roles.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.scope import ALL_ROLES, Principal, Role


@dataclass(frozen=True, slots=True)
class NavItem:
    """One function of the platform, shown to the roles that may use it."""

    path: str
    label: str  # English message id, translated at render time
    description: str  # English message id
    roles: frozenset[Role]
    order: int = 100


def _roles(*roles: Role) -> frozenset[Role]:
    return frozenset(roles)


MENU: tuple[NavItem, ...] = (
    # Alerts (api.alerts.pages; the roles of api.alerts.queries.WATCHERS).
    NavItem(
        "/alerts",
        "Alerts",
        "Tanks running low, faults, gateways offline, missing reports: acknowledge and resolve.",
        _roles(Role.ADMIN, Role.BYT, Role.SYT, Role.FACILITY, Role.ENGINEER),
        5,
    ),
    # Facilities: the daily report and the tanks (api.reports.facility_pages, api.accounting.pages).
    NavItem(
        "/facility/report",
        "Daily report",
        "The 16:00 report, pre-filled from the tank sensors.",
        _roles(Role.FACILITY),
        10,
    ),
    NavItem(
        "/facility",
        "Tanks",
        "Contents over the last 7 days, refills, days of supply and corrections.",
        _roles(Role.FACILITY),
        20,
    ),
    # Engineers (api.accounting.pages, api.engineer.pages).
    NavItem(
        "/facilities",
        "Facilities",
        "Tanks of the facilities you look after: contents, refills, corrections.",
        _roles(Role.ENGINEER),
        20,
    ),
    NavItem(
        "/gateways",
        "Gateways",
        "Gateways online or not, outbox and evictions, Modbus devices, last readings.",
        _roles(Role.ENGINEER),
        30,
    ),
    # Departments of health (api.reports.syt_pages).
    NavItem(
        "/syt",
        "Report to the Ministry",
        "Compose the report (fields 1–16) and send it to the Ministry of Health.",
        _roles(Role.SYT),
        10,
    ),
    NavItem(
        "/syt/reports",
        "Sent reports",
        "Reports sent to the Ministry: edit history, edit, details.",
        _roles(Role.SYT),
        20,
    ),
    NavItem(
        "/syt/facilities",
        "Facilities",
        "Your facilities with their status and days of supply.",
        _roles(Role.SYT),
        30,
    ),
    # The Ministry (api.reports.byt_pages).
    NavItem(
        "/byt",
        "Coordination map",
        "The national map, provinces, supply vs demand; approve or send back reports.",
        _roles(Role.BYT, Role.ADMIN),
        10,
    ),
    # Reporting rate (api.rates.pages).
    NavItem(
        "/byt/reporting-rate",
        "Reporting rate",
        "Expected, reported, on time, late and missing reports over the last 30 days.",
        _roles(Role.BYT, Role.ADMIN),
        15,
    ),
    NavItem(
        "/syt/reporting-rate",
        "Reporting rate",
        "Which of your facilities reported over the last 30 days, and who to call.",
        _roles(Role.SYT),
        25,
    ),
    # Suppliers (api.reports.supplier_pages).
    NavItem(
        "/supplier",
        "Production and deliveries",
        "Report production, capacity, stock and deliveries to facilities.",
        _roles(Role.SUPPLIER),
        10,
    ),
    # Coordination (api.coordination.pages).
    NavItem(
        "/coordination",
        "Oxygen coordination",
        "Requests, suggested allocations, assigning suppliers, deliveries.",
        _roles(Role.BYT, Role.SYT, Role.ADMIN),
        40,
    ),
    NavItem(
        "/supplier/assignments",
        "Assignments",
        "What you have been asked to ship: accept, decline, dispatch, deliver.",
        _roles(Role.SUPPLIER),
        20,
    ),
    NavItem(
        "/facility/coming",
        "Oxygen coming",
        "Ask for oxygen, see what is on its way and confirm receipt.",
        _roles(Role.FACILITY),
        30,
    ),
    # The registry (api.admin.pages).
    NavItem(
        "/admin/facilities",
        "Facilities",
        "Facilities, departments and suppliers in the registry.",
        _roles(Role.ADMIN),
        50,
    ),
    NavItem(
        "/admin/tanks",
        "Tanks and calibration",
        "Liquid-oxygen tanks and their calibration tables.",
        _roles(Role.ADMIN),
        60,
    ),
    NavItem(
        "/admin/gateways",
        "Gateways and sensors",
        "Gateways at the facilities and the sensors they read.",
        _roles(Role.ADMIN),
        70,
    ),
    # Platform: audit trail, accounts, own account (api.accounts).
    NavItem(
        "/audit",
        "Audit trail",
        "Who changed what and when, for the records you own.",
        ALL_ROLES,
        900,
    ),
    NavItem(
        "/admin/users",
        "Accounts",
        "Issue accounts, disable them and reset passwords.",
        _roles(Role.ADMIN),
        910,
    ),
    NavItem(
        "/accounts",
        "Accounts",
        "Issue and disable the accounts of those who report to you.",
        _roles(Role.BYT, Role.SYT),
        910,
    ),
    NavItem(
        "/account",
        "My account",
        "Change your password, language and API tokens.",
        ALL_ROLES,
        990,
    ),
)


def menu_for(role: Role) -> list[NavItem]:
    """The functions `role` may use, in display order."""
    return sorted((i for i in MENU if role in i.roles), key=lambda i: i.order)


def items_for(principal: Principal) -> list[NavItem]:
    """The functions `principal`'s role may use, in display order."""
    return menu_for(principal.role)
