"""Report by exception: a per-sensor deadband with a heartbeat, before the outbox.

A reading of a sensor with a `deadband` is kept when its value moved more than the deadband
from the last value kept, when its quality changed (or it has no value), or when `heartbeat_s`
has passed since the last one kept; otherwise it is held back. When a reading is kept for a
move or a quality change after some were held back, the last held one goes with it first: the
centre then sees the value just before the move at its own time, so a step (a refill starting,
a draw after a quiet night) is placed to the poll, not spread back over the quiet stretch
(without it the simulator's refills came out 1 % short). A heartbeat sends only itself. Off by
default (no deadband: every reading).

The edge alarm sees every reading (it runs before this filter).
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.config import SensorBinding
from gateway.engineering import Row


class ExceptionFilter:
    """The deadband/heartbeat state of one gateway's sensors."""

    def __init__(self, sensors: Iterable[SensorBinding]) -> None:
        self.bands: dict[str, tuple[float, int]] = {
            s.code: (s.deadband, round(s.heartbeat_s * 1000))
            for s in sensors
            if s.deadband is not None
        }
        self._last: dict[str, Row] = {}  # last reading kept, per sensor
        self._held: dict[str, Row] = {}  # last reading held back since then
        self.held_total = 0

    @property
    def active(self) -> bool:
        """True when any sensor has a deadband."""
        return bool(self.bands)

    def keep(self, rows: Iterable[Row]) -> list[Row]:
        """The readings to send, in order."""
        out: list[Row] = []
        for r in rows:
            band = self.bands.get(r.sensor)
            if band is None:
                out.append(r)
                continue
            last = self._last.get(r.sensor)
            same = (
                last is not None
                and r.value is not None
                and last.value is not None
                and r.q == last.q
                and abs(r.value - last.value) <= band[0]
            )
            if same and last is not None and r.ts_ms - last.ts_ms < band[1]:
                self._held[r.sensor] = r
                self.held_total += 1
                continue
            held = self._held.pop(r.sensor, None)
            if held is not None and not same and held.ts_ms < r.ts_ms:
                # A move (or a quality change): the value just before it goes first. A heartbeat
                # sends only itself.
                out.append(held)
                self.held_total -= 1
            out.append(r)
            self._last[r.sensor] = r
        return out
