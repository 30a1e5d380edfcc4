"""OCR of scanned PDFs and images: words found at the right page, highlighted on the preview image, recognised
once (the cache answers every later run), turned off with the setting; the shared corpus's scans.

The scans are made the way a scanner makes them: known text is drawn on a page, the page is rendered to pixels,
and the pixels become the only content of an image-only PDF page (no text layer).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
from pathlib import Path

import pymupdf
import pytest

from desktop_search.config import load_settings
from desktop_search.core.extract import ExtractOptions, extract, registry
from desktop_search.core.indexer import Indexer
from desktop_search.core.isolate import ExtractorPool
from desktop_search.core.render import render_pdf_page
from desktop_search.core.search import Searcher
from desktop_search.core.store import Store

SCANNED_LINES = [
    "Inspection report of the northern lighthouse",
    "The keeper counted ninety gannets on the cliff",
    "灯塔看守人写了关于北方鲣鸟的文章",
]


def _scan(lines: list[str], dpi: int = 150) -> pymupdf.Pixmap:
    """Pixels of an A5 page with ``lines`` drawn on it (the 'paper' a scanner sees)."""
    paper = pymupdf.open()
    page = paper.new_page(width=420, height=595)
    page.insert_font(fontname="cjk", fontbuffer=pymupdf.Font("cjk").buffer)
    for i, line in enumerate(lines):
        page.insert_text((40, 80 + 40 * i), line, fontsize=14, fontname="cjk")
    return page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)


def make_scanned_pdf(path: Path, text_page: str, lines: list[str]) -> Path:
    """Page 1 has a text layer; page 2 is only an image of ``lines``."""
    doc = pymupdf.open()
    first = doc.new_page(width=420, height=595)
    first.insert_textbox(pymupdf.Rect(40, 40, 380, 500), text_page, fontsize=12)
    second = doc.new_page(width=420, height=595)
    second.insert_image(second.rect, pixmap=_scan(lines))
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(str(path))
    return path


@pytest.fixture
def scanned(tmp_path) -> Path:
    return make_scanned_pdf(tmp_path / "docs" / "scan.pdf", "A typed cover page about the harbour.", SCANNED_LINES)


def test_scanned_page_is_recognised_once_and_found_at_its_page(tmp_path, scanned):
    cache = tmp_path / "ocr-cache"
    before = hashlib.sha256(scanned.read_bytes()).hexdigest()
    first = extract(scanned, ExtractOptions(ocr_cache_dir=str(cache)))
    assert first.ok and first.ocr_pages == 1 and first.ocr_cached == 0
    by_page = {p.number: p.text for p in first.pages}
    assert "harbour" in by_page[1]
    assert "gannets" in by_page[2] and "lighthouse" in by_page[2] and "灯塔看守人" in by_page[2]
    assert "OCR" in first.detail
    again = extract(scanned, ExtractOptions(ocr_cache_dir=str(cache)))
    assert again.ocr_pages == 0 and again.ocr_cached == 1  # the engine did not run
    assert again.pages == first.pages
    off = extract(scanned, ExtractOptions(ocr=False))
    assert off.ok and [p.number for p in off.pages] == [1] and "no text layer" in " ".join(off.warnings)
    assert hashlib.sha256(scanned.read_bytes()).hexdigest() == before


def test_indexed_scan_is_searchable_highlighted_and_never_ocrd_twice(tmp_path, scanned):
    settings = load_settings(index_dir=tmp_path / "index", model_dir=tmp_path / "no-model", extract_workers=1,
                             ocr_cache_dir=tmp_path / "ocr-cache")
    store = Store(settings.index_dir)
    pool = ExtractorPool(1)
    notes: list[str] = []
    try:
        indexer = Indexer(store, settings, None, extractor=pool)
        report = indexer.index([scanned.parent], progress=lambda p: p.note and notes.append(p.note))
        assert report.indexed == 1 and report.ocr_pages == 1
        assert "scan.pdf: OCR page 1/1" in notes
        hits = Searcher(store, None).search("gannets", mode="keyword").hits
        assert [(Path(h.path).name, h.page) for h in hits] == [("scan.pdf", 2)]
        rendered = render_pdf_page(scanned, 2, terms=["gannets"], passage=hits[0].text,
                                   ocr_cache_dir=settings.ocr_cache_dir)
        assert len(rendered.term_rects) == 1
        x0, y0, x1, y1 = rendered.term_rects[0]
        zoom = rendered.width / 420
        # "gannets" was drawn on the second line (baseline y=120 pt) right of the middle of the line.
        assert 95 * zoom < y0 < y1 < 130 * zoom and 150 * zoom < x0 < x1 < 380 * zoom
        assert rendered.passage_rects
        # A copy under another name, and a full rebuild: the text is read again, the page is not recognised again.
        shutil.copy(scanned, scanned.parent / "copy.pdf")
        report = indexer.index([scanned.parent])
        assert report.indexed == 1 and report.ocr_pages == 0 and report.ocr_cached == 1
        Store(settings.index_dir).delete_files(list(store.file_records()))
        report = Indexer(Store(settings.index_dir), settings, None, extractor=pool).index([scanned.parent])
        assert report.indexed == 2 and report.ocr_pages == 0 and report.ocr_cached == 2
    finally:
        pool.close()


def test_a_page_whose_text_layer_is_garbage_is_previewed_from_what_ocr_read(tmp_path):
    # A bad OCR layer over a scan (symbols, not language): the page is indexed from OCR, and the preview must mark
    # the words where OCR found them and show the recognised text, not search the garbage layer.
    path = tmp_path / "docs" / "bad-layer.pdf"
    path.parent.mkdir()
    doc = pymupdf.open()
    page = doc.new_page(width=420, height=595)
    page.insert_image(page.rect, pixmap=_scan(SCANNED_LINES[:2]))
    page.insert_textbox(pymupdf.Rect(40, 300, 380, 560), " ".join(["#%&*@ 17!$ ~^|=;"] * 20), fontsize=10,
                        render_mode=3)  # invisible, as an OCR layer is
    doc.save(str(path))
    cache = tmp_path / "ocr-cache"
    res = extract(path, ExtractOptions(ocr_cache_dir=str(cache)))
    assert res.ok and res.ocr_pages == 1 and "gannets" in res.pages[0].text
    rendered = render_pdf_page(path, 1, terms=["gannets"], passage=res.pages[0].text, ocr_cache_dir=cache)
    assert len(rendered.term_rects) == 1 and rendered.passage_rects
    zoom = rendered.width / 420
    x0, y0, x1, y1 = rendered.term_rects[0]
    assert 95 * zoom < y0 < y1 < 130 * zoom and 150 * zoom < x0 < x1 < 380 * zoom  # second line, right half
    assert "gannets" in rendered.text and "#%&*@" not in rendered.text


def test_images_are_ocrd_including_every_page_of_a_tiff(tmp_path):
    from PIL import Image

    cache = str(tmp_path / "cache")
    pix = _scan(["The albatross glides over the harbour"])
    png = tmp_path / "note.png"
    pix.save(str(png))
    res = extract(png, ExtractOptions(ocr_cache_dir=cache))
    assert res.kind == "image" and res.ok and "albatross" in res.pages[0].text
    assert registry.for_path(png).preview == "page"
    frames = [Image.open(io.BytesIO(_scan([line]).tobytes("png"))) for line in ("first page puffins", "second page ospreys")]
    tiff = tmp_path / "fax.tiff"
    frames[0].save(tiff, save_all=True, append_images=frames[1:])
    res = extract(tiff, ExtractOptions(ocr_cache_dir=cache))
    assert res.ok and res.page_count == 2
    assert [p.number for p in res.pages if "ospreys" in p.text] == [2]
    webp = tmp_path / "photo.webp"
    frames[0].save(webp, "WEBP", lossless=True)
    res = extract(webp, ExtractOptions(ocr_cache_dir=cache))
    assert res.ok and "puffins" in res.pages[0].text
    off = extract(png, ExtractOptions(ocr=False))
    assert not off.ok and off.reason == "no_text" and "OCR is turned off" in off.detail


def _corpus_root() -> Path:
    env = os.environ.get("DESKTOP_SEARCH_SHARED_CORPUS")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


def test_text_drawn_as_outlines_is_recognised_and_a_blank_page_costs_no_ocr(tmp_path):
    # ocrmypdf/vector.pdf: its sentences are vector curves (no font, no image); a user sees text and expects it found.
    pdfs = _corpus_root() / "pdfs"
    cache = str(tmp_path / "cache")
    res = extract(pdfs / "ocrmypdf/vector.pdf", ExtractOptions(ocr_cache_dir=cache))
    assert res.ok and res.ocr_pages == 1, (res.reason, res.detail)
    assert "OCR processing" in " ".join(res.pages[0].text.split())
    blank = extract(pdfs / "ocrmypdf/blank.pdf", ExtractOptions(ocr_cache_dir=cache))
    assert blank.reason == "no_text" and blank.ocr_pages == 0  # nothing drawn: not worth a recognition pass
    assert "the only page is blank" in blank.detail  # and not called a scan OCR could not read


# A sample of the shared corpus's Latin-script scans (each page costs seconds of CPU): a brochure page (with its
# fax-coded and JBIG2 versions' sibling), a French page with diacritics and an English article printed and
# scanned. The whole category is checked by benchmarks/check_scanned_corpus.py (figures in benchmarks/README.md).
CORPUS_SCANS = {
    "ocrmypdf/linn.pdf": "sequencer",
    "ocrmypdf/francais.pdf": "",
    "ocrmypdf/epson.pdf": "",
}


@pytest.mark.slow
def test_shared_corpus_scans_are_indexed_where_latin(tmp_path):
    pdfs = _corpus_root() / "pdfs"
    with open(pdfs / "manifest.tsv", encoding="utf-8", newline="") as fh:
        rows = {r["filename"]: r for r in csv.DictReader(fh, delimiter="\t")}
    cache = str(tmp_path / "cache")
    for name, word in CORPUS_SCANS.items():
        assert rows[name]["category"] == "scanned_image_only", name
        assert not extract(pdfs / name, ExtractOptions(ocr=False)).ok, name
        res = extract(pdfs / name, ExtractOptions(ocr_cache_dir=cache))
        assert res.ok, (name, res.reason, res.detail)
        text = " ".join(p.text for p in res.pages)
        assert sum(ch.isalpha() for ch in text) > 100, (name, text[:200])
        assert word in text.lower(), (name, text[:300])
