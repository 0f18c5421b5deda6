"""A Sparkplug B host application: births, aliases, sequence numbers, deaths → the wire contract.

Topics: `spBv1.0/<group>/<NBIRTH|NDATA|NDEATH|DBIRTH|DDATA|DDEATH|NCMD|DCMD>/<edge>[/<dev>]`.
A node's aliases (defined in NBIRTH and DBIRTH) are valid until its next NBIRTH; `seq` counts
0..255 over every message of a node except NDEATH; a gap or data from a node whose birth we have
not seen makes us ask for a rebirth (NCMD `Node Control/Rebirth` = true). NDEATH is honoured only
when its `bdSeq` matches the one in the node's NBIRTH (a late Will of an old session is ignored).
Configured device ids: `<group>/<edge>` for node metrics, `<group>/<edge>/<device>` for a device.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from firmware_bridge.config import Device, Point, Source
from firmware_bridge.errors import PayloadError
from firmware_bridge.model import GatewayRef, Outcome, StateChange, Unknown, point_reading
from firmware_bridge.sparkplug_wire import (
    Metric,
    Payload,
    decode_payload,
    encode_rebirth,
    type_name,
    typed_value,
)
from oxy.contract import Reading

logger = logging.getLogger(__name__)

NAMESPACE: Final = "spBv1.0"
REBIRTH_INTERVAL_S: Final = 5.0  # at most one rebirth request per node in this window
_DATA_KINDS: Final = ("NDATA", "DDATA")
_KINDS: Final = {"NBIRTH", "NDATA", "NDEATH", "DBIRTH", "DDATA", "DDEATH", "NCMD", "DCMD"}


@dataclass
class _Node:
    bd_seq: int | None = None
    seq: int | None = None
    aliases: dict[int, str] = field(default_factory=dict)
    # (device or None for the node, metric name) → datatype declared by this session's births:
    # data messages need not repeat it (tck-id-payloads-metric-datatype-not-req).
    types: dict[tuple[str | None, str], int] = field(default_factory=dict)
    born: bool = False
    devices: set[str] = field(default_factory=set)  # devices born and not dead
    # After a rebirth's NBIRTH: devices of the previous session not yet reborn. They stay online
    # (no offline/online flip) until the node's first data message; then they are offline.
    stale: set[str] = field(default_factory=set)
    alarmed: bool = False  # a seq-gap alarm was published; the next NBIRTH clears it
    rebirth_at: float = float("-inf")


@dataclass(frozen=True, slots=True)
class _Topic:
    group: str
    kind: str
    edge: str
    device: str | None

    @property
    def node_id(self) -> str:
        return f"{self.group}/{self.edge}"

    @property
    def device_id(self) -> str:
        return f"{self.group}/{self.edge}" + (f"/{self.device}" if self.device else "")


def _parse_topic(name: str) -> _Topic | None:
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == NAMESPACE and parts[1] == "STATE":
        return None  # a host application's STATE message: not ours to bridge
    if len(parts) not in (4, 5) or parts[0] != NAMESPACE or parts[2] not in _KINDS:
        raise PayloadError(f"not a Sparkplug B topic: {name!r}")
    kind = parts[2]
    device = parts[4] if len(parts) == 5 else None
    if (kind[0] == "D") != (device is not None):
        raise PayloadError(f"{kind} topic {name!r} has the wrong number of levels")
    return _Topic(parts[1], kind, parts[3], device)


def _ms(value: int | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value / 1000.0, UTC)
    except (OverflowError, OSError, ValueError):
        raise PayloadError(f"timestamp {value} ms is out of range") from None


class SparkplugHost:
    """Tracks every edge node of one source and turns its messages into an Outcome."""

    def __init__(self, source: Source, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self._clock = clock
        self._nodes: dict[str, _Node] = {}
        # Online devices per mapped gateway: a gateway is offline when none of its devices is.
        self._online: dict[GatewayRef, set[str]] = {}
        self.gaps = 0
        self.rebirths = 0

    def handle(self, topic_name: str, payload: bytes) -> Outcome:
        """Process one message; PayloadError if it cannot be read at all."""
        out = Outcome()
        t = _parse_topic(topic_name)
        if t is None or t.kind in ("NCMD", "DCMD"):
            return out  # commands (our own rebirth requests included) carry no readings
        p = decode_payload(payload)
        node = self._nodes.get(t.node_id)
        if t.kind == "NBIRTH":
            node = self._birth_node(t, p, out)
        elif t.kind == "NDEATH":
            self._death_node(t, p, node, out)
            return out
        else:
            if p.seq is None:
                raise PayloadError(f"{t.kind} from {t.node_id} carries no seq")
            if node is None or not node.born:
                node = self._nodes.setdefault(t.node_id, _Node())
                self._request_rebirth(t, node, out, f"{t.kind} from {t.node_id} before its NBIRTH")
            else:
                self._check_seq(t, node, p.seq, out)
                if t.kind == "DDATA" and t.device not in node.devices:
                    self._request_rebirth(
                        t, node, out, f"{t.kind} from {t.device_id}, which has no DBIRTH (alive)"
                    )
            node.seq = p.seq % 256
            if t.kind != "DBIRTH":
                self._flush_stale(t, node, out)
        if t.kind == "DBIRTH":
            assert t.device is not None
            self._learn(node, p, t.device)
            node.stale.discard(t.device)
        if t.kind == "DDEATH":
            if t.device is not None:
                node.devices.discard(t.device)
            self._went_offline(t.device_id, node.bd_seq or 0, out)
            return out
        self._readings(t, node, p, out)
        if t.kind in ("NBIRTH", "DBIRTH"):
            if t.device is not None:
                node.devices.add(t.device)
            self._went_online(t.device_id, node.bd_seq or 0, out)
        return out

    # ---------------------------------------------------------------------------------------

    def _birth_node(self, t: _Topic, p: Payload, out: Outcome) -> _Node:
        bd = next((m for m in p.metrics if m.name == "bdSeq"), None)
        if bd is None or not isinstance(bd.value, int) or isinstance(bd.value, bool):
            raise PayloadError(f"NBIRTH from {t.node_id} has no integer bdSeq metric")
        old = self._nodes.get(t.node_id)
        node = _Node(bd_seq=bd.value, seq=(p.seq or 0) % 256, born=True)
        if old is not None:
            # A new session (a rebirth, or a reconnect): devices of the old one are reborn by
            # the DBIRTHs that follow; those that are not go offline at the first data message.
            node.stale = old.devices | old.stale
            node.rebirth_at = old.rebirth_at
            if old.alarmed:
                out.cleared.extend(self._node_gateways(t.node_id))
        self._learn(node, p, None)
        self._nodes[t.node_id] = node
        logger.info("sparkplug node %s born (bdSeq %d)", t.node_id, bd.value)
        return node

    def _death_node(self, t: _Topic, p: Payload, node: _Node | None, out: Outcome) -> None:
        bd = next((m for m in p.metrics if m.name == "bdSeq"), None)
        if bd is None or not isinstance(bd.value, int):
            raise PayloadError(f"NDEATH from {t.node_id} has no integer bdSeq metric")
        if (
            node is not None
            and node.bd_seq is not None
            and (node.bd_seq != bd.value or not node.born)
        ):
            # A late Will of an earlier session, or the death of a session already dead.
            logger.info(
                "sparkplug NDEATH of %s with bdSeq %s ignored (current session %s)",
                t.node_id,
                bd.value,
                node.bd_seq,
            )
            return
        if node is None or node.bd_seq is None:
            # We never saw this session's NBIRTH (the bridge restarted since, and the node ignored
            # the rebirth request): the death still counts, for every device mapped under it.
            node = self._nodes.setdefault(t.node_id, _Node())
            node.devices = {
                d.id.rsplit("/", 1)[1]
                for d in self.source.devices
                if d.id.startswith(t.node_id + "/")
            }
            node.bd_seq = bd.value
        node.born = False
        for dev in sorted(node.devices | node.stale):
            self._went_offline(f"{t.node_id}/{dev}", bd.value, out)
        node.devices.clear()
        node.stale.clear()
        node.types.clear()
        node.aliases.clear()
        self._went_offline(t.node_id, bd.value, out)
        logger.info("sparkplug node %s dead (bdSeq %d)", t.node_id, bd.value)

    def _check_seq(self, t: _Topic, node: _Node, seq: int, out: Outcome) -> None:
        expected = ((node.seq or 0) + 1) % 256
        if seq % 256 == expected:
            return
        self.gaps += 1
        reason = f"sparkplug seq gap on {t.node_id}: expected {expected}, got {seq} ({t.kind})"
        logger.warning("%s; requesting rebirth", reason)
        for ref in self._node_gateways(t.node_id):
            out.alarms.append((ref, reason))
            node.alarmed = True
        self._request_rebirth(t, node, out, reason)

    def _request_rebirth(self, t: _Topic, node: _Node, out: Outcome, why: str) -> None:
        now = self._clock()
        if now - node.rebirth_at < REBIRTH_INTERVAL_S:
            return
        node.rebirth_at = now
        self.rebirths += 1
        logger.info("requesting rebirth of %s: %s", t.node_id, why)
        out.commands.append(
            (f"{NAMESPACE}/{t.group}/NCMD/{t.edge}", encode_rebirth(int(time.time() * 1000)))
        )

    @staticmethod
    def _learn(node: _Node, p: Payload, device: str | None) -> None:
        """Aliases and datatypes of a birth's metrics, for the rest of the session."""
        for m in p.metrics:
            if m.name is None:
                continue
            if m.alias is not None:
                node.aliases[m.alias] = m.name
            if m.datatype:
                node.types[(device, m.name)] = m.datatype

    def _flush_stale(self, t: _Topic, node: _Node, out: Outcome) -> None:
        """Devices of the previous session that were not reborn after an NBIRTH are offline."""
        for dev in sorted(node.stale):
            self._went_offline(f"{t.node_id}/{dev}", node.bd_seq or 0, out)
        node.stale.clear()

    def _node_gateways(self, node_id: str) -> list[GatewayRef]:
        refs = {
            GatewayRef(d.site, d.gateway)
            for d in self.source.devices
            if d.id == node_id or d.id.startswith(node_id + "/")
        }
        return sorted(refs, key=lambda r: (r.site, r.gateway))

    def _readings(self, t: _Topic, node: _Node, p: Payload, out: Outcome) -> None:
        device = self.source.device(t.device_id)
        named: list[tuple[str | None, Metric]] = []
        for m in p.metrics:
            name = m.name
            if name is None and m.alias is not None:
                name = node.aliases.get(m.alias)
            if name is None:
                out.dead.append(
                    f"{t.kind} {t.device_id}: metric alias {m.alias} is unknown"
                    " (no birth defines it; rebirth requested)"
                )
                self._request_rebirth(t, node, out, f"unknown alias {m.alias}")
            named.append((name, m))
        if device is None:
            if any(name for name, _ in named) and t.kind != "DDEATH":
                out.unknown.append(
                    Unknown(
                        device=t.device_id,
                        ts=_ms(p.timestamp),
                        reason=f"sparkplug device {t.device_id} is not in the bridge mapping",
                        aggregate=True,
                        detail={
                            "kind": t.kind,
                            "seq": p.seq,
                            "metrics": [
                                {"name": n, "alias": m.alias, "value": _shown(node, t, n, m)}
                                for n, m in named
                            ],
                        },
                    )
                )
            return
        points = {pt.metric: pt for pt in device.points}
        ref = GatewayRef(device.site, device.gateway)
        fallback = _ms(p.timestamp) or datetime.now(UTC)
        for name, m in named:
            point = points.get(name) if name is not None else None
            if point is None or name is None:
                continue  # metrics the mapping does not ask for (properties, controls, ...)
            born_as = node.types.get((t.device, name))
            if m.datatype and born_as and m.datatype != born_as and t.kind in _DATA_KINDS:
                out.dead.append(
                    f"{t.kind} {t.device_id} metric {name!r}: datatype {type_name(m.datatype)}"
                    f" differs from its birth's {type_name(born_as)}"
                )
                continue
            datatype = m.datatype or born_as
            if not datatype:
                # Never a guessed value: an Int64 of -2000 read as unsigned is 1.8e19.
                out.dead.append(
                    f"{t.kind} {t.device_id} metric {name!r}: datatype unknown (not in this"
                    " message and no birth of this session declared it; rebirth requested)"
                )
                self._request_rebirth(t, node, out, f"datatype of {name!r} unknown")
                continue
            try:
                out.add_reading(ref, self._reading(point, m, datatype, fallback))
            except PayloadError as exc:
                out.dead.append(f"{t.kind} {t.device_id} metric {name!r}: {exc.reason}")

    @staticmethod
    def _reading(point: Point, m: Metric, datatype: int, fallback: datetime) -> Reading:
        ts = _ms(m.timestamp) or fallback
        v = typed_value(m, datatype)
        if v is None:
            return point_reading(point, ts, None)
        value = (1.0 if v else 0.0) if isinstance(v, bool) else float(v)
        if not math.isfinite(value):
            raise PayloadError(f"value {value} is not finite")
        return point_reading(point, ts, value)

    def _went_online(self, device_id: str, bd_seq: int, out: Outcome) -> None:
        device = self.source.device(device_id)
        if device is None:
            return
        ref = GatewayRef(device.site, device.gateway)
        self._online.setdefault(ref, set()).add(device_id)
        out.states.append(StateChange(ref, True, bd_seq))

    def _went_offline(self, device_id: str, bd_seq: int, out: Outcome) -> None:
        device: Device | None = self.source.device(device_id)
        if device is None:
            return
        ref = GatewayRef(device.site, device.gateway)
        online = self._online.setdefault(ref, set())
        online.discard(device_id)
        if not online:
            out.states.append(StateChange(ref, False, bd_seq))


def _shown(node: _Node, t: _Topic, name: str | None, m: Metric) -> object:
    """A metric's value for a person reading the quarantine: typed by its birth when known."""
    datatype = m.datatype or (node.types.get((t.device, name)) if name else None)
    if datatype and not m.datatype:
        try:
            return _jsonable(typed_value(m, datatype))
        except PayloadError:
            pass
    return _jsonable(m.value)


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
