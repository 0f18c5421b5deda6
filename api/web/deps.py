"""Dependencies shared by the page routers: the accounting config and the request's clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

from api.accounting import AccountingConfig, build_config


def accounting_config(request: Request) -> AccountingConfig:
    """The accounting config built once per application from its settings."""
    cfg: AccountingConfig | None = getattr(request.app.state, "web_accounting_config", None)
    if cfg is None:
        cfg = build_config(request.app.state.settings)
        request.app.state.web_accounting_config = cfg
    return cfg


def clock(request: Request) -> datetime:
    """Now, in UTC (one value per request so that every figure on a page agrees)."""
    return datetime.now(UTC)


CfgDep = Annotated[AccountingConfig, Depends(accounting_config)]
NowDep = Annotated[datetime, Depends(clock)]
