"""E-books and other documents MuPDF lays out: EPUB and FictionBook by chapter, XPS and comic books by page.

EPUB and FB2 are reflowable: page numbers depend on the window they are laid out in, so a position here is a
chapter (MuPDF's chapters follow the book's spine), which stays the same wherever it is opened. XPS/OpenXPS
(the fixed-layout format Windows prints to) and CBZ comic archives have real pages and are read like PDFs
(``pdf.read_paged``), including OCR for pages that are only pictures, and previewed as rendered pages.
DRM-protected books fail as ``encrypted``.
"""

from __future__ import annotations

from desktop_search.core.extract.base import Extraction
from desktop_search.core.extract.containers import zip_member_names, zip_mimetype
from desktop_search.core.extract.pdf import read_chapters, read_paged
from desktop_search.core.extract.registry import Extractor, Source

__all__ = ["EXTRACTORS"]


def read_epub(src: Source) -> Extraction:
    return read_chapters(src, "epub", "e-book")


def read_fb2(src: Source) -> Extraction:
    return read_chapters(src, "fb2", "e-book")


def read_xps(src: Source) -> Extraction:
    return read_paged(src, "xps", "XPS document")


def read_cbz(src: Source) -> Extraction:
    return read_paged(src, "cbz", "comic book")


def _is_xps(data: bytes) -> bool:
    names = zip_member_names(data)
    return any(n.endswith(".fdseq") or n.endswith("FixedDocumentSequence.fdseq") for n in names)


_PICTURES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff")


def _is_comic(data: bytes) -> bool:
    names = [n for n in zip_member_names(data) if not n.endswith("/")]
    return bool(names) and sum(n.lower().endswith(_PICTURES) for n in names) >= len(names) * 0.8


EXTRACTORS = (
    Extractor(
        name="epub", kind="ebook", extensions=(".epub",), read=read_epub, description="EPUB e-book",
        position="chapter", preview="text", sniff=lambda data: zip_mimetype(data) == "application/epub+zip",
        tokens_per_byte=0.1, mime_types=("application/epub+zip",),
    ),
    Extractor(
        name="fb2", kind="ebook", extensions=(".fb2",), read=read_fb2, description="FictionBook e-book",
        position="chapter", preview="text", sniff=lambda data: b"<FictionBook" in data[:2048],
        tokens_per_byte=0.2, mime_types=("application/x-fictionbook+xml",),
    ),
    Extractor(
        name="xps", kind="document", extensions=(".xps", ".oxps"), read=read_xps, description="XPS document",
        position="page", preview="page", sniff=_is_xps, tokens_per_byte=0.02, ocr=True,
        mime_types=("application/oxps", "application/vnd.ms-xpsdocument"),
    ),
    Extractor(
        name="cbz", kind="ebook", extensions=(".cbz",), read=read_cbz, description="comic book archive",
        position="page", preview="page", sniff=_is_comic, tokens_per_byte=0.0005, ocr=True,
        mime_types=("application/vnd.comicbook+zip",),
    ),
)
