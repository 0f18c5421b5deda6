"""Without a browser: every message of the role pages is translated, numbers typed per locale are
read right, and the app refuses to start without its npm-installed assets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from api import i18n
from api.web import assets, byt_pages, report_pages, routes, supplier_pages, syt_pages
from api.web.forms import FormErrors, number_field, parse_number

API = Path(i18n.__file__).resolve().parents[1]


def _catalog(locale: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for po in sorted((API / "i18n" / "locales" / locale / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as fh:
            out.update({m.id: m.string for m in read_po(fh) if m.id and m.string})
    return out


def _python_messages() -> set[str]:
    ids: set[str] = set()
    for item in routes.PAGE_NAV:
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
    return {i for i in ids if not i.startswith(("report.", "syt.", "correction."))}


def _template_messages() -> set[str]:
    ids: set[str] = set()
    for tpl in (API / "templates" / "pages").glob("*.html"):
        ids |= set(re.findall(r'_\("([^"]+)"\)', tpl.read_text(encoding="utf-8")))
    return ids


def test_every_page_message_has_a_vietnamese_translation() -> None:
    vi = _catalog("vi")
    ids = _template_messages() | _python_messages()
    assert len(ids) > 200
    assert sorted(i for i in ids if i not in vi) == []


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

    views = {
        date(2021, 8, 1): {
            "supply": {
                "demand_t_per_day": 1.234,
                "production_t": 0.0,
                "supplier_reports": 0,
                "capacity_normal_t_per_day": 300.0,
                "capacity_full_t_per_day": 400.0,
            }
        }
    }
    chart = byt_pages.supply_chart(views, "vi")
    assert chart["labels"] == ["01/08/2021"]
    assert [s["values"] for s in chart["series"]] == [[1.23], [None], [300.0], [400.0]]
