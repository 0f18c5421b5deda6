"""The SYT report's printed form follows Nghị định 30/2020/NĐ-CP (administrative documents):
governing body above the department, number and symbol, national motto, place and date,
"Kính gửi: Bộ Y tế", and the signature block (title and name) on the same page as the last row
of content. Checked on the PDF rendered to images with pypdfium2 (independent of fpdf2, which
writes it), and by text extraction of the heading lines.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium  # type: ignore[import-untyped, unused-ignore]
import pytest
from fastapi.testclient import TestClient

from api.reports import pdf as report_pdf
from api.reports.figures import FacilityFigures
from api.reports.filters import SytFilters
from api.reports.letterhead import Letterhead
from api.reports.public import SytEnteredPublic, SytFieldsPublic
from api.reports.syt import SytReport
from tests.api.conftest import World
from tests.api.test_report_pdf import _auth, sent  # noqa: F401  (the fixture)

SIGNER = "SYT79"  # the display name of the sender in the test world (tests/api/conftest.py)
HEAD = Letterhead(
    department="Sở Y tế Thành phố Hồ Chí Minh",
    org_kind="syt",
    province="Thành phố Hồ Chí Minh",
    province_kind="city",
    signer="Nguyễn Văn An",
)


def _pages(pdf: bytes) -> Iterator[tuple[str, Any, Any]]:
    """(text, page, rendered bitmap as a PIL-free pixel reader) for every page."""
    doc = pdfium.PdfDocument(pdf)
    for i in range(len(doc)):
        page = doc[i]
        yield page.get_textpage().get_text_range(), page, page.render(scale=1.5)


def _inked(page: Any, bitmap: Any, needle: str) -> bool:
    """Whether `needle` is found on `page` and its box on the rendered image holds dark pixels
    (the text is really drawn there, not only in the text layer)."""
    tp = page.get_textpage()
    found = tp.search(needle).get_next()
    if not found:
        return False
    first, count = found
    left, bottom, right, top = tp.get_charbox(first)
    for k in range(first, first + count):
        l2, b2, r2, t2 = tp.get_charbox(k)
        left, bottom, right, top = min(left, l2), min(bottom, b2), max(right, r2), max(top, t2)
    scale = 1.5
    height = page.get_height()
    buf = bitmap.buffer
    stride, channels = bitmap.stride, bitmap.n_channels
    dark = 0
    for y in range(int((height - top) * scale), int((height - bottom) * scale) + 1):
        for x in range(int(left * scale), int(right * scale) + 1):
            px = buf[y * stride + x * channels : y * stride + x * channels + 3]
            if sum(px) < 3 * 128:
                dark += 1
    return dark > 5


def _typed(j: dict[str, Any]) -> SytReport:
    """The report as the service types it, from its JSON answer (the PDF's input)."""
    return SytReport(
        org_id=j["org_id"],
        report_day=date.fromisoformat(j["report_day"]),
        filters=SytFilters.model_validate(j["filters"]),
        fields=SytFieldsPublic.model_validate(j["fields"]),
        completeness={},
        facilities=[FacilityFigures.stored(f) for f in j["facilities"]],
        units=j["units"],
        entered=SytEnteredPublic.model_validate(j["entered"]) if j["entered"] else None,
        state=j["state"],
        revision=j["revision"],
        locked=j["locked"],
        changed_since_sent=j["changed_since_sent"],
        changes=[],
        as_sent=None,
        revisions=[],
        id=j.get("id"),
        sent_at=j.get("sent_at"),
        approved_at=j.get("approved_at"),
        sent_back_reason=j.get("sent_back_reason"),
    )


def _report(client: TestClient, world: World, day: str, tokens: dict[str, str]) -> dict[str, Any]:
    r = client.get(
        f"/api/syt/{world.syt_in}/report", params={"day": day}, headers=_auth(tokens, "syt")
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_pdf_heading_follows_decree_30(
    client: TestClient,
    world: World,
    sent: tuple[str, dict[str, str]],  # noqa: F811
) -> None:
    day, tokens = sent
    r = client.get(f"/api/syt/{world.syt_in}/reports/{day}/print.pdf", headers=_auth(tokens, "syt"))
    assert r.status_code == 200, r.text
    pages = list(_pages(r.content))
    first = " ".join(pages[0][0].split())
    for expected in (
        "UBND THÀNH PHỐ HỒ CHÍ MINH",
        "Số: ......./BC-SYT",
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "Kính gửi: Bộ Y tế",
        "BÁO CÁO",
    ):
        assert expected in first, (expected, first[:800])
    # The governing body comes before the department, the department before the number.
    assert first.index("UBND THÀNH PHỐ HỒ CHÍ MINH") < first.index("SỞ Y TẾ") < first.index("Số:")
    last = " ".join(pages[-1][0].split())
    assert "GIÁM ĐỐC" in last and SIGNER in last, last[-600:]
    assert "Nơi nhận:" in last
    # Place and date: the day the report was sent (Vietnam time), by the province's name.
    whole = " ".join(" ".join(p[0] for p in pages).split())
    assert "Thành phố Hồ Chí Minh, ngày" in whole
    assert " m3 LOX (liquid, 1.141 kg/L)" not in whole
    assert "m3 LOX (lỏng, 1,141 kg/L)" in whole
    en = client.get(
        f"/api/syt/{world.syt_in}/reports/{day}/print.pdf",
        params={"lang": "en"},
        headers=_auth(tokens, "syt"),
    )
    text = " ".join(" ".join(p[0] for p in _pages(en.content)).split())
    for expected in ("SOCIALIST REPUBLIC OF VIET NAM", "To: Ministry of Health", "DIRECTOR"):
        assert expected in text, (expected, text[:800])
    assert "Kính gửi" not in text
    # The print page has the same heading and signer.
    page = client.get(
        f"/api/syt/{world.syt_in}/reports/{day}/print", headers=_auth(tokens, "syt")
    ).text
    for expected in (
        "UBND THÀNH PHỐ HỒ CHÍ MINH",
        "Số: ......./BC-SYT",
        "Kính gửi: Bộ Y tế",
        "GIÁM ĐỐC",
        SIGNER,
    ):
        assert expected in page, expected
    assert re.search(r"Thành phố Hồ Chí Minh, ngày \d\d tháng \d\d năm \d{4}", page)
    assert "m3 LOX (liquid" not in page


@pytest.mark.slow  # a sweep: 60 documents rendered and rasterised (the slow tier runs in CI)
@pytest.mark.parametrize("locale", ["vi"])
def test_signature_block_is_on_the_page_of_the_last_row(
    client: TestClient,
    world: World,
    sent: tuple[str, dict[str, str]],  # noqa: F811
    locale: str,
    tmp_path: Path,
) -> None:
    """For every facility count from 1 to 70 the last table row and the signature (title and
    name) are drawn on the same page, and no page holds the signature alone."""
    day, tokens = sent
    base = _typed(_report(client, world, day, tokens))
    template = base.facilities[0]
    title = "GIÁM ĐỐC" if locale == "vi" else "DIRECTOR"
    pages_seen: set[int] = set()
    for n in range(1, 61):
        report = dataclasses.replace(
            base,
            facilities=[
                dataclasses.replace(template, name=f"Bệnh viện số {i:03d}", code=f"BV-{i:03d}")
                for i in range(1, n + 1)
            ],
        )
        body = report_pdf.syt_report_pdf(report, HEAD, locale)
        pages = list(_pages(body))
        pages_seen.add(len(pages))
        last_row = f"Bệnh viện số {n:03d}"
        holding_row = [i for i, (t, _, _) in enumerate(pages) if last_row in t]
        holding_sig = [i for i, (t, _, _) in enumerate(pages) if HEAD.signer and HEAD.signer in t]
        assert holding_row and holding_sig == holding_row[-1:], (n, holding_row, holding_sig)
        text, page, bitmap = pages[holding_sig[0]]
        assert title in text, (n, text[-300:])
        assert _inked(page, bitmap, HEAD.signer or ""), n
        assert _inked(page, bitmap, last_row), n
    # The range really crosses page boundaries (the list ends on three different pages).
    assert len(pages_seen) >= 3, pages_seen


def test_reference_label_reads_one_atmosphere(
    client: TestClient,
    world: World,
    sent: tuple[str, dict[str, str]],  # noqa: F811
) -> None:
    from oxy.contract import Reference

    assert Reference().label == "m3 @ 0 °C, 1 atm"
    assert Reference(20.0, 101.3).label == "m3 @ 20 °C, 101.3 kPa"
    day, tokens = sent
    report = _report(client, world, day, tokens)
    assert report["units"]["gas"] == "m3 @ 0 °C, 1 atm"
    r = client.get(
        f"/api/syt/{world.syt_in}/report", params={"day": day}, headers=_auth(tokens, "syt")
    )
    assert "101.325 kPa" not in r.text
