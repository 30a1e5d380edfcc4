"""Hit -> what the preview shows: a page rendered to pixels with the rectangles to highlight, or the passage
in its surrounding text (a text file, a slide, a sheet, a section: whatever the extractor registry says the
file's preview is).

Pure PyMuPDF/Python (no Qt): the GUI turns the RGB samples into an image off the GUI thread. Documents are
opened read-only from bytes and never saved, so previewing cannot modify a user's file.
"""

from __future__ import annotations

from bisect import bisect_right
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from desktop_search.core.extract import extract, runs_isolated
from desktop_search.core.highlight import highlight_spans


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
    zoom: float = 1.0  # pixels per PDF point
    text: str = ""  # the page's text, for the text view (terms marked by the viewer)


@dataclass
class TextContext:
    path: str
    before: str
    passage: str
    after: str


MIN_ZOOM, MAX_ZOOM = 0.25, 6.0
PROTECTED = "the document is password-protected"  # the error a preview of a locked file reports
Rect = tuple[float, float, float, float]  # x0, y0, x1, y1


@contextmanager
def _document(path: str | Path, passwords: Sequence[str] = ()) -> Iterator[Any]:
    from desktop_search.core.extract.pdf import MUPDF_LOCK, open_document, unlock

    data = Path(path).read_bytes()
    with MUPDF_LOCK, open_document(data, Path(path).suffix.lower().lstrip(".") or "pdf") as doc:
        if not unlock(doc, passwords):
            raise ValueError(PROTECTED)
        yield doc


def term_boxes(pg: Any, terms: Sequence[str]) -> list[tuple[float, float, float, float]]:
    """Boxes (PDF points) of the page's words that the highlight rule marks for ``terms``: whole words, and parts
    of a word only where the script has no spaces (the span's share of the word box)."""
    words = pg.get_text("words", sort=True)
    if not words or not terms:
        return []
    starts, parts, pos = [], [], 0
    for w in words:
        starts.append(pos)
        parts.append(w[4])
        pos += len(w[4]) + 1
    boxes = []
    for a, b in highlight_spans(" ".join(parts), terms):
        i = bisect_right(starts, a) - 1
        while i < len(words) and starts[i] < b:
            x0, y0, x1, y1, text = words[i][:5]
            lo, hi = max(a - starts[i], 0), min(b - starts[i], len(text))
            if hi > lo and text:
                w = (x1 - x0) / len(text)
                boxes.append((x0 + lo * w, y0, x0 + hi * w, y1))
            i += 1
    return boxes


def pages_with_hits(path: str | Path, terms: Sequence[str],
                    indexed: Iterable[tuple[int | None, str]] = (), passwords: Sequence[str] = ()) -> list[int]:
    """1-based numbers of the pages where the highlight rule marks something, for next/previous hit: in the text
    layer, and in the file's ``indexed`` passages ((page, text) as the index holds them), which have what OCR read
    on pages without a readable layer (recognising those pages again here would take seconds each)."""
    if not terms:
        return []
    pages = {page for page, text in indexed if page and highlight_spans(" ".join(text.split()), terms)}
    with _document(path, passwords) as doc:
        pages |= {i + 1 for i, pg in enumerate(doc) if highlight_spans(" ".join(pg.get_text().split()), terms)}
        return sorted(p for p in pages if p <= doc.page_count)


def render_pdf_page(
    path: str | Path, page: int, *, terms: Sequence[str] = (), passage: str = "", zoom: float = 1.5,
    fit_width: int | None = None, fit_height: int | None = None, ocr_cache_dir: str | Path | None = None,
    passwords: Sequence[str] = (),
) -> RenderedPage:
    """Render page ``page`` (1-based, clamped to the document) and locate the terms and the passage on it.
    With ``fit_width`` (pixels) the zoom is chosen so the page fills that width; with ``fit_height`` as well, so
    that the whole page fits. Highlight boxes are in the rendered image's pixels at whatever zoom. A page whose
    text came from OCR (no text layer, or one that is not language: the extractor's rule) is searched in what the OCR
    cache kept for it: its words located by their boxes, and the page's text is the recognised text."""
    from desktop_search.core.extract.pdf import page_layer, pymupdf_module, unreadable_layer

    pymupdf = pymupdf_module()
    with _document(path, passwords) as doc:
        count = doc.page_count
        number = min(max(1, page), count)
        pg = doc[number - 1]
        if fit_width:
            zoom = fit_width / max(pg.rect.width, 1)
            if fit_height:
                zoom = min(zoom, fit_height / max(pg.rect.height, 1))
        zoom = max(MIN_ZOOM, min(MAX_ZOOM, zoom))
        pix = pg.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False)

        def scaled(rects: Iterable[Any]) -> list[tuple[float, float, float, float]]:
            return [(r[0] * zoom, r[1] * zoom, r[2] * zoom, r[3] * zoom) for r in rects]

        passage_lines = [ln.strip() for ln in passage.splitlines() if len(ln.strip()) >= 8][:60]
        recognised = _recognised(pg, ocr_cache_dir) if unreadable_layer(page_layer(pg)) else None
        if recognised is not None:
            term_rects, passage_rects = _ocr_rects(recognised, terms, passage_lines, zoom)
            text = recognised.text
        else:
            term_rects = scaled(term_boxes(pg, terms))
            passage_rects = []
            # The passage is located line by line: a chunk spans many lines and search_for works within lines.
            for line in passage_lines:
                passage_rects.extend(scaled(pg.search_for(line[:80])))
            text = pg.get_text(sort=True)
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
            zoom=zoom,
            text=text,
        )


def _recognised(pg: Any, cache_dir: str | Path | None) -> Any:  # OcrPage | None
    """What OCR read on this page when it was indexed (None: it never was)."""
    from desktop_search.config import default_cache_dir
    from desktop_search.core.extract.ocr import cached_page

    return cached_page(pg, str(cache_dir or default_cache_dir() / "ocr"))[0]


def _ocr_rects(recognised: Any, terms: Sequence[str], passage_lines: list[str],
               zoom: float) -> tuple[list[Rect], list[Rect]]:
    def scaled(boxes: Iterable[tuple[float, float, float, float]]) -> list[Rect]:
        return [(x0 * zoom, y0 * zoom, x1 * zoom, y1 * zoom) for x0, y0, x1, y1 in boxes]

    term_rects = [r for t in terms if len(t.strip()) >= 2 for r in scaled(recognised.find(t))]
    wanted = set(passage_lines)
    passage_rects = scaled([ln.box for ln in recognised.lines if ln.text.strip() in wanted])
    return term_rects, passage_rects


def text_context(
    path: str | Path, char_start: int, char_end: int, *, page: int | None = None, context_chars: int = 1500,
    member: str | None = None,
) -> TextContext:
    """The passage at ``page`` (a position number; None for a one-position file) with up to ``context_chars``
    of its text before and after it; ``member``: in that document inside the file (a message's attachment).
    Kinds read in the isolated pool are read there for the preview too."""
    path = Path(path)
    if runs_isolated(path):
        from desktop_search.core.isolate import shared_pool

        ex = shared_pool().extract(path)
    else:
        ex = extract(path)
    if member is not None and ex.ok:
        inner = next((m.extraction for m in ex.members if m.name == member), None)
        if inner is None:
            raise ValueError(f"{member} is no longer in the file")
        ex = inner
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
