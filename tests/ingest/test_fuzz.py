"""Property test (issue 14; v2: issue 24): arbitrary JSON, MessagePack and contract-shaped
messages with extreme values through ingest's decoder, resolver and writer (real PostgreSQL):
every message is stored within the contract's domains, quarantined, or dead-lettered with a
reason; no exception escapes."""

from __future__ import annotations

import json
import math
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import msgpack
import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.batch import Batch, Inbound, Rows, decode_inbound
from ingest.registry import BirthCache, SensorCache
from ingest.resolve import resolve
from ingest.writer import Writer
from oxy.contract import (
    QUALITY_CODE,
    UNITS,
    VALUE_LIMIT,
    Domain,
    SensorDecl,
    StateMessage,
    encode,
    ms_of,
    schema_id,
)
from tests.ingest.conftest import GATEWAY, SITE, Registry

NOW = datetime.now(UTC)
DOMAIN = Domain()
TOPIC = f"oxy/v1/{SITE}/{GATEWAY}/data"

offsets = st.one_of(
    st.just("Z"),
    st.builds(
        lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
        st.sampled_from("+-"),
        st.integers(0, 23),
        st.integers(0, 59),
    ),
    st.just(""),  # no zone
)
iso_times = st.builds(
    lambda dt, off: dt.isoformat() + off,
    st.one_of(
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)),
        st.datetimes(min_value=datetime(2019, 12, 1), max_value=datetime(2027, 1, 1)),
        st.just(NOW.replace(tzinfo=None)),
        st.just(NOW.replace(tzinfo=None)),
    ),
    offsets,
)
times: st.SearchStrategy[Any] = st.one_of(
    iso_times,
    st.integers(-(2**63), 2**63),
    st.floats(),
    st.booleans(),
    st.text(max_size=30),
)
numbers: st.SearchStrategy[Any] = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1.7e308, -1.7e308, 1e300, 5e-324, 0.0, -0.0, 1e12, 1e12 + 1, -500.0, 1e9]),
    st.integers(-(2**80), 2**80),
    st.booleans(),
    st.none(),
    st.text(max_size=10),
)
json_any = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
readings = st.fixed_dictionaries(
    {
        "sensor": st.sampled_from(["T1-dp", "T1-p", "T9-x", "", "S" * 65, "bad code"]),
        "ts": times,
        "value": numbers,
        "unit": st.sampled_from([*UNITS, "furlong", ""]),
    },
    optional={
        "q": st.sampled_from(["good", "stale", "out_of_range", "comm_error", "perfect", 0]),
        "extra": json_any,
    },
)
shaped = st.fixed_dictionaries(
    {
        "gw": st.sampled_from([GATEWAY, GATEWAY, "gw-other"]),
        "seq": st.one_of(st.integers(-5, 2**70), st.booleans(), st.floats()),
        "sent_at": times,
        "readings": st.lists(readings, min_size=0, max_size=6),
    },
    optional={"v": st.sampled_from([1, 1.0, True, "1", 2])},
)
# Nearly valid: the right gateway, sensors and units, times around now, extreme values.
plausible_readings = st.builds(
    lambda sensor, ts, value, q: {
        "sensor": sensor[0],
        "ts": ts,
        "value": value,
        "unit": sensor[1],
        **({"q": q} if q else {}),
    },
    st.sampled_from(
        [("T1-dp", "inH2O"), ("T1-dp", "kPa_dp"), ("T1-p", "bar"), ("T1-p", "MPa"), ("T9", "bar")]
    ),
    st.builds(
        lambda s: (NOW + timedelta(seconds=s)).isoformat().replace("+00:00", "Z"),
        st.integers(-400 * 86400, 600),
    ),
    st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([1.7e308, -1.7e308, 1e12, -500.0, 1e9, 112.4]),
        st.integers(-(2**70), 2**70),
    ),
    st.sampled_from([None, "good", "stale", "out_of_range"]),
)
plausible = st.builds(
    lambda seq, rs: {
        "v": 1,
        "gw": GATEWAY,
        "seq": seq,
        "sent_at": NOW.isoformat().replace("+00:00", "Z"),
        "readings": rs,
    },
    st.integers(0, 2**62),
    st.lists(plausible_readings, min_size=1, max_size=6),
)
payloads = st.one_of(
    plausible.map(lambda m: json.dumps(m).encode()),
    shaped.map(lambda m: json.dumps(m).encode()),
    json_any.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
)


def _check_outcome(rows: Rows, payload: bytes, retain: bool) -> None:
    """Stored within the contract's domains, quarantined, or dead-lettered with a reason."""
    for _sid, ts, value, quality, _ in rows.readings:
        assert DOMAIN.ts_problem(ts, NOW) is None
        assert value is None or (math.isfinite(value) and abs(value) <= VALUE_LIMIT)
        assert quality in QUALITY_CODE.values()
    for *_, reason in rows.dead_letters:
        assert reason.strip()
    deletion = retain and not payload  # a retained-message deletion carries nothing
    assert deletion or rows.readings or rows.quarantine or rows.dead_letters, payload
    if retain:  # a retained data message is never stored
        assert not rows.readings and not rows.quarantine


def test_every_message_is_stored_within_bounds_or_dead_lettered(
    db_url: str, registry: Registry
) -> None:
    writer = Writer(db_url)
    cache = SensorCache()

    @settings(
        max_examples=250,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(payload=payloads, retain=st.booleans())
    def check(payload: bytes, retain: bool) -> None:
        item = Inbound(TOPIC, payload, 1, 1, NOW, 0, retain=retain)
        rows = resolve(Batch(items=[decode_inbound(item)]), cache, writer.conn, DOMAIN, NOW)
        _check_outcome(rows, payload, retain)
        writer.write(rows)  # and the database takes whatever the resolver let through

    try:
        check()
    finally:
        writer.close()
    with psycopg.connect(db_url) as conn:
        bad = conn.execute(
            "SELECT count(*) FROM readings WHERE ts < '2020-01-01' OR ts > now() + interval '6 min'"
        ).fetchone()
        (stored,) = conn.execute("SELECT count(*) FROM readings").fetchone()
        (letters,) = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    assert bad == (0,)
    assert stored > 0 and letters > 0  # both outcomes were exercised


# Contract v2 (docs/gateway.md): the same promise for compact messages, with the gateway's birth
# stored (indices 0..1 declared) and without it (a schema nobody declared).
V2_TOPIC = f"oxy/v1/{SITE}/{GATEWAY}/data2"
V2_DECLS = [
    SensorDecl(code="T1-dp", unit="inH2O", res=0.01),
    SensorDecl(code="T1-p", unit="bar", res=0.0),
]
V2_SCHEMA = schema_id(V2_DECLS)
NOW_MS = ms_of(NOW)
v2_numbers: st.SearchStrategy[Any] = st.one_of(
    st.floats(),
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from([1.7e308, -1.7e308, 1e12, 1e14, -500.0, 0.0, 11234]),
    st.none(),
    st.booleans(),
    st.text(max_size=3),
)
v2_offsets = st.one_of(
    st.integers(0, 5000),
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from([0, 400 * 86_400_000, 10**15]),
)
v2_index = st.one_of(st.integers(0, 2), st.integers(-5, 5000), st.floats(0, 3))
v2_groups = st.lists(
    st.builds(
        lambda dt, pairs: [dt, *[x for p in pairs for x in p]],
        v2_offsets,
        st.lists(st.tuples(v2_index, v2_numbers), min_size=0, max_size=4),
    ),
    max_size=3,
)
v2_bad = st.lists(
    st.lists(st.one_of(v2_offsets, v2_index, st.integers(-1, 4), v2_numbers), min_size=3,
             max_size=5),
    max_size=2,
)  # fmt: skip
v2_docs = st.builds(
    lambda seq, stream, schema, sent, t0, groups, bad: [seq, *stream, schema, sent, t0, groups,
                                                          bad],
    st.one_of(st.integers(0, 2**62), st.integers(-5, 2**64 - 1), st.booleans()),
    st.one_of(st.just((1, 1)), st.just((None, None)), st.tuples(v2_numbers, v2_numbers)),
    st.one_of(st.just(V2_SCHEMA), st.integers(0, 2**32 + 5)),
    st.one_of(st.just(NOW_MS), v2_offsets),
    st.one_of(
        st.integers(NOW_MS - 400 * 86_400_000, NOW_MS + 600_000),
        st.integers(-(2**63), 2**64 - 1),
    ),
    v2_groups,
    v2_bad,
)  # fmt: skip


msgpack_any = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=9)
    | st.binary(max_size=9),
    lambda inner: st.lists(inner, max_size=9) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)  # fmt: skip


def _v2(doc: Any, flags: int) -> bytes:
    body = msgpack.packb(doc)
    return bytes((2, flags)) + (zlib.compress(body) if flags == 1 else body)


# Nearly valid: the declared indices (and one more), times around now, extreme values.
v2_plausible = st.builds(
    lambda seq, t0, pairs, bad: [seq, 1, 1, V2_SCHEMA, NOW_MS, t0,
                                 [[0, *[x for p in pairs for x in p]]], bad],
    st.integers(0, 2**62),
    st.integers(NOW_MS - 400 * 86_400_000, NOW_MS + 600_000),
    st.lists(st.tuples(st.integers(0, 2), st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(-(2**63), 2**63 - 1),
        st.sampled_from([1.7e308, 1e12, 1e14, -500.0, 11234]),
    )), min_size=1, max_size=5),
    st.lists(st.builds(lambda i, q, v: [0, i, q, v], st.integers(0, 2), st.integers(1, 3),
                       st.one_of(st.none(), st.floats(-1e6, 1e6))), max_size=2),
)  # fmt: skip

v2_payloads = st.one_of(
    st.builds(_v2, v2_plausible, st.sampled_from([0, 1])),
    st.builds(_v2, v2_docs, st.sampled_from([0, 0, 1, 2])),
    st.builds(_v2, msgpack_any, st.sampled_from([0, 1])),
    st.binary(max_size=200).map(lambda b: b"\x02\x00" + b),
    st.binary(max_size=200),
)


def test_every_v2_message_is_stored_within_bounds_or_dead_lettered(
    db_url: str, registry: Registry
) -> None:
    writer = Writer(db_url)
    cache = SensorCache()
    births = BirthCache()
    birth = StateMessage(gw=GATEWAY, online=True, bd_seq=1, schema_=V2_SCHEMA, sensors=V2_DECLS)
    state = Inbound(f"oxy/v1/{SITE}/{GATEWAY}/state", encode(birth), 1, 1, NOW, 0)
    writer.write(resolve(Batch(items=[decode_inbound(state)]), cache, writer.conn, DOMAIN, NOW,
                         births=births))  # fmt: skip

    @settings(
        max_examples=400,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(payload=v2_payloads, retain=st.booleans())
    def check(payload: bytes, retain: bool) -> None:
        item = Inbound(V2_TOPIC, payload, 1, 1, NOW, 0, retain=retain)
        batch = Batch(items=[decode_inbound(item)])
        rows = resolve(batch, cache, writer.conn, DOMAIN, NOW, births=births)
        _check_outcome(rows, payload, retain)
        writer.write(rows)

    try:
        check()
        # A well-formed message of a schema nobody declared: dead-lettered, a rebirth asked for.
        unknown = _v2([1, 1, 1, V2_SCHEMA ^ 1, NOW_MS, NOW_MS, [[0, 0, 1]], []], 0)
        item = Inbound(V2_TOPIC, unknown, 1, 1, NOW, 0)
        rows = resolve(Batch(items=[decode_inbound(item)]), cache, writer.conn, DOMAIN, NOW,
                       births=births)  # fmt: skip
        assert rows.rebirths
        writer.write(rows)
    finally:
        writer.close()
    with psycopg.connect(db_url) as conn:
        bad = conn.execute(
            "SELECT count(*) FROM readings WHERE ts < '2020-01-01' OR ts > now() + interval '6 min'"
        ).fetchone()
        (stored,) = conn.execute("SELECT count(*) FROM readings").fetchone()
        reasons = [r for (r,) in conn.execute("SELECT reason FROM dead_letters")]
    assert bad == (0,)
    assert stored > 0 and reasons  # both outcomes were exercised
    assert any("no birth of schema" in r for r in reasons)
