"""Report-day arithmetic: the window of day D is 16:00 D−1 → 16:00 D local time (a setting)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from .config import AccountingConfig


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open UTC interval [start, end) and the report day it belongs to."""

    day: date
    start: datetime
    end: datetime

    @property
    def hours(self) -> float:
        """Length in hours (24 except across a daylight-saving change, which Vietnam has not)."""
        return (self.end - self.start).total_seconds() / 3600.0


def _local(day: date, hour: int, cfg: AccountingConfig) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=cfg.tz).astimezone(UTC)


def window(day: date, cfg: AccountingConfig) -> Window:
    """The report window of day D: [cutoff on D−1, cutoff on D) in UTC."""
    return Window(
        day,
        _local(day - timedelta(days=1), cfg.cutoff_hour, cfg),
        _local(day, cfg.cutoff_hour, cfg),
    )


def report_day_of(ts: datetime, cfg: AccountingConfig) -> date:
    """The report day whose window contains `ts` (a time at exactly 16:00 opens the next day)."""
    local = ts.astimezone(cfg.tz)
    return local.date() + timedelta(days=1) if local.hour >= cfg.cutoff_hour else local.date()


def deadline(day: date, cfg: AccountingConfig) -> datetime:
    """When the facility report for day D is due (default 17:00 on D, local)."""
    return _local(day, cfg.deadline_hour, cfg)


def morning_cutoff(day: date, cfg: AccountingConfig) -> datetime:
    """The 'as of' time of the morning discharge update for day D (default 08:00 on D)."""
    return _local(day, cfg.morning_hour, cfg)


def local_today(now: datetime, cfg: AccountingConfig) -> date:
    """The local calendar date at `now`."""
    return now.astimezone(cfg.tz).date()


def default_syt_day(now: datetime, cfg: AccountingConfig) -> date:
    """The SYT report's default date: yesterday, local time."""
    return local_today(now, cfg) - timedelta(days=1)


def last_complete_day(now: datetime, cfg: AccountingConfig) -> date:
    """The latest report day whose window has closed at `now`."""
    return report_day_of(now, cfg) - timedelta(days=1)


def days(first: date, last: date) -> list[date]:
    """Every date from first to last inclusive."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
