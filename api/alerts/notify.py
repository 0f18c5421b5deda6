"""Notification channels (e-mail over SMTP, signed webhooks) and the outbox dispatcher.

Each queued notification is sent, then marked sent in its own transaction. Failures retry with
exponential backoff and end in the dead-letter state after `alert_max_attempts`. Receivers can
drop a repeat after a crash between send and commit: webhooks carry `X-Oxy-Delivery` and e-mails
a Message-ID, both derived from the notification id.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol

import httpx
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from api.alerts.config import AlertSettings
from api.alerts.details import detail_lines
from api.alerts.webhook_guard import (
    Resolver,
    allowed_hosts,
    check_target,
    pinned_url,
    system_resolve,
)
from api.i18n import format_datetime, gettext

logger = logging.getLogger(__name__)

RULE_TITLES = {
    "days_of_supply_low": "Days of supply below the threshold",
    "contents_below_minimum": "Tank contents below the minimum usable level",
    "head_pressure_out_of_range": "Tank head pressure out of range",
    "abnormal_consumption": "Abnormal oxygen consumption (leak suspected)",
    "sensor_stale": "Sensor has stopped reporting",
    "sensor_bad_quality": "Sensor reports bad-quality values",
    "gateway_offline": "Gateway offline",
    "report_missing": "Daily 16:00 report missing after the deadline",
    "delivery_overdue": "Delivery overdue: not arrived by the time it was needed",
}
EVENT_TITLES = {
    "opened": "New alert",
    "escalated": "Escalated: not acknowledged in time",
    "resolved": "Resolved",
}
SEVERITY_TITLES = {"critical": "Critical", "warning": "Warning"}


@dataclass(frozen=True, slots=True)
class Notice:
    """What one notification says, rendered in one language."""

    notification_id: int
    subject: str
    body: str
    payload: dict[str, Any]


class Sender(Protocol):
    """A channel: raises on failure."""

    async def send(self, target: str, notice: Notice) -> None:
        """Deliver `notice` to `target`."""


class EmailSender:
    """SMTP e-mail (blocking smtplib, run in a thread)."""

    def __init__(self, cfg: AlertSettings) -> None:
        self.cfg = cfg

    def _send(self, target: str, notice: Notice) -> None:
        msg = EmailMessage()
        msg["From"] = self.cfg.smtp_from
        msg["To"] = target
        msg["Subject"] = notice.subject
        msg["Message-ID"] = f"<oxy-alert-{notice.notification_id}@oxy.invalid>"
        msg.set_content(notice.body)
        if not self.cfg.smtp_host:
            raise RuntimeError("OXY_SMTP_HOST is not set")
        with smtplib.SMTP(self.cfg.smtp_host, self.cfg.smtp_port, timeout=15) as smtp:
            if self.cfg.smtp_starttls:
                smtp.starttls()
            if self.cfg.smtp_user and self.cfg.smtp_password:
                smtp.login(self.cfg.smtp_user, self.cfg.smtp_password.get_secret_value())
            smtp.send_message(msg)

    async def send(self, target: str, notice: Notice) -> None:
        """Deliver by SMTP."""
        await asyncio.to_thread(self._send, target, notice)


class WebhookSender:
    """JSON POST, HMAC-SHA256 signed when `OXY_WEBHOOK_SECRET` is set; 2xx is success.

    The destination passes `api.alerts.webhook_guard` before every delivery, and the request goes
    to the address that was checked (the Host header and TLS server name keep the host name).
    Redirects are not followed.
    """

    def __init__(
        self, cfg: AlertSettings, client: httpx.AsyncClient, resolve: Resolver = system_resolve
    ) -> None:
        self.cfg = cfg
        self.client = client
        self.resolve = resolve

    async def send(self, target: str, notice: Notice) -> None:
        """Deliver by HTTP POST."""
        checked = await check_target(
            target, allowed_hosts(self.cfg.webhook_allowed_hosts), self.resolve
        )
        default_port = 443 if checked.scheme == "https" else 80
        host_header = checked.host if ":" not in checked.host else f"[{checked.host}]"
        if checked.port != default_port:
            host_header += f":{checked.port}"
        body = json.dumps(notice.payload, ensure_ascii=False, default=str).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Oxy-Delivery": str(notice.notification_id),
            "Host": host_header,
        }
        if self.cfg.webhook_secret:
            key = self.cfg.webhook_secret.get_secret_value().encode()
            headers["X-Oxy-Signature"] = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        resp = await self.client.post(
            pinned_url(checked),
            content=body,
            headers=headers,
            timeout=10,
            follow_redirects=False,
            extensions={"sni_hostname": checked.host},
        )
        if resp.status_code // 100 != 2:
            raise RuntimeError(f"webhook answered HTTP {resp.status_code}")


_DUE = """
SELECT n.id, n.channel, n.target, n.attempts, e.kind, e.level, e.at, e.note,
       a.id AS alert_id, a.rule, a.severity, a.details, a.facility_id, o.name AS facility,
       coalesce(u.locale, 'vi') AS locale
FROM alert_notifications n
JOIN alert_events e ON e.id = n.event_id
JOIN alerts a ON a.id = e.alert_id
JOIN organisations o ON o.id = a.facility_id
LEFT JOIN alert_subscriptions s ON s.channel = n.channel AND s.target = n.target
LEFT JOIN users u ON u.id = s.user_id
WHERE n.state = 'pending' AND n.next_attempt_at <= %(now)s
ORDER BY n.id
LIMIT %(limit)s
FOR UPDATE OF n SKIP LOCKED
"""


def render(row: dict[str, Any], cfg: AlertSettings) -> Notice:
    """The notice of one queued notification, in its subscriber's language."""
    loc = row["locale"]
    rule = gettext(loc, RULE_TITLES.get(row["rule"], row["rule"]))
    event = gettext(loc, EVENT_TITLES.get(row["kind"], row["kind"]))
    severity = gettext(loc, SEVERITY_TITLES.get(row["severity"], row["severity"]))
    subject = f"[{severity}] {event}: {rule} — {row['facility']}"
    lines = [f"{label}: {value}" for label, value in detail_lines(row["rule"], row["details"], loc)]
    details = "\n".join(f"  {line}" for line in lines)
    link = f"{cfg.public_url.rstrip('/')}/alerts/{row['alert_id']}"
    body = (
        f"{rule}\n{row['facility']}\n{format_datetime(row['at'], loc)}\n\n{details}\n\n"
        + (f"{row['note']}\n\n" if row["note"] else "")
        + link
        + "\n"
    )
    payload = {
        "alert_id": row["alert_id"],
        "event": row["kind"],
        "level": row["level"],
        "rule": row["rule"],
        "severity": row["severity"],
        "facility_id": row["facility_id"],
        "facility": row["facility"],
        "at": row["at"].isoformat(),
        "details": row["details"],
        "details_text": lines,
        "title": subject,
        "url": link,
    }
    return Notice(int(row["id"]), subject, body, payload)


async def dispatch(
    conn: AsyncConnection[Any],
    senders: dict[str, Sender],
    now: datetime,
    cfg: AlertSettings,
    limit: int = 100,
) -> tuple[int, int]:
    """Send what is due; return (sent, failed). Each notification commits on its own."""
    sent = failed = 0
    async with conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(_DUE, {"now": now, "limit": limit})
        due = await cur.fetchall()
    for row in due:
        notice = render(row, cfg)
        sender = senders.get(row["channel"])
        try:
            if sender is None:
                raise RuntimeError(f"no sender for channel {row['channel']!r}")
            await sender.send(row["target"], notice)
        except Exception as exc:  # any channel failure is retried, never fatal
            attempts = row["attempts"] + 1
            dead = attempts >= cfg.alert_max_attempts
            delay = timedelta(seconds=cfg.alert_retry_seconds * 2 ** (attempts - 1))
            async with conn.transaction():
                await conn.execute(
                    "UPDATE alert_notifications SET attempts = %s, last_error = %s, state = %s, "
                    "next_attempt_at = %s WHERE id = %s",
                    (
                        attempts,
                        str(exc)[:500],
                        "dead" if dead else "pending",
                        now + delay,
                        row["id"],
                    ),
                )
            if dead:
                logger.error(
                    "notification %s to %s is dead after %d attempts: %s",
                    row["id"],
                    row["target"],
                    attempts,
                    exc,
                )
            failed += 1
            continue
        async with conn.transaction():
            await conn.execute(
                "UPDATE alert_notifications SET state = 'sent', sent_at = %s, "
                "attempts = attempts + 1 WHERE id = %s",
                (now, row["id"]),
            )
        sent += 1
    return sent, failed
