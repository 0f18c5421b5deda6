"""No single message can stop ingest (issue 14): hostile messages through the real pipeline
(private Mosquitto with the product configuration, real PostgreSQL) are dead-lettered with a
reason and acknowledged, and the rest of their batch is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

import ingest.resolve
from oxy.contract import QUALITY_CODE, Quality
from tests.ingest.conftest import (
    GATEWAY,
    T0,
    Publisher,
    Registry,
    count,
    data_message,
    running_ingest,
    series,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]


def raw(readings: list[dict[str, Any]], **fields: Any) -> bytes:
    """A data message as JSON text, with whatever the fields say (no model in the way)."""
    body: dict[str, Any] = {
        "v": 1,
        "gw": GATEWAY,
        "seq": 1,
        "sent_at": datetime.now(UTC).isoformat(),
        "readings": readings,
    }
    body.update(fields)
    return json.dumps(body).encode()


def reading(sensor: str, ts: Any, value: Any, unit: str) -> dict[str, Any]:
    return {"sensor": sensor, "ts": ts, "value": value, "unit": unit}


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


HOSTILE: list[tuple[str, bytes, str]] = [
    ("year 1 with +05:00",
     raw([reading("T1-dp", "0001-01-01T00:00:00+05:00", 1.0, "inH2O")]), "before 2020-01-01"),
    ("year 9999 with -05:00",
     raw([reading("T1-dp", "9999-12-31T23:00:00-05:00", 1.0, "inH2O")]), "in the future"),
    ("sent_at in year 9999 with -05:00",
     raw([reading("T1-dp", iso(T0), 1.0, "inH2O")], sent_at="9999-12-31T23:00:00-05:00"),
     "outside the years"),
    ("1970", raw([reading("T1-dp", "1970-01-01T00:00:00Z", 1.0, "inH2O")]), "before 2020-01-01"),
    ("1.7e308 MPa is infinite in bar",
     raw([reading("T1-p", iso(T0), 1.7e308, "MPa")]), "not finite after unit conversion"),
    ("1.7e308 kPa_dp is infinite in inH2O",
     raw([reading("T1-dp", iso(T0), 1.7e308, "kPa_dp")]), "not finite after unit conversion"),
    ("absurd magnitude", raw([reading("T1-p", iso(T0), 1e300, "bar")]), "beyond the contract"),
    ("value true", raw([reading("T1-dp", iso(T0), True, "inH2O")]), "readings.0.value"),
    ("integer epoch", raw([reading("T1-dp", 1772352000, 1.0, "inH2O")]), "readings.0.ts"),
]  # fmt: skip


def test_hostile_messages_are_dead_lettered_and_the_rest_of_the_batch_is_written(
    db_url: str, broker: Any, registry: Registry, publisher: Publisher
) -> None:
    data = registry.data_topic()
    good = [data_message(GATEWAY, series("T1-dp", 3)), data_message(GATEWAY, series("T1-p", 3))]
    # One message with a poisonous reading next to a good one: the good one is stored.
    mixed = raw([
        reading("T1-dp", "0001-01-01T00:00:00+05:00", 1.0, "inH2O"),
        reading("T1-dp", iso(T0 + timedelta(minutes=5)), 42.0, "inH2O"),
    ])  # fmt: skip
    with running_ingest(db_url, broker.url, batch_ms=500) as svc:
        # All in one batch (one publish_many inside the batch window), good ones around them.
        publisher.publish_many(
            [(data, good[0]), *((data, p) for _, p, _ in HOSTILE), (data, mixed), (data, good[1])]
        )
        wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") == 7, what="good rows")
        wait_for(lambda: count(db_url, "SELECT count(*) FROM dead_letters") == len(HOSTILE) + 1)
        wait_for(lambda: svc.metrics.unacked._value.get() == 0, what="all acked")
        # Still running: a later message goes through.
        publisher.publish(data, data_message(GATEWAY, [("T1-p", T0 + timedelta(hours=1), 3.0)]))
        wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") == 8, what="after")
        assert svc.failure is None
    with psycopg.connect(db_url) as conn:
        letters = conn.execute("SELECT payload, reason FROM dead_letters ORDER BY id").fetchall()
        stored = conn.execute(
            "SELECT count(*) FROM readings WHERE value = 'Infinity' OR ts < '2020-01-01'"
        ).fetchone()
    assert stored == (0,)
    by_payload = {bytes(p): r for p, r in letters}
    for name, payload, expected in HOSTILE:
        assert expected in by_payload[payload], (name, by_payload[payload])
    assert "1 of 2 readings rejected" in by_payload[mixed]


def test_readings_outside_the_valid_range_are_stored_out_of_range(
    db_url: str, broker: Any, registry: Registry, publisher: Publisher
) -> None:
    with psycopg.connect(db_url) as conn:
        # DP valid range in inH2O; head pressure valid range in psi (converted to bar).
        conn.execute(
            "UPDATE sensors SET valid_min = 0, valid_max = 500 WHERE id = %s",
            (registry.sensors["T1-dp"],),
        )
        conn.execute(
            "UPDATE sensors SET unit = 'psi', valid_min = 0, valid_max = 300 WHERE id = %s",
            (registry.sensors["T1-p"],),
        )
    t = [T0 + timedelta(seconds=i) for i in range(4)]
    with running_ingest(db_url, broker.url):
        publisher.publish(
            registry.data_topic(),
            raw([
                reading("T1-dp", iso(t[0]), -500, "inH2O"),
                reading("T1-dp", iso(t[1]), 1e9, "inH2O"),
                reading("T1-dp", iso(t[2]), 112.4, "inH2O"),
                reading("T1-dp", iso(t[3]), 0.5, "kPa_dp"),  # 2.0 inH2O: inside
                reading("T1-p", iso(t[0]), 20.0, "bar"),  # 290 psi: inside
                reading("T1-p", iso(t[1]), 21.0, "bar"),  # 304.6 psi: outside
                reading("T1-p", iso(t[2]), None, "bar") | {"q": "comm_error"},
            ]),
        )  # fmt: skip
        wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") == 7, what="rows")
    with psycopg.connect(db_url) as conn:
        got = dict(
            ((sid, ts), q)
            for sid, ts, q in conn.execute("SELECT sensor_id, ts, quality FROM readings")
        )
        latest = conn.execute(
            "SELECT quality FROM sensor_latest WHERE sensor_id = %s", (registry.sensors["T1-dp"],)
        ).fetchone()
    dp, p = registry.sensors["T1-dp"], registry.sensors["T1-p"]
    oor, good = QUALITY_CODE[Quality.OUT_OF_RANGE], QUALITY_CODE[Quality.GOOD]
    assert [got[(dp, x)] for x in t] == [oor, oor, good, good]
    assert [got[(p, x)] for x in t[:3]] == [good, oor, QUALITY_CODE[Quality.COMM_ERROR]]
    assert latest == (good,)


def test_an_unexpected_error_in_one_message_dead_letters_only_that_message(
    db_url: str,
    broker: Any,
    registry: Registry,
    publisher: Publisher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fault nobody foresaw, in the middle of resolving one message (after some of its
    # readings were already turned into rows): that message only is dead-lettered.
    real = ingest.resolve.to_canonical

    def flaky(quantity: Any, value: float, unit: str) -> float:
        if value == 666.0:
            raise KeyError("a bug the contract did not foresee")
        return real(quantity, value, unit)

    monkeypatch.setattr(ingest.resolve, "to_canonical", flaky)
    data = registry.data_topic()
    bad = data_message(GATEWAY, [("T1-p", T0, 1.0), ("T1-dp", T0, 666.0)])
    with running_ingest(db_url, broker.url, batch_ms=500) as svc:
        publisher.publish_many(
            [
                (data, data_message(GATEWAY, series("T1-dp", 3, T0 + timedelta(minutes=1)))),
                (data, bad),
                (data, data_message(GATEWAY, series("T1-p", 3, T0 + timedelta(minutes=1)))),
            ]
        )
        wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") == 6, what="good rows")
        wait_for(lambda: count(db_url, "SELECT count(*) FROM dead_letters") == 1)
        wait_for(lambda: svc.metrics.unacked._value.get() == 0, what="all acked")
        assert svc.failure is None
    with psycopg.connect(db_url) as conn:
        (reason, payload) = conn.execute("SELECT reason, payload FROM dead_letters").fetchone()
        # The half-resolved message left nothing behind (its T1-p reading at T0 was undone).
        assert conn.execute("SELECT count(*) FROM readings WHERE ts = %s", (T0,)).fetchone() == (0,)
    assert "KeyError" in reason and bytes(payload) == bad


def test_retained_data_is_dead_lettered_once_and_cleared(
    db_url: str, broker: Any, registry: Registry, publisher: Publisher
) -> None:
    data = registry.data_topic()
    payload = data_message(GATEWAY, [("T1-dp", T0, 1.0)])
    with running_ingest(db_url, broker.url):
        publisher.client.publish(data, payload, qos=1, retain=True).wait_for_publish(10)
        wait_for(lambda: count(db_url, "SELECT count(*) FROM dead_letters") == 1)
        # Ingest's own clearing publish (empty, retained) comes back to it: ignored, not a
        # second dead letter.
        time.sleep(1.0)
        assert count(db_url, "SELECT count(*) FROM dead_letters") == 1
    # A fresh plain subscriber (MQTT 3.1.1 ingest: no shared subscription) would get a stored
    # copy; ingest cleared it (the test broker has no ACL), and the dead letter stays single.
    with running_ingest(db_url, broker.url, protocol="3.1.1", client_id="ingest-fresh"):
        time.sleep(1.0)
    with psycopg.connect(db_url) as conn:
        letters = conn.execute("SELECT reason FROM dead_letters").fetchall()
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (0,)
    assert len(letters) == 1 and "retained data message" in letters[0][0]


def _ingest_process(db_url: str, mqtt_url: str, patch: str, log: Path) -> subprocess.Popen[bytes]:
    """The ingest CLI in its own process, with `patch` (Python) applied first: the fault."""
    code = (
        patch
        + "\nfrom ingest.cli import ingest_app\n"
        + f"ingest_app(['run', '--mqtt-url', {mqtt_url!r}, '--database-url', {db_url!r},"
        + " '--client-id', 'ingest-poison-test'])\n"
    )
    env = {**os.environ, "OXY_INGEST_BATCH_MS": "100", "OXY_LOG_LEVEL": "INFO"}
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip


WRITER_BOMB = """
import ingest.writer
def _boom(self, rows):
    raise RuntimeError("injected writer fault")
ingest.writer.Writer.write = _boom
"""

# A message that kills the process outright while it is being resolved (as a segfault or the
# kernel's OOM killer would): no Python handler runs, nothing is acked.
HARD_CRASH = """
import os
import ingest.resolve
_real = ingest.resolve._data
def _data(d, *args, **kwargs):
    if b"CRASH-ME" in d.inbound.payload:
        os._exit(9)
    return _real(d, *args, **kwargs)
ingest.resolve._data = _data
"""


@pytest.mark.slow
def test_a_dead_writer_thread_exits_the_process_at_once(
    db_url: str, broker: Any, registry: Registry, publisher: Publisher, tmp_path: Path
) -> None:
    log = tmp_path / "ingest.log"
    proc = _ingest_process(db_url, broker.url, WRITER_BOMB, log)
    try:
        wait_for(lambda: b"ingest running" in log.read_bytes(), timeout=20, what="ingest up")
        time.sleep(0.3)
        publisher.publish(registry.data_topic(), data_message(GATEWAY, [("T1-dp", T0, 1.0)]))
        started = time.monotonic()
        code = proc.wait(timeout=10)
        assert time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 70
    text = log.read_text()
    assert "ingest writer thread died (RuntimeError: injected writer fault)" in text
    assert count(db_url, "SELECT count(*) FROM readings") == 0  # nothing acked, nothing lost


@pytest.mark.slow
def test_a_message_that_keeps_killing_workers_becomes_a_poison_pill(
    db_url: str, broker: Any, registry: Registry, publisher: Publisher, tmp_path: Path
) -> None:
    log = tmp_path / "ingest.log"
    data = registry.data_topic()
    pill = raw([reading("CRASH-ME", iso(T0), 1.0, "inH2O")])
    proc = _ingest_process(db_url, broker.url, HARD_CRASH, log)
    crashes = 0
    try:
        wait_for(lambda: b"ingest running" in log.read_bytes(), timeout=20, what="ingest up")
        time.sleep(0.3)
        publisher.publish_many(
            [(data, data_message(GATEWAY, series("T1-dp", 3))), (data, pill),
             (data, data_message(GATEWAY, series("T1-p", 3)))]
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while count(db_url, "SELECT count(*) FROM dead_letters") == 0:
            assert time.monotonic() < deadline, f"no poison verdict after {crashes} crashes"
            if proc.poll() is not None:  # crashed on the pill: the supervisor restarts it
                crashes += 1
                proc = _ingest_process(db_url, broker.url, HARD_CRASH, log)
            time.sleep(0.1)
        wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") == 6, what="good rows")
        time.sleep(0.5)
        assert proc.poll() is None, "ingest must keep running after the verdict"
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(15)
    assert crashes == 3  # OXY_INGEST_POISON_AFTER
    with psycopg.connect(db_url) as conn:
        reason, payload = conn.execute("SELECT reason, payload FROM dead_letters").fetchone()
        assert conn.execute("SELECT count(*) FROM ingest_attempts").fetchone() == (0,)
    assert reason.startswith("poison pill: delivered 4 times") and bytes(payload) == pill


def test_the_database_refuses_a_non_finite_value_even_past_the_resolver(
    db_url: str,
    broker: Any,
    registry: Registry,
    publisher: Publisher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Suppose the resolver's value check were gone: the CHECK of 0070 still refuses the row,
    # the COPY fast path fails as a whole, and the message-by-message fallback dead-letters
    # the one message while its batch neighbours are stored.
    monkeypatch.setattr(ingest.resolve, "VALUE_LIMIT", float("inf"))
    data = registry.data_topic()
    bad = raw([reading("T1-p", iso(T0), 1.7e308, "MPa")])
    with running_ingest(db_url, broker.url, batch_ms=500):
        publisher.publish_many(
            [
                (data, data_message(GATEWAY, series("T1-dp", 3))),
                (data, bad),
                (data, data_message(GATEWAY, series("T1-p", 3, T0 + timedelta(minutes=1)))),
            ]
        )
        wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") == 6, what="good rows")
        wait_for(lambda: count(db_url, "SELECT count(*) FROM dead_letters") == 1)
    with psycopg.connect(db_url) as conn:
        (reason,) = conn.execute("SELECT reason FROM dead_letters").fetchone()
        assert conn.execute(
            "SELECT count(*) FROM sensor_latest WHERE value = 'Infinity'"
        ).fetchone() == (0,)
    assert reason.startswith("database rejected the message") and "finite" in reason


def test_quarantine_replay_applies_the_same_domains(
    db_url: str, broker: Any, registry: Registry, publisher: Publisher
) -> None:
    """Readings of a sensor registered later are replayed under the same rules as live ones:
    an infinite value stays in quarantine with its reason (it would break the replay on the
    database's CHECK), a value outside the valid range is stored out_of_range."""
    from ingest.quarantine import replay

    with running_ingest(db_url, broker.url):
        publisher.publish(
            registry.data_topic(),
            raw([
                reading("T7-p", iso(T0), 1.7e308, "MPa"),
                reading("T7-p", iso(T0 + timedelta(seconds=1)), 30.0, "bar"),
                reading("T7-p", iso(T0 + timedelta(seconds=2)), 5.0, "bar"),
            ]),
        )  # fmt: skip
        wait_for(lambda: count(db_url, "SELECT count(*) FROM quarantine") == 3)
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO sensors (gateway_id, code, quantity, unit, valid_min, valid_max) "
            "VALUES (%s, 'T7-p', 'head_pressure', 'bar', 0, 25)",
            (registry.gateway_id,),
        )
        conn.commit()
        result = replay(conn)
        assert (result.released, result.inserted, result.kept) == (2, 2, 1)
        got = conn.execute("SELECT value, quality FROM readings ORDER BY ts").fetchall()
        (reason,) = conn.execute("SELECT reason FROM quarantine").fetchone()
    assert got == [(30.0, QUALITY_CODE[Quality.OUT_OF_RANGE]), (5.0, QUALITY_CODE[Quality.GOOD])]
    assert "not finite after unit conversion" in reason
