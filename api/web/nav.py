"""The functions each role sees: the navigation bar and the home page list (seed screen 1).

Packages add their pages with `NAV_ITEMS.append(NavItem(...))` at import time of their routes
module (its routers are listed in `api.app.routers`).
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


NAV_ITEMS: list[NavItem] = [
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
        frozenset({Role.ADMIN}),
        910,
    ),
    NavItem(
        "/accounts",
        "Accounts",
        "Issue and disable the accounts of those who report to you.",
        frozenset({Role.BYT, Role.SYT}),
        910,
    ),
    NavItem(
        "/account",
        "My account",
        "Change your password, language and API tokens.",
        ALL_ROLES,
        990,
    ),
]


def items_for(principal: Principal) -> list[NavItem]:
    """The functions `principal`'s role may use, in display order."""
    return sorted((i for i in NAV_ITEMS if principal.role in i.roles), key=lambda i: i.order)
