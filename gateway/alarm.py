"""The edge alarm: low tank level and sensor faults, decided locally from the polled readings.

It needs neither the broker nor the centre: readings are judged as they leave the pollers, and
the result drives the status message's `alarms` list, a local relay (gateway.relay) and a log
line per transition. Thresholds are on the level sensor's own measure (DP in inH2O, or percent),
not on kg: the centre owns the calibration tables, and a stale local copy could hide a low tank.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config import AlarmConfig, SiteConfig
from gateway.engineering import Row
from oxy.contract import Quality

logger = logging.getLogger(__name__)

SILENCE_POLLS = 3  # no reading at all for this many poll intervals (+ timeout) counts as a fault


@dataclass
class Debounce:
    """A two-state condition that changes only after the raw condition has held long enough."""

    raise_after_s: float
    clear_after_s: float
    active: bool = False
    _since: float | None = None  # when the raw condition started to disagree with `active`

    def update(self, condition: bool, now: float) -> bool:
        """Feed the raw condition at `now` (monotonic seconds); True when `active` changed."""
        if condition == self.active:
            self._since = None
            return False
        if self._since is None:
            self._since = now
        hold = self.raise_after_s if condition else self.clear_after_s
        if now - self._since < hold:
            return False
        self.active, self._since = condition, None
        return True


@dataclass
class _Level:
    """Low-level state of one tank: the last good value, its raw condition and the debounce."""

    key: str
    sensor: str
    low: float
    clear_at: float
    unit: str
    debounce: Debounce
    value: float | None = None
    condition: bool | None = None  # None until the first good reading


@dataclass
class _Fault:
    """Sensor-fault state of one sensor."""

    key: str
    silence_s: float
    debounce: Debounce
    last_seen: float
    quality: str | None = None


Transition = Callable[[str, bool, str], None]  # (alarm key, active, detail)


class EdgeAlarm:
    """Judges readings against the site's [alarm] section; reports transitions to `on_change`."""

    def __init__(self, site: SiteConfig, on_change: Transition | None = None) -> None:
        assert site.alarm is not None
        self.cfg: AlarmConfig = site.alarm
        self.on_change = on_change
        now = time.monotonic()
        units = {s.code: s.unit for s in site.sensors}
        self.levels: dict[str, _Level] = {
            t.sensor: _Level(
                key=f"low_level:{t.tank}",
                sensor=t.sensor,
                low=t.low,
                clear_at=t.clear_at,
                unit=units[t.sensor],
                debounce=Debounce(self.cfg.raise_after_s, self.cfg.clear_after_s),
            )
            for t in self.cfg.tanks
        }
        self.faults: dict[str, _Fault] = {}
        if self.cfg.fault_after_s > 0:
            wanted = set(self.cfg.fault_sensors)
            for d in site.devices:
                silence = SILENCE_POLLS * d.poll_interval_s + d.timeout_s
                for s in d.sensors:
                    if wanted and s.code not in wanted:
                        continue
                    self.faults[s.code] = _Fault(
                        key=f"sensor_fault:{s.code}",
                        silence_s=silence,
                        debounce=Debounce(self.cfg.fault_after_s, self.cfg.clear_after_s),
                        last_seen=now,
                    )
        self._bad = frozenset(q.value for q in self.cfg.fault_qualities)

    @property
    def active(self) -> list[str]:
        """Keys of the active alarms, e.g. `low_level:T1`, `sensor_fault:T1-dp`."""
        keys = [lv.key for lv in self.levels.values() if lv.debounce.active]
        keys += [f.key for f in self.faults.values() if f.debounce.active]
        return sorted(keys)

    def any_active(self, kinds: tuple[str, ...]) -> bool:
        """Whether an alarm of one of these kinds (`low_level`, `sensor_fault`) is active."""
        return any(k.split(":", 1)[0] in kinds for k in self.active)

    def observe(self, rows: list[Row], now: float | None = None) -> None:
        """Take a poll's readings into account, then re-evaluate."""
        now = time.monotonic() if now is None else now
        for row in rows:
            fault = self.faults.get(row.sensor)
            if fault is not None:
                fault.last_seen, fault.quality = now, row.q
            level = self.levels.get(row.sensor)
            if level is not None and row.q == Quality.GOOD.value and row.value is not None:
                level.value = row.value
                # Hysteresis: once raised, the level must climb to clear_at to count as clear.
                threshold = level.clear_at if level.debounce.active else level.low
                level.condition = row.value < threshold
        self.evaluate(now)

    def evaluate(self, now: float | None = None) -> None:
        """Advance the debounce timers (also called on a timer, for silence and hold times)."""
        now = time.monotonic() if now is None else now
        for lv in self.levels.values():
            if lv.condition is None:
                continue  # no good reading yet: the sensor-fault alarm speaks for it
            if lv.debounce.update(lv.condition, now):
                detail = (
                    f"{lv.sensor} {lv.value:.2f} {lv.unit} below {lv.low:.2f}"
                    if lv.debounce.active
                    else f"{lv.sensor} {lv.value:.2f} {lv.unit} at or above {lv.clear_at:.2f}"
                )
                self._changed(lv.key, lv.debounce.active, detail)
        for f in self.faults.values():
            silent = now - f.last_seen > f.silence_s
            condition = silent or (f.quality is not None and f.quality in self._bad)
            if f.debounce.update(condition, now):
                why = "no reading" if silent else f"quality {f.quality}"
                self._changed(f.key, f.debounce.active, why)

    def _changed(self, key: str, active: bool, detail: str) -> None:
        if self.cfg.log:
            if active:
                logger.warning("ALARM raised %s: %s", key, detail)
            else:
                logger.info("alarm cleared %s: %s", key, detail)
        if self.on_change is not None:
            self.on_change(key, active, detail)
