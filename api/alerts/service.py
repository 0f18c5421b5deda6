"""`oxy alerts run`: evaluate the rules every interval, apply transitions, send notifications."""

from __future__ import annotations

import logging
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from psycopg import AsyncConnection

from api.accounting.config import AccountingConfig
from api.alerts.config import AlertSettings
from api.alerts.engine import Outcome, apply
from api.alerts.notify import EmailSender, Sender, WebhookSender, dispatch
from api.alerts.rules import evaluate_rules
from api.periodic import run_forever
from api.settings import load_centre_settings
from oxy.settings import Settings

logger = logging.getLogger(__name__)

HEARTBEAT = Path(tempfile.gettempdir()) / "oxy-alerts.heartbeat"


async def run_once(
    conn: AsyncConnection[Any],
    now: datetime,
    cfg: AlertSettings,
    acc: AccountingConfig,
    senders: dict[str, Sender],
) -> tuple[Outcome, int, int]:
    """One evaluation and one dispatch round at `now`."""
    conditions = await evaluate_rules(conn, now, cfg, acc)
    await conn.commit()  # the accounting may have cached report windows
    outcome = await apply(conn, conditions, now, cfg)
    sent, failed = await dispatch(conn, senders, now, cfg)
    return outcome, sent, failed


async def serve(settings: Settings, cfg: AlertSettings | None = None) -> None:
    """Run until cancelled; a failing round is logged once per transition and retried."""
    centre = load_centre_settings(settings)  # the whole tree, validated before the first round
    alert_cfg = cfg or centre.alerts
    acc = centre.accounting
    async with httpx.AsyncClient() as client:
        senders: dict[str, Sender] = {
            "email": EmailSender(alert_cfg),
            "webhook": WebhookSender(alert_cfg, client),
        }

        async def one_round(conn: AsyncConnection[Any]) -> None:
            await run_once(conn, datetime.now(UTC), alert_cfg, acc, senders)

        await run_forever(
            "alert evaluation",
            settings.database_url,
            one_round,
            interval_s=alert_cfg.alert_interval_seconds,
            heartbeat=HEARTBEAT,
        )
