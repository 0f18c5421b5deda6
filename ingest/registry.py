"""The registry as ingest sees it: gateway code → site and sensors, cached and refreshed."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ingest import queries
from oxy.contract import Quantity

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SensorInfo:
    """A sensor's database id and the quantity (hence canonical unit) it measures."""

    id: int
    quantity: Quantity


@dataclass(frozen=True, slots=True)
class GatewayInfo:
    """A registered gateway: its site (facility code), whether revoked, and its sensors."""

    id: int
    code: str
    site: str
    revoked: bool
    sensors: dict[str, SensorInfo] = field(default_factory=dict)


class SensorCache:
    """Gateway/sensor lookups, reloaded every `max_age_s` and, on a miss, when the registry has
    new gateways or sensors (a two-index probe, at most once per batch, so a gateway flooding
    unknown sensors does not make ingest reload the registry per message)."""

    def __init__(self, max_age_s: float = 60.0) -> None:
        self.max_age_s = max_age_s
        self._gateways: dict[str, GatewayInfo] = {}
        self._loaded_at = float("-inf")
        self._signature: tuple[Any, ...] | None = None
        self._probed = False

    @property
    def size(self) -> int:
        """Number of sensors known."""
        return sum(len(g.sensors) for g in self._gateways.values())

    def refresh(self, conn: psycopg.Connection[Any]) -> None:
        """Reload the whole registry view (a few rows per sensor; cheap up to 10^5 sensors)."""
        signature = conn.execute(queries.REGISTRY_SIGNATURE).fetchone()
        gateways: dict[str, GatewayInfo] = {}
        for gw_id, gw_code, site, revoked, s_id, s_code, quantity in conn.execute(queries.REGISTRY):
            info = gateways.get(gw_code)
            if info is None:
                info = gateways[gw_code] = GatewayInfo(gw_id, gw_code, site, bool(revoked))
            if s_id is not None:
                info.sensors[s_code] = SensorInfo(s_id, Quantity(quantity))
        self._gateways = gateways
        self._signature = tuple(signature) if signature else None
        self._loaded_at = time.monotonic()
        logger.debug("registry cache loaded: %d gateways", len(gateways))

    def refresh_if_old(self, conn: psycopg.Connection[Any]) -> None:
        """Start of a batch: periodic refresh, so moved/revoked gateways are seen too."""
        self._probed = False
        if time.monotonic() - self._loaded_at > self.max_age_s:
            self.refresh(conn)

    def gateway(self, code: str, conn: psycopg.Connection[Any]) -> GatewayInfo | None:
        """The gateway `code`, reloading once on a miss."""
        info = self._gateways.get(code)
        if info is None and self._miss_reload(conn):
            info = self._gateways.get(code)
        return info

    def sensor(
        self, gw: GatewayInfo, code: str, conn: psycopg.Connection[Any]
    ) -> tuple[GatewayInfo, SensorInfo | None]:
        """The sensor `code` of gateway `gw` (reloading once on a miss) and the current gateway."""
        s = gw.sensors.get(code)
        if s is None and self._miss_reload(conn):
            gw = self._gateways.get(gw.code, gw)
            s = gw.sensors.get(code)
        return gw, s

    def _miss_reload(self, conn: psycopg.Connection[Any]) -> bool:
        if self._probed:
            return False
        self._probed = True
        row = conn.execute(queries.REGISTRY_SIGNATURE).fetchone()
        if row is not None and tuple(row) == self._signature:
            return False
        self.refresh(conn)
        return True
