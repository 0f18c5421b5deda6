"""Accounting and reporting settings: the platform `Settings` plus the thresholds of this package.

The cut-off, deadline, morning-update hours, `needs_more_days` and the gas reference come from
`oxy.settings.Settings`; the rest are `OXY_*` variables read by :class:`AccountingSettings`, a
sub-tree of the centre's settings (`api.settings.CentreSettings`), validated at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from oxy.contract import Reference
from oxy.settings import Settings

from .therapy import Therapy


class AccountingSettings(BaseSettings):
    """Thresholds of the accounting (OXY_* environment variables, WHO defaults for flows)."""

    # The platform's sources (environment, OXY_ENV_FILE, OXY_SECRETS_DIR): one settings tree.
    model_config = SettingsConfigDict(**Settings.model_config)

    # Oxygen flow per patient by therapy, litres per minute of gas. WHO planning figures: a severe
    # patient 10 L/min, a critical one 30 L/min (shared DOMAIN.md "Demand"); HFNC runs 30-60 L/min.
    flow_mask_lpm: Annotated[float, Field(ge=0)] = 10.0
    flow_hfnc_lpm: Annotated[float, Field(ge=0)] = 40.0
    flow_niv_lpm: Annotated[float, Field(ge=0)] = 30.0
    flow_invasive_lpm: Annotated[float, Field(ge=0)] = 30.0
    flow_ecmo_lpm: Annotated[float, Field(ge=0)] = 10.0
    # Refill detection: a sustained rise faster than this and larger than refill_min_kg.
    refill_min_rate_kg_min: Annotated[float, Field(gt=0)] = 5.0
    refill_min_kg: Annotated[float, Field(gt=0)] = 100.0
    refill_noise_k: Annotated[float, Field(gt=0)] = 4.0
    refill_merge_minutes: Annotated[float, Field(ge=0)] = 20.0
    # Gaps up to this long are bridged by interpolation when reading a window's boundary contents.
    max_interp_gap_hours: Annotated[float, Field(gt=0)] = 6.0
    # Robust z-score (median/MAD) above which consumption is abnormal or a figure implausible.
    outlier_z: Annotated[float, Field(gt=0)] = 3.5
    # Leak check: the spread of a tank's daily consumption is taken as at least this share of
    # its typical day and this many kg (the MAD of a few steady days is near the gauge noise).
    leak_floor_pct: Annotated[float, Field(ge=0)] = 3.0
    leak_floor_kg: Annotated[float, Field(ge=0)] = 20.0
    # A window computed less than this after it closed is recomputed (late readings).
    late_grace_minutes: Annotated[int, Field(ge=0)] = 120
    # A window still open (or closed less than late_grace_minutes ago) is read from its stored
    # row while that row is younger than this (pages may show figures this old; 0: recomputed
    # on every read); the API's periodic job (api.accounting.ahead) keeps it younger.
    open_window_fresh_seconds: Annotated[int, Field(ge=0)] = 60
    # How often that job refreshes the open windows and checks the closed ones of D−12..D.
    windows_ahead_interval_seconds: Annotated[float, Field(gt=0)] = 30.0
    # How long the API's start waits for the job's first round before serving anyway (within
    # the compose health check's start period + retries: 20 s + 5 × 15 s).
    windows_ahead_warm_up_seconds: Annotated[float, Field(ge=0)] = 60.0
    # Facility reports older than this many days are locked ("past deadline").
    edit_window_days: Annotated[int, Field(ge=1)] = 31


@dataclass(frozen=True, slots=True)
class AccountingConfig:
    """Everything the accounting and report functions need, built once in create_app/main from
    the platform `Settings` and the `AccountingSettings` (the defaults are theirs, written once)."""

    tz: tzinfo
    cutoff_hour: int
    deadline_hour: int
    morning_hour: int
    needs_more_days: float
    reference: Reference
    flows_lpm: dict[Therapy, float]
    refill_min_rate_kg_min: float
    refill_min_kg: float
    refill_noise_k: float
    refill_merge_minutes: float
    max_interp_gap_hours: float
    outlier_z: float
    leak_floor_pct: float
    leak_floor_kg: float
    late_grace_minutes: int
    edit_window_days: int
    open_window_fresh_seconds: int
    windows_ahead_interval_seconds: float
    windows_ahead_warm_up_seconds: float

    @classmethod
    def defaults(cls) -> AccountingConfig:
        """The config every setting left at its default would give (the environment unread)."""
        return build_config(Settings.model_construct(), AccountingSettings.model_construct())


def build_config(settings: Settings, a: AccountingSettings) -> AccountingConfig:
    """Combine the platform settings and the accounting settings into one frozen config."""
    return AccountingConfig(
        tz=ZoneInfo(settings.timezone),
        cutoff_hour=settings.report_cutoff_hour,
        deadline_hour=settings.report_deadline_hour,
        morning_hour=settings.morning_update_hour,
        needs_more_days=settings.needs_more_days,
        reference=Reference(settings.reference_temp_c, settings.reference_pressure_kpa),
        flows_lpm={
            Therapy.MASK: a.flow_mask_lpm,
            Therapy.HFNC: a.flow_hfnc_lpm,
            Therapy.NIV: a.flow_niv_lpm,
            Therapy.INVASIVE: a.flow_invasive_lpm,
            Therapy.ECMO: a.flow_ecmo_lpm,
        },
        refill_min_rate_kg_min=a.refill_min_rate_kg_min,
        refill_min_kg=a.refill_min_kg,
        refill_noise_k=a.refill_noise_k,
        refill_merge_minutes=a.refill_merge_minutes,
        max_interp_gap_hours=a.max_interp_gap_hours,
        outlier_z=a.outlier_z,
        leak_floor_pct=a.leak_floor_pct,
        leak_floor_kg=a.leak_floor_kg,
        late_grace_minutes=a.late_grace_minutes,
        edit_window_days=a.edit_window_days,
        open_window_fresh_seconds=a.open_window_fresh_seconds,
        windows_ahead_interval_seconds=a.windows_ahead_interval_seconds,
        windows_ahead_warm_up_seconds=a.windows_ahead_warm_up_seconds,
    )
