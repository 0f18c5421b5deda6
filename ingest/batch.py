"""What flows through the service: messages as received, decoded, and resolved into rows."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from oxy.contract import (
    ContractError,
    DataRecord,
    StateMessage,
    StatusMessage,
    Topic,
    TopicKind,
    V2Data,
    decode_record,
    decode_v2,
    parse_topic,
)

_batch_ids = itertools.count(1)
_HOUR = timedelta(hours=1)

# Raw payloads are kept in dead letters up to this many bytes (payload_size says the rest).
DEAD_LETTER_PAYLOAD_BYTES = 16_384


@dataclass(slots=True)
class Inbound:
    """One MQTT message as received; `generation` is the MQTT connection it arrived on."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime
    generation: int
    monotonic: float = field(default_factory=time.monotonic)
    retain: bool = False  # the publisher set retain (MQTT v5 retain-as-published), or a stored copy
    dup: bool = False  # the broker delivered it before (to a worker that never acked it)


@dataclass(slots=True)
class Decoded:
    """A message after the wire contract: either a typed message or the contract's reason
    (neither: a retained-message deletion, acknowledged and otherwise ignored)."""

    inbound: Inbound
    topic: Topic | None
    # A v2 data message stays V2Data until resolve expands it against its birth.
    message: DataRecord | V2Data | StateMessage | StatusMessage | None
    error: str | None

    @property
    def data(self) -> DataRecord | None:
        """The data message, or None (state, status, v2 not yet resolved, or a message that
        broke the contract)."""
        m = self.message
        return m if isinstance(m, dict) else None

    @property
    def v2(self) -> V2Data | None:
        """The v2 data message not yet resolved against its birth, or None."""
        m = self.message
        return m if isinstance(m, V2Data) else None


def decode_inbound(item: Inbound) -> Decoded:
    """Validate one message with the shared wire contract (no database needed)."""
    if item.retain and not item.payload:
        # A zero-length retained publish deletes the broker's stored copy (ingest sends one
        # after refusing retained data); it carries nothing to store or to dead-letter.
        try:
            return Decoded(item, parse_topic(item.topic), None, None)
        except ContractError as exc:
            return Decoded(item, None, None, exc.reason)
    try:
        if item.topic.endswith("/" + TopicKind.DATA_V2.value):
            t, v2 = decode_v2(item.topic, item.payload)
            if item.retain:
                return Decoded(item, None, None, RETAINED_DATA)
            return Decoded(item, t, v2, None)
        t, msg = decode_record(item.topic, item.payload)
    except ContractError as exc:
        return Decoded(item, None, None, exc.reason)
    except Exception as exc:  # defensive: the contract should catch all; one message only
        return Decoded(item, None, None, f"undecodable payload: {type(exc).__name__}: {exc}")
    if item.retain and t.kind is TopicKind.DATA:
        return Decoded(item, None, None, RETAINED_DATA)
    return Decoded(item, t, msg, None)


# A retained data message would be delivered again to every new subscription (a replay of old
# readings each time ingest subscribes afresh); the contract publishes data with retain=false.
RETAINED_DATA = (
    "retained data message: data is published with retain=false (the broker would deliver "
    "this copy to every new subscriber); clear it with an empty retained publish on the topic"
)


@dataclass(slots=True)
class Batch:
    """Decoded messages waiting for one database transaction; acked after its commit."""

    items: list[Decoded] = field(default_factory=list)
    readings: int = 0
    batch_id: int = field(default_factory=lambda: next(_batch_ids))
    opened: float = field(default_factory=time.monotonic)

    def add(self, d: Decoded) -> None:
        """Append a decoded message, counting its readings."""
        self.items.append(d)
        m = d.message
        if isinstance(m, dict):
            self.readings += len(m["readings"])
        elif isinstance(m, V2Data):
            self.readings += m.readings


@dataclass(slots=True)
class AckStream:
    """The data seqs of one gateway stream handled in one batch."""

    seqs: list[int] = field(default_factory=list)
    floor: int = 0

    def ranges(self) -> list[tuple[int, int]]:
        """The seqs as sorted, merged inclusive ranges."""
        out: list[tuple[int, int]] = []
        for q in sorted(set(self.seqs)):
            if out and q == out[-1][1] + 1:
                out[-1] = (out[-1][0], q)
            else:
                out.append((q, q))
        return out


ReadingRow = tuple[int, datetime, float | None, int, datetime]


@dataclass(slots=True)
class Rows:
    """A batch resolved against the registry: everything one transaction writes."""

    # (sensor_id, ts, value, quality, received_at): the columns COPY writes into readings.
    readings: list[ReadingRow] = field(default_factory=list)
    # Message k (1-based, its topic topics[k-1]) holds readings[ends[k-2]:ends[k-1]].
    topics: list[str] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    # Per sensor: its newest row and its oldest ts in this batch (sensor_latest, rollup queue).
    latest: dict[int, ReadingRow] = field(default_factory=dict)
    oldest: dict[int, datetime] = field(default_factory=dict)
    dead_letters: list[tuple[datetime, str, bytes, int, str]] = field(default_factory=list)
    quarantine: list[tuple[Any, ...]] = field(default_factory=list)
    touches: dict[int, tuple[datetime, int | None]] = field(default_factory=dict)
    states: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    history: list[tuple[Any, ...]] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    # End-to-end acknowledgement: per stream (site, gateway, epoch), the data seqs this batch
    # handles (stored, dead-lettered or quarantined) and the highest floor the gateway declared.
    acks: dict[tuple[str, str, int], AckStream] = field(default_factory=dict)
    # Contract v2: births' declarations to store (gateway id, schema, sensors JSON, received),
    # and the v2 messages whose birth is missing: (site, gateway, epoch, seq, schema).
    births: list[tuple[int, int, str, datetime]] = field(default_factory=list)
    rebirths: list[tuple[str, str, int | None, int, int]] = field(default_factory=list)

    def ack(self, site: str, gateway: str, epoch: int, seq: int, floor: int | None) -> None:
        """Note that data message `seq` of a stream is handled by this batch's transaction."""
        key = (site, gateway, epoch)
        stream = self.acks.get(key)
        if stream is None:
            stream = self.acks[key] = AckStream()
        stream.seqs.append(seq)
        if floor is not None and floor > stream.floor:
            stream.floor = floor

    def ack_arrays(self) -> tuple[list[str], list[str], list[int], list[int], list[int], list[int]]:
        """The ranges of handled seqs as the arrays of ack_advance() (sql/0075)."""
        site: list[str] = []
        gw: list[str] = []
        epoch: list[int] = []
        lo: list[int] = []
        hi: list[int] = []
        floor: list[int] = []
        for (s, g, e), stream in sorted(self.acks.items()):
            for a, b in stream.ranges():
                site.append(s)
                gw.append(g)
                epoch.append(e)
                lo.append(a)
                hi.append(b)
                floor.append(stream.floor)
        return site, gw, epoch, lo, hi, floor

    def mark(self) -> tuple[int, ...]:
        """The length of every list, to take back the rows of one message (`undo`)."""
        return (len(self.readings), len(self.topics), len(self.ends), len(self.dead_letters),
                len(self.quarantine), len(self.states), len(self.statuses), len(self.history),
                len(self.lags))  # fmt: skip

    def undo(self, mark: tuple[int, ...]) -> None:
        """Remove what was added since `mark` (a message that failed half-way)."""
        lists: tuple[list[Any], ...] = (
            self.readings, self.topics, self.ends, self.dead_letters, self.quarantine,
            self.states, self.statuses, self.history, self.lags,
        )  # fmt: skip
        for lst, n in zip(lists, mark, strict=True):
            del lst[n:]
        # Latest/oldest per sensor are rebuilt from the rows that stay (rare: a failure only).
        self.latest.clear()
        self.oldest.clear()
        for row in self.readings:
            sid, ts = row[0], row[1]
            newest = self.latest.get(sid)
            if newest is None or ts > newest[1]:
                self.latest[sid] = row
            if sid not in self.oldest or ts < self.oldest[sid]:
                self.oldest[sid] = ts

    def dead_letter(self, item: Inbound, reason: str) -> None:
        """Record a message that breaks the contract or a rule, with its raw bytes bounded."""
        self.dead_letters.append(
            (
                item.received_at,
                item.topic,
                item.payload[:DEAD_LETTER_PAYLOAD_BYTES],
                len(item.payload),
                # PostgreSQL text cannot hold NUL, and a reason may quote a key of the message.
                reason[:2000].replace("\x00", "\\x00"),
            )
        )

    def staged(self) -> Iterator[tuple[int, datetime, float | None, int, datetime, int]]:
        """Every reading row with the 1-based number of its message (the staging columns)."""
        start = 0
        for src, end in enumerate(self.ends, start=1):
            for row in self.readings[start:end]:
                yield (*row, src)
            start = end

    def dirty(self) -> tuple[list[int], list[datetime], list[datetime]]:
        """(sensor ids, oldest ts, newest ts) of this batch, as arrays for the rollup queue.

        One range per sensor when its readings span at most an hour (nearly always); otherwise
        one per hour that holds its readings, so a late reading queues its own hour and not
        every minute between it and the live data."""
        ids: list[int] = []
        los: list[datetime] = []
        his: list[datetime] = []
        wide: set[int] = set()
        for sid, row in self.latest.items():
            lo, hi = self.oldest[sid], row[1]
            if hi - lo <= _HOUR:
                ids.append(sid)
                los.append(lo)
                his.append(hi)
            else:
                wide.add(sid)
        if wide:
            spans: dict[tuple[int, datetime], tuple[datetime, datetime]] = {}
            for r in self.readings:
                if r[0] in wide:
                    ts = r[1]
                    key = (r[0], ts.replace(minute=0, second=0, microsecond=0))
                    lo, hi = spans.get(key, (ts, ts))
                    spans[key] = (min(lo, ts), max(hi, ts))
            for (sid, _), (lo, hi) in spans.items():
                ids.append(sid)
                los.append(lo)
                his.append(hi)
        return ids, los, his

    def touch(self, gateway_id: int, at: datetime, seq: int | None) -> None:
        """Note that a gateway was heard from (and its newest data `seq`)."""
        prev = self.touches.get(gateway_id)
        if prev is None:
            self.touches[gateway_id] = (at, seq)
            return
        best_seq = prev[1] if seq is None else seq if prev[1] is None else max(prev[1], seq)
        self.touches[gateway_id] = (max(prev[0], at), best_seq)
