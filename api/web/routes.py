"""The role pages' built assets, checked when an application is built (api.app.routers imports
this module first): fail at start-up, with the command to run, rather than serve pages without
their scripts. The pages' template filters are in api.web.filters."""

from __future__ import annotations

from .assets import check_assets

check_assets()
