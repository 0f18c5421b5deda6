"""`oxy registry import`: validation of every row, all-or-nothing, dry run, idempotent upsert."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import psycopg
import pytest

from api.registry.importer import (
    ImportReport,
    IssueCode,
    RegistryImportError,
    import_registry,
    read_csv,
    read_sources,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples" / "registry-import"
EXAMPLE_FILES = [
    EXAMPLES / f"{k}.csv"
    for k in ("suppliers", "facilities", "tanks", "calibration_points", "contacts")
]


def _import(url: str, paths: list[Path], **kw: Any) -> ImportReport:
    with psycopg.connect(url) as conn:
        return import_registry(conn, read_sources(paths), **kw)


def _scalar(url: str, sql: str, *args: object) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, args).fetchone()
        assert row is not None
        return row[0]


def _registry_counts(url: str) -> tuple[int, ...]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM organisations), (SELECT count(*) FROM facilities),"
            " (SELECT count(*) FROM suppliers), (SELECT count(*) FROM tanks),"
            " (SELECT count(*) FROM tank_calibrations), (SELECT count(*) FROM calibration_points),"
            " (SELECT count(*) FROM contacts)"
        ).fetchone()
        assert row is not None
        return tuple(int(x) for x in row)


def _xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    book = openpyxl.Workbook()
    assert book.active is not None
    book.remove(book.active)
    for title, rows in sheets.items():
        ws = book.create_sheet(title)
        for r in rows:
            ws.append(r)
    book.save(path)
    return path


def test_example_files_import_then_reimport_changes_nothing(db_url: str) -> None:
    before = _registry_counts(db_url)
    report = _import(db_url, EXAMPLE_FILES)
    assert report.ok and report.committed, [str(i) for i in report.issues]
    assert {k: c.inserted for k, c in report.counts.items()} == {
        "suppliers": 2,
        "facilities": 3,
        "tanks": 3,
        "calibration_tables": 2,
        "contacts": 4,
    }
    # Bình Dương (pre-2025 code 74) merged into Thành phố Hồ Chí Minh (79): mapped and said so.
    assert [(n.source, n.row, n.column) for n in report.notes] == [
        ("facilities.csv", 4, "province_code")
    ]
    assert "74" in report.notes[0].message and "79" in report.notes[0].message
    assert _scalar(
        db_url,
        "SELECT o.province_code || ' ' || p.code FROM organisations o "
        "JOIN organisations p ON p.id = o.parent_id WHERE o.code = %s",
        "VD-BVDC-BD-01",
    ) == ("79 SYT-79")
    assert _scalar(
        db_url,
        "SELECT count(*) FROM calibration_points cp"
        " JOIN tank_calibrations c ON c.id = cp.calibration_id"
        " JOIN tanks t ON t.id = c.tank_id JOIN organisations o ON o.id = t.facility_id"
        " WHERE o.code = 'VD-BV-HN-01' AND t.code = 'T1' AND c.version = 1",
    ) == (6)
    # A naive valid_from is Vietnam local time (UTC+7).
    assert _scalar(
        db_url,
        "SELECT to_char(c.valid_from AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"
        " FROM tank_calibrations c"
        " JOIN tanks t ON t.id = c.tank_id JOIN organisations o ON o.id = t.facility_id"
        " WHERE o.code = 'VD-BV-HCM-01'",
    ) == ("2021-07-10 01:00")
    assert _scalar(
        db_url,
        "SELECT string_agg(full_name, ',') FROM contacts c JOIN organisations o ON o.id = c.org_id"
        " WHERE c.is_primary",
    ) == ("Nguyễn Văn An,Lê Minh Châu")
    after = _registry_counts(db_url)
    assert after != before
    # One audit entry for the import, in the same transaction.
    assert _scalar(
        db_url,
        "SELECT after->'counts'->'tanks'->>'inserted' FROM audit_log"
        " WHERE action = 'registry.import'",
    ) == ("3")

    again = _import(db_url, EXAMPLE_FILES)
    assert again.ok and again.committed
    assert all(c.inserted == 0 and c.updated == 0 for c in again.counts.values()), again.counts
    assert sum(c.unchanged for c in again.counts.values()) == 14
    assert _registry_counts(db_url) == after


def test_dry_run_reports_what_would_happen_and_writes_nothing(db_url: str) -> None:
    before = _registry_counts(db_url)
    report = _import(db_url, EXAMPLE_FILES, dry_run=True)
    assert report.ok and not report.committed
    assert report.counts["facilities"].inserted == 3
    assert _registry_counts(db_url) == before


def test_upsert_by_code_updates_changed_fields(db_url: str, tmp_path: Path) -> None:
    assert _import(db_url, EXAMPLE_FILES).committed
    text = (EXAMPLES / "facilities.csv").read_text(encoding="utf-8")
    changed = tmp_path / "facilities.csv"
    changed.write_text(text.replace(",800,60,", ",850,70,"), encoding="utf-8")
    report = _import(db_url, [changed])
    assert report.ok and report.committed
    c = report.counts["facilities"]
    assert (c.inserted, c.updated, c.unchanged) == (0, 1, 2)
    assert _scalar(
        db_url,
        "SELECT f.beds::text || '/' || f.icu_beds FROM facilities f "
        "JOIN organisations o ON o.id = f.org_id WHERE o.code = 'VD-BV-HN-01'",
    ) == ("850/70")


BAD_BOOK: dict[str, list[list[object]]] = {
    "facilities": [
        [
            "code",
            "name",
            "province_code",
            "parent_code",
            "latitude",
            "longitude",
            "beds",
            "icu_beds",
        ],
        ["BV-OK", "Bệnh viện tốt", "01", None, 21.0, 105.8, 300, 20],  # row 2: good
        ["BV-LEGACY", "Bệnh viện Hà Giang", "02", None, 22.8, 104.98, 200, 10],  # 3: 02 → 08
        ["BV-BADPROV", "Tỉnh sai", "99", None, None, None, 10, 0],  # 4
        ["BV-NOPARENT", "Không có cấp trên", "01", "SYT-XX", None, None, 10, 0],  # 5
        ["BV-OK", "Trùng mã", "01", None, None, None, 10, 0],  # 6
        ["BV-FAR", "Ngoài lãnh thổ", "01", None, 35.0, 139.7, 10, 0],  # 7 (Tokyo)
        ["BV-NEG", "Giường âm", "01", None, None, None, -5, 0],  # 8
        ["BV-ICU", "ICU nhiều hơn giường", "01", None, None, None, 10, 20],  # 9
        ["BV-SUPPARENT", "Cấp trên là NCC", "01", "NCC-A", None, None, 10, 0],  # 10
    ],
    "suppliers": [
        ["code", "name", "supplier_kind", "province_code", "capacity_normal_tpd"],
        ["NCC-A", "Nhà cung cấp A", "producer", "79", 100],  # row 2: good
        ["NCC-B", "Nhà cung cấp B", "trader", "79", "1,5"],  # 3: kind and decimal comma
    ],
    "tanks": [
        ["facility_code", "code", "capacity_kg", "min_usable_kg"],
        ["BV-OK", "T1", 10000, 500],  # row 2: good
        ["BV-NOWHERE", "T1", 10000, 500],  # 3: unknown facility
        ["BV-OK", "T2", 5000, 5000],  # 4: min usable not below capacity
        ["BV-OK", "T1", 8000, 0],  # 5: duplicate tank
    ],
    "calibration_points": [
        ["facility_code", "tank_code", "version", "valid_from", "dp_inh2o", "contents_kg"],
        ["BV-OK", "T1", 1, "2025-01-01", 0, 0],  # rows 2–5: not monotonic at row 4
        ["BV-OK", "T1", 1, "2025-01-01", 100, 5000],
        ["BV-OK", "T1", 1, "2025-01-01", 150, 4000],
        ["BV-OK", "T1", 1, "2025-01-01", 200, 9800],
        ["BV-OK", "T9", 1, "2025-01-01", 0, 0],  # 6: unknown tank
    ],
    "contacts": [
        ["org_code", "full_name", "phone", "email", "is_primary"],
        ["BV-OK", "Nguyễn Văn A", "0912345678", "a@example.vn", "có"],  # row 2: good
        ["BV-OK", "Trần B", "12", "not-an-email", "maybe"],  # 3: phone, email, is_primary
        ["BV-GHOST", "Lê C", None, None, None],  # 4: unknown organisation
    ],
    "_notes": [["this sheet is skipped"]],
}

EXPECTED_ISSUES = {
    ("facilities", 4, "province_code"),
    ("facilities", 5, "parent_code"),
    ("facilities", 6, "code"),
    ("facilities", 7, "latitude"),
    ("facilities", 7, "longitude"),
    ("facilities", 8, "beds"),
    ("facilities", 9, "icu_beds"),
    ("facilities", 10, "parent_code"),
    ("suppliers", 3, "supplier_kind"),
    ("suppliers", 3, "capacity_normal_tpd"),
    ("tanks", 3, "facility_code"),
    ("tanks", 4, "min_usable_kg"),
    ("tanks", 5, "code"),
    ("calibration_points", 4, "contents_kg"),
    ("calibration_points", 6, "tank_code"),
    ("contacts", 3, "phone"),
    ("contacts", 3, "email"),
    ("contacts", 3, "is_primary"),
    ("contacts", 4, "org_code"),
}


def _where(report: ImportReport) -> set[tuple[str, int, str]]:
    return {(i.source.split(":")[1], i.row, i.column) for i in report.issues}


def test_bad_workbook_reports_every_bad_row_and_stores_nothing(db_url: str, tmp_path: Path) -> None:
    book = _xlsx(tmp_path / "registry.xlsx", BAD_BOOK)
    before = _registry_counts(db_url)
    report = _import(db_url, [book])
    assert not report.ok and not report.committed
    assert _where(report) == EXPECTED_ISSUES, [str(i) for i in report.issues]
    assert report.bad_rows == 15
    reasons = {(i.source.split(":")[1], i.row, i.column): i.reason for i in report.issues}
    assert "unknown province code '99'" in reasons[("facilities", 4, "province_code")]
    assert "unknown reporting parent 'SYT-XX'" in reasons[("facilities", 5, "parent_code")]
    assert "duplicate code 'BV-OK'" in reasons[("facilities", 6, "code")]
    assert "outside Vietnam" in reasons[("facilities", 7, "latitude")]
    assert "negative" in reasons[("facilities", 8, "beds")]
    assert "must not decrease" in reasons[("calibration_points", 4, "contents_kg")]
    assert "decimal separator" in reasons[("suppliers", 3, "capacity_normal_tpd")]
    assert "is a supplier" in reasons[("facilities", 10, "parent_code")]
    # Each issue carries its code too (what a form matches its own message by).
    codes = {(i.source.split(":")[1], i.row, i.column): i.code for i in report.issues}
    assert codes[("facilities", 4, "province_code")] == IssueCode.UNKNOWN_PROVINCE
    assert codes[("facilities", 5, "parent_code")] == IssueCode.UNKNOWN_PARENT
    assert codes[("facilities", 6, "code")] == IssueCode.DUPLICATE_CODE
    assert codes[("facilities", 7, "latitude")] == IssueCode.OUTSIDE_VIETNAM
    assert codes[("facilities", 8, "beds")] == IssueCode.NEGATIVE
    assert codes[("calibration_points", 4, "contents_kg")] == IssueCode.CONTENTS_DECREASE
    assert codes[("suppliers", 3, "capacity_normal_tpd")] == IssueCode.DECIMAL_COMMA
    assert codes[("facilities", 10, "parent_code")] == IssueCode.BAD_PARENT
    assert report.as_dict()["issues"][0]["code"] == "unknown_province"
    # The legacy code is accepted and its mapping reported (Hà Giang 02 → Tuyên Quang 08).
    assert [(n.row, n.column) for n in report.notes] == [(3, "province_code")]
    assert "02 (Hà Giang) mapped to 08" in report.notes[0].message
    assert _registry_counts(db_url) == before
    # Issues come sorted by sheet then row, ready to print.
    assert str(report.issues[0]).startswith("registry.xlsx:facilities row 4, province_code:")


def test_skip_bad_rows_stores_only_the_good_ones(db_url: str, tmp_path: Path) -> None:
    book = _xlsx(tmp_path / "registry.xlsx", BAD_BOOK)
    report = _import(db_url, [book], skip_bad_rows=True)
    assert report.committed and _where(report) == EXPECTED_ISSUES
    with psycopg.connect(db_url) as conn:
        codes = {
            r[0]
            for r in conn.execute(
                "SELECT code FROM organisations WHERE kind IN ('facility', 'supplier')"
            )
        }
        assert codes == {"BV-OK", "BV-LEGACY", "NCC-A"}
        assert conn.execute(
            "SELECT province_code FROM organisations WHERE code = 'BV-LEGACY'"
        ).fetchone() == ("08",)
        tanks = conn.execute(
            "SELECT t.code FROM tanks t JOIN organisations o ON o.id = t.facility_id"
        ).fetchall()
        assert tanks == [("T1",)]
        # The non-monotonic table is refused as a whole: never half a strapping table.
        assert conn.execute("SELECT count(*) FROM tank_calibrations").fetchone() == (0,)
        assert conn.execute(
            "SELECT full_name, is_primary FROM contacts c JOIN organisations o ON o.id = c.org_id"
            " WHERE o.code = 'BV-OK'"
        ).fetchall() == [("Nguyễn Văn A", True)]


def test_a_used_calibration_version_cannot_be_changed(db_url: str, tmp_path: Path) -> None:
    assert _import(db_url, EXAMPLE_FILES).committed
    text = (EXAMPLES / "calibration_points.csv").read_text(encoding="utf-8")
    changed = tmp_path / "calibration_points.csv"
    changed.write_text(text.replace(",53.816,4400.97,", ",53.816,4500,"), encoding="utf-8")
    report = _import(db_url, [changed])
    assert not report.committed
    assert [(i.row, i.column) for i in report.issues] == [(2, "version")]
    assert "add it as a new version" in report.issues[0].reason
    # As version 2 it is accepted.
    changed.write_text(
        changed.read_text(encoding="utf-8").replace(
            "VD-BV-HN-01,T1,1,2021-08-20", "VD-BV-HN-01,T1,2,2026-01-01"
        ),
        encoding="utf-8",
    )
    report = _import(db_url, [changed])
    assert report.committed, [str(i) for i in report.issues]
    tables = report.counts["calibration_tables"]
    assert (tables.inserted, tables.unchanged) == (1, 1)  # HN T1 v2 new, HCM T1 v1 as before


def test_csv_kind_from_name_header_or_option(tmp_path: Path) -> None:
    odd = tmp_path / "export-2026.csv"
    # Semicolon-separated (Excel in a Vietnamese locale), bilingual headers.
    odd.write_text("Mã cơ sở (org) ;x\n", encoding="utf-8")  # a header no kind matches
    with pytest.raises(RegistryImportError, match="--kind"):
        read_csv(odd)
    odd.write_text(
        "Org code (mã đơn vị);Full name (họ tên);Role\nBYT;Nguyễn Văn A;0912345678\n"
        '\nBYT;Trần B;"Phó phòng\nvật tư"\nBYT;Lê C;x\n',
        encoding="utf-8",
    )
    sheet = read_csv(odd)
    assert sheet.kind == "contacts"
    assert sheet.columns == ("org_code", "full_name", "role")
    # Row numbers are the lines a spreadsheet shows: blank lines and multi-line cells count.
    assert [(r.number, r.cells["full_name"]) for r in sheet.rows] == [
        (2, "Nguyễn Văn A"),
        (4, "Trần B"),
        (6, "Lê C"),
    ]
    assert sheet.rows[1].cells["role"] == "Phó phòng\nvật tư"
    assert read_csv(odd, kind="contacts").kind == "contacts"
    with pytest.raises(RegistryImportError, match="unknown kind"):
        read_csv(odd, kind="gateways")
    txt = odd.with_suffix(".txt")
    txt.write_text("code,name\n", encoding="utf-8")
    with pytest.raises(RegistryImportError, match=r"\.csv or \.xlsx"):
        read_sources([txt])


def test_unknown_and_missing_columns_are_reported(db_url: str, tmp_path: Path) -> None:
    f = tmp_path / "tanks.csv"
    f.write_text("facility_code,code,capacty_kg\nX,T1,100\n", encoding="utf-8")
    report = _import(db_url, [f])
    assert {(i.row, i.column) for i in report.issues} == {(1, "capacty_kg"), (1, "capacity_kg")}
    assert not report.committed


def _oxy(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OXY_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-c", "from oxy.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_cli_dry_run_then_import(db_url: str, tmp_path: Path) -> None:
    files = [str(p) for p in EXAMPLE_FILES]
    dry = _oxy("registry", "import", "--dry-run", *files, url=db_url)
    assert dry.returncode == 0, dry.stderr
    assert "facilities: 3 new, 0 updated, 0 unchanged" in dry.stdout
    assert "dry run: nothing written" in dry.stdout
    assert _scalar(db_url, "SELECT count(*) FROM organisations WHERE code LIKE 'VD-%%'") == 0

    done = _oxy("registry", "import", "--json", *files, url=db_url)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["committed"] and out["counts"]["tanks"]["inserted"] == 3

    bad = _oxy("registry", "import", str(_xlsx(tmp_path / "bad.xlsx", BAD_BOOK)), url=db_url)
    assert bad.returncode != 0
    assert "bad.xlsx:facilities row 4, province_code: unknown province code '99'" in bad.stdout
    assert "nothing written" in bad.stdout
    assert "nothing written: 15 bad rows (19 problems)" in bad.stdout
    assert "15 bad rows in the import" in bad.stderr


def test_a_row_the_database_refuses_is_reported_with_its_dependants(
    db_url: str, tmp_path: Path
) -> None:
    # numeric(10, 3) holds < 10^7 t/day; the shared rules (api/reports/rules.py) refuse far less
    # than that already, and the row's dependants are reported with it.
    book = _xlsx(
        tmp_path / "huge.xlsx",
        {
            "suppliers": [
                ["code", "name", "supplier_kind", "capacity_normal_tpd"],
                ["NCC-HUGE", "Quá lớn", "producer", 1e12],
                ["NCC-OK", "Vừa", "distributor", 5],
            ],
            "contacts": [
                ["org_code", "full_name"],
                ["NCC-HUGE", "Người liên hệ"],
                ["NCC-OK", "Người khác"],
            ],
        },
    )
    report = _import(db_url, [book], skip_bad_rows=True)
    got = {(i.source.split(":")[1], i.row): i.reason for i in report.issues}
    assert set(got) == {("suppliers", 2), ("contacts", 2)}, got
    assert "too large" in got[("suppliers", 2)]
    assert "NCC-HUGE" in got[("contacts", 2)]
    assert report.committed
    assert _scalar(db_url, "SELECT count(*) FROM contacts") == 1


def test_template_round_trips_through_the_import(db_url: str, tmp_path: Path) -> None:
    from api.registry.importer import KINDS, write_template

    path = tmp_path / "template.xlsx"
    write_template(path)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["_huong_dan", *KINDS]
    book["facilities"].append(["BV-T", "Bệnh viện mẫu", "46", None, "hospital"])
    book["tanks"].append(["BV-T", "T1", "Bồn 1", 6000])
    book.save(path)
    report = _import(db_url, [path])
    assert report.ok and report.committed, [str(i) for i in report.issues]
    assert report.rows == {k: int(k in {"facilities", "tanks"}) for k in KINDS}
    assert _scalar(
        db_url,
        "SELECT p.code FROM organisations o JOIN organisations p ON p.id = o.parent_id"
        " WHERE o.code = 'BV-T'",
    ) == ("SYT-46")


def test_calibration_valid_from_blank_means_first_reading_and_late_start_warns(
    db_url: str, tmp_path: Path
) -> None:
    """A blank valid_from once meant "now": 28,800 earlier readings then showed no contents,
    silently. Blank now means the tank's first reading; an explicit later start is warned
    about (on --dry-run too)."""
    assert _import(db_url, EXAMPLE_FILES[:3]).committed  # registry without calibrations
    with psycopg.connect(db_url) as conn:
        tank = conn.execute(
            "SELECT t.id, t.facility_id FROM tanks t JOIN organisations o ON o.id = t.facility_id"
            " WHERE o.code = 'VD-BV-HN-01' AND t.code = 'T1'"
        ).fetchone()
        assert tank is not None
        gw = conn.execute(
            "INSERT INTO gateways (facility_id, code) VALUES (%s, 'gw-cal') RETURNING id",
            (tank[1],),
        ).fetchone()
        assert gw is not None
        sensor = conn.execute(
            "INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit)"
            " VALUES (%s, 'T1-dp', %s, 'dp', 'inH2O') RETURNING id",
            (gw[0], tank[0]),
        ).fetchone()
        assert sensor is not None
        conn.execute(
            "INSERT INTO readings (sensor_id, ts, value, quality)"
            " SELECT %s, TIMESTAMPTZ '2026-01-01 00:00+00' + i * INTERVAL '1 minute', 50, 0"
            " FROM generate_series(0, 99) i",
            (sensor[0],),
        )
    text = (EXAMPLES / "calibration_points.csv").read_text(encoding="utf-8")
    late = tmp_path / "calibration_points.csv"
    late.write_text(
        text.replace("VD-BV-HN-01,T1,1,2021-08-20", "VD-BV-HN-01,T1,1,2026-01-01 08:00"),
        encoding="utf-8",
    )
    report = _import(db_url, [late], dry_run=True)
    warned = [n for n in report.notes if n.column == "valid_from"]
    assert warned and "warning: 60 readings" in warned[0].message, [str(n) for n in report.notes]
    blank = tmp_path / "blank" / "calibration_points.csv"
    blank.parent.mkdir()
    blank.write_text(
        text.replace("VD-BV-HN-01,T1,1,2021-08-20", "VD-BV-HN-01,T1,1,"), encoding="utf-8"
    )
    report = _import(db_url, [blank])
    assert report.committed, [str(i) for i in report.issues]
    assert any("first reading" in n.message for n in report.notes)
    got = _scalar(
        db_url, "SELECT min(valid_from) FROM tank_calibrations WHERE tank_id = %s", tank[0]
    )
    assert got == datetime(2026, 1, 1, tzinfo=UTC)
