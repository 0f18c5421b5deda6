"""The registry import under the shared validation rules (api/reports/rules.py), and "active
from" defaulting to the facility's first day of data so it is not counted missing before it
existed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg

from api.accounting.config import AccountingConfig
from api.accounting.windows import local_today
from tests.test_registry_import import _import, _scalar, _xlsx

HEADER = ["code", "name", "province_code", "parent_code", "beds", "icu_beds", "active_from"]


def test_implausible_registry_figures_are_row_issues(db_url: str, tmp_path: Path) -> None:
    book = _xlsx(
        tmp_path / "r.xlsx",
        {
            "facilities": [HEADER, ["BV-HUGE", "Quá lớn", "01", None, 3_000_000_000, 0, None]],
            "suppliers": [
                ["code", "name", "supplier_kind", "province_code", "capacity_full_tpd"],
                ["NCC-HUGE", "Quá lớn", "producer", "79", 1e20],
            ],
        },
    )
    report = _import(db_url, [book])
    assert not report.committed
    where = {(i.source.split(":")[1], i.column) for i in report.issues}
    assert where == {("facilities", "beds"), ("suppliers", "capacity_full_tpd")}
    assert all("too large" in i.reason for i in report.issues)


def test_blank_active_from_is_the_first_day_of_data(db_url: str, tmp_path: Path) -> None:
    book = _xlsx(
        tmp_path / "r.xlsx",
        {"facilities": [HEADER, ["BV-NEW", "Mới", "01", None, 100, 10, None]]},
    )
    assert _import(db_url, [book]).committed
    today = local_today(datetime.now(UTC), AccountingConfig.defaults())
    sql = (
        "SELECT f.active_from FROM facilities f JOIN organisations o ON o.id = f.org_id "
        "WHERE o.code = 'BV-NEW'"
    )
    assert _scalar(db_url, sql) == today  # no data yet: from the day it is registered
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO facility_reports (facility_id, report_day) "
            "SELECT id, DATE '2026-01-10' FROM organisations WHERE code = 'BV-NEW'"
        )
    # Re-imported with the date still blank: from its first report.
    again = _xlsx(
        tmp_path / "r2.xlsx",
        {"facilities": [HEADER, ["BV-NEW", "Mới", "01", None, 120, 10, None]]},
    )
    assert _import(db_url, [again]).committed
    assert str(_scalar(db_url, sql)) == "2026-01-10"
