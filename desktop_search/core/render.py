"""Hit -> what the preview shows: a page rendered to pixels with the rectangles to highlight, or the passage
in its surrounding text (a text file, a slide, a sheet, a section: whatever the extractor registry says the
file's preview is).

Pure PyMuPDF/Python (no Qt): the GUI turns the RGB samples into an image off the GUI thread. Documents are
opened read-only from bytes and never saved, so previewing cannot modify a user's file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from desktop_search.core.extract import extract, runs_isolated


@dataclass
class RenderedPage:
    path: str
    page: int  # 1-based
    page_count: int
    width: int
    height: int
    stride: int
    samples: bytes  # RGB888
    term_rects: list[tuple[float, float, float, float]] = field(default_factory=list)  # pixel coords
    passage_rects: list[tuple[float, float, float, float]] = field(default_factory=list)


@dataclass
class TextContext:
    path: str
    before: str
    passage: str
    after: str


def render_pdf_page(
    path: str | Path, page: int, *, terms: list[str] = (), passage: str = "", zoom: float = 1.5,
    fit_width: int | None = None, ocr_cache_dir: str | Path | None = None,
) -> RenderedPage:
    """Render page ``page`` (1-based, clamped to the document) and locate the terms and the passage on it.
    With ``fit_width`` (pixels) the zoom is chosen so the page fills that width. A page whose text came from
    OCR has no text layer to search: its words are located with the boxes the OCR cache kept for it."""
    from desktop_search.core.extract.pdf import MUPDF_LOCK, open_document, pymupdf_module

    pymupdf = pymupdf_module()
    data = Path(path).read_bytes()
    with MUPDF_LOCK, open_document(data, Path(path).suffix.lower().lstrip(".") or "pdf") as doc:
        if doc.needs_pass and not doc.authenticate(""):
            raise ValueError("the document is password-protected")
        count = doc.page_count
        number = min(max(1, page), count)
        pg = doc[number - 1]
        if fit_width:
            zoom = max(0.3, min(4.0, fit_width / max(pg.rect.width, 1)))
        pix = pg.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False)

        def scaled(rects) -> list[tuple[float, float, float, float]]:
            return [(r.x0 * zoom, r.y0 * zoom, r.x1 * zoom, r.y1 * zoom) for r in rects]

        term_rects = []
        for t in terms:
            if len(t.strip()) >= 2:
                term_rects.extend(scaled(pg.search_for(t)))
        passage_rects = []
        # The passage is located line by line: a chunk spans many lines and search_for works within lines.
        passage_lines = [ln.strip() for ln in passage.splitlines() if len(ln.strip()) >= 8][:60]
        for line in passage_lines:
            passage_rects.extend(scaled(pg.search_for(line[:80])))
        if not term_rects and not passage_rects and not pg.get_text("text").strip():
            term_rects, passage_rects = _ocr_rects(pg, terms, passage_lines, zoom, ocr_cache_dir)
        return RenderedPage(
            path=str(path),
            page=number,
            page_count=count,
            width=pix.width,
            height=pix.height,
            stride=pix.stride,
            samples=bytes(pix.samples),
            term_rects=term_rects,
            passage_rects=passage_rects,
        )


def _ocr_rects(pg, terms, passage_lines, zoom, cache_dir) -> tuple[list, list]:
    from desktop_search.config import default_cache_dir
    from desktop_search.core.extract.ocr import cached_page

    recognised, _ = cached_page(pg, str(cache_dir or default_cache_dir() / "ocr"))
    if recognised is None:
        return [], []

    def scaled(boxes) -> list[tuple[float, float, float, float]]:
        return [(x0 * zoom, y0 * zoom, x1 * zoom, y1 * zoom) for x0, y0, x1, y1 in boxes]

    term_rects = [r for t in terms if len(t.strip()) >= 2 for r in scaled(recognised.find(t))]
    wanted = set(passage_lines)
    passage_rects = scaled([ln.box for ln in recognised.lines if ln.text.strip() in wanted])
    return term_rects, passage_rects


def text_context(
    path: str | Path, char_start: int, char_end: int, *, page: int | None = None, context_chars: int = 1500
) -> TextContext:
    """The passage at ``page`` (a position number; None for a one-position file) with up to ``context_chars``
    of its text before and after it. Kinds read in the isolated pool are read there for the preview too."""
    path = Path(path)
    if runs_isolated(path):
        from desktop_search.core.isolate import shared_pool

        ex = shared_pool().extract(path)
    else:
        ex = extract(path)
    if not ex.ok or not ex.pages:
        raise ValueError(ex.detail or "the file can no longer be read")
    found = next((p for p in ex.pages if p.number == page), None)
    if found is None:
        if page is not None:
            raise ValueError(f"position {page} is no longer in the file")
        found = ex.pages[0]
    text = found.text
    a, b = max(0, char_start), min(len(text), char_end)
    return TextContext(str(path), text[max(0, a - context_chars) : a], text[a:b], text[b : b + context_chars])
