"""Ingest end to end against a real Mosquitto and a real PostgreSQL (fast cases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from oxy.contract import StateMessage, StatusMessage, TopicKind, encode, topic
from oxy.database import storage_kind
from tests.ingest.conftest import (
    GATEWAY,
    SITE,
    T0,
    Publisher,
    Registry,
    count,
    data_message,
    running_ingest,
    seed_registry,
    series,
    wait_for,
)


def test_happy_path_stores_readings_latest_rollups_and_acks(
    db_url: str, broker: Any, registry: Registry, publisher: Publisher
) -> None:
    with running_ingest(db_url, broker.url) as svc:
        # 3 messages x 40 readings: two sensors, 20 s each; psi is converted to bar.
        for k in range(3):
            start = T0 + timedelta(seconds=20 * k)
            readings = series("T1-dp", 20, start, base=100.0 + 20 * k) + series(
                "T1-p", 20, start, base=1.0
            )
            publisher.publish(registry.data_topic(), data_message(GATEWAY, readings))
        publisher.publish(
            registry.data_topic(),
            data_message(
                GATEWAY, [("T1-p", T0 + timedelta(minutes=5), 14.5037738)], lambda s: "psi"
            ),
        )
        wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") == 121, what="121 rows")
        wait_for(lambda: svc.metrics.unacked._value.get() == 0, what="all acked")
        assert svc.metrics.readings._value.get() == 121
    dp, p = registry.sensors["T1-dp"], registry.sensors["T1-p"]
    with psycopg.connect(db_url) as conn:
        v = conn.execute(
            "SELECT value FROM readings WHERE sensor_id = %s AND ts = %s",
            (p, T0 + timedelta(minutes=5)),
        ).fetchone()[0]
        assert v == pytest.approx(1.0, rel=1e-6)  # 14.5037738 psi = 1 bar
        assert conn.execute(
            "SELECT ts, value FROM sensor_latest WHERE sensor_id = %s", (dp,)
        ).fetchone() == (T0 + timedelta(seconds=59), 159.0)
        # 1-minute rollup of T1-dp: 60 readings 100..159 in the 08:00 bucket.
        assert conn.execute(
            "SELECT bucket, first_value, last_value, min_value, max_value, n "
            "FROM readings_1m WHERE sensor_id = %s",
            (dp,),
        ).fetchall() == [(T0, 100.0, 159.0, 100.0, 159.0, 60)]
        assert conn.execute("SELECT n FROM readings_1h WHERE sensor_id = %s", (p,)).fetchone() == (
            61,
        )
        assert conn.execute(
            "SELECT last_seen IS NOT NULL, last_data_seq IS NOT NULL FROM gateway_status "
            "WHERE gateway_id = %s",
            (registry.gateway_id,),
        ).fetchone() == (True, True)
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)
    # Everything was acked: a new session with the same client id gets nothing redelivered.


BAD = [
    ("bad JSON", b'{"v": 1, "gw": "gw-bv-ingest", ', "Invalid JSON"),
    (
        "NaN literal",
        b'{"v":1,"gw":"gw-bv-ingest","seq":1,"sent_at":"2026-03-01T08:00:00.000Z","readings":'
        b'[{"sensor":"T1-dp","ts":"2026-03-01T08:00:00.000Z","value":NaN,"unit":"inH2O"}]}',
        "readings",
    ),
    (
        "wrong schema",
        b'{"v":1,"gw":"gw-bv-ingest","seq":1,"sent_at":"2026-03-01T08:00:00.000Z","rows":[]}',
        "readings",
    ),
    (
        "unknown unit",
        b'{"v":1,"gw":"gw-bv-ingest","seq":1,"sent_at":"2026-03-01T08:00:00.000Z","readings":'
        b'[{"sensor":"T1-dp","ts":"2026-03-01T08:00:00.000Z","value":1.0,"unit":"furlong"}]}',
        "unknown unit",
    ),
    (
        "wrong version",
        b'{"v":2,"gw":"gw-bv-ingest","seq":1,"sent_at":"2026-03-01T08:00:00.000Z","readings":'
        b'[{"sensor":"T1-dp","ts":"2026-03-01T08:00:00.000Z","value":1.0,"unit":"inH2O"}]}',
        "v:",
    ),
    (
        "payload gateway differs from topic",
        data_message("gw-other", [("T1-dp", T0, 1.0)]),
        "does not match topic",
    ),
]


def test_bad_messages_are_dead_lettered_with_reason_and_consumer_keeps_running(
    db_url: str, broker: Any, registry: Registry, publisher: Publisher
) -> None:
    data = registry.data_topic()
    future = datetime.now(UTC) + timedelta(days=2)
    with running_ingest(db_url, broker.url):
        for _, payload, _ in BAD:
            publisher.publish(data, payload)
        # Far-future timestamp: the good reading of the same message is still stored.
        publisher.publish(data, data_message(GATEWAY, [("T1-dp", future, 5.0), ("T1-dp", T0, 7.0)]))
        # Unit of the wrong dimension for the sensor's quantity (bar on a DP sensor).
        publisher.publish(data, data_message(GATEWAY, [("T1-dp", T0 + timedelta(seconds=1), 1.0)],
                                             lambda s: "bar"))  # fmt: skip
        # The gateway publishing under another site's topic (its ACL should forbid it).
        publisher.publish(
            topic("BV-OTHER", GATEWAY, TopicKind.DATA), data_message(GATEWAY, [("T1-dp", T0, 1.0)])
        )
        # Unknown contract version in the topic.
        publisher.publish(f"oxy/v1/{SITE}/{GATEWAY}/data".replace("/v1/", "/v9/"), b"{}")
        # And after all that, a good message still goes through.
        publisher.publish(data, data_message(GATEWAY, [("T1-p", T0, 2.0)]))
        wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") == 2, what="good rows")
        wait_for(lambda: count(db_url, "SELECT count(*) FROM dead_letters") == len(BAD) + 3)
    with psycopg.connect(db_url) as conn:
        letters = conn.execute(
            "SELECT topic, payload, payload_size, reason FROM dead_letters ORDER BY id"
        ).fetchall()
    reasons = [r[3] for r in letters]
    for (name, payload, expected), (_, stored, size, reason) in zip(BAD, letters, strict=False):
        assert expected in reason, (name, reason)
        assert bytes(stored) == payload and size == len(payload), name
    assert "in the future" in reasons[len(BAD)] and "1 of 2 readings" in reasons[len(BAD)]
    assert "does not measure dp" in reasons[len(BAD) + 1]
    assert "belongs to site 'BV-INGEST', not 'BV-OTHER'" in reasons[len(BAD) + 2]
    # The v9 topic is outside the subscription (oxy/v1/...): the broker never delivers it.


def test_unknown_gateway_and_sensor_are_quarantined_then_accepted_once_registered(
    db_url: str, broker: Any, registry: Registry, publisher: Publisher
) -> None:
    stranger = topic("BV-NEW", "gw-bv-new", TopicKind.DATA)
    with running_ingest(db_url, broker.url):
        publisher.publish(stranger, data_message("gw-bv-new", [("T1-dp", T0, 3.0)]))
        publisher.publish(
            registry.data_topic(), data_message(GATEWAY, [("T9-dp", T0, 4.0), ("T1-dp", T0, 5.0)])
        )
        publisher.publish(
            topic("BV-NEW", "gw-bv-new", TopicKind.STATE),
            encode(StateMessage(gw="gw-bv-new", online=True, bd_seq=0)),
        )
        wait_for(lambda: count(db_url, "SELECT count(*) FROM quarantine") == 3, what="quarantine")
        wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") == 1)
        with psycopg.connect(db_url) as conn:
            rows = conn.execute(
                "SELECT gateway, sensor, value, reason FROM quarantine ORDER BY id"
            ).fetchall()
        assert ("gw-bv-new", "T1-dp", 3.0, "unknown gateway") in rows
        assert (
            "gw-bv-ingest",
            "T9-dp",
            4.0,
            "unknown sensor 'T9-dp' for gateway 'gw-bv-ingest'",
        ) in rows
        assert ("gw-bv-new", None, None, "unknown gateway") in rows
        # Registered later: the cache reloads on a miss and the gateway's data is accepted.
        seed_registry(db_url, site="BV-NEW", gateway="gw-bv-new")
        svc_wait = T0 + timedelta(seconds=1)
        publisher.publish(stranger, data_message("gw-bv-new", [("T1-dp", svc_wait, 6.0)]))
        wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") == 2, timeout=10)


def test_conflicts_are_recorded_and_replays_are_idempotent(
    db_url: str, broker: Any, registry: Registry, publisher: Publisher
) -> None:
    data = registry.data_topic()
    first = data_message(GATEWAY, series("T1-dp", 30))
    with running_ingest(db_url, broker.url) as svc:
        publisher.publish(data, first)
        wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") == 30)
        for _ in range(3):  # replays (a gateway resending after a lost PUBACK)
            publisher.publish(data, first)
        # Same (sensor, ts) with a different value, twice: one conflict row, stored value kept.
        changed = data_message(
            GATEWAY, [("T1-dp", T0, 999.0), ("T1-dp", T0 + timedelta(hours=1), 1.0)]
        )
        publisher.publish(data, changed)
        publisher.publish(data, changed)
        # Two different values for the same (sensor, ts) inside one message.
        publisher.publish(
            data,
            data_message(GATEWAY, [("T1-p", T0, 1.5), ("T1-p", T0, 1.6)]),
        )
        wait_for(lambda: count(db_url, "SELECT count(*) FROM reading_conflicts") == 2)
        wait_for(lambda: svc.metrics.unacked._value.get() == 0)
        # 90 replayed + the repeated T0+1h reading + the repeated (already recorded) conflict.
        assert svc.metrics.duplicates._value.get() == 92
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (32,)
        assert conn.execute(
            "SELECT value FROM readings WHERE sensor_id = %s AND ts = %s",
            (registry.sensors["T1-dp"], T0),
        ).fetchone() == (100.0,)
        conflicts = conn.execute(
            "SELECT sensor_id, stored_value, new_value, topic FROM reading_conflicts ORDER BY id"
        ).fetchall()
        assert (registry.sensors["T1-dp"], 100.0, 999.0, data) in conflicts
        assert {c[0] for c in conflicts} == {registry.sensors["T1-dp"], registry.sensors["T1-p"]}
        # The duplicates did not inflate the rollups.
        assert conn.execute(
            "SELECT n FROM readings_1m WHERE sensor_id = %s AND bucket = %s",
            (registry.sensors["T1-dp"], T0),
        ).fetchone() == (30,)


def test_late_data_updates_rollups_and_recompute_rebuilds_them(
    db_url: str, broker: Any, registry: Registry, publisher: Publisher
) -> None:
    from ingest.rollups import recompute

    dp = registry.sensors["T1-dp"]
    data = registry.data_topic()
    with running_ingest(db_url, broker.url):
        publisher.publish(
            data, data_message(GATEWAY, series("T1-dp", 10, T0 + timedelta(seconds=10), base=50))
        )
        wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") == 10)
        # Late data, before and after what is stored, in the same minute.
        publisher.publish(
            data,
            data_message(
                GATEWAY, [("T1-dp", T0, 10.0), ("T1-dp", T0 + timedelta(seconds=50), 90.0)]
            ),
        )
        wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") == 12)
    expected = (T0, 10.0, 90.0, 10.0, 90.0, 12)
    with psycopg.connect(db_url) as conn:
        q = (
            "SELECT bucket, first_value, last_value, min_value, max_value, n FROM readings_1m "
            "WHERE sensor_id = %s"
        )
        assert conn.execute(q, (dp,)).fetchall() == [expected]
        assert conn.execute(
            "SELECT first_value, last_value, n FROM readings_1d WHERE sensor_id = %s", (dp,)
        ).fetchone() == (10.0, 90.0, 12)
        if storage_kind(conn) == "postgresql":
            # Break the rollup on purpose, then recompute the range: it is rebuilt from raw.
            conn.execute("UPDATE rollup_1m SET n = 0, max_value = -1 WHERE sensor_id = %s", (dp,))
            assert recompute(conn, dp, T0, T0 + timedelta(seconds=30)) == 3
        else:
            # Continuous aggregates (views) cannot be broken by hand; recompute refreshes them
            # (outside a transaction) and materializes the same answer.
            conn.commit()
            conn.autocommit = True
            assert recompute(conn, dp, T0, T0 + timedelta(seconds=30)) == 0
        assert conn.execute(q, (dp,)).fetchall() == [expected]
        # A raw value rewritten in place (a repaired import), then recomputed: on both stores.
        conn.execute(
            "UPDATE readings SET value = 95 WHERE sensor_id = %s AND ts = %s",
            (dp, T0 + timedelta(seconds=50)),
        )
        conn.commit()
        recompute(conn, dp, T0, T0 + timedelta(seconds=59))
        assert conn.execute(q, (dp,)).fetchall() == [(T0, 10.0, 95.0, 10.0, 95.0, 12)]


def test_state_and_status_messages_are_stored_with_history(
    db_url: str, broker: Any, registry: Registry, publisher: Publisher
) -> None:
    def state(online: bool, bd_seq: int) -> tuple[str, bytes]:
        return (
            topic(SITE, GATEWAY, TopicKind.STATE),
            encode(StateMessage(gw=GATEWAY, online=online, bd_seq=bd_seq, version="1.0")),
        )

    status = encode(
        StatusMessage(
            gw=GATEWAY, ts=T0, outbox_depth=1234, evicted_total=7, published_total=99,
            alarms=["outbox_high"],
        )
    )  # fmt: skip
    with running_ingest(db_url, broker.url, batch_ms=20):
        publisher.publish(*state(True, 4))
        publisher.publish(*state(False, 3))  # a late Will of an older session: ignored
        publisher.publish(topic(SITE, GATEWAY, TopicKind.STATUS), status)
        publisher.publish(topic(SITE, GATEWAY, TopicKind.STATUS), status)  # redelivery
        wait_for(lambda: count(db_url, "SELECT count(*) FROM gateway_status_history") == 3)
        with psycopg.connect(db_url) as conn:
            assert conn.execute(
                "SELECT online, bd_seq, version, outbox_depth, evicted_total, alarms "
                "FROM gateway_status WHERE gateway_id = %s",
                (registry.gateway_id,),
            ).fetchone() == (True, 4, "1.0", 1234, 7, ["outbox_high"])
        publisher.publish(*state(False, 4))  # the Will of the current session
        wait_for(
            lambda: count(db_url, "SELECT count(*) FROM gateway_status WHERE online = false") == 1
        )
    with psycopg.connect(db_url) as conn:
        hist = conn.execute(
            "SELECT kind, online, bd_seq, payload FROM gateway_status_history ORDER BY id"
        ).fetchall()
    assert [h[:3] for h in hist] == [
        ("state", True, 4),
        ("state", False, 3),
        ("status", None, None),
        ("state", False, 4),
    ]
    assert hist[2][3]["outbox_depth"] == 1234


def test_unacked_messages_are_redelivered_to_the_same_session(
    db_url: str, broker: Any, registry: Registry, publisher: Publisher
) -> None:
    """Messages published while the worker is away wait in its persistent session."""
    client_id = "ingest-session-test"
    with running_ingest(db_url, broker.url, client_id=client_id):
        pass  # creates the session and its (shared) subscription
    for k in range(5):
        publisher.publish(
            registry.data_topic(),
            data_message(GATEWAY, series("T1-p", 10, T0 + timedelta(minutes=k))),
        )
    with running_ingest(db_url, broker.url, client_id=client_id):
        wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") == 50)


def test_mqtt_311_single_worker_without_shared_subscription(
    db_url: str, broker: Any, registry: Registry, publisher: Publisher
) -> None:
    with running_ingest(db_url, broker.url, protocol="3.1.1") as svc:
        assert not svc.source.topic_filter.startswith("$share")
        publisher.publish(registry.data_topic(), data_message(GATEWAY, series("T1-dp", 5)))
        wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") == 5)


def test_metrics_are_exposed(
    db_url: str, broker: Any, registry: Registry, publisher: Publisher
) -> None:
    from prometheus_client import generate_latest

    with running_ingest(db_url, broker.url) as svc:
        publisher.publish(registry.data_topic(), data_message(GATEWAY, series("T1-dp", 5)))
        publisher.publish(registry.data_topic(), b"nope")
        wait_for(lambda: svc.metrics.dead_letters._value.get() == 1)
        text = generate_latest(svc.metrics.registry).decode()
    for name in (
        "oxy_ingest_messages_total",
        "oxy_ingest_readings_total 5.0",
        "oxy_ingest_dead_letters_total 1.0",
        "oxy_ingest_commit_seconds_bucket",
        "oxy_ingest_batch_readings_bucket",
        "oxy_ingest_consumer_lag_seconds_bucket",
    ):
        assert name in text, name


def test_a_message_the_database_refuses_is_dead_lettered_not_dropped(
    db_url: str, broker: Any, registry: Registry, publisher: Publisher
) -> None:
    # Valid by the contract, but PostgreSQL's jsonb refuses a NUL character.
    poison = encode(StatusMessage(gw=GATEWAY, ts=T0, outbox_depth=1, alarms=["nul\u0000"]))
    with running_ingest(db_url, broker.url, batch_ms=300) as svc:
        publisher.publish_many(
            [
                (registry.data_topic(), data_message(GATEWAY, series("T1-dp", 3))),
                (topic(SITE, GATEWAY, TopicKind.STATUS), poison),
                (registry.data_topic(), data_message(GATEWAY, series("T1-p", 3))),
            ]
        )
        wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") == 6, what="good rows")
        wait_for(lambda: count(db_url, "SELECT count(*) FROM dead_letters") == 1)
        wait_for(lambda: svc.metrics.unacked._value.get() == 0, what="all acked")
    with psycopg.connect(db_url) as conn:
        (reason,) = conn.execute("SELECT reason FROM dead_letters").fetchone()
    assert reason.startswith("database rejected the message")


def test_auto_protocol_falls_back_to_311_on_the_demo_broker(
    db_url: str, registry: Registry
) -> None:
    """The demo's in-process amqtt broker speaks 3.1.1 only: ingest notices and still works."""
    import subprocess
    import sys

    import paho.mqtt.client as mqtt

    from tests.fix_mqtt import IN_CI, free_port, wait_port

    try:
        import amqtt  # noqa: F401
    except ImportError:
        if IN_CI:
            pytest.fail("amqtt (the demo's broker) is required under CI")
        pytest.skip("amqtt not installed")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "oxy.embedded_broker", str(port)])
    try:
        wait_port(port, timeout=20)
        with running_ingest(db_url, f"mqtt://127.0.0.1:{port}") as svc:
            assert svc.source.protocol == "3.1.1"
            assert not svc.source.topic_filter.startswith("$share")
            pub = Publisher(port, protocol=mqtt.MQTTv311)
            try:
                pub.publish(registry.data_topic(), data_message(GATEWAY, series("T1-dp", 4)))
                wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") == 4)
            finally:
                pub.close()
    finally:
        proc.terminate()
        proc.wait(10)


def test_ingest_under_the_product_acl_with_shared_subscription(
    db_url: str, broker_factory: Any, registry: Registry
) -> None:
    """Credentials + ACL (ingest reads oxy/v1/#; a gateway writes only under its own prefix):
    the shared subscription is allowed, and a gateway cannot publish for another site."""
    import contextlib
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from oxy.contract import gateway_prefix

    # Readable by the `mosquitto` user the broker drops to when started as root.
    tmp_path = Path(tempfile.mkdtemp(prefix="oxy-acl-"))
    pw = tmp_path / "passwd"
    pw.write_text("")
    for user, secret in (("ingest", "s1"), (GATEWAY, "s2")):
        subprocess.run(["mosquitto_passwd", "-b", str(pw), user, secret], check=True)
    acl = tmp_path / "acl"
    acl.write_text(
        f"user ingest\ntopic read oxy/v1/#\n\n"
        f"user {GATEWAY}\ntopic readwrite {gateway_prefix(SITE, GATEWAY)}#\n"
    )
    for f in (pw, acl):
        f.chmod(0o644)
    tmp_path.chmod(0o755)
    b = broker_factory(password_file=pw, acl_file=acl)
    gw = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-acl", protocol=mqtt.MQTTv5)
    gw.username_pw_set(GATEWAY, "s2")
    gw.connect("127.0.0.1", b.port)
    gw.loop_start()
    try:
        wait_for(gw.is_connected, timeout=10, what="gateway connected")
        with running_ingest(db_url, f"mqtt://ingest:s1@127.0.0.1:{b.port}") as svc:
            assert svc.source.topic_filter.startswith("$share/")
            # Denied by the ACL: Mosquitto drops it (and may drop the connection too).
            denied = gw.publish(
                topic("BV-OTHER", GATEWAY, TopicKind.DATA),
                data_message(GATEWAY, [("T1-dp", T0, 1.0)]),
                qos=1,
            )
            with contextlib.suppress(RuntimeError, ValueError):
                denied.wait_for_publish(5)
            # The drop may come after is_connected() is read: retry until a publish goes
            # through (readings are idempotent, so a repeat cannot double-count).
            payload = data_message(GATEWAY, series("T1-dp", 3))

            def published() -> bool:
                if not gw.is_connected():
                    return False
                info = gw.publish(registry.data_topic(), payload, qos=1)
                try:
                    info.wait_for_publish(5)
                    return info.is_published()
                except (RuntimeError, ValueError):
                    return False

            wait_for(published, timeout=30, what="gateway publish after the denial")
            wait_for(lambda: count(db_url, "SELECT count(*) FROM readings") == 3)
            wait_for(lambda: svc.metrics.unacked._value.get() == 0)
        assert count(db_url, "SELECT count(*) FROM dead_letters") == 0
    finally:
        gw.disconnect()
        gw.loop_stop()
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_quarantined_readings_are_replayed_once_the_sensor_is_registered(
    db_url: str, broker: Any, registry: Registry, publisher: Publisher
) -> None:
    from ingest.quarantine import replay

    with running_ingest(db_url, broker.url):
        psi = [("T7-p", T0, 14.5037738), ("T7-p", T0 + timedelta(seconds=5), 29.0075476)]
        publisher.publish(registry.data_topic(), data_message(GATEWAY, psi, lambda s: "psi"))
        publisher.publish(
            registry.data_topic(), data_message(GATEWAY, [("T8-p", T0, 3.0)], lambda s: "K")
        )
        wait_for(lambda: count(db_url, "SELECT count(*) FROM quarantine") == 3)
    with psycopg.connect(db_url) as conn:
        for code in ("T7-p", "T8-p"):
            conn.execute(
                "INSERT INTO sensors (gateway_id, code, quantity, unit) "
                "VALUES (%s, %s, 'head_pressure', 'bar')",
                (registry.gateway_id, code),
            )
        conn.commit()
        result = replay(conn)
        assert (result.released, result.inserted, result.kept) == (2, 2, 1)
        assert replay(conn).released == 0  # idempotent
        sid = conn.execute("SELECT id FROM sensors WHERE code = 'T7-p'").fetchone()[0]
        got = conn.execute(
            "SELECT first_value, last_value, n FROM readings_1m WHERE sensor_id = %s", (sid,)
        ).fetchone()
        assert got[0] == pytest.approx(1.0) and got[1] == pytest.approx(2.0) and got[2] == 2
        assert conn.execute(
            "SELECT ts FROM sensor_latest WHERE sensor_id = %s", (sid,)
        ).fetchone() == (T0 + timedelta(seconds=5),)
        (reason,) = conn.execute("SELECT reason FROM quarantine").fetchone()
        assert "does not measure head_pressure" in reason
