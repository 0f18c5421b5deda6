"""Resolve decoded messages against the registry: readings become rows in canonical units;
what cannot be stored lands in dead letters or quarantine with its reason, never nowhere.

Every reading is checked against the contract's domains (oxy.contract.Domain, value_problem):
a timestamp before the floor or too far in the future, or a value that is not finite (or
absurd) after unit conversion, is dead-lettered with its reason while the message's other
readings are stored. A value outside the sensor's registered valid range is stored with
quality out_of_range, never good. Anything unexpected while resolving one message is caught
for that message alone: its partial rows are taken back and it is dead-lettered with the
exception, and the rest of the batch goes on.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg

from ingest import resolve_v2
from ingest.batch import Batch, Decoded, Rows
from ingest.registry import BirthCache, GatewayInfo, SensorCache
from oxy.contract import (
    QUALITY_CODE,
    VALUE_LIMIT,
    ContractError,
    DataRecord,
    Domain,
    Quality,
    StateMessage,
    StatusMessage,
    Topic,
    TopicKind,
    V2Data,
    parse_topic,
    to_canonical,
    v2_stream,
    value_problem,
)

logger = logging.getLogger(__name__)

__all__ = ["QUALITY_CODE", "resolve"]

GOOD: Final = Quality.GOOD
_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
_UNIX: Final = datetime(1970, 1, 1, tzinfo=UTC)
_OUT_OF_RANGE: Final = QUALITY_CODE[Quality.OUT_OF_RANGE]
_COMM_ERROR: Final = QUALITY_CODE[Quality.COMM_ERROR]


def resolve(
    batch: Batch,
    cache: SensorCache,
    conn: psycopg.Connection[Any],
    domain: Domain | timedelta,
    now: datetime | None = None,
    *,
    births: BirthCache | None = None,
) -> Rows:
    """Turn a decoded batch into the rows of one transaction.

    `domain` bounds reading times (a timedelta is the allowed future, with the default floor).
    Raises only what the database raises (an outage is the caller's to retry); anything else
    is the fault of one message and dead-letters that message.
    """
    if isinstance(domain, timedelta):
        domain = Domain(max_future=domain)
    rows = Rows()
    births = births if births is not None else BirthCache()
    now = now or datetime.now(UTC)
    cache.refresh_if_old(conn)
    for d in batch.items:
        mark = rows.mark()
        try:
            _one(d, cache, conn=conn, domain=domain, now=now, rows=rows, births=births)
        except psycopg.Error:
            raise
        except Exception as exc:  # a bug or an input nobody foresaw: this message only
            rows.undo(mark)
            logger.exception("message on %s could not be resolved; dead-lettered", d.inbound.topic)
            rows.dead_letter(
                d.inbound, f"ingest failed on this message: {type(exc).__name__}: {exc}"
            )
            ack_handled(d, rows)  # handled all the same: the gateway's watermark goes on
    return rows


def _one(
    d: Decoded,
    cache: SensorCache,
    *,
    conn: psycopg.Connection[Any],
    domain: Domain,
    now: datetime,
    rows: Rows,
    births: BirthCache,
) -> None:
    item = d.inbound
    if d.error is None and d.topic is not None and d.message is None:
        return  # a retained-message deletion (batch.decode_inbound): nothing to write
    if d.error is not None or d.topic is None or d.message is None:
        rows.dead_letter(item, d.error or "undecodable message")
        _ack_dead_letter(item.topic, item.payload, rows)
        return
    gw = cache.gateway(d.topic.gateway, conn)
    if gw is not None and gw.site != d.topic.site:
        # The broker ACL should have refused this publish: a gateway writes for its own site.
        rows.dead_letter(
            item,
            f"gateway {gw.code!r} belongs to site {gw.site!r}, not {d.topic.site!r}",
        )
        ack_handled(d, rows)
        return
    msg = d.message
    if isinstance(msg, StateMessage | StatusMessage):
        _state_or_status(d, d.topic, msg, gw, rows)
        if isinstance(msg, StateMessage) and gw is not None and not gw.revoked:
            _birth(msg, gw, item.received_at, rows, births)
        return
    if isinstance(msg, V2Data):
        _v2(d, d.topic, msg, gw=gw, cache=cache, conn=conn, domain=domain, now=now, rows=rows,
            births=births)  # fmt: skip
        return
    _data(d, d.topic, msg, gw=gw, cache=cache, conn=conn, domain=domain, now=now, rows=rows)


def _birth(
    msg: StateMessage, gw: GatewayInfo, at: datetime, rows: Rows, births: BirthCache
) -> None:
    """A birth's v2 declarations: usable by the rest of this batch at once, stored with it."""
    if msg.sensors is None or msg.schema_ is None:
        return
    births.put(gw.id, msg.schema_, msg.sensors)
    js = "[" + ",".join(x.model_dump_json() for x in msg.sensors) + "]"
    rows.births.append((gw.id, msg.schema_, js, at))


def _v2(
    d: Decoded,
    t: Topic,
    msg: V2Data,
    *,
    gw: GatewayInfo | None,
    cache: SensorCache,
    conn: psycopg.Connection[Any],
    domain: Domain,
    now: datetime,
    rows: Rows,
    births: BirthCache,
) -> None:
    """A v2 message resolved against its stored birth (ingest.resolve_v2), or dead-lettered."""
    item = d.inbound
    if gw is None or gw.revoked:
        # Births are stored per registered gateway: without one the indices mean nothing.
        why = "unknown gateway" if gw is None else "revoked gateway"
        rows.dead_letter(item, f"{why}: a v2 data message cannot be resolved without its birth")
        ack_handled(d, rows)
        return
    decls = births.get(gw.id, msg.schema, conn)
    if decls is None:
        # Not acknowledged: the gateway publishes its birth again when asked and re-sends this
        # message, which then resolves (docs/gateway.md, "Contract v2").
        rows.dead_letter(
            item,
            f"no birth of schema {msg.schema} from gateway {gw.code!r} (missing or not yet "
            f"received): seq {msg.seq} not acknowledged; rebirth requested",
        )
        rows.rebirths.append((t.site, t.gateway, msg.epoch, msg.seq, msg.schema))
        return
    if msg.epoch is not None:  # handled once this transaction commits, whatever happens below
        rows.ack(t.site, t.gateway, msg.epoch, msg.seq, msg.floor)
    rows.lags.append((now - _UNIX - timedelta(milliseconds=msg.sent_ms)).total_seconds())
    rows.touch(gw.id, item.received_at, msg.seq)
    slots = births.slots(gw, msg.schema, decls, cache, conn)
    bad = resolve_v2.rows_of(d, t, msg, slots, domain=domain, now=now, rows=rows)
    rows.topics.append(item.topic)  # message number len(topics): matches RECORD_CONFLICTS
    rows.ends.append(len(rows.readings))
    _reject(rows, item, bad, msg.readings)


def _data(
    d: Decoded,
    t: Topic,
    msg: DataRecord,
    *,
    gw: GatewayInfo | None,
    cache: SensorCache,
    conn: psycopg.Connection[Any],
    domain: Domain,
    now: datetime,
    rows: Rows,
) -> None:
    item = d.inbound
    readings = msg["readings"]
    stream = msg.get("epoch")
    if stream is not None:  # handled once this transaction commits, whatever happens below
        rows.ack(t.site, t.gateway, stream, msg["seq"], msg.get("floor"))
    rows.lags.append((now - msg["sent_at"]).total_seconds())
    # Timestamps are moved onto datetime.UTC: pydantic parses them with its own tzinfo, and
    # every compare or COPY of such a datetime calls its utcoffset() through Python (0.3 us per
    # reading in the COPY alone). Subtracting an epoch that shares their tzinfo object is a
    # plain field subtraction, so the move costs less than it saves; any offset stays exact.
    # The domain is checked on that difference too, before any datetime is built from it (a
    # year-1 or year-9999 time cannot overflow a subtraction, only an addition).
    epoch = _EPOCH.astimezone(readings[0]["ts"].tzinfo)
    floor = domain.ts_floor - _EPOCH
    horizon = now + domain.max_future - _EPOCH
    bad: list[str] = []
    if gw is None or gw.revoked:
        why = "unknown gateway" if gw is None else "revoked gateway"
        for i, r in enumerate(readings):
            if not floor <= r["ts"] - epoch <= horizon:
                bad.append(f"readings.{i} ({r['sensor']}): {domain.ts_problem(r['ts'], now)}")
                continue
            rows.quarantine.append(
                (item.received_at, item.topic, t.site, t.gateway, r["sensor"], r["ts"],
                 r["value"], r["unit"], QUALITY_CODE[r.get("q", GOOD)], why, None)
            )  # fmt: skip
        _reject(rows, item, bad, len(readings))
        return
    rows.touch(gw.id, item.received_at, msg["seq"])
    append = rows.readings.append
    latest, oldest = rows.latest, rows.oldest
    sensors = gw.sensors
    received = item.received_at
    limit = VALUE_LIMIT
    for i, r in enumerate(readings):
        code = r["sensor"]
        delta = r["ts"] - epoch
        if not floor <= delta <= horizon:
            bad.append(f"readings.{i} ({code}): {domain.ts_problem(r['ts'], now)}")
            continue
        s = sensors.get(code)
        if s is None:
            gw, s = cache.sensor(gw, code, conn)
            sensors = gw.sensors
            if s is None:
                rows.quarantine.append(
                    (received, item.topic, t.site, t.gateway, code, r["ts"], r["value"],
                     r["unit"], QUALITY_CODE[r.get("q", GOOD)],
                     f"unknown sensor {code!r} for gateway {gw.code!r}", None)
                )  # fmt: skip
                continue
        ts = _EPOCH + delta
        value = r["value"]
        quality = QUALITY_CODE[r.get("q", GOOD)]
        if value is not None:
            try:
                value = to_canonical(s.quantity, value, r["unit"])
            except ContractError as exc:
                bad.append(f"readings.{i} ({code}): {exc.reason}")
                continue
            # One comparison on the way of a good value: the sensor's range, already clipped
            # to the contract's ±VALUE_LIMIT (registry.valid_range). NaN fails it too.
            if not s.lo <= value <= s.hi:
                if not -limit <= value <= limit:  # infinite, NaN or absurd: not storable
                    bad.append(f"readings.{i} ({code}): {value_problem(value)}")
                    continue
                if quality != _COMM_ERROR:
                    quality = _OUT_OF_RANGE
        sid = s.id
        row = (sid, ts, value, quality, received)
        append(row)
        newest = latest.get(sid)
        if newest is None:
            latest[sid] = row
            oldest[sid] = ts
        elif ts > newest[1]:
            latest[sid] = row
        elif ts < oldest[sid]:
            oldest[sid] = ts
    rows.topics.append(item.topic)  # message number len(topics): matches RECORD_CONFLICTS
    rows.ends.append(len(rows.readings))
    _reject(rows, item, bad, len(readings))


def _reject(rows: Rows, item: Any, bad: list[str], total: int) -> None:
    if bad:
        more = f" (+{len(bad) - 5} more)" if len(bad) > 5 else ""
        rows.dead_letter(
            item, f"{len(bad)} of {total} readings rejected: " + "; ".join(bad[:5]) + more
        )


def ack_handled(d: Decoded, rows: Rows) -> None:
    """Count a message for the end-to-end acknowledgement without storing its readings (it was
    dead-lettered whole)."""
    data = d.data
    v2 = d.v2
    if data is not None and d.topic is not None:
        epoch = data.get("epoch")
        if epoch is not None:
            rows.ack(d.topic.site, d.topic.gateway, epoch, data["seq"], data.get("floor"))
    elif v2 is not None and d.topic is not None:
        if v2.epoch is not None:
            rows.ack(d.topic.site, d.topic.gateway, v2.epoch, v2.seq, v2.floor)
    elif d.message is None:
        _ack_dead_letter(d.inbound.topic, d.inbound.payload, rows)


def _ack_dead_letter(topic_name: str, payload: bytes, rows: Rows) -> None:
    """A data message that broke the contract is handled too (it is in the dead letters): its
    seq still counts for the end-to-end acknowledgement when epoch and seq can be read."""
    try:
        t = parse_topic(topic_name)
        if t.kind is TopicKind.DATA_V2:
            stream = v2_stream(payload)
            if stream is not None:
                rows.ack(t.site, t.gateway, stream[1], stream[0], stream[2])
            return
        doc = json.loads(payload)
    except (ContractError, ValueError, UnicodeDecodeError, RecursionError):
        return
    if t.kind is not TopicKind.DATA or not isinstance(doc, dict):
        return
    seq, epoch, floor = doc.get("seq"), doc.get("epoch"), doc.get("floor")
    if not all(type(x) is int and 0 <= x < 2**63 for x in (seq, epoch)):
        return
    assert isinstance(seq, int) and isinstance(epoch, int)
    ok_floor = type(floor) is int and 0 <= floor < 2**63
    rows.ack(t.site, t.gateway, epoch, seq, floor if ok_floor else None)


def _state_or_status(
    d: Decoded, t: Topic, msg: StateMessage | StatusMessage, gw: GatewayInfo | None, rows: Rows
) -> None:
    item = d.inbound
    text = item.payload.decode()
    if gw is None or gw.revoked:
        why = "unknown gateway" if gw is None else "revoked gateway"
        rows.quarantine.append(
            (item.received_at, item.topic, t.site, t.gateway, None, None, None, None, None,
             why, text)
        )  # fmt: skip
        return
    rows.touch(gw.id, item.received_at, None)
    if isinstance(msg, StateMessage):
        rows.states.append(
            {
                "gw": gw.id,
                "at": item.received_at,
                "online": msg.online,
                "bd_seq": msg.bd_seq,
                "version": msg.version,
                "config_hash": msg.config_hash,
            }
        )
        rows.history.append(
            (gw.id, item.received_at, "state", msg.online, msg.bd_seq, None, None, text)
        )
    else:
        rows.statuses.append(
            {
                "gw": gw.id,
                "ts": msg.ts,
                "outbox_depth": msg.outbox_depth,
                "outbox_oldest": msg.outbox_oldest,
                "evicted_total": msg.evicted_total,
                "published_total": msg.published_total,
                "devices": "[" + ",".join(x.model_dump_json() for x in msg.devices) + "]",
                "alarms": _json_list(msg.alarms),
            }
        )
        rows.history.append(
            (gw.id, item.received_at, "status", None, None, msg.outbox_depth,
             msg.evicted_total, text)
        )  # fmt: skip


def _json_list(values: list[str]) -> str:
    return json.dumps(values, ensure_ascii=False)
