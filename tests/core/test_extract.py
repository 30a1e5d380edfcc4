"""Tests for desktop_search.core.extract: path -> pages of text, with failures as values.

The shared PDF corpus (../shared/corpus relative to the repo, or $DESKTOP_SEARCH_SHARED_CORPUS) is
required: tests that need it fail, not skip, when it is missing, because CI always has it.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import os
import random
import re
import struct
import time
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

import pymupdf
import pytest

from desktop_search.core.extract import base as extract_mod
from desktop_search.core.extract import registry
from desktop_search.core.extract import (
    REASONS,
    Extraction,
    ExtractOptions,
    Page,
    extract,
    is_supported,
)

# --------------------------------------------------------------------------------------------
# Shared corpus
# --------------------------------------------------------------------------------------------


def _corpus_root() -> Path:
    env = os.environ.get("DESKTOP_SEARCH_SHARED_CORPUS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(
            f"shared corpus not found at {path}; set DESKTOP_SEARCH_SHARED_CORPUS to the folder "
            "that holds pdfs/ and multilingual_text_udhr/"
        )
    return path


@pytest.fixture(scope="module")
def pdf_dir() -> Path:
    root = _require(_corpus_root() / "pdfs")
    _require(root / "manifest.tsv")
    return root


@pytest.fixture(scope="module")
def manifest(pdf_dir: Path) -> list[dict[str, str]]:
    with open(pdf_dir / "manifest.tsv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len(rows) > 100, "manifest looks truncated"
    return rows


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


CORPUS_TIME_LIMIT_S = 20.0


@pytest.fixture(scope="module")
def corpus_run(pdf_dir: Path, manifest: list[dict[str, str]]):
    """Extract every PDF in the manifest once; record results, timings and file hashes."""
    files = sorted(p for p in pdf_dir.rglob("*") if p.is_file())
    before = {p: _sha256(p) for p in files}
    results: dict[str, Extraction] = {}
    elapsed: dict[str, float] = {}
    errors: dict[str, str] = {}
    for row in manifest:
        name = row["filename"]
        if not name.endswith(".pdf"):
            continue
        started = time.monotonic()
        try:
            # The text layer only: OCR of the scans has its own tests (tests/core/test_ocr.py).
            results[name] = extract(pdf_dir / name, ExtractOptions(ocr=False), time_limit_s=CORPUS_TIME_LIMIT_S)
        except BaseException as exc:  # noqa: BLE001 - the assertion below reports it
            errors[name] = f"{type(exc).__name__}: {exc}"
        elapsed[name] = time.monotonic() - started
    after = {p: _sha256(p) for p in sorted(p for p in pdf_dir.rglob("*") if p.is_file())}
    categories = {row["filename"]: row["category"] for row in manifest}

    table: dict[str, Counter] = defaultdict(Counter)
    for name, res in results.items():
        table[categories[name]]["ok" if res.ok else res.reason] += 1
    print("\ncorpus outcome per category:")
    for category in sorted(table):
        print(f"  {category:24} {dict(table[category])}")
    return {"results": results, "elapsed": elapsed, "errors": errors, "before": before,
            "after": after, "categories": categories}


def _by_category(corpus_run, category: str) -> dict[str, Extraction]:
    found = {n: r for n, r in corpus_run["results"].items()
             if corpus_run["categories"][n] == category}
    assert found, f"no corpus files in category {category}"
    return found


# --------------------------------------------------------------------------------------------
# 1. Whole corpus
# --------------------------------------------------------------------------------------------


def test_corpus_never_raises_stays_in_time_and_leaves_files_untouched(corpus_run):
    assert corpus_run["errors"] == {}
    slow = {n: round(s, 1) for n, s in corpus_run["elapsed"].items() if s > CORPUS_TIME_LIMIT_S}
    assert slow == {}
    assert not [n for n, r in corpus_run["results"].items() if r.reason == "timeout"]
    assert corpus_run["before"] == corpus_run["after"], "a corpus file was modified"


def test_corpus_results_are_consistent_values(corpus_run):
    for name, res in corpus_run["results"].items():
        assert isinstance(res, Extraction)
        assert res.kind == "pdf", name
        assert res.ok == (res.reason is None), name
        if res.ok:
            assert res.pages, name
            numbers = [p.number for p in res.pages]
            assert numbers == sorted(set(numbers)), name
            assert all(1 <= n <= res.page_count for n in numbers), name
            assert all(p.text.strip() for p in res.pages), name
            assert not any("\x00" in p.text or "\r" in p.text for p in res.pages), name
        else:
            assert res.reason in REASONS, name
            assert res.pages == (), name
            assert res.detail, f"{name}: a failure must explain itself to the user"


def test_corpus_user_password_pdfs_are_reported_encrypted(corpus_run):
    found = _by_category(corpus_run, "encrypted_user_password")
    assert len(found) == 10
    assert {n: r.reason for n, r in found.items()} == {n: "encrypted" for n in found}
    assert all("password" in r.detail for r in found.values())


def _manifest_password(notes: str) -> str:
    """The user password a corpus row's notes give ("password abc", "non-ASCII password æøå", the SASLprep one)."""
    sasl = re.search(r"'(.+)'", notes)
    if sasl:  # written out in the notes as 'SªSL<U+00AD soft hyphen>prep'
        return re.sub(r"<U\+([0-9A-F]{4})[^>]*>", lambda m: chr(int(m.group(1), 16)), sasl.group(1))
    return re.search(r"password ([^\s,()]+)", notes).group(1)


def test_corpus_user_password_pdfs_open_with_the_passwords_the_user_gave(pdf_dir, manifest):
    locked = {row["filename"]: _manifest_password(row["notes"]) for row in manifest
              if row["category"] == "encrypted_user_password"}
    assert len(locked) == 10 and locked["pdfjs/saslprep-r6.pdf"] == "SªSL\u00adprep"
    # All the passwords, wrong ones among them, as a user's passwords file would give them (typed as the notes
    # say: the AES-256 revision 6 ones go through SASLprep before MuPDF sees them).
    given = ("qwerty", *locked.values())
    for name in locked:
        before = _sha256(pdf_dir / name)
        res = extract(pdf_dir / name, ExtractOptions(ocr=False, passwords=given))
        assert res.reason != "encrypted", (name, res.detail)
        assert _sha256(pdf_dir / name) == before
    # Text behind the password is read (most of these files are a line or two of test text).
    opened = extract(pdf_dir / "pdfjs/issue21579.pdf", ExtractOptions(ocr=False, passwords=given))
    assert opened.ok and len(opened.pages[0].text) > 20
    wrong = extract(pdf_dir / "pdfjs/issue6010_1.pdf", ExtractOptions(ocr=False, passwords=("qwerty", "abd")))
    assert wrong.reason == "encrypted" and "none of the 2 passwords given opens it" in wrong.detail
    assert "qwerty" not in repr(ExtractOptions(passwords=("qwerty",)))  # never in a log line


def test_corpus_owner_password_only_pdfs_open_without_a_password(corpus_run):
    found = _by_category(corpus_run, "encrypted_owner_only")
    assert len(found) == 5
    assert {n: r.reason for n, r in found.items() if r.reason == "encrypted"} == {}
    assert {n: r.ok for n, r in found.items()} == {n: True for n in found}
    assert "Dummy PDF file" in found["pdfjs/issue17215.pdf"].pages[0].text


def test_corpus_scanned_pdfs_without_ocr_are_no_text_except_one_with_ocr_layer(corpus_run):
    found = _by_category(corpus_run, "scanned_image_only")
    assert len(found) == 18
    # ocrmypdf/multipage.pdf is assembled from other files; its page 4 (a chart) carries a
    # noisy OCR text layer, so it is indexed with that page only and a warning for the rest.
    multipage = found.pop("ocrmypdf/multipage.pdf")
    assert multipage.ok
    assert [p.number for p in multipage.pages] == [4]
    assert any("1-3, 5-6" in w for w in multipage.warnings)
    assert {n: r.reason for n, r in found.items()} == {n: "no_text" for n in found}
    assert all("no text layer" in r.detail and "OCR is turned off" in r.detail for r in found.values())
    assert found["pdfjs/issue11878_reduced.pdf"].page_count == 10


@pytest.mark.parametrize(
    "category",
    ["text_latin", "text_cjk", "text_arabic", "text_hebrew", "text_cyrillic", "text_thai",
     "text_other_script", "text_mixed"],
)
def test_corpus_text_pdfs_yield_text(corpus_run, category):
    found = _by_category(corpus_run, category)
    failed = {n: (r.reason, r.detail) for n, r in found.items() if not r.ok}
    assert failed == {}
    assert all(sum(len(p.text.strip()) for p in r.pages) > 0 for r in found.values())


def test_corpus_corrupt_pdfs_are_recovered_or_reported_corrupt(corpus_run):
    found = {**_by_category(corpus_run, "corrupt"), **_by_category(corpus_run, "corrupt_truncated")}
    assert len(found) == 15
    wrong = {n: r.reason for n, r in found.items() if not r.ok and r.reason != "corrupt"}
    assert wrong == {}
    for unopenable in ("ocrmypdf/invalid.pdf", "pdfjs/poppler-85140-0.pdf"):
        assert found[unopenable].reason == "corrupt"
        assert found[unopenable].page_count == 0
    # Files MuPDF repaired in memory are indexed and say so.
    helloworld = found["pdfjs/helloworld-bad.pdf"]
    assert helloworld.ok and "Hello" in helloworld.pages[0].text
    assert any("recovered from damaged file" in w for w in helloworld.warnings)


def test_corpus_empty_pdfs_are_no_text(corpus_run):
    found = _by_category(corpus_run, "empty")
    assert {n: r.reason for n, r in found.items()} == {n: "no_text" for n in found}
    assert all(r.page_count == 1 for r in found.values())


def test_corpus_fonts_without_unicode_mapping_are_not_called_scanned(corpus_run):
    results = corpus_run["results"]
    for name in ("pdfjs/complex_ttf_font.pdf", "ocrmypdf/type3_font_nomapping.pdf"):
        assert results[name].reason == "no_text", name
        assert "no Unicode mapping" in results[name].detail, name
        assert "scanned" not in results[name].detail, name
    # Partly unmapped text is still indexed, with the unmapped glyphs flagged.
    habibi = results["pypdf_sample_files/habibi.pdf"]
    assert habibi.ok and any("no Unicode mapping" in w for w in habibi.warnings)


def test_corpus_image_bombs_and_unusual_filters(corpus_run):
    results, elapsed = corpus_run["results"], corpus_run["elapsed"]
    # 35000x35000 JBIG2 image: text extraction must not decode it.
    assert results["ocrmypdf/hugemono.pdf"].reason == "no_text"
    assert elapsed["ocrmypdf/hugemono.pdf"] < 2.0
    assert results["ocrmypdf/vector.pdf"].reason == "no_text"
    # MuPDF 1.28 decodes the proposed BrotliDecode filter.
    brotli = results["pdfjs/Brotli-Prototype-FileA.pdf"]
    assert brotli.ok and brotli.page_count == 25
    assert results["pdfjs/ContentStreamCycleType3insideType3.pdf"].ok


def test_mupdf_does_not_print_to_stderr(pdf_dir, capfd):
    for name in ("pdfjs/poppler-90-0-fuzzed.pdf", "ocrmypdf/invalid.pdf", "pdfjs/issue2840.pdf"):
        extract(pdf_dir / name)
    captured = capfd.readouterr()
    assert captured.err == ""
    assert captured.out == ""


# --------------------------------------------------------------------------------------------
# 2. Page numbers and reading order
# --------------------------------------------------------------------------------------------


def test_tracemonkey_pages_are_numbered_from_one(pdf_dir):
    res = extract(pdf_dir / "pdfjs/tracemonkey.pdf")
    assert res.ok and res.page_count == 14
    assert [p.number for p in res.pages] == list(range(1, 15))
    first = res.pages[0].text
    assert "Trace-based Just-in-Time Type Specialization" in first
    # Sane reading order: title, then authors, then the abstract.
    assert first.index("Trace-based") < first.index("Andreas Gal") < first.index("Abstract")
    assert "Type Specialization" not in res.pages[1].text


def test_freeculture_keeps_352_page_numbers(pdf_dir):
    res = extract(pdf_dir / "pdfjs/freeculture.pdf", ExtractOptions(ocr=False))
    assert res.ok and res.page_count == 352
    # Page 1 is a cover image without text layer (OCR reads its title), so the text layer starts on page 2 and
    # page 352 is the last.
    assert res.pages[0].number == 2
    assert res.pages[-1].number == 352
    assert len(res.pages) == 351
    assert any(w.startswith("page 1 has no text layer") for w in res.warnings)
    assert "Free Culture" in res.pages[0].text


# --------------------------------------------------------------------------------------------
# 3. Non-Latin scripts come out as real Unicode
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pdfjs/issue8570.pdf", "3Dレーザーレーダー"),  # Japanese
        ("pdfjs/noembed-sjis.pdf", "あいうえお"),  # Shift-JIS encoded, font not embedded
        ("pdfjs/issue5202.pdf", "𠮟る"),  # non-BMP kanji
        ("pdfjs/issue12823.pdf", "知识库简介"),  # Simplified Chinese
        ("pdfjs/issue19182.pdf", "中文姓名"),  # Traditional Chinese form
        ("pdfjs/bug1627427_reduced.pdf", "눈이올듯하더니"),  # Korean
        ("pdfjs/issue2840.pdf", "Номер полиса"),  # Russian, in a file MuPDF must repair
        ("pdfjs/issue5421.pdf", "РЕСПУБЛИКАСЫ"),
        ("pdfjs/issue11656.pdf", "שלום עולם"),  # Hebrew
        ("pdfjs/issue13211.pdf", "เวกเตอร์"),  # Thai
        ("pdfjs/issue5540.pdf", "ἄγγελος"),  # polytonic Greek
        ("pypdf_sample_files/habibi.pdf", "حَبيبي"),  # Arabic with harakat
        ("pdfjs/ArabicCIDTrueType.pdf", "العربية"),
        ("pdfjs/issue6132.pdf", "Efficient Arithmetic in Finite Field"),  # "ﬃ"/"ﬁ" expanded
    ],
)
def test_script_text_is_searchable(pdf_dir, name, expected):
    res = extract(pdf_dir / name)
    assert res.ok, res.detail
    assert expected in "".join(p.text for p in res.pages)


def test_shift_jis_cmap_sample_keeps_its_ascii(pdf_dir):
    # MuPDF 1.28 cannot map the 90ms-RKSJ-H kanji of this file (font descriptor missing): the
    # Latin part is indexed and the unmapped glyphs are reported rather than faked.
    res = extract(pdf_dir / "pdfjs/90ms_rksj_h_sample.pdf")
    assert res.ok
    assert "Hello ASCII" in res.pages[0].text
    assert any("no Unicode mapping" in w for w in res.warnings)


def test_arabic_pdfs_use_base_letters_not_presentation_forms(corpus_run):
    for name, res in _by_category(corpus_run, "text_arabic").items():
        text = "".join(p.text for p in res.pages)
        assert any("\u0600" <= ch <= "\u06ff" for ch in text), name
        forms = [ch for ch in text if "\ufb50" <= ch <= "\ufdff" or "\ufe70" <= ch <= "\ufefe"]
        assert forms == [], name


def _pdf_with_tounicode(content: bytes, mapping: dict[int, str]) -> bytes:
    """A one-page PDF whose Helvetica font maps byte codes to the given Unicode strings."""
    cmap = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def /CMapType 2 def\n"
        "1 begincodespacerange <00> <FF> endcodespacerange\n"
        f"{len(mapping)} beginbfchar\n"
        + "".join(f"<{code:02X}> <{text.encode('utf-16-be').hex().upper()}>\n"
                  for code, text in mapping.items())
        + "endbfchar endcmap CMapName currentdict /CMap defineresource pop end end\n"
    ).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding "
        b"/ToUnicode 6 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(cmap), cmap),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def test_presentation_forms_and_ligatures_become_typeable_text(tmp_path):
    # Glyphs laid out left to right in visual order, as Arabic PDFs do; the font's ToUnicode
    # maps them to presentation forms (seen initial, lam medial, alef final, meem isolated,
    # lam-alef ligature) and to the "ﬁ" ligature.
    mapping = {0x61: "\ufeb3", 0x62: "\ufee0", 0x63: "\ufe8e", 0x64: "\ufee1", 0x65: "\ufefb",
               0x66: "\ufb01", 0x67: "x"}
    content = b"BT /F1 12 Tf 72 720 Td (dcba) Tj 0 -20 Td (e) Tj 0 -20 Td (gfg) Tj ET"
    path = tmp_path / "arabic.pdf"
    path.write_bytes(_pdf_with_tounicode(content, mapping))
    res = extract(path)
    assert res.ok, res.detail
    text = res.pages[0].text
    assert "سلام" in text
    assert "لا" in text
    assert "xfix" in text
    assert not any(unicodedata.name(ch, "").endswith(("FORM", "LIGATURE FI")) for ch in text)


# --------------------------------------------------------------------------------------------
# 4. Text files and encodings
# --------------------------------------------------------------------------------------------


def _udhr(lang: str, max_chars: int = 1500) -> str:
    """The first lines of a UDHR translation, cut at a line end."""
    path = _require(_corpus_root() / "multilingual_text_udhr" / "udhr2" / f"{lang}.txt")
    text = path.read_text(encoding="utf-8")
    cut = text.rfind("\n", 0, max_chars)
    return text[:cut + 1]


_CASE_IDS = {b"": "nobom", "\n": "lf", "\r\n": "crlf"}
FRENCH_EXTRA = "Un café naïve – “quotes” et l’œuvre coûte 5 €.\n"


@pytest.mark.parametrize(
    ("lang", "encoding", "bom", "newline"),
    [
        ("eng", "utf-8", b"", "\n"),
        ("fra", "utf-8", codecs.BOM_UTF8, "\r\n"),
        ("arb", "utf-16-le", codecs.BOM_UTF16_LE, "\n"),
        ("cmn_hans", "utf-16-be", codecs.BOM_UTF16_BE, "\r\n"),
        ("rus", "utf-32-le", codecs.BOM_UTF32_LE, "\n"),
        ("fra", "utf-16-le", b"", "\n"),  # no BOM: byte order from the NUL pattern
        ("cmn_hans", "gb18030", b"", "\n"),
        ("jpn", "shift_jis", b"", "\r\n"),
        ("fra", "cp1252", b"", "\r\n"),
        ("rus", "cp1251", b"", "\n"),
        ("rus", "koi8_r", b"", "\n"),
    ],
    ids=lambda v: _CASE_IDS.get(v, "bom") if isinstance(v, bytes) else _CASE_IDS.get(v, v),
)
def test_text_file_encodings_round_trip(tmp_path, lang, encoding, bom, newline):
    original = _udhr(lang)
    if lang == "fra":
        original += FRENCH_EXTRA
    path = tmp_path / f"{lang}-{encoding}.txt"
    path.write_bytes(bom + original.replace("\n", newline).encode(encoding))
    res = extract(path)
    assert res.ok, res.detail
    assert res.kind == "text" and res.page_count == 1
    assert res.pages == (Page(number=None, text=original),)


def test_damaged_bytes_after_a_bom_are_replaced_not_fatal(tmp_path):
    path = tmp_path / "damaged.txt"
    path.write_bytes(codecs.BOM_UTF8 + "Résumé of the meeting\n".encode() + b"\xff\xfe tail\n")
    res = extract(path)
    assert res.ok
    assert res.pages[0].text.startswith("Résumé of the meeting\n")
    assert "tail" in res.pages[0].text
    assert any("replaced" in w for w in res.warnings)


def test_text_file_cleaning_keeps_words_and_drops_controls(tmp_path):
    path = tmp_path / "notes.md"
    path.write_bytes(b"# Title\r\nold mac line\rnul\x00l byte\x07 here\n\tindented\n")
    res = extract(path)
    assert res.ok
    assert res.pages[0].text == "# Title\nold mac line\nnull byte here\n\tindented\n"


def test_symlinked_text_file_is_followed(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("Quarterly report on river levels.\n", encoding="utf-8")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    res = extract(link)
    assert res.ok and res.pages[0].text == "Quarterly report on river levels.\n"
    assert res.path == link


def test_supported_extensions():
    assert is_supported(Path("Report.PDF"))
    assert is_supported(Path("notes.Md"))
    assert is_supported(Path("src/main.rs"))
    assert not is_supported(Path("archive.xyz"))
    assert not is_supported(Path("Makefile"))
    assert registry.extensions("pdf") == frozenset({".pdf"})
    assert {".txt", ".py", ".json", ".tex", ".pl"} <= registry.extensions("text")
    assert all(e.startswith(".") and e == e.lower() for e in registry.extensions())


# --------------------------------------------------------------------------------------------
# 5. Failures are values
# --------------------------------------------------------------------------------------------


def test_binary_junk_named_txt_is_rejected(tmp_path):
    path = tmp_path / "junk.txt"
    path.write_bytes(random.Random(0).randbytes(20_000))
    res = extract(path)
    assert not res.ok
    assert res.reason in ("decode_error", "unsupported")
    assert res.pages == ()


def test_nul_padded_binary_that_is_valid_utf8_is_not_indexed(tmp_path):
    # Fixed-width binary records (all bytes < 0x80, so strict UTF-8 would accept them).
    records = b"".join(struct.pack("<I16s", i, b"item%d" % i) for i in range(100))
    path = tmp_path / "export.json"
    path.write_bytes(records)
    res = extract(path)
    assert (res.ok, res.reason) == (False, "unsupported")
    assert "binary" in res.detail


def test_unknown_extension_is_unsupported(tmp_path):
    path = tmp_path / "data.xyz"
    path.write_text("plain words", encoding="utf-8")
    res = extract(path)
    assert (res.ok, res.reason) == (False, "unsupported")
    assert ".xyz" in res.detail


@pytest.mark.parametrize("content", [b"", b"  \r\n\t\n "])
def test_empty_text_file_is_no_text(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    res = extract(path)
    assert (res.ok, res.reason) == (False, "no_text")
    assert "empty" in res.detail


def test_empty_pdf_file_is_reported_not_raised(tmp_path):
    path = tmp_path / "empty.pdf"
    path.write_bytes(b"")
    res = extract(path)
    assert not res.ok and res.reason in ("no_text", "corrupt")


@pytest.mark.parametrize("name", ["big.txt", "big.pdf"])
def test_file_over_size_limit_is_too_large_and_not_read(tmp_path, monkeypatch, name):
    path = tmp_path / name
    path.write_bytes(b"x" * 2000)

    def must_not_read(*args, **kwargs):
        raise AssertionError("a too-large file must not be read")

    monkeypatch.setattr(extract_mod, "_read_bytes", must_not_read)
    res = extract(path, max_bytes=1000)
    assert (res.ok, res.reason) == (False, "too_large")
    assert "limit" in res.detail


@pytest.mark.parametrize("name", ["secret.txt", "secret.pdf"])
def test_permission_denied_is_reported(tmp_path, monkeypatch, name):
    path = tmp_path / name
    path.write_bytes(b"%PDF-1.4\n" if name.endswith(".pdf") else b"private notes\n")

    def denied(p, limit):
        raise PermissionError(13, "Permission denied", str(p))

    # Running as root, chmod would not stop the read; simulate what a normal user would get.
    monkeypatch.setattr(extract_mod, "_read_bytes", denied)
    res = extract(path)
    assert (res.ok, res.reason) == (False, "permission_denied")
    assert "permission denied" in res.detail.lower()


def test_missing_file_and_folder_are_values(tmp_path):
    gone = extract(tmp_path / "deleted.txt")
    assert (gone.ok, gone.reason) == (False, "corrupt")
    assert "disappeared" in gone.detail
    folder = tmp_path / "folder.pdf"
    folder.mkdir()
    res = extract(folder)
    assert (res.ok, res.reason) == (False, "unsupported")


def test_random_bytes_pdf_is_corrupt(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(random.Random(1).randbytes(5000))
    res = extract(path)
    assert (res.ok, res.reason, res.page_count) == (False, "corrupt", 0)
    assert res.detail


def _write_pdf(path: Path, page_texts: list[str], **save_options) -> Path:
    doc = pymupdf.open()
    for text in page_texts:
        page = doc.new_page()
        if text:
            page.insert_text((72, 72), text)
    doc.save(path, **save_options)
    doc.close()
    return path


def test_user_password_pdf_is_encrypted(tmp_path):
    path = _write_pdf(tmp_path / "locked.pdf", ["Merger plans for next year"],
                      encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="secret", owner_pw="boss")
    digest = _sha256(path)
    res = extract(path)
    assert (res.ok, res.reason) == (False, "encrypted")
    assert "password" in res.detail and "AES-256" in res.detail
    assert _sha256(path) == digest


def test_owner_password_only_pdf_is_readable(tmp_path):
    path = _write_pdf(tmp_path / "restricted.pdf", ["Merger plans for next year"],
                      encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="boss",
                      permissions=pymupdf.PDF_PERM_PRINT)
    res = extract(path)
    assert res.ok
    assert "Merger plans for next year" in res.pages[0].text


def test_blank_middle_page_is_skipped_and_reported(tmp_path):
    path = _write_pdf(tmp_path / "three.pdf", ["Alpha page text", "", "Gamma page text"])
    res = extract(path)
    assert res.ok and res.reason is None
    assert res.page_count == 3
    assert [p.number for p in res.pages] == [1, 3]
    assert "Alpha" in res.pages[0].text and "Gamma" in res.pages[1].text
    assert any("page 2 " in w for w in res.warnings)
    assert "1 of 3" in res.detail


def test_all_blank_pdf_is_no_text(tmp_path):
    path = _write_pdf(tmp_path / "blank.pdf", ["", "", ""])
    res = extract(path)
    assert (res.ok, res.reason, res.page_count) == (False, "no_text", 3)
    assert "3 pages" in res.detail


def test_page_that_fails_is_skipped_with_warning(tmp_path, monkeypatch):
    path = _write_pdf(tmp_path / "four.pdf", ["one", "two", "three", "four"])
    real_get_text = pymupdf.Page.get_text

    def flaky(self, *args, **kwargs):
        if self.number == 2:
            raise RuntimeError("simulated content stream error")
        return real_get_text(self, *args, **kwargs)

    monkeypatch.setattr(pymupdf.Page, "get_text", flaky)
    res = extract(path)
    assert res.ok
    assert [p.number for p in res.pages] == [1, 2, 4]
    assert any("page 3 could not be read" in w and "simulated" in w for w in res.warnings)


# --------------------------------------------------------------------------------------------
# 6. Time limit
# --------------------------------------------------------------------------------------------


def test_time_limit_stops_a_long_pdf(tmp_path):
    path = _write_pdf(tmp_path / "long.pdf", [f"Section {i}" for i in range(1, 6)])
    res = extract(path, time_limit_s=0)
    assert (res.ok, res.reason) == (False, "timeout")
    assert res.pages == ()
    assert res.page_count == 5
    assert "of 5 pages" in res.detail and "time limit" in res.detail
    assert extract(path).ok
