"""The SYT report as a PDF: a real, parseable A4 document with the Vietnamese text embedded,
the same figures as the report, and the report routes' scope and role checks.

The text is read back without fpdf2: with pypdf when installed, with poppler's `pdftotext` when
on PATH, and always with the small reader below (object table, Flate streams, ToUnicode CMaps).
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import re
import shutil
import subprocess
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.accounting.config import AccountingConfig
from api.accounting.windows import local_today
from api.auth import issue_token
from api.reports.pdf import FontMissing, font_paths
from tests.api.conftest import USERNAMES, World, login

NOTICE = "Ổn định, đủ oxy cho 7 ngày; đề nghị điều phối thêm bồn chứa"
FACILITY_NAME = "Bệnh viện Chợ Rẫy"

# ---------------------------------------------------------------------------------------------
# A minimal PDF text reader (independent of the library that wrote the file).

_OBJ = re.compile(rb"(\d+) 0 obj(.*?)endobj", re.S)
_LEN = re.compile(rb"/Length (\d+)")
_ESC = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _objects(pdf: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    pos = 0
    while m := _OBJ.search(pdf, pos):
        body = m.group(2)
        start = m.start(2)
        if (s := body.find(b"stream")) >= 0 and (n := _LEN.search(body[:s])):
            # Take the stream by its declared length: compressed bytes may contain "endobj".
            data_at = start + s + len(b"stream")
            data_at += 2 if pdf[data_at : data_at + 2] == b"\r\n" else 1
            end = pdf.index(b"endobj", data_at + int(n.group(1)))
            body = pdf[start:end]
            pos = end
        else:
            pos = m.end()
        out[int(m.group(1))] = body
    return out


def _stream(body: bytes) -> bytes:
    s = body.index(b"stream") + len(b"stream")
    s += 2 if body[s : s + 2] == b"\r\n" else 1
    n = _LEN.search(body[:s])
    assert n
    data = body[s : s + int(n.group(1))]
    return zlib.decompress(data) if b"/FlateDecode" in body[:s] else data


def _cmap(data: bytes) -> dict[int, str]:
    out: dict[int, str] = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", data, re.S):
        for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            out[int(src, 16)] = bytes.fromhex(dst.decode()).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", data, re.S):
        for a, b, dst in re.findall(rb"<(\w+)>\s*<(\w+)>\s*<(\w+)>", block):
            base = int(dst, 16)
            for i, code in enumerate(range(int(a, 16), int(b, 16) + 1)):
                out[code] = chr(base + i)
    return out


def _literal(data: bytes, i: int) -> tuple[bytes, int]:
    """The PDF literal string starting at data[i] == '(' and the index after it."""
    out, depth, i = bytearray(), 1, i + 1
    while True:
        c = data[i : i + 1]
        if c == b"\\":
            nxt = data[i + 1 : i + 2]
            if nxt.isdigit():
                digits = re.match(rb"[0-7]{1,3}", data[i + 1 : i + 4])
                assert digits
                out.append(int(digits.group(), 8))
                i += 1 + len(digits.group())
                continue
            out += _ESC.get(nxt, nxt)
            i += 2
            continue
        if c == b"(":
            depth += 1
        elif c == b")":
            depth -= 1
            if depth == 0:
                return bytes(out), i + 1
        out += c
        i += 1


def pdf_text(pdf: bytes) -> str:
    """The text drawn on every page, one line per text-showing operator."""
    objs = _objects(pdf)
    cmaps = {
        num: _cmap(_stream(objs[int(m.group(1))]))
        for num, body in objs.items()
        if (m := re.search(rb"/ToUnicode (\d+) 0 R", body))
    }
    fonts: dict[bytes, dict[int, str]] = {}
    for body in objs.values():
        if m := re.search(rb"/Font\s*<<(.*?)>>", body, re.S):
            for name, ref in re.findall(rb"/(\w+)\s+(\d+) 0 R", m.group(1)):
                fonts[name] = cmaps.get(int(ref), {})
    lines: list[str] = []
    pages = [b for b in objs.values() if re.search(rb"/Type /Page\b", b)]
    for page in pages:
        ref = re.search(rb"/Contents (\d+) 0 R", page)
        assert ref
        content = _stream(objs[int(ref.group(1))])
        cmap: dict[int, str] = {}
        i = 0
        while i < len(content):
            if m := re.match(rb"/(\w+) [\d.]+ Tf", content[i:]):
                cmap = fonts.get(m.group(1), {})
                i += m.end()
            elif content[i : i + 1] == b"(":
                raw, i = _literal(content, i)
                lines.append(
                    "".join(
                        cmap.get(int.from_bytes(raw[k : k + 2], "big"), "?")
                        for k in range(0, len(raw) - 1, 2)
                    )
                )
            else:
                i += 1
    return "\n".join(lines)


def extracted_texts(pdf: bytes, tmp_path: Path) -> dict[str, str]:
    """The text by every available reader (the built-in one always)."""
    out = {"builtin": pdf_text(pdf)}
    if importlib.util.find_spec("pypdf") is not None:
        import pypdf  # type: ignore[import-not-found, unused-ignore]

        reader = pypdf.PdfReader(io.BytesIO(pdf))
        out["pypdf"] = "\n".join(p.extract_text() for p in reader.pages)
    if tool := shutil.which("pdftotext"):
        path = tmp_path / "report.pdf"
        path.write_bytes(pdf)
        out["pdftotext"] = subprocess.run(
            [tool, str(path), "-"], check=True, capture_output=True, text=True
        ).stdout
    return out


# ---------------------------------------------------------------------------------------------


async def _tokens(url: str, world: World) -> dict[str, str]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return {
            role: (await issue_token(conn, uid, "test")).secret for role, uid in world.users.items()
        }


def _auth(tokens: dict[str, str], role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[role]}"}


def _org_name(db_url: str, org_id: int) -> str:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT name FROM organisations WHERE id = %s", (org_id,)).fetchone()
        assert row
        return str(row[0])


@pytest.fixture
def sent(client: TestClient, world: World) -> tuple[str, dict[str, str]]:
    """A SYT-79 report for yesterday, filled by its facility and sent to the Ministry."""
    with psycopg.connect(world.db_url) as conn:
        conn.execute(
            "UPDATE organisations SET name = %s WHERE id = %s", (FACILITY_NAME, world.fac_in)
        )
    tokens = asyncio.run(_tokens(world.db_url, world))
    day = (
        local_today(datetime.now(UTC), AccountingConfig.defaults()) - timedelta(days=1)
    ).isoformat()
    r = client.put(
        f"/api/facilities/{world.fac_in}/reports/{day}",
        json={"patients_current": 37, "patients_new": 4, "discharged_evening": 2},
        headers=_auth(tokens, "facility"),
    )
    assert r.status_code == 200, r.text
    body = {
        "notice": NOTICE,
        "own_capacity": {"value": 12345, "unit": "nm3"},
        "own_need": {"value": 678, "unit": "nm3"},
    }
    hs = _auth(tokens, "syt")
    r = client.put(f"/api/syt/{world.syt_in}/reports/{day}", json=body, headers=hs)
    assert r.status_code == 200, r.text
    # This world files no liquid refill or capacity: the sums are incomplete, confirmed here.
    r = client.post(
        f"/api/syt/{world.syt_in}/reports/{day}/send",
        headers=hs,
        params={"confirm_incomplete": "true"},
    )
    assert r.status_code == 200 and r.json()["state"] == "sent", r.text
    return day, tokens


def test_pdf_is_a_valid_a4_document_with_the_report_in_vietnamese(
    client: TestClient, world: World, sent: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    day, tokens = sent
    r = client.get(f"/api/syt/{world.syt_in}/reports/{day}/print.pdf", headers=_auth(tokens, "syt"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == (
        f'attachment; filename="bao-cao-syt-syt-79-{day}.pdf"'
    )
    pdf = r.content
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    # A4 portrait in points, and the Unicode font embedded (not a core font).
    assert re.search(rb"/MediaBox \[0 0 595\.28 841\.89\]", pdf)
    assert b"DejaVuSans" in pdf and b"/FontFile2" in pdf
    org = _org_name(world.db_url, world.syt_in)
    d = datetime.fromisoformat(day).strftime("%d/%m/%Y")
    texts = extracted_texts(pdf, tmp_path)
    for reader, txt in texts.items():
        flat = " ".join(txt.split())
        for expected in (
            org,
            FACILITY_NAME,
            NOTICE,
            f"Ngày báo cáo: {d}",
            "Số người bệnh hiện tại",
            "Nơi nhận:",
            "GIÁM ĐỐC",
            "Đã gửi Bộ Y tế",  # the state
            "m3 @ 0 °C",  # units carry the gas reference
            "12.345 m3 @ 0 °C",  # field 15 as entered
        ):
            # External readers may interleave a wrapped table cell with its neighbours.
            found = expected in flat or (
                reader != "builtin" and all(w in flat.split() for w in expected.split())
            )
            assert found, f"{reader}: {expected!r} missing from {flat[:2000]!r}"
        # fpdf2 may pad the page-count placeholder's substitute with spaces.
        assert re.search(r"Trang 1/ ?\d\b", flat), (reader, flat[-300:])
        # Field 5 (current patients) is the one facility's figure.
        assert re.search(r"\b5 Số người bệnh hiện tại 37\b", flat), (reader, flat[:2000])


def test_pdf_follows_the_language_and_the_print_page_links_it(
    client: TestClient, world: World, sent: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    day, tokens = sent
    hs = _auth(tokens, "byt")
    r = client.get(
        f"/api/syt/{world.syt_in}/reports/{day}/print.pdf", params={"lang": "en"}, headers=hs
    )
    assert r.status_code == 200
    flat = " ".join(pdf_text(r.content).split())
    for expected in ("Current patients", "Recipients:", "DIRECTOR", NOTICE):
        assert expected in flat
    assert re.search(r"Page 1 of ?\d\b", flat)
    assert "Người lập báo cáo" not in flat
    page = client.get(f"/api/syt/{world.syt_in}/reports/{day}/print", headers=hs)
    assert page.status_code == 200 and 'href="print.pdf"' in page.text and "Tải PDF" in page.text


def test_pdf_scope_and_roles(
    client: TestClient, world: World, sent: tuple[str, dict[str, str]]
) -> None:
    day, tokens = sent
    own = f"/api/syt/{world.syt_in}/reports/{day}/print.pdf"
    other = f"/api/syt/{world.syt_out}/reports/{day}/print.pdf"
    # Another province's report does not exist for this SYT officer.
    assert client.get(other, headers=_auth(tokens, "syt")).status_code == 404
    for role in ("facility", "supplier", "engineer"):
        assert client.get(own, headers=_auth(tokens, role)).status_code == 403, role
    assert client.get(own).status_code == 401
    # National roles see every province; a facility id is not a reporting parent.
    assert client.get(other, headers=_auth(tokens, "admin")).status_code == 200
    bad = f"/api/syt/{world.fac_in}/reports/{day}/print.pdf"
    assert client.get(bad, headers=_auth(tokens, "admin")).status_code == 404


def test_missing_font_names_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(FontMissing, match=r"npm ci --prefix api/static"):
        font_paths(tmp_path)
    paths = font_paths()
    assert all(p.is_file() and p.read_bytes()[:4] == b"\x00\x01\x00\x00" for p in paths.values())


def test_syt_pages_link_the_pdf_and_the_link_works_with_the_session(
    client: TestClient, world: World, sent: tuple[str, dict[str, str]]
) -> None:
    day, _tokens = sent
    login(client, USERNAMES["syt"])
    link = f"/api/syt/{world.syt_in}/reports/{day}/print.pdf"
    for page in (
        f"/provinces/{world.syt_in}/report?day={day}",
        f"/provinces/{world.syt_in}/reports/{day}",
    ):
        r = client.get(page)
        assert r.status_code == 200, page
        assert f'href="{link}"' in r.text and "Tải PDF" in r.text, page
        # The field cards come from the declarative field table (api.reports.syt_fields).
        assert 'data-field="9"' in r.text and 'data-field="14"' in r.text, page
    # The composer lists the incomplete sums beside the confirmation checkbox.
    r = client.get(f"/provinces/{world.syt_in}/report?day={day}")
    assert 'data-testid="confirm-incomplete"' in r.text and "9: 0/1" in r.text
    r = client.get(link)
    assert r.status_code == 200 and r.content.startswith(b"%PDF-")
