"""The backup and restore drill of issue 22 (bench/restore_drill.py) in its short form, on a
private PostgreSQL cluster and a private Mosquitto: base backup and streamed WAL taken while
gateways publish, the cluster destroyed, restored into a fresh one; the gateways' outboxes
re-send what was never confirmed. Nothing committed is lost (RPO 0), no reading the gateways
made is missing, and the closed days are identical."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bench.restore_drill import run, run_dump


@pytest.mark.slow
@pytest.mark.postgresql_only  # the private cluster is plain PostgreSQL 15
def test_restore_drill_short_form(mosquitto_path: str) -> None:
    if not Path("/usr/lib/postgresql/15/bin/pg_receivewal").exists():
        pytest.fail("PostgreSQL 15 server binaries are needed for the private cluster")
    out = io.StringIO()
    res = run(gateways=8, before=14, after=6, out=out)
    print(out.getvalue())
    assert res.generated > 0
    assert res.stored == res.generated and res.unconfirmed == 0
    assert res.rpo_readings == 0
    assert res.closed_readings > 0 and res.closed_days_identical
    assert res.back_s > 0 and res.rto_s >= 6


@pytest.mark.slow
@pytest.mark.postgresql_only  # the private cluster is plain PostgreSQL 15
def test_pg_dump_drill_short_form(mosquitto_path: str) -> None:
    """The pg_dump-only setup: what was committed after the dump is lost (the RPO, measured),
    nothing else; the closed days are identical and the outboxes fill the outage."""
    if not Path("/usr/lib/postgresql/15/bin/pg_restore").exists():
        pytest.fail("PostgreSQL 15 server binaries are needed for the private cluster")
    out = io.StringIO()
    res = run_dump(gateways=8, before=14, after=6, out=out)
    print(out.getvalue())
    assert res.generated > 0 and res.unconfirmed == 0
    # Only readings committed after the dump began are missing, and every one missing is one.
    assert res.generated - res.stored == res.rpo_readings
    assert 0 < res.rpo_readings <= res.at_risk_readings
    assert res.rpo_s > 0 and res.dump_s > 0 and res.dump_mb > 0
    assert res.closed_readings > 0 and res.closed_days_identical
    assert res.restore_s > 0 and res.rto_s >= 6
