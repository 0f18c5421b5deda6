"""Vietnamese by default, English on request (query, cookie, user preference); catalogs work
from a fresh clone (compiled in memory from the .po files); numbers and dates per locale."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from api import i18n
from tests.api.conftest import World, login

LOCALES = Path(i18n.__file__).resolve().parent / "locales"


def test_login_page_is_vietnamese_by_default_and_english_on_request(client: TestClient) -> None:
    vi = client.get("/login")
    assert '<html lang="vi">' in vi.text and "Đăng nhập" in vi.text
    en = client.get("/login?lang=en")
    assert '<html lang="en">' in en.text and "Log in" in en.text and "Đăng nhập" not in en.text
    # The choice is remembered in a cookie.
    assert "oxy_lang=en" in en.headers["set-cookie"]
    assert "Log in" in client.get("/login").text


def test_user_preference_applies_after_login(client: TestClient, world: World) -> None:
    with psycopg.connect(world.db_url) as conn:
        conn.execute("UPDATE users SET locale = 'en' WHERE username = 'byt1'")
    login(client, "byt1")
    assert "Your functions" in client.get("/").text
    assert "Chức năng của bạn" in client.get("/?lang=vi").text


def test_every_vietnamese_message_is_translated_and_english_catalog_matches() -> None:
    with (LOCALES / "vi" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        vi = read_po(fh)
    with (LOCALES / "en" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        en = read_po(fh)
    vi_ids = {m.id for m in vi if m.id}
    assert vi_ids == {m.id for m in en if m.id}
    untranslated = [m.id for m in vi if m.id and not m.string]
    assert untranslated == []
    # Placeholders survive translation.
    for m in vi:
        if m.id and "%(" in str(m.id):
            assert sorted(_names(str(m.id))) == sorted(_names(str(m.string))), m.id


def _names(text: str) -> list[str]:
    import re

    return re.findall(r"%\((\w+)\)", text)


def test_template_messages_are_all_in_the_catalog() -> None:
    """Every `_()` in our templates has a Vietnamese translation (no English leaks into vi)."""
    import re

    from api.web.templating import template_dirs

    ids: set[object] = set()
    for po in (LOCALES / "vi" / "LC_MESSAGES").glob("*.po"):  # the catalogs are merged
        with po.open("rb") as fh:
            ids |= {m.id for m in read_po(fh) if m.id and m.string}
    missing = []
    for tpl in (p for d in template_dirs().values() for p in sorted(d.rglob("*.html"))):
        # A whole message id, not the stem of a key built in the template (`_("state." ~ s)`).
        for msg in re.findall(r'_\("([^"]+)"\s*[,)]', tpl.read_text(encoding="utf-8")):
            if msg not in ids:
                missing.append(f"{tpl.name}: {msg}")
    assert missing == []


def test_numbers_and_dates_per_locale() -> None:
    assert i18n.format_number(1234567.891, "vi", 1) == "1.234.567,9"
    assert i18n.format_number(1234567.891, "en", 1) == "1,234,567.9"
    assert i18n.format_number(None, "vi") == "—"
    # 17:30 UTC is 00:30 the next day in Hà Nội (UTC+7).
    assert (
        i18n.format_datetime(datetime(2021, 8, 15, 17, 30, tzinfo=UTC), "vi") == "16/08/2021 00:30"
    )
    assert i18n.format_date(date(2021, 8, 16), "en") == "16/08/2021"
    assert i18n.gettext("vi", "Log in") == "Đăng nhập"
    assert i18n.gettext("en", "Log in") == "Log in"
    assert i18n.gettext("xx", "Log in") == "Đăng nhập"  # unknown locale → default (vi)


def test_export_headings_keep_their_units_in_vietnamese() -> None:
    """A heading with a unit in English keeps it in Vietnamese: every figure says its unit."""
    import re

    from api.coordination import assignments_routes, deliveries_routes, requests_routes
    from api.reports import exports

    tables = [
        exports.facility_columns(),
        exports.province_columns(),
        exports.delivery_columns(),
        exports.SENT_COLUMNS,
        requests_routes.REQUEST_COLUMNS,
        assignments_routes.ASSIGNMENT_COLUMNS,
        deliveries_routes.DELIVERY_COLUMNS,
    ]
    for columns in tables:
        for (_, en), (_, vi) in zip(
            exports.localize(columns, "en", gas="Nm3"),
            exports.localize(columns, "vi", gas="Nm3"),
            strict=True,
        ):
            unit = re.search(r"\((kg|UTC|Nm3)", en)
            if unit:
                assert unit.group(1) in vi, (en, vi)
            assert vi != en or en in {"Mã", "CSYT"}, f"untranslated heading {en!r}"
