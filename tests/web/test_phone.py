"""A phone (390 px wide): what the 360 px overflow check of the crawler cannot see. The map's
archipelago labels are whole inside the map, and the main menu starts collapsed behind an
accessible toggle (and is open on a wide screen)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import LiveServer, login

PHONE = 390

LABELS_JS = """() => {
  const map = document.querySelector('#map').getBoundingClientRect();
  return [...document.querySelectorAll('#map .island-label')].map(el => {
    const inner = el.firstElementChild || el;
    const r = inner.getBoundingClientRect();
    return {text: el.textContent.trim(), left: r.left, right: r.right, top: r.top,
            bottom: r.bottom, clipped: inner.scrollWidth > inner.clientWidth + 1,
            mapLeft: map.left, mapRight: map.right, mapTop: map.top, mapBottom: map.bottom};
  });
}"""


def test_archipelago_labels_are_whole_on_a_phone(browser: Any, live_server: LiveServer) -> None:
    page = login(browser, live_server, "byt", width=PHONE)
    try:
        page.goto(live_server.url + "/byt")
        page.wait_for_selector("#map .island-label")
        page.wait_for_timeout(300)
        labels = page.evaluate(LABELS_JS)
        assert len(labels) == 2, labels
        texts = " ".join(lb["text"] for lb in labels)
        assert "Hoàng Sa" in texts and "Trường Sa" in texts and "…" not in texts
        for lb in labels:
            assert not lb["clipped"], lb
            assert lb["left"] >= lb["mapLeft"] - 1 and lb["right"] <= lb["mapRight"] + 1, lb
            assert lb["top"] >= lb["mapTop"] - 1 and lb["bottom"] <= lb["mapBottom"] + 1, lb
    finally:
        page.context.close()


@pytest.mark.parametrize("username", ["byt", "choray"])
def test_menu_is_collapsed_on_a_phone_and_opens_with_its_toggle(
    browser: Any, live_server: LiveServer, username: str
) -> None:
    page = login(browser, live_server, username, width=PHONE)
    try:
        summary = page.locator("details.mainnav > summary")
        links = page.locator("details.mainnav nav a")
        assert summary.is_visible()
        assert not page.locator("details.mainnav").evaluate("d => d.open")
        assert not links.first.is_visible()
        # The menu takes one line, not half the screen.
        box = page.locator("details.mainnav").bounding_box()
        assert box is not None and box["height"] < 60, box
        # Keyboard: focus the toggle, Enter opens it; links are then reachable.
        summary.focus()
        page.keyboard.press("Enter")
        assert links.first.is_visible()
        assert page.locator("details.mainnav").evaluate("d => d.open")
        page.keyboard.press("Enter")
        assert not links.first.is_visible()
        # A wide screen shows the menu open, without the toggle.
        page.set_viewport_size({"width": 1280, "height": 900})
        page.reload()
        assert links.first.is_visible() and not summary.is_visible()
        assert page.js_errors == []
    finally:
        page.context.close()
