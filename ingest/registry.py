"""The registry as ingest sees it: gateway code → site and sensors, cached and refreshed."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from pydantic import TypeAdapter, ValidationError

from ingest import queries
from oxy.contract import VALUE_LIMIT, ContractError, Quantity, SensorDecl, to_canonical

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SensorInfo:
    """A sensor's database id, the quantity (hence canonical unit) it measures, and its valid
    range from the registry converted to that canonical unit, within the contract's
    ±VALUE_LIMIT (which is the range when the registry sets none)."""

    id: int
    quantity: Quantity
    lo: float = -VALUE_LIMIT
    hi: float = VALUE_LIMIT


def valid_range(
    quantity: Quantity, unit: str, valid_min: float | None, valid_max: float | None
) -> tuple[float, float]:
    """The registry's valid_min/valid_max (in the sensor's registered unit) in canonical units.

    A bound in a unit the contract cannot convert is ignored with a warning: the readings are
    still stored (a wrong registry entry must not drop telemetry), only not range-checked."""
    bounds = []
    for bound, default in ((valid_min, -VALUE_LIMIT), (valid_max, VALUE_LIMIT)):
        if bound is None:
            bounds.append(default)
            continue
        try:
            bounds.append(to_canonical(quantity, float(bound), unit))
        except ContractError as exc:
            logger.warning("sensor valid range ignored: %s", exc.reason)
            bounds.append(default)
    lo, hi = sorted(bounds)  # an affine map with a negative scale would swap them
    return max(lo, -VALUE_LIMIT), min(hi, VALUE_LIMIT)


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
        for (
            gw_id, gw_code, site, revoked, s_id, s_code, quantity, unit, vmin, vmax
        ) in conn.execute(queries.REGISTRY):  # fmt: skip
            info = gateways.get(gw_code)
            if info is None:
                info = gateways[gw_code] = GatewayInfo(gw_id, gw_code, site, bool(revoked))
            if s_id is not None:
                q = Quantity(quantity)
                lo, hi = valid_range(q, unit, vmin, vmax)
                info.sensors[s_code] = SensorInfo(s_id, q, lo, hi)
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


_DECLS: TypeAdapter[list[SensorDecl]] = TypeAdapter(list[SensorDecl])


class BirthCache:
    """Contract v2 declarations by (gateway id, schema): from births as they are resolved, and
    from gateway_births (sql/0135) on a miss, so any worker resolves any stored birth. A
    schema's declaration never changes, so entries are never stale."""

    def __init__(self) -> None:
        self._births: dict[tuple[int, int], tuple[SensorDecl, ...]] = {}
        # (gateway id, schema) -> (the registry view it was planned for, its slots)
        self._plans: dict[tuple[int, int], tuple[GatewayInfo, list[Any]]] = {}

    def slots(
        self,
        gw: GatewayInfo,
        schema: int,
        decls: tuple[SensorDecl, ...],
        cache: SensorCache,
        conn: psycopg.Connection[Any],
    ) -> list[Any]:
        """The per-index plan of `schema` (ingest.resolve_v2.plan) for this registry view:
        made once, and again whenever the registry cache hands out a new gateway view."""
        from ingest.resolve_v2 import plan

        key = (gw.id, schema)
        found = self._plans.get(key)
        if found is not None and found[0] is gw:
            return found[1]
        view, slots = plan(decls, gw, cache, conn)
        self._plans[key] = (view, slots)
        return slots

    def put(self, gateway_id: int, schema: int, sensors: list[SensorDecl]) -> None:
        """Remember a birth's declaration (the writer stores it in the same transaction)."""
        self._births[(gateway_id, schema)] = tuple(sensors)

    def get(
        self, gateway_id: int, schema: int, conn: psycopg.Connection[Any]
    ) -> tuple[SensorDecl, ...] | None:
        """The declaration of `schema`, or None when the centre never stored that birth."""
        key = (gateway_id, schema)
        found = self._births.get(key)
        if found is not None:
            return found
        row = conn.execute(queries.BIRTH, key).fetchone()
        if row is None:
            return None
        try:
            decls = _DECLS.validate_python(row[0])
        except ValidationError as exc:  # written by ingest only: defensive
            logger.error("stored birth %s of gateway %d unreadable: %s", schema, gateway_id, exc)
            return None
        self._births[key] = tuple(decls)
        return self._births[key]
