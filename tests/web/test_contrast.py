"""Without a browser: the text colours of the stylesheets meet WCAG 2.1 AA (4.5:1) on the
backgrounds they are drawn on, computed with the stylesheets' own cascade (specificity, then
source order; inheritance from the ancestors; translucent backgrounds blended over the parent)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "api" / "static"
SHEETS = (STATIC / "css" / "app.css", STATIC / "src" / "web.css")
AA = 4.5


@dataclass(frozen=True)
class El:
    """An element: its tag and classes (an id as a class prefixed with '#')."""

    tag: str
    classes: frozenset[str] = frozenset()


def el(spec: str) -> El:
    tag, *classes = spec.split(".")
    return El(tag, frozenset(classes))


def _rules() -> list[tuple[str, dict[str, str], int]]:
    out: list[tuple[str, dict[str, str], int]] = []
    order = 0
    for path in SHEETS:
        text = re.sub(r"/\*.*?\*/", "", path.read_text(encoding="utf-8"), flags=re.S)
        # Media blocks only widen layouts; their colour rules apply at every width, keep them.
        text = re.sub(r"@media[^{]*\{((?:[^{}]*\{[^{}]*\})*)\s*\}", r"\1", text)
        for sels, body in re.findall(r"([^{}]+)\{([^{}]*)\}", text):
            decls = {}
            for d in body.split(";"):
                if ":" in d:
                    k, v = d.split(":", 1)
                    decls[k.strip()] = v.strip()
            for sel in sels.split(","):
                order += 1
                out.append((sel.strip(), decls, order))
    return out


RULES = _rules()
VARS = {k: v for sel, d, _ in RULES if sel == ":root" for k, v in d.items() if k.startswith("--")}


def _compound_matches(compound: str, e: El) -> bool:
    if re.search(r"[:\[>+~*]", compound):
        return False  # pseudo-classes, attributes and combinators: not modelled (not colours)
    m = re.fullmatch(r"([a-z0-9]*)((?:[.#][\w-]+)*)", compound)
    if not m:
        return False
    tag, rest = m.groups()
    if tag and tag != e.tag:
        return False
    need = {("#" + c[1:]) if c[0] == "#" else c[1:] for c in re.findall(r"[.#][\w-]+", rest)}
    return need <= e.classes


def _matches(selector: str, chain: list[El]) -> bool:
    parts = selector.split()
    if not parts or not _compound_matches(parts[-1], chain[-1]):
        return False
    ancestors = chain[:-1]
    for part in reversed(parts[:-1]):
        while ancestors and not _compound_matches(part, ancestors[-1]):
            ancestors = ancestors[:-1]
        if not ancestors:
            return False
        ancestors = ancestors[:-1]
    return True


def _specificity(selector: str) -> tuple[int, int, int]:
    ids = selector.count("#")
    classes = len(re.findall(r"\.[\w-]+", selector))
    tags = len(re.findall(r"(?:^|\s)[a-z][a-z0-9]*", selector))
    return (ids, classes, tags)


def _prop(chain: list[El], prop: str) -> str | None:
    best: tuple[tuple[int, int, int], int, str] | None = None
    for sel, decls, order in RULES:
        value = decls.get(prop)
        if value is None and prop == "background-color":
            value = decls.get("background")
        if value is not None and _matches(sel, chain):
            key = (_specificity(sel), order, value)
            if best is None or key[:2] > best[:2]:
                best = key
    return None if best is None else best[2]


def _rgba(value: str) -> tuple[float, float, float, float] | None:
    value = value.strip()
    while value.startswith("var("):
        value = VARS[value[4:-1].strip()]
    if value in ("none", "transparent"):
        return (0, 0, 0, 0)
    if m := re.fullmatch(r"#([0-9a-fA-F]{6})", value):
        h = m.group(1)
        return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), 1.0)
    if m := re.fullmatch(r"#([0-9a-fA-F]{3})", value):
        h = m.group(1)
        return (int(h[0] * 2, 16), int(h[1] * 2, 16), int(h[2] * 2, 16), 1.0)
    if m := re.fullmatch(r"rgba?\(([^)]*)\)", value):
        nums = [float(x) for x in m.group(1).split(",")]
        return (nums[0], nums[1], nums[2], nums[3] if len(nums) > 3 else 1.0)
    if value == "inherit":
        return None
    raise AssertionError(f"colour not understood: {value}")


def colours(chain: list[El]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The text colour and the opaque background of the last element of `chain`."""
    fg = None
    for i in range(len(chain), 0, -1):
        v = _prop(chain[:i], "color")
        if v is not None and (c := _rgba(v)) is not None:
            fg = c
            break
    assert fg is not None
    bg = (255.0, 255.0, 255.0)  # the canvas
    for i in range(1, len(chain) + 1):
        v = _prop(chain[:i], "background-color")
        if v is None:
            continue
        r, g, b, a = _rgba(v) or (0, 0, 0, 0)
        bg = (r * a + bg[0] * (1 - a), g * a + bg[1] * (1 - a), b * a + bg[2] * (1 - a))
    return fg[:3], bg


def _luminance(c: tuple[float, ...]) -> float:
    def ch(x: float) -> float:
        x /= 255
        return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4

    return 0.2126 * ch(c[0]) + 0.7152 * ch(c[1]) + 0.0722 * ch(c[2])


def ratio(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_the_contrast_formula() -> None:
    assert ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    # The observed defect: white text on the alert badge's pale yellow.
    assert ratio((255, 255, 255), (0xFF, 0xF3, 0xCD)) < 1.2


PAGE = [el("html"), el("body")]
TOPBAR = [*PAGE, el("header.topbar"), el("div.topbar-right")]
TABLE = [*PAGE, el("main"), el("section.card"), el("div.table-wrap"), el("table"), el("tr")]
CELL = [*TABLE, el("td")]

# Every text-bearing rule that sets a colour or a background, where it is used.
CASES: dict[str, list[El]] = {
    "alert badge in the header": [*TOPBAR, el("a.alert-badge")],
    "critical alert badge in the header": [*TOPBAR, el("a.alert-badge.alert-badge-critical")],
    "role badge in the header": [*TOPBAR, el("span.who"), el("span.badge")],
    "header link": [*TOPBAR, el("a")],
    "critical severity": [*CELL, el("span.badge.sev-critical")],
    "warning severity": [*CELL, el("span.badge.sev-warning")],
    "status enough": [*CELL, el("span.status.status-enough")],
    "status needs more": [*CELL, el("span.status.status-needs-more")],
    "status unknown": [*CELL, el("span.status.status-unknown")],
    "state draft": [*CELL, el("span.state.state-draft")],
    "state sent": [*CELL, el("span.state.state-sent")],
    "state approved": [*CELL, el("span.state.state-approved")],
    "state sent back": [*CELL, el("span.state.state-sent_back")],
    "source": [*CELL, el("span.source")],
    "source telemetry": [*CELL, el("span.source.source-telemetry")],
    "source entered": [*CELL, el("span.source.source-entered")],
    "tanks reporting, incomplete": [*CELL, el("span.incomplete")],
    "table header": [*TABLE, el("th")],
    "muted text in a card": [*PAGE, el("main"), el("section.card"), el("p.muted")],
    "hint on the page": [*PAGE, el("main"), el("span.hint")],
    "field error in a card": [*PAGE, el("main"), el("div.field-card"), el("span.field-error")],
    "kpi label": [*PAGE, el("main"), el("div.kpi"), el("span.kpi-label")],
    "flash": [*PAGE, el("main"), el("p.flash")],
    "flash success": [*PAGE, el("main"), el("p.flash.flash-success")],
    "flash error": [*PAGE, el("main"), el("p.flash.flash-error")],
    "flash warning": [*PAGE, el("main"), el("div.flash.flash-warning")],
    "secret code": [*PAGE, el("main"), el("section.card"), el("code.secret")],
    "button": [*PAGE, el("main"), el("button")],
    "danger button": [*PAGE, el("main"), el("button.danger")],
    "button link": [*PAGE, el("main"), el("a.button-link")],
    "tile text": [*PAGE, el("main"), el("ul.tiles"), el("li"), el("a"), el("span")],
    "link in a card": [*PAGE, el("main"), el("section.card"), el("a")],
    "menu link": [*PAGE, el("nav.mainnav"), el("ul"), el("li"), el("a")],
    "island label on the map": [*PAGE, el("main"), el("div.#map"), el("div.island-label")],
    "footer": [*PAGE, el("footer.foot")],
    "old value in a diff": [*CELL, el("span.diff-old")],
    "new value in a diff": [*CELL, el("span.diff-new")],
    "field number": [*PAGE, el("main"), el("div.field-card"), el("span.no")],
    "required mark": [*PAGE, el("main"), el("form.form"), el("label"), el("span.req")],
    "multi-select list": [*PAGE, el("main"), el("div.multi"), el("label")],
    "button as a link": [*PAGE, el("main"), el("section.card"), el("button.link")],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_text_meets_wcag_aa(name: str) -> None:
    fg, bg = colours(CASES[name])
    assert ratio(fg, bg) >= AA, f"{name}: {fg} on {bg} is {ratio(fg, bg):.2f}:1"


def test_every_coloured_rule_is_checked() -> None:
    """A new rule with a text colour or a background (text-bearing) joins CASES."""
    checked = set()
    for chain in CASES.values():
        for sel, _decls, _ in RULES:
            if any(_matches(sel, chain[:i]) for i in range(1, len(chain) + 1)):
                checked.add(sel)
    skip = {"body", ":root", "input", "select", "textarea", "code.json", "#map"}
    colour_rules = {
        sel
        for sel, decls, _ in RULES
        if ("color" in decls or "background" in decls)
        and not re.search(r"[:\[]|dot|leaflet", sel)
        and sel not in skip
    }
    assert sorted(colour_rules - checked) == []
