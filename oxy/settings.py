"""Settings for every process: `OXY_*` environment variables, an optional file, secret files.

Built in `main()`/`create_app()` via `load_settings()`, never at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import AwareDatetime, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from oxy import OxyError
from oxy.contract import TS_FLOOR_DEFAULT


def default_data_dir() -> Path:
    """Per-user data directory for the embedded database, outboxes and demo state."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "oxy"


class Settings(BaseSettings):
    """Platform settings. Every field is `OXY_<NAME>`; secrets may come from `OXY_SECRETS_DIR`."""

    model_config = SettingsConfigDict(
        env_prefix="OXY_",
        env_file=os.environ.get("OXY_ENV_FILE"),
        env_file_encoding="utf-8",
        secrets_dir=os.environ.get("OXY_SECRETS_DIR"),
        extra="ignore",
    )

    # Storage and transport. Empty means "use the embedded default" (demo).
    database_url: str = ""
    mqtt_url: str = ""
    data_dir: Path = Field(default_factory=default_data_dir)

    # API / web UI.
    api_host: str = "127.0.0.1"
    api_port: Annotated[int, Field(ge=1, le=65535)] = 8000
    secret_key: SecretStr | None = None
    timezone: str = "Asia/Ho_Chi_Minh"
    default_locale: str = "vi"
    # Grafana as the browser reaches it (the engineers' pages link to its dashboards); empty:
    # no links. The compose file publishes it at http://localhost:3000 by default.
    grafana_url: str = "http://localhost:3000"
    # The API's database pool, per worker process (`oxy api run --workers N` opens N pools: keep
    # N × api_pool_max + ingest, jobs and Grafana under PostgreSQL's max_connections, 100 by
    # default). 40 lets all 34 SYT officers of the 16:00 burst hold one at once beside BYT and
    # the facilities (docs/scaling.md, capacity model); a request waits at most api_pool_wait_s
    # for one, then is answered 503 + Retry-After (never piles up behind psycopg_pool's 30 s).
    api_pool_max: Annotated[int, Field(ge=2, le=500)] = 40
    api_pool_wait_s: Annotated[float, Field(gt=0, le=30)] = 5.0

    # Oxygen reference conditions for every m3 shown: default 0 °C, 1 atm (Nm3).
    reference_temp_c: float = 0.0
    reference_pressure_kpa: float = 101.325

    # Reporting chain (MISSION.md, "The report day").
    report_cutoff_hour: Annotated[int, Field(ge=0, le=23)] = 16
    report_deadline_hour: Annotated[int, Field(ge=0, le=23)] = 17
    morning_update_hour: Annotated[int, Field(ge=0, le=23)] = 8
    needs_more_days: Annotated[float, Field(gt=0)] = 3.0

    # Ingest.
    ingest_group: str = "oxy-ingest"
    ingest_client_id: str = "oxy-ingest-1"
    ingest_batch_size: Annotated[int, Field(ge=1)] = 20000
    ingest_batch_ms: Annotated[int, Field(ge=1)] = 200
    ingest_max_future_s: Annotated[int, Field(ge=0)] = 300
    # Readings timed before this are dead-lettered (a gateway clock that was never set).
    ingest_ts_floor: AwareDatetime = TS_FLOOR_DEFAULT
    # Deliveries without a commit (each killed its worker) before a message is a poison pill.
    ingest_poison_after: Annotated[int, Field(ge=1)] = 3
    # Plain PostgreSQL: how often the rollup buckets of newly stored readings are rebuilt.
    ingest_rollup_s: Annotated[float, Field(gt=0)] = 5.0
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0

    log_json: bool = False
    log_level: str = "INFO"

    @field_validator("log_level")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.upper()


class SettingsError(OxyError):
    """A setting has a value that cannot be used; the message names the variable."""


def settings_error(exc: ValidationError) -> SettingsError:
    """The one-line error naming each refused `OXY_*` variable, its value and why."""
    problems = [
        f"OXY_{'_'.join(str(p) for p in err['loc']).upper()}={err.get('input')!r}: {err['msg']}"
        for err in exc.errors(include_url=False)
    ]
    return SettingsError("bad setting: " + "; ".join(problems))


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment (and explicit overrides, e.g. from CLI flags)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise settings_error(exc) from None
