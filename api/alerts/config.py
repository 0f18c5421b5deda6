"""Alert thresholds, escalation timing and channel settings (`OXY_ALERT_*`, `OXY_SMTP_*`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from oxy.settings import Settings


class AlertSettings(BaseSettings):
    """Settings of the alert evaluator and notifier: a sub-tree of the centre's settings
    (`api.settings.CentreSettings`), validated at start-up."""

    # The platform's sources (environment, OXY_ENV_FILE, OXY_SECRETS_DIR): one settings tree.
    model_config = SettingsConfigDict(**Settings.model_config)

    # Days of supply: a warning under `needs_more_days` (platform setting), critical under this.
    alert_critical_days: Annotated[float, Field(gt=0)] = 1.0
    # Head pressure: a LOX bulk tank works below ~17 bar; under this the supply pressure sags.
    alert_head_pressure_low_bar: Annotated[float, Field(ge=0)] = 3.0
    # A sensor with no reading for this long is stale; a gateway silent for this long is offline.
    alert_sensor_stale_minutes: Annotated[int, Field(gt=0)] = 15
    alert_gateway_silent_minutes: Annotated[int, Field(gt=0)] = 10
    # Flapping suppression: an alert resolves only after its condition stayed clear this long.
    alert_clear_minutes: Annotated[int, Field(ge=0)] = 10
    # Escalation facility → SYT → BYT when not acknowledged within these delays.
    alert_escalate_critical_minutes: Annotated[int, Field(gt=0)] = 15
    alert_escalate_warning_minutes: Annotated[int, Field(gt=0)] = 120
    # Retries: exponential backoff from `alert_retry_seconds`, dead after `alert_max_attempts`.
    alert_retry_seconds: Annotated[int, Field(gt=0)] = 60
    alert_max_attempts: Annotated[int, Field(ge=1)] = 6
    alert_interval_seconds: Annotated[int, Field(gt=0)] = 60

    smtp_host: str = ""
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 25
    smtp_from: str = "oxy-alerts@localhost"
    smtp_user: str = ""
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    # Webhook bodies are signed with HMAC-SHA256 of this secret (header X-Oxy-Signature).
    webhook_secret: SecretStr | None = None
    # Hosts an administrator trusts as webhook destinations over plain http and on private
    # networks (comma-separated names or addresses); everything else must be https and public.
    # Read by the API (subscriptions) and the notifier (every delivery) from this one field.
    webhook_allowed_hosts: str = ""
    public_url: str = "http://127.0.0.1:8000"
