"""The soak of issue 22 in its short form (bench/soak.py): a national country seeded, 30 gateways
speaking the wire contract through a private Mosquitto into a real ingest worker and database
for a minute, some replaying their outbox after an outage, some with a skewed clock, while the
API serves BYT, SYT and facility pages and the alert and coordination jobs run. The gateways run
in two load-generator processes (the form that reaches 6,000 readings/s), whose reports are
merged. Every reading generated is stored, every message confirmed, no page fails, and every
figure is measured."""

from __future__ import annotations

import io
import math

import pytest

from bench.soak import SoakConfig, Stats, run


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
