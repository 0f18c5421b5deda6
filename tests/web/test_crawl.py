"""A crawler: every role, every page of its menu (and a bounded sample of the detail pages they
link to), in Vietnamese and English. It fails on what a ministry user must never see: an
untranslated catalogue key, a snake_case identifier or a raw enum value, a `\\u` escape, text of
the other language's catalogue, horizontal overflow at 360 px outside a table's own scroller,
and serious or critical accessibility violations (axe-core, from the npm lock)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from babel.messages.pofile import read_po
from openpyxl import load_workbook

from api import i18n

from .conftest import ACCOUNTS, PASSWORD, LiveServer

STATIC = Path(i18n.__file__).resolve().parents[1] / "static"
AXE = STATIC / "node_modules" / "axe-core" / "axe.min.js"
LOCALES = Path(i18n.__file__).resolve().parent / "locales"

# Detail pages followed from each menu page, and pages per role and language, at most.
DETAILS_PER_PAGE = 2
PAGES_PER_ROLE = 28

# Links never followed: leaving the session, files, the JSON API, other languages.
SKIP = re.compile(
    r"^/(logout|static/|api/|docs|openapi)|\.(csv|xlsx|pdf|json)$|/export|[?&](lang|format)="
)

# A catalogue key (`state.sent`, `report.error.unit`...) or snake_case identifier as visible text.
KEY = re.compile(
    r"\b(?:state|action|kind|report|syt|correction|cstate|urgency|quality|alert|supplier|"
    r"registry|rate|field|facility|entered)\.[a-z_0-9]+(?:\.[a-z_0-9]+)*\b"
)
SNAKE = re.compile(r"(?<![\w@/.-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w@/.-])")
ESCAPE = re.compile(r"\\u[0-9a-fA-F]{4}")
# Stored enum values that must never reach a Vietnamese page as they are stored.
RAW_ENUMS = re.compile(
    r"(?<![\w/.-])(?:enough|unknown|draft|approved|dispatched|in_transit|delivered|confirmed|"
    r"critical|producer|distributor|login|create|update|True|False|None|null|true|false)(?![\w/.-])"
)

# Findings that could not be fixed before the deadline of issue 18, each with why; an entry is
# (role, path pattern, regular expression of the finding). Keep this list short and shrinking.
ALLOWED: tuple[tuple[str, str, str], ...] = ()


def _catalog_strings(locale: str) -> set[str]:
    out: set[str] = set()
    for po in (LOCALES / locale / "LC_MESSAGES").glob("*.po"):
        with po.open("rb") as fh:
            out |= {m.string for m in read_po(fh) if m.id and m.string and m.string != m.id}
    return out


# Vietnamese interface text: searched inside the page's text when long enough to be unambiguous,
# else matched against whole text nodes ("Đủ", "chưa gửi"; a facility's name is never one).
_VI = {s for s in _catalog_strings("vi") if "%(" not in s and "{" not in s}
VI_TEXT = sorted((s for s in _VI if len(s) >= 14), key=len, reverse=True)
VI_NODES = {s.strip() for s in _VI if len(s.strip()) >= 2}

TEXT_NODES_JS = """() => {
  const out = new Set();
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const p = n.parentElement;
    // The user's display name is data (the demo administrator is called Quản trị viên).
    if (!p || p.closest('script, style, [hidden], .who-name')) continue;
    const t = n.textContent.trim().replace(/[:·]$/, '').trim();
    if (t) out.add(t);
  }
  return [...out];
}"""


def pattern(path: str) -> str:
    """A page's path with its ids and dates generalised: one visit per kind of page."""
    path = re.sub(r"\d{4}-\d{2}-\d{2}", "{day}", path)
    return re.sub(r"/\d+(?=/|$)", "/{id}", path)


def _allowed(role: str, path: str, finding: str) -> bool:
    return any(
        r == role and re.fullmatch(p, pattern(path)) and re.search(f, finding)
        for r, p, f in ALLOWED
    )


def _context(browser: Any, server: LiveServer, username: str, lang: str, width: int) -> Any:
    context = browser.new_context(
        viewport={"width": width, "height": 800}, locale="vi-VN", bypass_csp=True
    )
    host = urlsplit(server.url).hostname
    context.add_cookies([{"name": i18n.LANG_COOKIE, "value": lang, "domain": host, "path": "/"}])
    page = context.new_page()
    page.goto(server.url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    if urlsplit(page.url).path != "/":
        page.wait_for_timeout(300)
        page.goto(server.url + "/")
    assert urlsplit(page.url).path == "/", f"login as {username} failed: {page.url}"
    return page


def _links(page: Any, server: LiveServer, selector: str) -> list[str]:
    hrefs: list[str] = page.eval_on_selector_all(
        selector, "els => els.map(e => e.getAttribute('href') || '')"
    )
    out: list[str] = []
    for h in hrefs:
        if not h or h.startswith(("#", "mailto:", "tel:", "javascript:")):
            continue
        parts = urlsplit(h)
        if parts.netloc and server.url.split("//")[1] != parts.netloc:
            continue
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if not path.startswith("/") or SKIP.search(path):
            continue
        out.append(path)
    return out


def _crawl(page: Any, server: LiveServer) -> Iterator[str]:
    """The menu's pages, then a bounded sample of the detail pages they link to."""
    page.goto(server.url + "/")
    menu = ["/", *_links(page, server, "nav.mainnav a[href], ul.tiles a[href]")]
    seen: set[str] = set()
    todo = list(dict.fromkeys(menu))
    visited = 0
    while todo and visited < PAGES_PER_ROLE:
        path = todo.pop(0)
        key = pattern(path.split("?")[0])
        if key in seen:
            continue
        seen.add(key)
        response = page.goto(server.url + path)
        assert response is not None and response.status < 400, f"{path}: {response}"
        page.wait_for_load_state("networkidle")
        visited += 1
        yield path
        if path in menu:
            extra = [p for p in _links(page, server, "main a[href]") if p not in menu]
            fresh = [p for p in dict.fromkeys(extra) if pattern(p.split("?")[0]) not in seen]
            todo.extend(fresh[:DETAILS_PER_PAGE])


def _text_findings(text: str, lang: str, nodes: list[str] | None = None) -> list[str]:
    found = [f"catalogue key {m.group(0)!r}" for m in KEY.finditer(text)]
    found += [f"identifier {m.group(0)!r}" for m in SNAKE.finditer(text)]
    found += [f"escape {m.group(0)!r}" for m in ESCAPE.finditer(text)]
    if lang == "vi":
        found += [f"raw value {m.group(0)!r}" for m in RAW_ENUMS.finditer(text)]
    else:
        found += [f"Vietnamese text {s!r}" for s in VI_TEXT if s in text]
        names = {a[1] for a in ACCOUNTS}  # display names are data, shown as typed
        found += [f"Vietnamese text {s!r}" for s in nodes or () if s in VI_NODES - names]
    return found


OVERFLOW_JS = """() => {
  const vw = document.documentElement.clientWidth;
  const out = [];
  const scrolls = el => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const ox = getComputedStyle(p).overflowX;
      if ((ox === 'auto' || ox === 'scroll' || ox === 'hidden') && p !== document.body
          && p !== document.documentElement) return true;
    }
    return false;
  };
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.right > vw + 1 && !scrolls(el)) {
      const cls = el.className && el.className.baseVal === undefined ? '.' + el.className : '';
      const name = el.tagName.toLowerCase() + cls.replace(/ +/g, '.');
      out.push(name + ' right=' + Math.round(r.right));
    }
  }
  return {scroll: document.documentElement.scrollWidth, vw: vw, out: out.slice(0, 5)};
}"""


def _axe(page: Any) -> list[str]:
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async () => {
          const r = await axe.run(document, {resultTypes: ['violations']});
          return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '));
        }"""
    )
    return list(result)


ROLES = [a[0] for a in ACCOUNTS]


@pytest.mark.parametrize("username", ROLES)
def test_every_page_reads_right_in_both_languages(
    browser: Any, live_server: LiveServer, username: str
) -> None:
    problems: list[str] = []
    visited: list[str] = []
    for lang in ("vi", "en"):
        page = _context(browser, live_server, username, lang, 1280)
        try:
            for path in _crawl(page, live_server):
                visited.append(path)
                text = page.inner_text("body")
                nodes = page.evaluate(TEXT_NODES_JS) if lang == "en" else None
                for f in _text_findings(text, lang, nodes):
                    if not _allowed(username, path, f):
                        problems.append(f"{lang} {path}: {f}")
                if lang == "vi":
                    for v in _axe(page):
                        if not _allowed(username, path, "axe " + v):
                            problems.append(f"axe {path}: {v}")
        finally:
            page.context.close()
    assert len(visited) >= 4
    assert problems == [], "\n".join(problems)


def test_the_site_icon_is_served(browser: Any, live_server: LiveServer) -> None:
    page = _context(browser, live_server, "choray", "vi", 1280)
    try:
        for path in ("/favicon.ico", "/static/favicon.svg"):
            r = page.request.get(live_server.url + path)
            assert r.status == 200 and b"<svg" in r.body(), path
    finally:
        page.context.close()


def test_the_checks_see_what_they_look_for(browser: Any, live_server: LiveServer) -> None:
    """The overflow, text and axe checks are not vacuous: planted defects are found."""
    page = _context(browser, live_server, "choray", "vi", 360)
    try:
        page.goto(live_server.url + "/")
        assert page.evaluate(OVERFLOW_JS)["out"] == []
        page.evaluate(
            "() => { const d = document.createElement('div'); d.style.width = '900px';"
            " d.textContent = 'x'; document.querySelector('main').append(d); }"
        )
        assert page.evaluate(OVERFLOW_JS)["out"]
        page.evaluate(
            "() => { const i = document.createElement('img'); i.src = '/static/favicon.svg';"
            " document.querySelector('main').append(i); }"
        )
        assert any(v.startswith("image-alt") for v in _axe(page))
    finally:
        page.context.close()
    found = _text_findings("Trạng thái: needs_more · report.error.unit · \\u1ed3 · enough", "vi")
    assert len(found) == 4, found  # the key, the identifier, the escape, the raw value
    assert _text_findings("State: Cần bổ sung", "en", ["State", "Cần bổ sung"])
    assert _text_findings("Bệnh viện Chợ Rẫy", "en", ["Bệnh viện Chợ Rẫy"]) == []


@pytest.mark.parametrize("username", ROLES)
def test_no_page_overflows_a_phone(browser: Any, live_server: LiveServer, username: str) -> None:
    problems: list[str] = []
    page = _context(browser, live_server, username, "vi", 360)
    try:
        for path in _crawl(page, live_server):
            r = page.evaluate(OVERFLOW_JS)
            if r["scroll"] > r["vw"] + 1 or r["out"]:
                f = f"overflow {r['scroll']}px: {', '.join(r['out'])}"
                if not _allowed(username, path, f):
                    problems.append(f"{path}: {f}")
    finally:
        page.context.close()
    assert problems == [], "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# Exports: every list and report page has CSV and XLSX links (macro export_links) that download.

# Pages with a table and no export of their own yet (pattern: why). Keep short and shrinking.
NO_EXPORT_YET: dict[str, str] = {
    # Its one table is the signed-in user's own API tokens (account settings: name, prefix,
    # dates, a revoke button), not a list or report anyone exports.
    "/account": "the user's own API tokens, not a list to export",
}
# Export media types by link kind (api/reports/exports.py, api/reports/pdf.py).
EXPORT_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}
VI_LETTERS = set("ăâđêôơưáàảãạấầẩẫậắằẳẵặéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ")


def _header_row(kind: str, body: bytes) -> list[str]:
    """The first row of a CSV or XLSX export (the column headings)."""
    if kind == "csv":
        return next(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    ws = load_workbook(io.BytesIO(body), read_only=True).active
    assert ws is not None
    return [str(c) for c in next(ws.iter_rows(max_row=1, values_only=True))]


def _check_export(page: Any, server: LiveServer, kind: str, href: str) -> list[str]:
    """Problems with one export link: status, media type, attachment, headings in Vietnamese
    for a Vietnamese user and in English with `lang=en`."""
    sep = "&" if "?" in href else "?"
    got = {lang: page.request.get(f"{server.url}{href}{sep}lang={lang}") for lang in ("vi", "en")}
    out: list[str] = []
    for lang, r in got.items():
        media = r.headers.get("content-type", "")
        if r.status != 200 or not media.startswith(EXPORT_TYPES[kind]):
            out.append(f"{href} ({lang}): {r.status} {media}")
        elif "attachment" not in r.headers.get("content-disposition", ""):
            out.append(f"{href} ({lang}): not an attachment")
    if out or kind == "pdf":
        return out
    vi, en = (_header_row(kind, got[lang].body()) for lang in ("vi", "en"))
    if vi == en or not VI_LETTERS & set(" ".join(vi).lower()):
        out.append(f"{href}: headings not in Vietnamese: {vi}")
    if VI_LETTERS & set(" ".join(en).lower()):
        out.append(f"{href}: English headings with Vietnamese text: {en}")
    return out


@pytest.mark.parametrize("username", ROLES)
def test_every_list_and_report_page_exports(
    browser: Any, live_server: LiveServer, username: str
) -> None:
    problems: list[str] = []
    checked: set[str] = set()
    page = _context(browser, live_server, username, "vi", 1280)
    try:
        for path in _crawl(page, live_server):
            links: list[list[str]] = page.eval_on_selector_all(
                "main a[data-export]",
                "els => els.map(e => [e.dataset.export, e.getAttribute('href')])",
            )
            if (
                page.locator("main table").count()
                and not links
                and pattern(path.split("?")[0]) not in NO_EXPORT_YET
            ):
                problems.append(f"{path}: a list without export links")
            kinds = {k for k, _ in links}
            if links and not {"csv", "xlsx"} <= kinds:
                problems.append(f"{path}: export kinds {sorted(kinds)}")
            for kind, href in links:
                key = f"{kind} {pattern(href.split('?')[0])}"
                if key in checked:
                    continue
                checked.add(key)
                problems += _check_export(page, live_server, kind, href)
    finally:
        page.context.close()
    assert problems == [], "\n".join(problems)
    if username in ("byt", "syt79", "ncc"):
        assert checked, "no export link was found"
