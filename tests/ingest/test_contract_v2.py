"""Contract v2 through ingest (real PostgreSQL, real Mosquitto, real gateways): v2 data resolves
against the birth the centre stored, v1 and v2 side by side, the end-to-end acknowledgement and
idempotent writes unchanged; a missing birth is dead-lettered, not acknowledged, and the gateway
re-sends after the rebirth it is asked for; undeclared indices are dead-lettered with reasons."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import load
from gateway.outbox import Outbox
from ingest.batch import Batch, Inbound, decode_inbound
from ingest.registry import BirthCache, SensorCache
from ingest.resolve import resolve
from ingest.writer import Writer
from oxy.contract import (
    SensorDecl,
    StateMessage,
    TopicKind,
    encode,
    encode_v2,
    ms_of,
    schema_id,
    topic,
)
from tests.gateway.conftest import (  # noqa: F401  (fixtures used by name)
    RunningGateway,
    bg,
    gateway_toml,
    sim_factory,
    tank,
)
from tests.ingest.conftest import GATEWAY, SITE, Registry, count, running_ingest, wait_for
from tests.ingest.test_end_to_end_ack import seed_gateway

NOW = datetime.now(UTC).replace(microsecond=0)
DECLS = [
    SensorDecl(code="T1-dp", unit="inH2O", res=0.01),
    SensorDecl(code="T1-p", unit="bar", res=0.001),
]
SCHEMA = schema_id(DECLS)


def _inbound(topic_name: str, payload: bytes) -> Inbound:
    return Inbound(topic_name, payload, 1, 1, datetime.now(UTC), 0)


def _birth(decls: list[SensorDecl]) -> Inbound:
    msg = StateMessage(gw=GATEWAY, online=True, bd_seq=1, schema_=schema_id(decls), sensors=decls)
    return _inbound(topic(SITE, GATEWAY, TopicKind.STATE), encode(msg))


def _data(decls: list[SensorDecl], seq: int, items: list[Any], gw: str = GATEWAY) -> Inbound:
    payload, _ = encode_v2(decls, schema_id(decls), seq, ms_of(NOW), items, epoch=1, floor=1)
    return _inbound(topic(SITE, gw, TopicKind.DATA_V2), payload)


def _run(db_url: str, births: BirthCache, *items: Inbound) -> Any:
    writer = Writer(db_url)
    try:
        batch = Batch()
        for it in items:
            batch.add(decode_inbound(it))
        rows = resolve(batch, SensorCache(), writer.conn, timedelta(minutes=5), births=births)
        writer.write(rows)
        return rows
    finally:
        writer.close()


def test_v2_resolves_against_the_stored_birth_and_a_stale_one_still_resolves(
    db_url: str, registry: Registry
) -> None:
    ts = ms_of(NOW)
    rows = _run(db_url, BirthCache(), _birth(DECLS), _data(DECLS, 1, [(0, ts, 112.34, 0)]))
    assert not rows.dead_letters and len(rows.readings) == 1
    assert count(db_url, "SELECT count(*) FROM gateway_births") == 1
    # Reconfigured: a new birth (other resolution) while old-schema data still waits in the
    # outbox. A fresh worker (empty cache) resolves both from gateway_births.
    new = [SensorDecl(code="T1-dp", unit="inH2O", res=0.001), DECLS[1]]
    _run(db_url, BirthCache(), _birth(new))
    rows = _run(
        db_url,
        BirthCache(),
        _data(DECLS, 2, [(0, ts + 1000, 112.35, 0), (1, ts + 1000, 10.5, 0)]),
        _data(new, 3, [(0, ts + 2000, 112.351, 0)]),
    )
    assert not rows.dead_letters
    with psycopg.connect(db_url) as conn:
        got = conn.execute(
            "SELECT s.code, r.value FROM readings r JOIN sensors s ON s.id = r.sensor_id "
            "ORDER BY r.ts, s.code"
        ).fetchall()
    assert got == [("T1-dp", 112.34), ("T1-dp", 112.35), ("T1-p", 10.5), ("T1-dp", 112.351)]
    assert count(db_url, "SELECT count(*) FROM gateway_births") == 2


def test_missing_birth_is_dead_lettered_unacknowledged_and_asks_for_a_rebirth(
    db_url: str, registry: Registry
) -> None:
    rows = _run(db_url, BirthCache(), _data(DECLS, 5, [(0, ms_of(NOW), 1.0, 0)]))
    assert not rows.readings and not rows.acks  # not confirmed: the gateway re-sends it
    assert rows.rebirths == [(SITE, GATEWAY, 1, 5, SCHEMA)]
    (reason,) = [d[-1] for d in rows.dead_letters]
    assert f"no birth of schema {SCHEMA}" in reason and "rebirth requested" in reason


def test_undeclared_index_and_unknown_gateway_are_dead_lettered_with_reasons(
    db_url: str, registry: Registry
) -> None:
    births = BirthCache()
    wide = [*DECLS, SensorDecl(code="T1-x", unit="bar", res=0.0)]
    # The data claims the 2-sensor schema but carries index 2 (a gateway bug): that reading is
    # dead-lettered with its reason, the others stored, and the message counts as handled.
    pair = [(0, ms_of(NOW), 1.0, 0), (2, ms_of(NOW), 2.0, 0)]
    payload, _ = encode_v2(wide, SCHEMA, 9, ms_of(NOW), pair, epoch=1, floor=1)
    item = _inbound(topic(SITE, GATEWAY, TopicKind.DATA_V2), payload)
    rows = _run(db_url, births, _birth(DECLS), item)
    assert len(rows.readings) == 1 and rows.acks
    (reason,) = [d[-1] for d in rows.dead_letters]
    assert "1 of 2 readings rejected" in reason and "index 2 is not declared" in reason
    rows = _run(db_url, births, _data(DECLS, 1, [(0, ms_of(NOW), 1.0, 0)], gw="gw-nobody"))
    (reason,) = [d[-1] for d in rows.dead_letters]
    assert reason.startswith("unknown gateway: a v2 data message cannot be resolved")
    rows = _run(db_url, births, _inbound(topic(SITE, GATEWAY, TopicKind.DATA_V2), b"\x02\x00\xc1"))
    assert "not one MessagePack value" in rows.dead_letters[0][-1]


class Values:
    """Every reading written into any outbox of this process: (sensor, ts_ms) -> value."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rows: dict[tuple[str, int], float | None] = {}
        original = Outbox.add
        me = self

        def add(ob: Outbox, rows: Any) -> int:
            rows = list(rows)
            for r in rows:
                me.rows[(r[0], r[1])] = r[2]
            return original(ob, rows)

        monkeypatch.setattr(Outbox, "add", add)


def stored_values(url: str) -> dict[tuple[str, int], float | None]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT s.code, round(extract(epoch FROM r.ts) * 1000)::bigint, r.value "
            "FROM readings r JOIN sensors s ON s.id = r.sensor_id"
        ).fetchall()
    return {(c, int(ms)): v for c, ms, v in rows}


def _gateway(bg: Any, sims: Any, tmp: Path, broker: Any, code: str, tk: str, extra: str) -> Any:  # noqa: F811
    t = tank(tk)
    sims(t)
    return RunningGateway(bg, load(gateway_toml(tmp, [t], broker.port, poll=0.2, code=code,
                                                 extra_mqtt=extra)))  # fmt: skip


def test_v1_and_v2_gateways_side_by_side_store_the_same_readings(
    db_url: str,
    broker: Any,
    bg: Any,  # noqa: F811
    sim_factory: Any,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = Values(monkeypatch)
    seed_gateway(db_url, "gw-one", ["T1"])
    seed_gateway(db_url, "gw-two", ["T2"])
    with running_ingest(db_url, broker.url) as svc:
        one = _gateway(bg, sim_factory, tmp_path, broker, "gw-one", "T1", "")
        two = _gateway(bg, sim_factory, tmp_path, broker, "gw-two", "T2", 'data_format = "v2"')
        try:
            wait_for(lambda: len(stored_values(db_url)) >= 80, timeout=30, what="readings")
            time.sleep(1.0)
            cut = dict(values.rows)
            wait_for(lambda: cut.keys() <= stored_values(db_url).keys(), timeout=20,
                     what="every reading written to the outboxes stored")  # fmt: skip
            got = stored_values(db_url)
            for (code, ts), v in cut.items():
                g = got[(code, ts)]
                if v is None or g is None:
                    assert v is g
                elif code.startswith("T2-"):  # v2: within the declared resolution
                    assert abs(g - v) <= (0.005 if code.endswith("dp") else 0.0005) + 1e-9
                else:
                    assert g == v
            assert {c[:2] for c, _ in cut} == {"T1", "T2"}
            # End-to-end acknowledgement unchanged for v2: the watermark confirms and trims.
            wait_for(lambda: two.gw.acked_seq >= 3 and one.gw.acked_seq >= 3, timeout=15)
            assert two.gw.outbox is not None and two.gw.outbox.confirmed_total > 0
            assert two.gw.v1_fallbacks == 0
            assert count(db_url, "SELECT count(*) FROM dead_letters") == 0
            assert count(db_url, "SELECT count(*) FROM reading_conflicts") == 0
            assert count(db_url, "SELECT count(*) FROM gateway_births") == 1
            assert svc.metrics.acks_published._value.get() > 0
        finally:
            one.stop()
            two.stop()


def test_missing_birth_rebirth_and_resend_lose_nothing(
    db_url: str,
    broker: Any,
    bg: Any,  # noqa: F811
    sim_factory: Any,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gateway's birth never reached the centre (here: its retained copy cleared before
    ingest first subscribes): its v2 data is dead-lettered and not confirmed, ingest asks for a
    birth, the gateway publishes it and re-sends, and every reading is stored once."""
    values = Values(monkeypatch)
    seed_gateway(db_url, "gw-two", ["T2"])
    gw = _gateway(bg, sim_factory, tmp_path, broker, "gw-two", "T2",
                  'data_format = "v2"\nack_timeout_s = 1.0\nack_timeout_max_s = 2.0')  # fmt: skip
    try:
        wait_for(lambda: gw.gw.seq >= 3, timeout=20, what="v2 messages sent")
        clear = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="clear-birth")
        clear.connect("127.0.0.1", broker.port)
        clear.loop_start()
        clear.publish(topic("SITE-1", "gw-two", TopicKind.STATE), b"", qos=1, retain=True
                      ).wait_for_publish(5)  # fmt: skip
        clear.disconnect()
        clear.loop_stop()
        with running_ingest(db_url, broker.url):
            wait_for(lambda: gw.gw.rebirths >= 1, timeout=20, what="a rebirth request")
            time.sleep(1.0)
            cut = dict(values.rows)
            wait_for(lambda: cut.keys() <= stored_values(db_url).keys(), timeout=30,
                     what="every reading stored after the rebirth")  # fmt: skip
            with psycopg.connect(db_url) as conn:
                reasons = [r for (r,) in conn.execute("SELECT reason FROM dead_letters")]
            assert reasons and all("no birth of schema" in r for r in reasons)
            assert count(db_url, "SELECT count(*) FROM gateway_births") == 1
            wait_for(lambda: gw.gw.acked_seq >= gw.gw.seq - 5, timeout=15, what="confirmed")
    finally:
        gw.stop()


def test_declared_sensor_unregistered_is_quarantined_and_a_wrong_unit_dead_lettered(
    db_url: str, registry: Registry
) -> None:
    # T1-p declared in inH2O (a DP unit) although the registry says head pressure; T1-new is
    # declared but not registered: quarantined with its value in the declared unit.
    decls = [
        SensorDecl(code="T1-dp", unit="kPa_dp", res=0.001),
        SensorDecl(code="T1-p", unit="inH2O", res=0.01),
        SensorDecl(code="T1-new", unit="bar", res=0.001),
    ]
    ts = ms_of(NOW)
    items = [(0, ts, 1.0, 0), (1, ts, 2.0, 0), (2, ts, 3.5, 0)]
    rows = _run(db_url, BirthCache(), _birth(decls), _data(decls, 1, items))
    (reading,) = rows.readings
    assert reading[2] == pytest.approx(1000.0 / 249.08891)  # kPa_dp converted to inH2O
    (q,) = rows.quarantine
    assert (q[4], q[6], q[7]) == ("T1-new", 3.5, "bar") and "unknown sensor" in q[9]
    (reason,) = [d[-1] for d in rows.dead_letters]
    assert "(T1-p): unit 'inH2O' does not measure head_pressure" in reason
