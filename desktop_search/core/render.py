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
    fit_width: int | None = None,
) -> RenderedPage:
    """Render page ``page`` (1-based, clamped to the document) and locate the terms and the passage on it.
    With ``fit_width`` (pixels) the zoom is chosen so the page fills that width."""
    import pymupdf

    data = Path(path).read_bytes()
    with pymupdf.open(stream=data, filetype="pdf") as doc:
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
        for line in [ln.strip() for ln in passage.splitlines() if len(ln.strip()) >= 8][:60]:
            passage_rects.extend(scaled(pg.search_for(line[:80])))
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
