"""The soak of issue 22 in its short form (bench/soak.py): a national country seeded, 30 gateways
speaking the wire contract through a private Mosquitto into a real ingest worker and database
for a minute, some replaying their outbox after an outage, some with a skewed clock, while the
API serves BYT, SYT and facility pages and the alert and coordination jobs run. The gateways run
in two load-generator processes (the form that reaches 6,000 readings/s), whose reports are
merged. Every reading generated is stored, every message confirmed, no page fails, and every
figure is measured."""

from __future__ import annotations

import asyncio
import io
import itertools
import math
import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from bench.soak import (
    NOISE_LEN,
    Interval,
    Scheduler,
    SimGateway,
    SoakConfig,
    SoakResult,
    Stats,
    run,
    summary,
)
from oxy.contract import StateMessage, decode, decode_v2, expand_v2

SENSORS = [("T1-dp", "inH2O", 9.0), ("T1-hp", "bar", 5.0), ("T2-dp", "inH2O", 8.0)]


@pytest.mark.parametrize("wire", ["v2", "v1"])
def test_a_simulated_gateway_speaks_the_contract(wire: str) -> None:
    """What the generator publishes is what the product's contract decodes: the birth declares
    the sensors (v2), a message of 5 samples holds every sensor's 5 readings at the gateway's
    skewed clock, one second apart, with the values it drew."""
    gw = SimGateway("NAT-79-001", "gw-nat-0001", SENSORS, timedelta(seconds=-30), None, 7, wire)
    noise = [random.gauss(0, 0.05) for _ in range(NOISE_LEN)]
    now_ms = round(time.time() * 1000)
    items = gw.batch(now_ms, 5, 1000, noise)
    payload, n = gw.encode(items, floor=0)
    assert n == len(items) == 15
    _t, birth = decode(gw.state_topic, gw.birth)
    assert isinstance(birth, StateMessage) and birth.online
    if wire == "v2":
        assert birth.sensors is not None and [s.code for s in birth.sensors] == [
            "T1-dp",
            "T1-hp",
            "T2-dp",
        ]
        _t, data = decode_v2(gw.data_topic, payload)
        assert (data.seq, data.epoch, data.floor, data.schema) == (0, 7, 0, birth.schema_)
        record, problems = expand_v2(gw.gw, data, birth.sensors)
        assert problems == [] and record is not None
        readings = record["readings"]
    else:
        assert birth.sensors is None and gw.data_topic.endswith("/data")
        _t, msg = decode(gw.data_topic, payload)
        readings = [r.model_dump() for r in msg.readings]  # type: ignore[union-attr]
    got = sorted((r["ts"], r["sensor"], r["value"]) for r in readings)
    last = datetime.fromtimestamp(now_ms / 1000, UTC) - timedelta(seconds=30)
    want = sorted(
        (last - timedelta(seconds=4 - k), code, round(base + noise[k * 3 + i], 3))
        for k in range(5)
        for i, (code, _unit, base) in enumerate(SENSORS)
    )
    assert [(ts, c) for ts, c, _v in got] == [(ts, c) for ts, c, _v in want]
    assert [v for *_k, v in got] == pytest.approx([v for *_k, v in want], abs=1e-9)
    # The next message draws further along the noise table: not the same values again.
    assert gw.batch(now_ms + 5000, 5, 1000, noise)[0][2] != items[0][2]


def test_the_alert_round_left_at_the_end_is_reported_not_hidden() -> None:
    """A whole-country alert round still running when the run (and --alert-wait) ended counts
    as at least the time it ran: the target is not met, and the rounds are listed."""
    row = Interval(60, 90, 50, 9, 1, 0.2, 0.3, 1, math.nan, 0.1, 0.4, 0, 0)
    res = SoakResult([row], 100, 100, 0, 3, 0, 0, 0, 0, 10, 0, [], 60.0,
                     alert_rounds=[(0.0, 2.5)], alert_unfinished=(45.0, 315.0))  # fmt: skip
    out = io.StringIO()
    summary(res, out)
    text = out.getvalue()
    assert "per round: 2.5 s (at 0 s)" in text
    assert "a round started at 45 s was still running 315 s later" in text
    assert "315.00 s +  target < 5 s   NOT MET" in text
    res.alert_rounds = []
    out = io.StringIO()
    summary(res, out)
    assert "unfinished  target < 5 s   NOT MET" in out.getvalue()


def test_generator_reports_merge_without_loss_or_double_count() -> None:
    a, b, merged = Stats(), Stats(), Stats()
    since_a: dict[str, int] = {}
    a.generated, a.acked_msgs, a.latencies = 30, 2, [0.1, 0.2]
    merged.add(a.take(since_a))
    assert a.latencies == []  # taken once
    a.generated, a.replayed, a.latencies = 45, 1, [0.3]
    merged.add(a.take(since_a))
    merged.add(a.take(since_a))  # nothing new: adds nothing
    b.generated, b.republished, b.latencies = 15, 4, [0.4]
    merged.add(b.take({}))
    assert merged.generated == 60 and merged.acked_msgs == 2
    assert merged.replayed == 1 and merged.republished == 4
    assert sorted(merged.latencies) == [0.1, 0.2, 0.3, 0.4]


def test_generators_are_bounded() -> None:
    with pytest.raises(ValueError, match="--generators"):
        SoakConfig(gateways=4, generators=5)
    with pytest.raises(ValueError, match="--generators"):
        SoakConfig(gateways=4, generators=0)
    with pytest.raises(ValueError, match="--wire"):
        SoakConfig(gateways=4, wire="v3")


@pytest.mark.slow
def test_soak_short_form(db_url: str, mosquitto_path: str) -> None:
    cfg = SoakConfig(
        gateways=30,
        duration_s=60,
        interval_s=20,
        outage_share=0.2,
        outage_s=15,
        skew_share=0.3,
        alert_every_s=15,
        history_days=0.05,
        database_url=db_url,
        generators=2,
    )
    out = io.StringIO()
    res = run(cfg, out)
    print(out.getvalue())
    assert res.gateways == 30
    assert res.outage_gateways >= 1 and res.replayed >= 1
    assert res.skewed_gateways >= 1
    # Nothing lost, nothing left unconfirmed, nothing counted twice.
    assert res.generated > 0 and res.stored == res.generated
    assert res.unconfirmed == 0
    assert res.api_requests > 0 and res.api_errors == 0, res.error_samples
    assert len(res.intervals) == 3
    for i in res.intervals:
        assert i.readings_per_s > 0 and i.ingest_rss_mb > 0 and i.broker_rss_mb > 0
        # Where the time goes: ingest's batches and commits, and the CPU of each part.
        assert i.batch_readings > 0 and i.commit_ms > 0
        assert i.ingest_cpu_pct > 0 and i.generator_cpu_pct > 0
        assert i.broker_cpu_pct >= 0  # Mosquitto at 90 readings/s may not reach a clock tick
        assert not math.isnan(i.api_p95_s)
    assert any(not math.isnan(i.alert_eval_s) for i in res.intervals)
    assert any(not math.isnan(i.p99_s) for i in res.intervals)
    assert "target < 1 s" in out.getvalue()
    assert "2 generator process(es)" in out.getvalue()


def test_a_late_tick_never_dates_two_batches_alike() -> None:
    """A tick dealt late (the loop was busy) still dates its samples from its schedule, so a
    gateway's batches stay one period apart: dated by the clock at the tick, the late batch and
    the next on-time one overlapped, and a repeated (sensor, ts) is stored once (16 readings
    lost in a 2,000-gateway run)."""
    ends: list[int] = []

    class Recording(Scheduler):
        def tick(self, gw: SimGateway, loop: object, elapsed: float, end_ms: int) -> None:  # type: ignore[override]
            ends.append(end_ms)
            if len(ends) == 1:
                time.sleep(1.3)  # the first tick runs on into the next period

    cfg = SoakConfig(gateways=1, duration_s=2.9, interval_s=1, batch_s=1.0, hz=1.0)
    gw = SimGateway("NAT-79-001", "gw-nat-0001", SENSORS, timedelta(0), None, 1)
    asyncio.run(Recording([gw], cfg, 0, time.monotonic(), Stats(), random.Random(1)).run())
    assert len(ends) == 3
    assert [b - a for a, b in itertools.pairwise(ends)] == [1000, 1000]
