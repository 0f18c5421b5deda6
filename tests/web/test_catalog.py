"""Without a browser: every message of the role pages is translated, numbers typed per locale are
read right, and the app refuses to start without its npm-installed assets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from api import i18n
from api.reports import byt_pages, supplier_pages, syt_pages
from api.reports import facility_pages as report_pages
from api.reports.messages import MESSAGES
from api.web import assets, nav
from api.web.forms import FormErrors, number_field, parse_number
from api.web.templating import template_dirs

API = Path(i18n.__file__).resolve().parents[1]


def _catalog(locale: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for po in sorted((API / "i18n" / "locales" / locale / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as fh:
            out.update({m.id: m.string for m in read_po(fh) if m.id and m.string})
    return out


def _python_messages() -> set[str]:
    ids: set[str] = set()
    for item in nav.MENU:
        ids |= {item.label, item.description}
    for _name, label, _kind, _units in report_pages.QUANTITIES:
        ids.add(label)
    for table in (
        report_pages.THERAPY_LABELS,
        report_pages.SOURCE_LABELS,
        report_pages.UNIT_LABELS,
        syt_pages.UNIT_LABELS,
        supplier_pages.UNIT_LABELS,
    ):
        ids |= set(table.values())
    for path in (API / "web").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        ids |= set(re.findall(r'(?:errors\.add|add)\(\s*[^,]+,\s*"([^"]+)"', text))
        ids |= set(re.findall(r'gettext\(\s*locale,\s*"([^"]+)"', text))
        ids |= set(re.findall(r'g\(locale, "([^"]+)"\)', text))
    # Stable keys of api.reports.messages are shown through their English message id.
    return {MESSAGES.get(i, i) for i in ids}


def _templates() -> list[Path]:
    """Every template file, shared and per package."""
    return [p for d in template_dirs().values() for p in sorted(d.rglob("*.html"))]


def _template_messages() -> set[str]:
    ids: set[str] = set()
    for tpl in _templates():
        ids |= set(re.findall(r'_\("([^"]+)"\)', tpl.read_text(encoding="utf-8")))
    return ids


def test_every_page_message_has_a_vietnamese_translation() -> None:
    vi = _catalog("vi")
    ids = _template_messages() | _python_messages()
    assert len(ids) > 200
    assert sorted(i for i in ids if i not in vi) == []


def test_a_stable_message_key_is_shown_as_its_message() -> None:
    errors = FormErrors("vi")
    errors.add("x", "report.error.unit")
    assert errors.errors["x"] == "Hãy chọn đơn vị của số liệu (kg, m3 lỏng hoặc Nm3)."
    errors = FormErrors("en")
    errors.add("y", "report.error.unit")
    assert not errors.errors["y"].startswith("report.")


def test_state_and_action_keys_have_both_languages() -> None:
    vi, en = _catalog("vi"), _catalog("en")
    keys = [f"state.{s}" for s in ("draft", "sent", "approved", "sent_back")]
    keys += [f"action.{a}" for a in ("save", "send", "approve", "send_back")]
    keys += [f"kind.{k}" for k in ("morning", "report", "edit")]
    for key in keys:
        assert key in vi and key in en and vi[key] != en[key]


def test_map_labels_name_the_archipelagos_as_vietnamese() -> None:
    assert i18n.gettext("vi", "Hoàng Sa archipelago (Viet Nam)") == "Quần đảo Hoàng Sa (Việt Nam)"
    assert i18n.gettext("vi", "Trường Sa archipelago (Viet Nam)") == "Quần đảo Trường Sa (Việt Nam)"
    js = (API / "static" / "src" / "map.js").read_text(encoding="utf-8")
    assert "t.hoang_sa" in js and "t.truong_sa" in js
    # Online tiles exist only as an optional layer, never added to the map by default.
    assert "tiles.addTo" not in js and "addTo(map)" in js


@pytest.mark.parametrize(
    ("raw", "locale", "value"),
    [
        ("1.234,5", "vi", 1234.5),
        ("1.234", "vi", 1234.0),
        ("12,5", "vi", 12.5),
        ("12.5", "vi", 12.5),  # phones often offer only '.'
        ("250.000", "vi", 250000.0),
        ("1,234.5", "en", 1234.5),
        ("", "vi", None),
    ],
)
def test_numbers_typed_per_locale(raw: str, locale: str, value: float | None) -> None:
    assert parse_number(raw, locale) == value


def test_field_errors_are_in_the_users_language() -> None:
    errors = FormErrors("vi")
    assert number_field({"n": "abc"}, "n", errors) is None
    assert number_field({"m": "-1"}, "m", errors) is None
    assert number_field({"k": "1,5"}, "k", errors, integer=True) is None
    assert errors.errors == {
        "n": "Hãy nhập một số.",
        "m": "Giá trị không được âm.",
        "k": "Hãy nhập số nguyên.",
    }
    en = FormErrors("en")
    number_field({}, "x", en, required=True)
    assert en.errors == {"x": "This field is required."}


def test_app_refuses_to_start_without_npm_assets(tmp_path: Path) -> None:
    with pytest.raises(assets.AssetsMissing, match=r"npm ci --prefix api/static"):
        assets.check_assets(tmp_path)
    assets.check_assets()  # the installed tree is complete


def test_only_whitelisted_files_are_served() -> None:
    from fastapi import HTTPException

    base = assets.NODE_MODULES / "leaflet" / "dist"
    assert assets._resolve(base, "leaflet.js").name == "leaflet.js"
    for bad in ("../package.json", "../../world-atlas/package.json", "nope.js"):
        with pytest.raises(HTTPException):
            assets._resolve(base, bad)


def test_dashboard_chart_reads_the_national_views() -> None:
    from datetime import date

    from api.reports.national import Supply

    days = {
        date(2021, 8, 1): Supply(
            demand_t_per_day=1.234,
            production_t=0.0,
            supplier_reports=0,
            suppliers=0,
            capacity_normal_t_per_day=300.0,
            capacity_full_t_per_day=400.0,
            capacity_sources={},
            lox_stock_kg=0.0,
            by_supplier=[],
        )
    }
    chart = byt_pages.supply_chart(days, "vi")
    assert chart["labels"] == ["01/08/2021"]
    assert [s["values"] for s in chart["series"]] == [[1.23], [None], [300.0], [400.0]]


def test_internal_names_have_catalogue_labels_in_both_languages() -> None:
    from api.web import labels

    vi = _catalog("vi")
    tables = (
        labels.FIELD_LABELS,
        labels.ACTION_LABELS,
        labels.ENTITY_LABELS,
        labels.VALUE_LABELS,
    )
    missing = sorted({m for t in tables for m in t.values() if m not in vi})
    assert missing == []


@pytest.mark.parametrize(
    ("key", "vi", "en"),
    [
        ("patients_current", "Số người bệnh hiện tại", "Current patients"),
        ("o2_niv", None, "Non-invasive ventilation"),
        ("overrides", "Lý do sửa số liệu", "Reasons for changed figures"),
        ("entered_units", "Đơn vị đã nhập", "Units as typed"),
        ("field.9.kg", None, "Field 9 (kg)"),
        ("entered.15.nm3", None, "Field 15 (Nm3)"),
        ("9", None, "Field 9"),
        ("facility.BV-CHORAY.discharged", None, "BV-CHORAY: Discharged"),
        ("filters", None, "Filters"),
    ],
)
def test_stored_field_names_are_shown_as_labels(key: str, vi: str | None, en: str) -> None:
    from api.web.labels import field_label

    assert field_label(key, "en") == en
    shown = field_label(key, "vi")
    if vi is not None:
        assert shown == vi
    assert "_" not in shown and not re.search(r"\b[a-z]+\.[a-z]", shown)


def test_values_in_histories_are_readable() -> None:
    from api.web.labels import readable

    assert readable(True, "vi") == "Có" and readable(False, "vi") == "Không"
    assert readable(True, "en") == "Yes" and readable(False, "en") == "No"
    # "Bộ lọc: status: all" was the raw filter object.
    shown = readable({"status": "all", "facility_ids": []}, "vi")
    assert "status" not in shown and "all" not in shown
    assert readable({"name": "Bệnh viện Chợ Rẫy"}, "vi") == "Tên: Bệnh viện Chợ Rẫy"
    assert "\\u" not in readable({"name": "Hồ"}, "en")
    assert readable({"value": 3.5, "unit": "m3_liquid"}, "vi") == "3,5 m3 LOX"
    assert readable("needs_more", "en") == "Needs more"
    assert readable("sent_back", "vi") != "sent_back"


def test_audit_actions_and_records_are_translated() -> None:
    from api.web.labels import action_label, entity_label

    assert action_label("login", "vi") == "Đăng nhập"
    assert action_label("create", "en") == "Created"
    assert entity_label("syt_report", "vi") == "Báo cáo của Sở Y tế"
    # Unknown to the catalogue: still no snake_case.
    assert "_" not in action_label("brand_new", "en")


def test_imported_macros_take_the_pages_language() -> None:
    """A macro imported without the page's context formatted numbers and texts in Vietnamese on
    English pages ("3,7" days beside "16,424" kg; SYT fields 5–14 left in Vietnamese)."""
    from api.web.templating import environment

    env = environment()
    tpl = env.from_string(
        '{% from "web/_macros.html" import days with context %}{{ days(3.7) }} {{ 16424|num }}'
    )
    assert tpl.render(locale="en").split() == ["3.7", "16,424"]
    assert tpl.render(locale="vi").split() == ["3,7", "16.424"]
    for path in _templates():
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.search(r"\{%-? *(from|import) ", line):
                assert "with context" in line, f"{path.name}: {line.strip()}"
