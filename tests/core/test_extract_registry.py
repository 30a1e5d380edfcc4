"""The extractor registry: one place decides a file's kind, where it is read, and how its positions are shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from desktop_search.core.extract import extract, registry
from tests.conftest import REPO, make_pdf


def test_every_extension_has_one_reader_and_every_kind_a_label():
    seen: dict[str, str] = {}
    for ex in registry.extractors():
        assert ex.kind in registry.KIND_LABELS, ex.name
        assert ex.preview in ("page", "text"), ex.name
        for ext in ex.extensions:
            assert ext.startswith(".") and ext == ext.lower(), ext
            assert ext not in seen, f"{ext}: {seen[ext]} and {ex.name}"
            seen[ext] = ex.name
    assert registry.for_path("Report.PDF").name == "pdf"
    assert registry.for_path("/a.b/Makefile") is None
    assert registry.kind_of("notes.md") == "text" and registry.kind_of("x.unknown") == "other"


def test_filters_preview_and_opener_facts_come_from_the_registry():
    choices = dict(registry.filter_choices())
    assert choices["PDF"] == ("pdf",) and choices["Text"] == ("text",)
    pdf = registry.for_path("a.pdf")
    assert pdf.isolated and pdf.preview == "page" and pdf.viewer_pages and pdf.position == "page"
    text = registry.for_path("a.txt")
    assert not text.isolated and text.preview == "text" and text.position == ""
    assert registry.runs_isolated("x.pdf") and not registry.runs_isolated("x.py")


def test_the_content_decides_when_the_extension_lies(tmp_path):
    # A PDF saved under a name of another isolated kind is still read as a PDF when its bytes say so.
    pdf_bytes = make_pdf(tmp_path / "real.pdf", ["Lighthouse keepers log the weather."]).read_bytes()
    for ex in registry.extractors():
        if not ex.isolated or ex.name == "pdf" or not (ex.signatures or ex.sniff):
            continue
        disguised = tmp_path / f"disguised{ex.extensions[0]}"
        disguised.write_bytes(pdf_bytes)
        res = extract(disguised)
        assert res.ok and "Lighthouse" in res.pages[0].text, ex.name


def test_unknown_extension_fails_as_unsupported_without_reading(tmp_path):
    res = extract(tmp_path / "archive.xyz")
    assert not res.ok and res.reason == "unsupported" and "'.xyz'" in res.detail


def test_asking_the_registry_imports_no_reader_library():
    code = (
        "import sys; from desktop_search.core.extract import registry; registry.extractors();"
        "registry.filter_choices(); registry.for_path('a.pdf');"
        "heavy = [m for m in ('pymupdf', 'fitz', 'docx', 'pptx', 'python_calamine', 'rapidocr_onnxruntime', 'cv2',"
        " 'PySide6') if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_estimate_uses_each_readers_ratio_and_counts_ocr_of_images(tmp_path):
    from desktop_search.core import hardware

    (tmp_path / "notes.txt").write_text("word " * 2000)
    (tmp_path / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(10_000))
    (tmp_path / "archive.xyz").write_bytes(bytes(10_000))  # no reader: not counted
    with_ocr = hardware.estimate([tmp_path], 1000.0, cpu_cores=2)
    without = hardware.estimate([tmp_path], 1000.0, cpu_cores=2, ocr=False)
    assert with_ocr.files == 2 and with_ocr.ocr_pages == 1 and without.ocr_pages == 0
    assert with_ocr.tokens == int(10_000 * 0.25 + 10_008 * registry.for_path("a.png").tokens_per_byte)
    assert with_ocr.seconds - without.seconds == hardware.OCR_CORE_SECONDS_PER_PAGE / 2
    assert "OCR of ≈ 1 images" in with_ocr.describe()
