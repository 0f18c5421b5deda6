"""The backup and restore drill of issue 22 (bench/restore_drill.py) in its short form, on a
private PostgreSQL cluster and a private Mosquitto: base backup and streamed WAL taken while
gateways publish, the cluster destroyed, restored into a fresh one; the gateways' outboxes
re-send what was never confirmed. Nothing committed is lost (RPO 0), no reading the gateways
made is missing, and the closed days are identical."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bench.restore_drill import run


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
